-- The history the plan wanted to query (issue 26): its Priority 4 schema on the
-- tables the service already has, queryable with plain SQL. Finished workflows
-- are no longer packed: results.result is JSONB again and event rows stay until
-- archival. Packed values written before this migration are converted by the
-- server right after it (src/store/postgres/unpack.rs), and V13 then makes
-- results.result NOT NULL and drops results.packed. Size is PostgreSQL's TOAST
-- compression (lz4 where the server has it) and archival.

-- workflows: the plan's columns. task, config and error are generated from the
-- record, so they can never disagree with it; started_at is written beside it (a
-- text-to-timestamptz cast is not immutable, so it cannot be generated).
ALTER TABLE workflows
    ADD COLUMN orchestrator_type TEXT NOT NULL GENERATED ALWAYS AS (pattern) STORED,
    ADD COLUMN task TEXT NOT NULL GENERATED ALWAYS AS (record->>'task') STORED,
    ADD COLUMN config JSONB GENERATED ALWAYS AS (record->'config') STORED,
    ADD COLUMN error TEXT GENERATED ALWAYS AS (record->'error'->>'code') STORED,
    ADD COLUMN started_at TIMESTAMPTZ;
UPDATE workflows SET started_at = (record->>'started_at')::timestamptz
WHERE record->>'started_at' IS NOT NULL;
-- The plan's indexes: status (workflows_status_id serves it), type, newest first.
CREATE INDEX idx_workflows_type ON workflows (orchestrator_type);
DROP INDEX IF EXISTS workflows_created;
CREATE INDEX idx_workflows_created ON workflows (created_at DESC);

-- results: the plan's columns, generated from the result itself.
ALTER TABLE results
    ADD COLUMN execution_time DOUBLE PRECISION
        GENERATED ALWAYS AS ((result->>'execution_time')::float8) STORED,
    ADD COLUMN total_cost DOUBLE PRECISION
        GENERATED ALWAYS AS ((result->>'total_cost')::float8) STORED,
    ADD COLUMN agent_count INT
        GENERATED ALWAYS AS (jsonb_array_length(result->'agent_results')) STORED,
    ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE results r SET created_at = w.completed_at
FROM workflows w WHERE w.id = r.workflow_id AND w.completed_at IS NOT NULL;
-- Containment (result @> '{"agent_results": [{"model": "m"}]}') and words
-- (to_tsvector('english', result) @@ plainto_tsquery('english', 'raft')).
CREATE INDEX idx_results_metadata ON results USING GIN (result jsonb_path_ops);
CREATE INDEX idx_results_words ON results USING GIN (to_tsvector('english', result));
CREATE INDEX idx_results_cost ON results (total_cost DESC);

-- events: the audit log, by workflow and time (seq order is time order; the
-- primary key (workflow_id, seq) keeps replays from duplicating an event).
CREATE INDEX idx_events_task_time ON events (workflow_id, ts);

-- Compression: lz4 for the JSON columns (PostgreSQL 14 and later; pglz before),
-- and a lower TOAST threshold for events so that a long agent_completed event is
-- compressed in its row rather than stored raw.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE results ALTER COLUMN result SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE events ALTER COLUMN data SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE workflows ALTER COLUMN record SET COMPRESSION lz4';
    END IF;
END $$;
ALTER TABLE events SET (toast_tuple_target = 256);
ALTER TABLE workflows SET (toast_tuple_target = 512);

-- The plan's tables by its own names, as views: SET search_path = plan, public
-- and its queries run as written.
CREATE SCHEMA plan;
CREATE VIEW plan.workflows AS
SELECT id AS task_id, orchestrator_type,
       CASE orchestrator_type WHEN 'research' THEN 'beltalowda' WHEN 'search' THEN 'swarm'
            ELSE orchestrator_type END AS legacy_type,
       task, status, created_at, started_at, completed_at, config, error,
       owner, total_cost_usd, execution_time, archive_key
FROM public.workflows;
CREATE VIEW plan.results AS
SELECT workflow_id AS task_id, result, execution_time, total_cost, agent_count, created_at
FROM public.results;
CREATE VIEW plan.events AS
SELECT workflow_id AS task_id, seq, type AS event_type, data AS event_data, ts AS "timestamp"
FROM public.events;

-- PostgreSQL primary store: the same semantics as migrations/sqlite (V1 + V2).
-- Each record is kept whole as JSONB (read back field for field); the columns
-- beside it serve filters, sorting and analytics.
CREATE TABLE workflows (
    id             TEXT PRIMARY KEY,
    pattern        TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ,
    total_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    execution_time DOUBLE PRECISION,
    record         JSONB NOT NULL
);
CREATE INDEX workflows_status_id ON workflows (status, id);
CREATE INDEX workflows_pattern_id ON workflows (pattern, id);
CREATE INDEX workflows_created ON workflows (created_at);
CREATE INDEX workflows_completed ON workflows (completed_at);
CREATE INDEX workflows_cost ON workflows (total_cost_usd);

CREATE TABLE results (
    workflow_id TEXT PRIMARY KEY REFERENCES workflows (id),
    result      JSONB NOT NULL
);
-- Containment queries over results (e.g. result @> '{"agent_results": [{"model": "m"}]}').
CREATE INDEX results_result_gin ON results USING GIN (result jsonb_path_ops);

-- The event log (audit): per-workflow seq, unique, so replaying a batch never
-- duplicates an event.
CREATE TABLE events (
    workflow_id TEXT NOT NULL REFERENCES workflows (id),
    seq         BIGINT NOT NULL,
    type        TEXT NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    data        JSONB NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);

-- Webhook subscriptions (per workflow, or global when workflow_id is NULL) and
-- deliveries with their attempts.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    workflow_id TEXT,
    url         TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    record      JSONB NOT NULL
);
CREATE INDEX webhooks_workflow ON webhooks (workflow_id);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    workflow_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    status          TEXT NOT NULL,
    event_seq       BIGINT NOT NULL,
    record          JSONB NOT NULL
);
CREATE INDEX deliveries_workflow ON deliveries (workflow_id, event_seq);
CREATE INDEX deliveries_status ON deliveries (status);

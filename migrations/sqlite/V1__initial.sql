-- Workflows: the full record as JSON (read back field for field) plus the
-- columns that queries filter and sort on.
CREATE TABLE workflows (
    id              TEXT PRIMARY KEY,
    pattern         TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at_us   INTEGER NOT NULL,
    completed_at_us INTEGER,
    total_cost_usd  REAL NOT NULL DEFAULT 0,
    execution_time  REAL,
    record          TEXT NOT NULL
);
CREATE INDEX workflows_status_id ON workflows (status, id);
CREATE INDEX workflows_pattern_id ON workflows (pattern, id);
CREATE INDEX workflows_created ON workflows (created_at_us);
CREATE INDEX workflows_completed ON workflows (completed_at_us);
CREATE INDEX workflows_cost ON workflows (total_cost_usd);

CREATE TABLE results (
    workflow_id TEXT PRIMARY KEY REFERENCES workflows (id),
    result      TEXT NOT NULL
);

-- The event log: per-workflow seq, unique, so replaying a batch never duplicates.
CREATE TABLE events (
    workflow_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    ts_us       INTEGER NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (workflow_id, seq)
) WITHOUT ROWID;

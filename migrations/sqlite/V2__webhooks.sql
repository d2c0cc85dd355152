-- Webhook subscriptions (per workflow, or global when workflow_id is NULL) and
-- deliveries with their attempts. Records are JSON; the columns serve queries.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    workflow_id   TEXT,
    url           TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    record        TEXT NOT NULL
);
CREATE INDEX webhooks_workflow ON webhooks (workflow_id);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    workflow_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    status          TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,
    record          TEXT NOT NULL
);
CREATE INDEX deliveries_workflow ON deliveries (workflow_id, event_seq);
CREATE INDEX deliveries_status ON deliveries (status);

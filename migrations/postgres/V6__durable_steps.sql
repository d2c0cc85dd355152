-- Durable steps: each LLM call's answer under its step key (wf_…/agent/3),
-- committed before anything that depends on it starts. The first answer under a
-- key stays (ON CONFLICT DO NOTHING), so a resumed run counts it once.
CREATE TABLE steps (
    workflow_id  TEXT NOT NULL,
    step_key     TEXT NOT NULL,
    answered_at  TIMESTAMPTZ NOT NULL,
    answer       JSONB NOT NULL,
    PRIMARY KEY (workflow_id, step_key)
);

-- Idempotency-Key of creates: (owner scope, key) → the workflow it created and a
-- hash of the request; entries older than idempotency.ttl are ignored and replaced.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Several instances on one PostgreSQL (src/cluster/): PostgreSQL is the
-- coordination engine, with no coordinator of our own.

-- Live instances and their heartbeats (shown in /health).
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- One row per unfinished workflow: the instance that runs it, until when, and
-- the epoch every write of the workflow is fenced with. Admission counts these
-- rows (under an advisory lock), so limits hold across instances; the row goes
-- in the transaction that stores the workflow's terminal status.
CREATE TABLE leases (
    workflow_id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    owner       TEXT
);
CREATE INDEX leases_instance ON leases (instance_id);
CREATE INDEX leases_expires ON leases (expires_at);
CREATE INDEX leases_owner ON leases (owner) WHERE owner IS NOT NULL;

-- Cancels asked of an instance that does not run the workflow: its owner (or
-- whoever claims it next) honours them.
CREATE TABLE cancel_requests (
    workflow_id  TEXT PRIMARY KEY,
    requested_at TIMESTAMPTZ NOT NULL
);

-- Each pending webhook delivery is claimed by one instance; a survivor claims
-- it again once the claim expires.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT, ADD COLUMN claim_expires TIMESTAMPTZ;
CREATE INDEX deliveries_pending_claim ON deliveries (claim_expires) WHERE status = 'pending';

-- Unfinished workflows from before this migration: leased to nobody, claimable at once.
INSERT INTO leases (workflow_id, instance_id, epoch, expires_at, owner)
SELECT id, '', 0, '-infinity', owner FROM workflows
WHERE status IN ('pending', 'running', 'interrupted');

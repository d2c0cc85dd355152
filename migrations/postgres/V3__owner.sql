-- The API key that created each workflow (issue 14). NULL for workflows created
-- with auth off or before keys existed: only admin keys see those. Lists and
-- analytics of a non-admin key filter on it; the daily spend per key sums it.
ALTER TABLE workflows ADD COLUMN owner TEXT;
CREATE INDEX workflows_owner_id ON workflows (owner, id);
CREATE INDEX workflows_owner_created ON workflows (owner, created_at);

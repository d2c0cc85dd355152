-- Archival (src/archive/): an archived workflow keeps its row as the summary
-- (status, pattern, owner, timestamps and cost in columns, tokens in the record)
-- plus the key of its object; its results, events and deliveries are deleted. model_costs rows stay, so analytics are unchanged.
ALTER TABLE workflows ADD COLUMN archive_key TEXT;
-- What a pass looks for: finished, not archived, oldest completion first.
CREATE INDEX workflows_unarchived ON workflows (completed_at)
    WHERE archive_key IS NULL AND completed_at IS NOT NULL;

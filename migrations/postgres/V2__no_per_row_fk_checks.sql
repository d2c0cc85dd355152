-- The writer inserts a workflow's record before its events and result, in the
-- same transaction, and nothing else writes these tables: integrity holds by
-- construction. The per-row foreign-key triggers took about a third of the
-- event insert time under load (BENCHMARKS.md), so they go.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_workflow_id_fkey;
ALTER TABLE results DROP CONSTRAINT IF EXISTS results_workflow_id_fkey;

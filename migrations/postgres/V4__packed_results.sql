-- Finished workflows are packed (src/store/packed.rs): results.packed holds one
-- zstd value with the result and the whole event log, and the event rows go.
-- Rows written before this migration keep their JSONB result and are read as
-- before. Analytics read calls and cost per model from model_costs, one row per
-- workflow and model, filled here for the results already stored.
CREATE TABLE model_costs (
    workflow_id TEXT NOT NULL,
    model       TEXT NOT NULL,
    calls       BIGINT NOT NULL,
    cost        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (workflow_id, model)
);

INSERT INTO model_costs (workflow_id, model, calls, cost)
SELECT m.workflow_id, COALESCE(m.model, 'unknown'), COUNT(*), COALESCE(SUM(m.cost), 0)
FROM (
    SELECT r.workflow_id, e->>'model' AS model, (e->>'cost')::float8 AS cost
      FROM results r CROSS JOIN LATERAL jsonb_array_elements(r.result->'agent_results') e
    UNION ALL
    SELECT r.workflow_id, e->>'model', (e->>'cost')::float8
      FROM results r CROSS JOIN LATERAL jsonb_array_elements(r.result->'synthesis_results') e
) m GROUP BY 1, 2;

-- Packed results are opaque to SQL: the containment index has nothing to index.
DROP INDEX IF EXISTS results_result_gin;
ALTER TABLE results ALTER COLUMN result DROP NOT NULL;
ALTER TABLE results ADD COLUMN packed BYTEA;

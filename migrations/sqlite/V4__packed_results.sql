-- Finished workflows are packed (src/store/packed.rs): results.result holds one
-- zstd value with the result and the whole event log (a BLOB), and the event rows
-- go. Rows written before this migration keep their JSON text and are read as
-- before. Analytics read calls and cost per model from model_costs, one row per
-- workflow and model, filled here for the results already stored.
CREATE TABLE model_costs (
    workflow_id TEXT NOT NULL,
    model       TEXT NOT NULL,
    calls       INTEGER NOT NULL,
    cost        REAL NOT NULL,
    PRIMARY KEY (workflow_id, model)
) WITHOUT ROWID;

INSERT OR REPLACE INTO model_costs (workflow_id, model, calls, cost)
SELECT workflow_id, COALESCE(model, 'unknown'), COUNT(*), TOTAL(cost) FROM (
    SELECT r.workflow_id, json_extract(e.value, '$.model') AS model, json_extract(e.value, '$.cost') AS cost
      FROM results r, json_each(r.result, '$.agent_results') e WHERE typeof(r.result) = 'text'
    UNION ALL
    SELECT r.workflow_id, json_extract(e.value, '$.model'), json_extract(e.value, '$.cost')
      FROM results r, json_each(r.result, '$.synthesis_results') e WHERE typeof(r.result) = 'text'
) GROUP BY 1, 2;

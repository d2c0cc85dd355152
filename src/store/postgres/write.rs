//! One batch of `StateChange`s in one transaction, with a few multi-row
//! statements (`INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT`) instead of one
//! round trip per change. Idempotent: events are `ON CONFLICT DO NOTHING` on
//! `(workflow_id, seq)`, records and results are upserts, so replaying a batch
//! after a restart changes nothing. A finished workflow's result is one JSONB
//! value and its event rows stay (the queryable history of migration V8);
//! PostgreSQL's TOAST compresses them and archival moves them out.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

type Param = dyn ToSql + Sync;

use crate::domain::{ChangeKind, StateChange, WorkflowResult};
use crate::store::packed;
use crate::store::plan::BatchPlan;

const UPSERT_WORKFLOWS: &str = "
INSERT INTO workflows (id, pattern, status, created_at, started_at, completed_at, total_cost_usd, execution_time, record, owner)
SELECT id, pattern, status, created_at, started_at, completed_at, cost, exec, record::jsonb, owner
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::float8[], $7::float8[], $8::text[], $9::text[], $10::timestamptz[])
  AS t (id, pattern, status, created_at, completed_at, cost, exec, record, owner, started_at)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, started_at = excluded.started_at,
  completed_at = excluded.completed_at, total_cost_usd = excluded.total_cost_usd,
  execution_time = excluded.execution_time, record = excluded.record";

/// Also used to unpack the event logs of older packed rows (`unpack.rs`).
pub(super) const INSERT_EVENTS: &str = "
INSERT INTO events (workflow_id, seq, type, ts, data)
SELECT workflow_id, seq, type, ts, data::jsonb
FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::timestamptz[], $5::text[])
  AS t (workflow_id, seq, type, ts, data)
ON CONFLICT (workflow_id, seq) DO NOTHING";

/// Results are written once, when a workflow finishes; a replay rewrites the same.
const UPSERT_RESULTS: &str = "
INSERT INTO results (workflow_id, result)
SELECT workflow_id, result::jsonb FROM UNNEST($1::text[], $2::text[]) AS t (workflow_id, result)
ON CONFLICT (workflow_id) DO UPDATE SET result = excluded.result";

const UPSERT_MODEL_COSTS: &str = "
INSERT INTO model_costs (workflow_id, model, calls, cost)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::float8[])
ON CONFLICT (workflow_id, model) DO UPDATE SET calls = excluded.calls, cost = excluded.cost";

const UPSERT_WEBHOOK: &str = "
INSERT INTO webhooks (id, workflow_id, url, created_at, record) VALUES ($1, $2, $3, $4, $5::text::jsonb)
ON CONFLICT (id) DO UPDATE SET workflow_id = excluded.workflow_id, url = excluded.url, record = excluded.record";

const UPSERT_IDEMPOTENCY: &str = "
INSERT INTO idempotency_keys (scope, key, request_hash, workflow_id, created_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
  workflow_id = excluded.workflow_id, created_at = excluded.created_at";

const INSERT_STEPS: &str = "
INSERT INTO steps (workflow_id, step_key, answered_at, answer)
SELECT workflow_id, step_key, answered_at, answer::jsonb
FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS t (workflow_id, step_key, answered_at, answer)
ON CONFLICT (workflow_id, step_key) DO NOTHING";

/// A generated document's bytes; the first version stays, like its step answer.
const INSERT_DOCUMENT: &str = "
INSERT INTO documents (workflow_id, name, format, bytes, sha256, body) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (workflow_id, name) DO NOTHING";

const DELETE_STEPS: &str = "DELETE FROM steps WHERE workflow_id = ANY($1)";

const DELETE_WEBHOOK: &str = "DELETE FROM webhooks WHERE id = $1";

const UPSERT_DELIVERY: &str = "
INSERT INTO deliveries (id, workflow_id, subscription_id, status, event_seq, record)
VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, record = excluded.record";

#[derive(Debug)]
pub enum WriteError {
    Pg(tokio_postgres::Error),
    Encode(serde_json::Error),
}

impl From<tokio_postgres::Error> for WriteError {
    fn from(e: tokio_postgres::Error) -> Self {
        WriteError::Pg(e)
    }
}

impl From<serde_json::Error> for WriteError {
    fn from(e: serde_json::Error) -> Self {
        WriteError::Encode(e)
    }
}

#[derive(Default)]
struct Workflows {
    id: Vec<String>,
    pattern: Vec<&'static str>,
    status: Vec<&'static str>,
    created_at: Vec<DateTime<Utc>>,
    completed_at: Vec<Option<DateTime<Utc>>>,
    cost: Vec<f64>,
    exec: Vec<Option<f64>>,
    record: Vec<String>,
    owner: Vec<Option<String>>,
    started_at: Vec<Option<DateTime<Utc>>>,
}

#[derive(Default)]
struct Events {
    workflow_id: Vec<String>,
    seq: Vec<i64>,
    kind: Vec<&'static str>,
    ts: Vec<DateTime<Utc>>,
    data: Vec<String>,
}

#[derive(Default)]
struct Steps {
    workflow_id: Vec<String>,
    step_key: Vec<String>,
    answered_at: Vec<DateTime<Utc>>,
    answer: Vec<String>,
}

/// Writes the batch inside `tx` (the caller commits). Workflow records and results
/// go first (events and results reference workflows), the rest in batch order.
pub async fn write_batch(
    tx: &Transaction<'_>,
    batch: &[Arc<StateChange>],
) -> Result<(), WriteError> {
    let plan = BatchPlan::of(batch);
    let mut steps = Steps::default();
    for st in &plan.steps {
        steps.workflow_id.push(st.workflow_id.clone());
        steps.step_key.push(st.step_key.clone());
        steps.answered_at.push(st.answered_at);
        steps.answer.push(serde_json::to_string(&st.answer)?);
    }
    let mut events = Events::default();
    for ev in &plan.events {
        events.workflow_id.push(ev.workflow_id.clone());
        events.seq.push(ev.seq as i64);
        events.kind.push(ev.kind.as_str());
        events.ts.push(ev.timestamp);
        events.data.push(ev.data_json().to_owned());
    }
    let (last_record, last_result) = (&plan.records, &plan.results);
    if !last_record.is_empty() {
        let mut w = Workflows::default();
        for wf in last_record.values() {
            w.id.push(wf.id.clone());
            w.pattern.push(wf.pattern.as_str());
            w.status.push(wf.status.as_str());
            w.created_at.push(wf.created_at);
            w.completed_at.push(wf.completed_at);
            w.cost.push(wf.total_cost_usd);
            w.exec.push(wf.execution_time);
            w.record.push(serde_json::to_string(wf)?);
            w.owner.push(wf.owner.clone());
            w.started_at.push(wf.started_at);
        }
        let stmt = tx.prepare_cached(UPSERT_WORKFLOWS).await?;
        tx.execute(
            &stmt,
            &[
                &w.id,
                &w.pattern,
                &w.status,
                &w.created_at,
                &w.completed_at,
                &w.cost,
                &w.exec,
                &w.record,
                &w.owner,
                &w.started_at,
            ],
        )
        .await?;
    }
    if !events.seq.is_empty() {
        let stmt = tx.prepare_cached(INSERT_EVENTS).await?;
        tx.execute(
            &stmt,
            &[
                &events.workflow_id,
                &events.seq,
                &events.kind,
                &events.ts,
                &events.data,
            ],
        )
        .await?;
    }
    if !steps.step_key.is_empty() {
        let stmt = tx.prepare_cached(INSERT_STEPS).await?;
        tx.execute(
            &stmt,
            &[
                &steps.workflow_id,
                &steps.step_key,
                &steps.answered_at,
                &steps.answer,
            ],
        )
        .await?;
    }
    if !last_result.is_empty() {
        write_results(tx, last_result).await?;
    }
    // Webhooks and deliveries are rare next to events: one statement each, in
    // order, so a removal after a registration in the same batch wins.
    for kind in &plan.others {
        match kind {
            ChangeKind::Webhook(w) => {
                let stmt = tx.prepare_cached(UPSERT_WEBHOOK).await?;
                let record = serde_json::to_string(w.as_ref())?;
                tx.execute(
                    &stmt,
                    &[&w.id, &w.workflow_id, &w.url, &w.created_at, &record],
                )
                .await?;
            }
            ChangeKind::WebhookRemoved(id) => {
                let stmt = tx.prepare_cached(DELETE_WEBHOOK).await?;
                tx.execute(&stmt, &[id]).await?;
            }
            ChangeKind::Delivery(d) => {
                let stmt = tx.prepare_cached(UPSERT_DELIVERY).await?;
                let record = serde_json::to_string(d.as_ref())?;
                tx.execute(
                    &stmt,
                    &[
                        &d.id,
                        &d.workflow_id,
                        &d.subscription_id,
                        &d.status.as_str(),
                        &(d.event_seq as i64),
                        &record,
                    ],
                )
                .await?;
            }
            ChangeKind::Idempotency(k) => {
                let stmt = tx.prepare_cached(UPSERT_IDEMPOTENCY).await?;
                tx.execute(
                    &stmt,
                    &[
                        &k.scope,
                        &k.key,
                        &k.request_hash,
                        &k.workflow_id,
                        &k.created_at,
                    ],
                )
                .await?;
            }
            ChangeKind::Document(d) => {
                let stmt = tx.prepare_cached(INSERT_DOCUMENT).await?;
                let bytes = d.body.len() as i64;
                tx.execute(
                    &stmt,
                    &[
                        &d.workflow_id,
                        &d.name,
                        &d.format,
                        &bytes,
                        &d.sha256,
                        &d.body,
                    ],
                )
                .await?;
            }
            ChangeKind::Step(_)
            | ChangeKind::Workflow(_)
            | ChangeKind::Event(_)
            | ChangeKind::Result(_)
            | ChangeKind::Evicted(_) => {}
        }
    }
    Ok(())
}

/// The finished workflows' results as JSONB, their calls and cost per model
/// (what analytics read, kept after archival) and, as their step answers served
/// resumes only and the result holds them, the end of their steps.
async fn write_results(
    tx: &Transaction<'_>,
    results: &HashMap<&str, &WorkflowResult>,
) -> Result<(), WriteError> {
    let (mut ids, mut values) = (vec![], vec![]);
    let (mut cost_ids, mut models, mut calls, mut costs) = (vec![], vec![], vec![], vec![]);
    let mut finished = vec![];
    for (id, r) in results {
        for (model, n, cost) in packed::model_costs(r) {
            cost_ids.push(id.to_string());
            models.push(model);
            calls.push(n as i64);
            costs.push(cost);
        }
        if r.status.is_terminal() {
            finished.push(id.to_string());
        }
        ids.push(id.to_string());
        values.push(serde_json::to_string(r)?);
    }
    let upsert = tx.prepare_cached(UPSERT_RESULTS).await?;
    let set_costs = tx.prepare_cached(UPSERT_MODEL_COSTS).await?;
    let drop_steps = tx.prepare_cached(DELETE_STEPS).await?;
    // Pipelined on the one connection: a single round trip for the three.
    let a: [&Param; 2] = [&ids, &values];
    let b: [&Param; 4] = [&cost_ids, &models, &calls, &costs];
    let c: [&Param; 1] = [&finished];
    futures::try_join!(
        tx.execute(&upsert, &a),
        tx.execute(&set_costs, &b),
        tx.execute(&drop_steps, &c)
    )?;
    Ok(())
}

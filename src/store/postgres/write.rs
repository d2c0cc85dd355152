//! One batch of `StateChange`s in one transaction, with a few multi-row
//! statements (`INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT`) instead of one
//! round trip per change. Idempotent: events are `ON CONFLICT DO NOTHING` on
//! `(workflow_id, seq)`, records and results are upserts, so replaying a batch
//! after a restart changes nothing. A workflow that finishes in the batch is
//! packed (`store::packed`): one statement deletes its event rows and returns
//! them with any value already packed, and its result and events become one
//! compressed `results.packed` value.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

type Param = dyn ToSql + Sync;

use crate::domain::{ChangeKind, StateChange, Workflow, WorkflowResult};
use crate::store::packed::{self, Packed, RawEvent};

const UPSERT_WORKFLOWS: &str = "
INSERT INTO workflows (id, pattern, status, created_at, completed_at, total_cost_usd, execution_time, record, owner)
SELECT id, pattern, status, created_at, completed_at, cost, exec, record::jsonb, owner
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::float8[], $7::float8[], $8::text[], $9::text[])
  AS t (id, pattern, status, created_at, completed_at, cost, exec, record, owner)
ON CONFLICT (id) DO UPDATE SET status = excluded.status, completed_at = excluded.completed_at,
  total_cost_usd = excluded.total_cost_usd, execution_time = excluded.execution_time, record = excluded.record";

const INSERT_EVENTS: &str = "
INSERT INTO events (workflow_id, seq, type, ts, data)
SELECT workflow_id, seq, type, ts, data::jsonb
FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::timestamptz[], $5::text[])
  AS t (workflow_id, seq, type, ts, data)
ON CONFLICT (workflow_id, seq) DO NOTHING";

/// The event rows of finishing workflows, deleted, and what is already stored
/// for them (a packed value, or a JSONB result written before packing existed).
const TAKE_FOR_PACKING: &str = "
WITH taken AS (
  DELETE FROM events WHERE workflow_id = ANY($1)
  RETURNING workflow_id, seq, type, ts, data::text AS data)
SELECT workflow_id, seq, type, ts, data, NULL::text AS result, NULL::bytea AS packed FROM taken
UNION ALL
SELECT workflow_id, NULL, NULL, NULL, NULL, result::text, packed FROM results
WHERE workflow_id = ANY($2)";

const UPSERT_PACKED: &str = "
INSERT INTO results (workflow_id, result, packed)
SELECT workflow_id, NULL, packed FROM UNNEST($1::text[], $2::bytea[]) AS t (workflow_id, packed)
ON CONFLICT (workflow_id) DO UPDATE SET result = NULL, packed = excluded.packed";

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
    Corrupt(crate::store::StoreError),
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
    // Only the last record (and result) of each workflow in the batch matters,
    // and one statement may not upsert a row twice.
    let mut last_record: HashMap<&str, &Workflow> = HashMap::new();
    let mut last_result: HashMap<&str, &WorkflowResult> = HashMap::new();
    let mut steps = Steps::default();
    for change in batch {
        match &change.kind {
            ChangeKind::Workflow(wf) => {
                last_record.insert(&wf.id, wf);
            }
            ChangeKind::Result(r) => {
                last_result.insert(&r.workflow_id, r);
            }
            ChangeKind::Step(st) => {
                steps.workflow_id.push(st.workflow_id.clone());
                steps.step_key.push(st.step_key.clone());
                steps.answered_at.push(st.answered_at);
                steps.answer.push(serde_json::to_string(&st.answer)?);
            }
            _ => {}
        }
    }
    // Workflows whose event log moves into the packed value now. A result is
    // written only when a workflow finishes; its status says so.
    let finishing: HashSet<&str> = last_record
        .values()
        .filter(|w| w.status.is_terminal())
        .map(|w| w.id.as_str())
        .chain(
            last_result
                .values()
                .filter(|r| r.status.is_terminal())
                .map(|r| r.workflow_id.as_str()),
        )
        .collect();
    let mut held: HashMap<&str, Vec<RawEvent>> = HashMap::new();
    let mut events = Events::default();
    for change in batch {
        if let ChangeKind::Event(ev) = &change.kind {
            if finishing.contains(ev.workflow_id.as_str()) {
                // Straight into the packed value: no row to insert and delete.
                held.entry(ev.workflow_id.as_str())
                    .or_default()
                    .push(RawEvent::of(ev));
                continue;
            }
            events.workflow_id.push(ev.workflow_id.clone());
            events.seq.push(ev.seq as i64);
            events.kind.push(ev.kind.as_str());
            events.ts.push(ev.timestamp);
            events.data.push(ev.data.to_string());
        }
    }
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
    let to_pack: HashSet<&str> = finishing
        .iter()
        .copied()
        .chain(last_result.keys().copied())
        .collect();
    if !to_pack.is_empty() {
        pack(tx, &to_pack, &finishing, &last_result, held).await?;
    }
    // Webhooks and deliveries are rare next to events: one statement each, in
    // order, so a removal after a registration in the same batch wins.
    for change in batch {
        match &change.kind {
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
            // Evictions drop the in-memory copy only; the store keeps its own.
            ChangeKind::Step(_)
            | ChangeKind::Workflow(_)
            | ChangeKind::Event(_)
            | ChangeKind::Result(_)
            | ChangeKind::Evicted(_) => {}
        }
    }
    Ok(())
}

/// Packs the result and events of each workflow in `ids`; the event rows of
/// those `finishing` are deleted into the packed value.
async fn pack(
    tx: &Transaction<'_>,
    ids: &HashSet<&str>,
    finishing: &HashSet<&str>,
    results: &HashMap<&str, &WorkflowResult>,
    mut held: HashMap<&str, Vec<RawEvent>>,
) -> Result<(), WriteError> {
    let all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let fin: Vec<String> = finishing.iter().map(|s| s.to_string()).collect();
    let stmt = tx.prepare_cached(TAKE_FOR_PACKING).await?;
    let rows = tx.query(&stmt, &[&fin, &all]).await?;
    let mut stored_json: HashMap<String, String> = HashMap::new();
    let mut stored_packed: HashMap<String, Packed> = HashMap::new();
    let mut taken: HashMap<String, Vec<RawEvent>> = HashMap::new();
    for r in &rows {
        let id: String = r.try_get(0)?;
        if let Some(seq) = r.try_get::<_, Option<i64>>(1)? {
            let ts: DateTime<Utc> = r.try_get(3)?;
            taken.entry(id).or_default().push(RawEvent {
                seq: seq as u64,
                kind: r.try_get(2)?,
                ts_us: ts.timestamp_micros(),
                data: r.try_get(4)?,
            });
        } else if let Some(p) = r.try_get::<_, Option<Vec<u8>>>(6)? {
            let p = Packed::decode("stored result", &p).map_err(WriteError::Corrupt)?;
            stored_packed.insert(id, p);
        } else if let Some(j) = r.try_get::<_, Option<String>>(5)? {
            stored_json.insert(id, j);
        }
    }
    let (mut pack_ids, mut values) = (vec![], vec![]);
    let (mut cost_ids, mut models, mut calls, mut costs) = (vec![], vec![], vec![], vec![]);
    for id in all {
        let mut events = held.remove(id.as_str()).unwrap_or_default();
        events.extend(taken.remove(&id).unwrap_or_default());
        let mut result_json = match results.get(id.as_str()) {
            Some(r) => {
                for (model, n, cost) in packed::model_costs(r) {
                    cost_ids.push(id.clone());
                    models.push(model);
                    calls.push(n as i64);
                    costs.push(cost);
                }
                Some(serde_json::to_string(r)?)
            }
            None => None,
        };
        if let Some(p) = stored_packed.remove(&id) {
            let (old_result, old_events) = p.into_raw();
            if result_json.is_none() {
                result_json = old_result.as_ref().map(serde_json::to_string).transpose()?;
            }
            events.extend(old_events);
        } else if result_json.is_none() {
            result_json = stored_json.remove(&id);
        }
        values.push(packed::encode(result_json.as_deref(), events));
        pack_ids.push(id);
    }
    let upsert = tx.prepare_cached(UPSERT_PACKED).await?;
    let set_costs = tx.prepare_cached(UPSERT_MODEL_COSTS).await?;
    // A finished workflow's step answers served resumes only; its result holds them.
    let drop_steps = tx.prepare_cached(DELETE_STEPS).await?;
    // Pipelined on the one connection: a single round trip for the three.
    let a: [&Param; 2] = [&pack_ids, &values];
    let b: [&Param; 4] = [&cost_ids, &models, &calls, &costs];
    let c: [&Param; 1] = [&fin];
    futures::try_join!(
        tx.execute(&upsert, &a),
        tx.execute(&set_costs, &b),
        tx.execute(&drop_steps, &c)
    )?;
    Ok(())
}

//! One batch of `StateChange`s in one transaction, with a few multi-row
//! statements (`INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT`) instead of one
//! round trip per change. Idempotent: events are `ON CONFLICT DO NOTHING` on
//! `(workflow_id, seq)`, records and results are upserts, so replaying a batch
//! after a restart changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use crate::domain::{ChangeKind, StateChange, Workflow, WorkflowResult};

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

const UPSERT_RESULTS: &str = "
INSERT INTO results (workflow_id, result)
SELECT workflow_id, result::jsonb FROM UNNEST($1::text[], $2::text[]) AS t (workflow_id, result)
ON CONFLICT (workflow_id) DO UPDATE SET result = excluded.result";

const UPSERT_WEBHOOK: &str = "
INSERT INTO webhooks (id, workflow_id, url, created_at, record) VALUES ($1, $2, $3, $4, $5::text::jsonb)
ON CONFLICT (id) DO UPDATE SET workflow_id = excluded.workflow_id, url = excluded.url, record = excluded.record";

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
}

#[derive(Default)]
struct Events {
    workflow_id: Vec<String>,
    seq: Vec<i64>,
    kind: Vec<&'static str>,
    ts: Vec<DateTime<Utc>>,
    data: Vec<String>,
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
    let mut events = Events::default();
    for change in batch {
        match &change.kind {
            ChangeKind::Workflow(wf) => {
                last_record.insert(&wf.id, wf);
            }
            ChangeKind::Result(r) => {
                last_result.insert(&r.workflow_id, r);
            }
            ChangeKind::Event(ev) => {
                events.workflow_id.push(ev.workflow_id.clone());
                events.seq.push(ev.seq as i64);
                events.kind.push(ev.kind.as_str());
                events.ts.push(ev.timestamp);
                events.data.push(ev.data.to_string());
            }
            _ => {}
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
    if !last_result.is_empty() {
        let mut ids = Vec::with_capacity(last_result.len());
        let mut json = Vec::with_capacity(last_result.len());
        for (id, r) in &last_result {
            ids.push(id.to_string());
            json.push(serde_json::to_string(r)?);
        }
        let stmt = tx.prepare_cached(UPSERT_RESULTS).await?;
        tx.execute(&stmt, &[&ids, &json]).await?;
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
            // Evictions drop the in-memory copy only; the store keeps its own.
            ChangeKind::Workflow(_)
            | ChangeKind::Event(_)
            | ChangeKind::Result(_)
            | ChangeKind::Evicted(_) => {}
        }
    }
    Ok(())
}

//! One batch of `StateChange`s in one SQLite transaction. A workflow that
//! finishes in the batch is packed (`store::packed`): its event rows and its
//! result become one compressed value in `results.result` (a BLOB; rows written
//! before packing existed stay JSON text), and its per-model costs go to
//! `model_costs`. Idempotent: a replayed batch repacks the same events
//! (a seq is kept once) and the same result.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::config::Compression;
use crate::domain::{ChangeKind, Event, StateChange, WorkflowResult};
use crate::store::codec::Codec;
use crate::store::packed::{self, Packed, RawEvent};
use crate::store::plan::BatchPlan;

use super::logs::CommittedLogs;

/// `documents.encoding` of a body stored as a `Codec` value.
pub const DOCUMENT_CODEC: &str = "codec";

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn encode_err(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(encode_err)
}

pub fn write_batch(
    conn: &mut Connection,
    logs: &mut CommittedLogs,
    batch: &[Arc<StateChange>],
) -> rusqlite::Result<()> {
    let plan = BatchPlan::of(batch);
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO workflows (id, pattern, status, created_at_us, completed_at_us, total_cost_usd, execution_time, record, owner)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, completed_at_us = excluded.completed_at_us,
               total_cost_usd = excluded.total_cost_usd, execution_time = excluded.execution_time, record = excluded.record",
        )?;
        for wf in plan.records.values() {
            upsert.execute(params![
                wf.id,
                wf.pattern.as_str(),
                wf.status.as_str(),
                us(wf.created_at),
                wf.completed_at.map(us),
                wf.total_cost_usd,
                wf.execution_time,
                to_json(*wf)?,
                wf.owner
            ])?;
        }
    }
    // A finishing workflow's events go straight into its packed value: no row
    // to insert and delete.
    let mut held: HashMap<&str, Vec<RawEvent>> = HashMap::new();
    {
        let mut event = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (workflow_id, seq, type, ts_us, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for ev in &plan.events {
            if plan.finishing.contains(ev.workflow_id.as_str()) {
                held.entry(ev.workflow_id.as_str())
                    .or_default()
                    .push(RawEvent::of(ev));
            } else {
                event.execute(params![
                    ev.workflow_id,
                    ev.seq as i64,
                    ev.kind.as_str(),
                    us(ev.timestamp),
                    ev.data_json()
                ])?;
            }
        }
    }
    {
        let mut step = tx.prepare_cached(
            "INSERT OR IGNORE INTO steps (workflow_id, step_key, answered_at_us, answer) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for st in &plan.steps {
            step.execute(params![
                st.workflow_id,
                st.step_key,
                us(st.answered_at),
                to_json(&st.answer)?
            ])?;
        }
    }
    for kind in &plan.others {
        write_other(&tx, kind)?;
    }
    let ids: HashSet<&str> = plan
        .finishing
        .iter()
        .copied()
        .chain(plan.results.keys().copied())
        .collect();
    for id in ids {
        let events = held.remove(id).unwrap_or_default();
        let finished = plan.finishing.contains(id);
        let log = logs.get(id).filter(|_| finished);
        pack(
            &tx,
            id,
            plan.results.get(id).copied(),
            finished,
            log,
            events,
        )?;
    }
    tx.commit()?;
    logs.committed(&plan);
    Ok(())
}

/// Webhooks, their removals, deliveries, idempotency keys and documents.
fn write_other(tx: &Transaction<'_>, kind: &ChangeKind) -> rusqlite::Result<()> {
    match kind {
        ChangeKind::Webhook(w) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO webhooks (id, workflow_id, url, created_at_us, record) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![w.id, w.workflow_id, w.url, us(w.created_at), to_json(w.as_ref())?])?;
        }
        ChangeKind::WebhookRemoved(id) => {
            tx.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
                .execute([id])?;
        }
        ChangeKind::Delivery(d) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO deliveries (id, workflow_id, subscription_id, status, event_seq, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![d.id, d.workflow_id, d.subscription_id, d.status.as_str(), d.event_seq as i64, to_json(d.as_ref())?])?;
        }
        ChangeKind::Idempotency(k) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (scope, key, request_hash, workflow_id, created_at_us) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![k.scope, k.key, k.request_hash, k.workflow_id, us(k.created_at)])?;
        }
        ChangeKind::Document(d) => {
            // Compressed when that is smaller (text is; PDF and DOCX are not).
            let packed = Codec::new(Compression::Zstd, packed::LEVEL).encode(&d.body);
            let (body, encoding) = match packed.len() < d.body.len() {
                true => (packed.as_slice(), Some(DOCUMENT_CODEC)),
                false => (d.body.as_slice(), None),
            };
            tx.prepare_cached(
                "INSERT OR IGNORE INTO documents (workflow_id, name, format, bytes, sha256, body, encoding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![d.workflow_id, d.name, d.format, d.body.len() as i64, d.sha256, body, encoding])?;
        }
        ChangeKind::Workflow(_)
        | ChangeKind::Result(_)
        | ChangeKind::Event(_)
        | ChangeKind::Step(_)
        | ChangeKind::Evicted(_) => {}
    }
    Ok(())
}

/// Writes the packed value of `id`: `result` (or the one stored), the events
/// already packed, `events`, and (when `finished`) its event rows, deleted; a
/// finished workflow's step answers go too (they are in its result). `log`:
/// every event row of `id`, known to the writer, so the rows need not be read.
fn pack(
    tx: &Transaction<'_>,
    id: &str,
    result: Option<&WorkflowResult>,
    finished: bool,
    log: Option<&[Arc<Event>]>,
    mut events: Vec<RawEvent>,
) -> rusqlite::Result<()> {
    let stored: Option<Vec<u8>> = tx
        .prepare_cached("SELECT result FROM results WHERE workflow_id = ?1")?
        .query_row([id], |r| {
            Ok(match r.get_ref(0)? {
                // Packed values are BLOBs; older rows hold the result as JSON text.
                ValueRef::Blob(b) => Some(b.to_vec()),
                _ => None,
            })
        })
        .optional()?
        .flatten();
    let mut result_json = result.map(to_json).transpose()?;
    if let Some(stored) = stored {
        let old = Packed::decode("stored result", &stored).map_err(encode_err)?;
        let (old_result, old_events) = old.into_raw();
        if result_json.is_none() {
            result_json = old_result.as_ref().map(to_json).transpose()?;
        }
        events.extend(old_events);
    } else if result_json.is_none() {
        let legacy: Option<String> = tx
            .prepare_cached("SELECT result FROM results WHERE workflow_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        result_json = legacy;
    }
    if finished {
        // Its step answers served resumes only; the result holds them now.
        tx.prepare_cached("DELETE FROM steps WHERE workflow_id = ?1")?
            .execute([id])?;
        match log {
            Some(log) => {
                tx.prepare_cached("DELETE FROM events WHERE workflow_id = ?1")?
                    .execute([id])?;
                events.extend(log.iter().map(|e| RawEvent::of(e)));
            }
            None => {
                let mut del = tx.prepare_cached(
                    "DELETE FROM events WHERE workflow_id = ?1 RETURNING seq, type, ts_us, data",
                )?;
                let rows = del.query_map([id], |r| {
                    Ok(RawEvent {
                        seq: r.get::<_, i64>(0)? as u64,
                        kind: r.get(1)?,
                        ts_us: r.get(2)?,
                        data: r.get(3)?,
                    })
                })?;
                for row in rows {
                    events.push(row?);
                }
            }
        }
    }
    if let Some(r) = result {
        let mut cost = tx.prepare_cached(
            "INSERT OR REPLACE INTO model_costs (workflow_id, model, calls, cost) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (model, calls, c) in packed::model_costs(r) {
            cost.execute(params![id, model, calls as i64, c])?;
        }
    }
    let value = packed::encode(result_json.as_deref(), events);
    tx.prepare_cached(
        "INSERT INTO results (workflow_id, result) VALUES (?1, ?2)
         ON CONFLICT (workflow_id) DO UPDATE SET result = excluded.result",
    )?
    .execute(params![id, value])?;
    Ok(())
}

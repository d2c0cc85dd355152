//! Reading rows back into domain values: JSON records, events (rows and the
//! packed log of a finished workflow) and stored results.

use chrono::DateTime;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::backend;
use crate::domain::{Event, EventType, Workflow};
use crate::store::packed::Packed;
use crate::store::{stored_data, StoreError};

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn row_event(
    workflow_id: String,
    seq: i64,
    kind: String,
    ts_us: i64,
    data: String,
) -> Result<Event, StoreError> {
    let kind: EventType = parse("event type", &format!("\"{kind}\""))?;
    Ok(Event {
        workflow_id,
        seq: seq as u64,
        kind,
        timestamp: DateTime::from_timestamp_micros(ts_us)
            .ok_or_else(|| StoreError::Corrupt(format!("event timestamp {ts_us}")))?,
        data: stored_data(data)?,
    })
}

/// A workflow's events after `after`: the rows of an unfinished workflow and
/// the packed log of a finished one (both, merged by seq, should a late event
/// follow the packing).
pub(super) fn query_events(
    conn: &Connection,
    id: &str,
    after: u64,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT workflow_id, seq, type, ts_us, data FROM events WHERE workflow_id = ?1 AND seq > ?2 ORDER BY seq",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![id, after as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(backend)?;
    let mut events = rows
        .map(|r| {
            let (w, s, t, ts, d) = r.map_err(backend)?;
            row_event(w, s, t, ts, d)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if let Some(p) = packed_of(conn, id)? {
        let mut packed = p.events_after(id, after)?;
        if !events.is_empty() {
            packed.retain(|e| events.iter().all(|r| r.seq != e.seq));
        }
        packed.extend(events);
        packed.sort_by_key(|e| e.seq);
        events = packed;
    }
    Ok(events)
}

/// The stored result value of `id`: packed (a BLOB), or JSON text written
/// before packing existed.
pub(super) enum StoredResult {
    Packed(Box<Packed>),
    Json(String),
}

pub(super) fn stored_result(
    conn: &Connection,
    id: &str,
) -> Result<Option<StoredResult>, StoreError> {
    conn.prepare_cached("SELECT result FROM results WHERE workflow_id = ?1")
        .map_err(backend)?
        .query_row([id], |r| {
            Ok(match r.get_ref(0)? {
                ValueRef::Blob(b) => Err(b.to_vec()),
                v => Ok(v.as_str().map(str::to_string).unwrap_or_default()),
            })
        })
        .optional()
        .map_err(backend)?
        .map(|v| match v {
            Err(blob) => {
                Packed::decode("stored result", &blob).map(|p| StoredResult::Packed(Box::new(p)))
            }
            Ok(json) => Ok(StoredResult::Json(json)),
        })
        .transpose()
}

fn packed_of(conn: &Connection, id: &str) -> Result<Option<Packed>, StoreError> {
    Ok(match stored_result(conn, id)? {
        Some(StoredResult::Packed(p)) => Some(*p),
        _ => None,
    })
}

/// Rows whose first column is a JSON record.
pub(super) fn query_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(backend)?;
    rows.map(|r| parse("stored record", &r.map_err(backend)?))
        .collect()
}

pub(super) fn query_records(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Workflow>, StoreError> {
    query_json(conn, sql, args)
}

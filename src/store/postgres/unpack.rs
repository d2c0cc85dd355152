//! The data half of migration V8: results packed by earlier versions (one zstd
//! value with the result and the whole event log, `store::packed`) become a JSONB
//! result and event rows again. SQL cannot read zstd, so the server does it,
//! between V8 and V13, under the migration lock; V13 then refuses to run while a
//! packed value remains. Idempotent and resumable: each batch commits on its own,
//! events are inserted `ON CONFLICT DO NOTHING`, and only rows still packed are
//! read again.

use deadpool_postgres::Object;

use super::write::INSERT_EVENTS;
use crate::store::packed::Packed;

/// Packed rows converted per transaction: bounded memory and lock time.
const BATCH: i64 = 500;

const HAS_PACKED: &str = "
SELECT 1 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'results' AND column_name = 'packed'";

const NEXT: &str = "
SELECT workflow_id, packed FROM results WHERE packed IS NOT NULL ORDER BY workflow_id LIMIT $1";

const SET_RESULTS: &str = "
UPDATE results r SET result = t.result::jsonb, packed = NULL
FROM UNNEST($1::text[], $2::text[]) AS t (workflow_id, result)
WHERE r.workflow_id = t.workflow_id";

/// A packed value without a result (only events were packed): the events become
/// rows and the results row goes, as it read back as "no result" before.
const DROP_EMPTY: &str = "DELETE FROM results WHERE workflow_id = ANY($1)";

/// Why the conversion stopped; the migration reports it after "migration failed".
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("converting packed results: {}", crate::store::error_chain(.0))]
    Pg(tokio_postgres::Error),
    #[error("{0}")]
    Packed(crate::store::StoreError),
    #[error("packed result of {id}: event time {ts_us}")]
    EventTime { id: String, ts_us: i64 },
    #[error("{0}")]
    Encode(serde_json::Error),
}

/// Converts every packed row; returns how many. Errors name the workflow.
pub async fn unpack_all(client: &mut Object) -> Result<u64, UnpackError> {
    let pg = UnpackError::Pg;
    if client
        .query_opt(HAS_PACKED, &[])
        .await
        .map_err(pg)?
        .is_none()
    {
        return Ok(0);
    }
    let mut converted = 0u64;
    loop {
        let tx = client.transaction().await.map_err(pg)?;
        let rows = tx.query(NEXT, &[&BATCH]).await.map_err(pg)?;
        if rows.is_empty() {
            tx.commit().await.map_err(pg)?;
            return Ok(converted);
        }
        let (mut ev_ids, mut seqs, mut kinds, mut ts, mut data) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut ids, mut results, mut empty) = (vec![], vec![], vec![]);
        for r in &rows {
            let id: String = r.try_get(0).map_err(pg)?;
            let bytes: Vec<u8> = r.try_get(1).map_err(pg)?;
            let packed = Packed::decode(&format!("packed result of {id}"), &bytes)
                .map_err(UnpackError::Packed)?;
            let (result, events) = packed.into_raw();
            for e in events {
                ev_ids.push(id.clone());
                seqs.push(e.seq as i64);
                kinds.push(e.kind);
                ts.push(
                    chrono::DateTime::from_timestamp_micros(e.ts_us).ok_or_else(|| {
                        UnpackError::EventTime {
                            id: id.clone(),
                            ts_us: e.ts_us,
                        }
                    })?,
                );
                data.push(e.data);
            }
            match result {
                Some(r) => {
                    results.push(serde_json::to_string(&r).map_err(UnpackError::Encode)?);
                    ids.push(id);
                }
                None => empty.push(id),
            }
        }
        tx.execute(INSERT_EVENTS, &[&ev_ids, &seqs, &kinds, &ts, &data])
            .await
            .map_err(pg)?;
        tx.execute(SET_RESULTS, &[&ids, &results])
            .await
            .map_err(pg)?;
        tx.execute(DROP_EMPTY, &[&empty]).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        converted += rows.len() as u64;
        tracing::info!(
            converted,
            "packed results converted to JSONB and event rows"
        );
    }
}

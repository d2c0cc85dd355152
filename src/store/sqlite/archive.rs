//! Archival on SQLite: candidates, the one-transaction switch from full rows to
//! a summary row, giving the freed pages back (incremental vacuum), and the
//! documents an archive object takes along.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::write::DOCUMENT_CODEC;
use super::{backend, SqliteStore};
use crate::domain::StoredDocument;
use crate::store::codec::Codec;
use crate::store::{Space, StoreError};

const CANDIDATES: &str = "
FROM workflows w
WHERE w.archive_key IS NULL AND w.completed_at_us IS NOT NULL AND w.completed_at_us < ?1
  AND w.status IN ('completed', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.workflow_id = w.id AND d.status = 'pending')";

/// Pages freed per writer-lock hold: the writer waits at most this long.
const VACUUM_STEP: i64 = 2000;

pub fn candidates(
    c: &Connection,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let sql = format!("SELECT w.id {CANDIDATES} ORDER BY w.completed_at_us LIMIT ?2");
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(params![before.timestamp_micros(), limit as i64], |r| {
            r.get::<_, String>(0)
        })
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub fn count(c: &Connection, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) {CANDIDATES}");
    c.query_row(&sql, [before.timestamp_micros()], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(backend)
}

pub fn mark(c: &mut Connection, done: &[(String, String)]) -> rusqlite::Result<usize> {
    let tx = c.transaction()?;
    let mut marked = 0;
    {
        let mut set = tx.prepare_cached(
            "UPDATE workflows SET archive_key = ?2 WHERE id = ?1 AND archive_key IS NULL",
        )?;
        let mut results = tx.prepare_cached("DELETE FROM results WHERE workflow_id = ?1")?;
        let mut events = tx.prepare_cached("DELETE FROM events WHERE workflow_id = ?1")?;
        let mut deliveries = tx.prepare_cached("DELETE FROM deliveries WHERE workflow_id = ?1")?;
        // Its step answers are in the archived result: a finished run never resumes.
        let mut steps = tx.prepare_cached("DELETE FROM steps WHERE workflow_id = ?1")?;
        // Its documents are in the archive object too.
        let mut documents = tx.prepare_cached("DELETE FROM documents WHERE workflow_id = ?1")?;
        for (id, key) in done {
            marked += set.execute(params![id, key])?;
            results.execute([id])?;
            events.execute([id])?;
            deliveries.execute([id])?;
            steps.execute([id])?;
            documents.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(marked)
}

/// A workflow's documents (one, by name, or all).
pub fn documents(
    c: &Connection,
    id: &str,
    name: Option<&str>,
) -> Result<Vec<StoredDocument>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT name, format, sha256, body, encoding FROM documents
             WHERE workflow_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![id, name], |r| {
            let doc = StoredDocument {
                workflow_id: id.to_string(),
                name: r.get(0)?,
                format: r.get(1)?,
                sha256: r.get(2)?,
                body: r.get(3)?,
            };
            Ok((doc, r.get::<_, Option<String>>(4)?))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut doc, encoding) = row.map_err(backend)?;
        match encoding.as_deref() {
            None => {}
            Some(DOCUMENT_CODEC) => {
                doc.body = Codec::decode(&doc.body)
                    .map_err(|e| StoreError::Corrupt(format!("document {id}/{}: {e}", doc.name)))?;
            }
            Some(other) => {
                return Err(StoreError::Corrupt(format!(
                    "document {id}/{}: unknown encoding '{other}'",
                    doc.name
                )))
            }
        }
        out.push(doc);
    }
    Ok(out)
}

pub fn key(c: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    c.prepare_cached("SELECT archive_key FROM workflows WHERE id = ?1")
        .map_err(backend)?
        .query_row([id], |r| r.get::<_, Option<String>>(0))
        .optional()
        .map(Option::flatten)
        .map_err(backend)
}

fn pragma(c: &Connection, name: &str) -> rusqlite::Result<i64> {
    c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
}

pub fn space(c: &Connection, path: &std::path::Path) -> Result<Space, StoreError> {
    let page = pragma(c, "page_size").map_err(backend)? as u64;
    let mut s = Space::new();
    s.insert(
        "pages".into(),
        pragma(c, "page_count").map_err(backend)? as u64 * page,
    );
    s.insert(
        "free".into(),
        pragma(c, "freelist_count").map_err(backend)? as u64 * page,
    );
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    s.insert("file".into(), size(path));
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    s.insert("wal".into(), size(std::path::Path::new(&wal)));
    Ok(s)
}

impl SqliteStore {
    /// Frees the pages archival emptied, a step at a time under the writer's
    /// lock, then checkpoints so the file itself shrinks. Databases created
    /// before archival existed have `auto_vacuum = NONE`: their free pages are
    /// reused but the file keeps its size (README: one `VACUUM` converts them).
    pub(super) async fn vacuum(&self) -> Result<(), StoreError> {
        loop {
            let more = self
                .write(|c| {
                    if pragma(c, "auto_vacuum")? != 2 {
                        return Ok(false);
                    }
                    c.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP})"))?;
                    Ok(pragma(c, "freelist_count")? > 0)
                })
                .await?;
            if !more {
                break;
            }
        }
        self.write(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
            .await
    }
}

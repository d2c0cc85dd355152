//! Archival on PostgreSQL: candidates, the one-transaction switch from full rows
//! to a summary row, and table sizes (autovacuum reclaims the dead rows).

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{backend, PgStore};
use crate::domain::StoredDocument;
use crate::store::{Space, StoreError};

const CANDIDATES: &str = "
FROM workflows w
WHERE w.archive_key IS NULL AND w.completed_at IS NOT NULL AND w.completed_at < $1
  AND w.status IN ('completed', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.workflow_id = w.id AND d.status = 'pending')";

const MARK: &str = "
WITH marked AS (
  UPDATE workflows w SET archive_key = t.key
  FROM UNNEST($1::text[], $2::text[]) AS t (id, key)
  WHERE w.id = t.id AND w.archive_key IS NULL RETURNING w.id),
r AS (DELETE FROM results WHERE workflow_id = ANY($1)),
e AS (DELETE FROM events WHERE workflow_id = ANY($1)),
d AS (DELETE FROM deliveries WHERE workflow_id = ANY($1)),
s AS (DELETE FROM steps WHERE workflow_id = ANY($1)),
x AS (DELETE FROM documents WHERE workflow_id = ANY($1))
SELECT COUNT(*) FROM marked";

const TABLES: [&str; 7] = [
    "workflows",
    "documents",
    "results",
    "events",
    "deliveries",
    "model_costs",
    "webhooks",
];

impl PgStore {
    /// A workflow's documents (one, by name, or all).
    pub(super) async fn read_documents(
        &self,
        id: &str,
        name: Option<&str>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let rows = self
            .query(
                "SELECT name, format, sha256, body FROM documents
                 WHERE workflow_id = $1 AND ($2::text IS NULL OR name = $2) ORDER BY name",
                &[&id, &name],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredDocument {
                    workflow_id: id.to_string(),
                    name: r.try_get(0).map_err(backend)?,
                    format: r.try_get(1).map_err(backend)?,
                    sha256: r.try_get(2).map_err(backend)?,
                    body: r.try_get(3).map_err(backend)?,
                })
            })
            .collect()
    }

    pub(super) async fn candidates(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!("SELECT w.id {CANDIDATES} ORDER BY w.completed_at LIMIT $2");
        let rows = self.query(&sql, &[&before, &(limit as i64)]).await?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(backend))
            .collect()
    }

    pub(super) async fn count_candidates(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) {CANDIDATES}");
        let rows = self.query(&sql, &[&before]).await?;
        let n: i64 = first_number(&rows)?;
        Ok(n as u64)
    }

    /// One statement, hence one transaction.
    pub(super) async fn mark(&self, done: Vec<(String, String)>) -> Result<usize, StoreError> {
        let (ids, keys): (Vec<String>, Vec<String>) = done.into_iter().unzip();
        let rows = self.query(MARK, &[&ids, &keys]).await?;
        let n: i64 = first_number(&rows)?;
        Ok(n as usize)
    }

    pub(super) async fn key(&self, id: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .query("SELECT archive_key FROM workflows WHERE id = $1", &[&id])
            .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()
            .map_err(backend)?
            .flatten())
    }

    /// Total size (heap, indexes, TOAST) of each table.
    pub(super) async fn table_sizes(&self) -> Result<Space, StoreError> {
        let mut s = Space::new();
        for t in TABLES {
            let rows = self
                .query("SELECT pg_total_relation_size($1::text::regclass)", &[&t])
                .await?;
            let n: i64 = first_number(&rows)?;
            s.insert(t.to_string(), n as u64);
        }
        Ok(s)
    }
}

/// The number in the first column of the first row (a count or a size); 0 when
/// there is no row.
fn first_number(rows: &[Row]) -> Result<i64, StoreError> {
    Ok(rows
        .first()
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(backend)?
        .unwrap_or(0))
}

//! The `Store` contract on SQLite: reads on the reader pool, writes on the
//! writer connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::rows::{parse, query_events, query_json, query_records, stored_result, StoredResult};
use super::{analytics, archive, backend, us, write, SqliteStore};
use crate::domain::{
    Delivery, Event, IdempotencyRecord, StateChange, StepRecord, StoredDocument, Subscription,
    Workflow, WorkflowResult,
};
use crate::store::analytics::{AnalyticsQuery, CostStats, PerformanceStats, WorkflowStats};
use crate::store::{retained_since, ListQuery, Manifest, Space, Startup, Store, StoreError};

impl SqliteStore {
    /// One batch on the writer connection, on the calling thread. A panic is the
    /// batch's failure.
    fn write_now(&self, batch: &[Arc<StateChange>]) -> Result<(), StoreError> {
        let write = std::panic::AssertUnwindSafe(|| {
            let mut conn = self.0.writer.lock().map_err(backend)?;
            let mut logs = self.0.logs.lock().map_err(backend)?;
            write::write_batch(&mut conn, &mut logs, batch).map_err(backend)
        });
        std::panic::catch_unwind(write)
            .unwrap_or_else(|_| Err(StoreError::Backend("the batch write panicked".into())))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn write_batch(&self, batch: Vec<Arc<StateChange>>) -> Result<(), StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_now(&batch))
            .await
            .map_err(backend)?
    }

    fn write_batch_here(&self, batch: &[Arc<StateChange>]) -> Option<Result<(), StoreError>> {
        Some(self.write_now(batch))
    }

    async fn get_workflow(&self, id: &str) -> Result<Option<Workflow>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            let rec: Option<String> = c
                .query_row("SELECT record FROM workflows WHERE id = ?1", [&id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(backend)?;
            rec.map(|j| parse("workflow record", &j)).transpose()
        })
        .await
    }

    async fn get_result(&self, id: &str) -> Result<Option<WorkflowResult>, StoreError> {
        let id = id.to_string();
        self.read(move |c| match stored_result(c, &id)? {
            Some(StoredResult::Packed(p)) => Ok(p.result),
            Some(StoredResult::Json(j)) => parse("result", &j).map(Some),
            None => Ok(None),
        })
        .await
    }

    async fn events_after(&self, id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        let id = id.to_string();
        self.read(move |c| query_events(c, &id, after_seq)).await
    }

    async fn list(&self, q: ListQuery) -> Result<Vec<Workflow>, StoreError> {
        self.read(move |c| {
            let status = q.status.map(|s| s.as_str());
            let pattern = q.pattern.map(|p| p.as_str());
            let limit = q.limit as i64;
            query_records(
                c,
                "SELECT record FROM workflows
                 WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR pattern = ?2) AND (?3 IS NULL OR id < ?3)
                   AND (?5 IS NULL OR owner = ?5)
                 ORDER BY id DESC LIMIT ?4",
                &[&status, &pattern, &q.before_id, &limit, &q.owner],
            )
        })
        .await
    }

    async fn load_startup(
        &self,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Startup, StoreError> {
        let oldest = retained_since(max_age);
        self.read(move |c| {
            let active = query_records(
                c,
                "SELECT record FROM workflows WHERE status IN ('pending', 'running', 'interrupted') ORDER BY id",
                &[],
            )?;
            let mut events = Vec::new();
            for w in &active {
                events.extend(query_events(c, &w.id, 0)?);
            }
            let limit = max_completed as i64;
            // Archived workflows are read through the archive, never held in
            // memory (their rows keep only the summary).
            let retained = query_records(
                c,
                "SELECT record FROM workflows WHERE completed_at_us >= ?1 AND archive_key IS NULL \
                 ORDER BY completed_at_us DESC LIMIT ?2",
                &[&us(oldest), &limit],
            )?;
            Ok(Startup::assemble(active, events, retained))
        })
        .await
    }

    async fn startup_manifest(
        &self,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Manifest, StoreError> {
        let oldest = retained_since(max_age);
        self.read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT w.id, w.status, COUNT(e.seq), COALESCE(MAX(e.seq), 0) FROM workflows w \
                     LEFT JOIN events e ON e.workflow_id = w.id \
                     WHERE w.status IN ('pending', 'running', 'interrupted') GROUP BY w.id ORDER BY w.id",
                )
                .map_err(backend)?;
            let active = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let mut stmt = c
                .prepare(
                    "SELECT id, status FROM workflows WHERE completed_at_us >= ?1 \
                     AND archive_key IS NULL ORDER BY completed_at_us DESC LIMIT ?2",
                )
                .map_err(backend)?;
            let retained = stmt
                .query_map(params![us(oldest), max_completed as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Manifest::from_rows(active, retained)
        })
        .await
    }

    async fn load_webhooks(&self) -> Result<(Vec<Subscription>, Vec<Delivery>), StoreError> {
        self.read(|c| {
            let subs = query_json(c, "SELECT record FROM webhooks ORDER BY created_at_us", &[])?;
            let pending = query_json(
                c,
                "SELECT record FROM deliveries WHERE status = 'pending' ORDER BY workflow_id, event_seq",
                &[],
            )?;
            Ok((subs, pending))
        })
        .await
    }

    async fn find_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT k.request_hash, k.workflow_id, k.created_at_us FROM idempotency_keys k
                     JOIN workflows w ON w.id = k.workflow_id
                     WHERE k.scope = ?1 AND k.key = ?2 AND k.created_at_us >= ?3",
                    params![scope, key, us(since)],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            row.map(|(request_hash, workflow_id, at)| {
                Ok(IdempotencyRecord {
                    scope,
                    key,
                    request_hash,
                    workflow_id,
                    created_at: DateTime::from_timestamp_micros(at)
                        .ok_or_else(|| StoreError::Corrupt(format!("key timestamp {at}")))?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn steps_of(&self, workflow_ids: &[String]) -> Result<Vec<StepRecord>, StoreError> {
        let ids = workflow_ids.to_vec();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT step_key, answered_at_us, answer FROM steps WHERE workflow_id = ?1 ORDER BY step_key",
                )
                .map_err(backend)?;
            let mut out = Vec::new();
            for id in ids {
                let rows = stmt
                    .query_map([&id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
                    })
                    .map_err(backend)?;
                for row in rows {
                    let (step_key, at, answer) = row.map_err(backend)?;
                    out.push(StepRecord {
                        workflow_id: id.clone(),
                        step_key,
                        answer: parse("step answer", &answer)?,
                        answered_at: DateTime::from_timestamp_micros(at)
                            .ok_or_else(|| StoreError::Corrupt(format!("step timestamp {at}")))?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn deliveries_for(&self, workflow_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let id = workflow_id.to_string();
        self.read(move |c| {
            query_json(
                c,
                "SELECT record FROM deliveries WHERE workflow_id = ?1 ORDER BY event_seq, id",
                &[&id],
            )
        })
        .await
    }

    async fn analytics_workflows(&self, q: &AnalyticsQuery) -> Result<WorkflowStats, StoreError> {
        let q = q.clone();
        self.read(move |c| analytics::workflows(c, &q)).await
    }

    async fn analytics_costs(&self, q: &AnalyticsQuery) -> Result<CostStats, StoreError> {
        let q = q.clone();
        self.read(move |c| analytics::costs(c, &q)).await
    }

    async fn analytics_performance(
        &self,
        q: &AnalyticsQuery,
    ) -> Result<PerformanceStats, StoreError> {
        let q = q.clone();
        self.read(move |c| analytics::performance(c, &q)).await
    }

    async fn spend_by_owner_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT owner, TOTAL(total_cost_usd) FROM workflows
                     WHERE owner IS NOT NULL AND created_at_us >= ?1 GROUP BY owner",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([us(since)], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)).collect()
        })
        .await
    }

    async fn archive_candidates(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |c| archive::candidates(c, before, limit))
            .await
    }

    async fn count_archive_candidates(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.read(move |c| archive::count(c, before)).await
    }

    async fn mark_archived(&self, done: Vec<(String, String)>) -> Result<usize, StoreError> {
        self.write(move |c| archive::mark(c, &done)).await
    }

    async fn archive_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.read(move |c| archive::key(c, &id)).await
    }

    async fn documents(
        &self,
        id: &str,
        name: Option<&str>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let (id, name) = (id.to_string(), name.map(str::to_string));
        self.read(move |c| archive::documents(c, &id, name.as_deref()))
            .await
    }

    async fn reclaim(&self) -> Result<Space, StoreError> {
        self.vacuum().await?;
        self.space().await
    }

    async fn space(&self) -> Result<Space, StoreError> {
        let path = self.0.path.clone();
        self.read(move |c| archive::space(c, &path)).await
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        self.read(|c| {
            let t = Instant::now();
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(backend)?;
            Ok(t.elapsed())
        })
        .await
    }
}

//! PostgreSQL primary store (when `postgres.url` is set): the same `Store` contract
//! as embedded SQLite. Records are JSONB beside the columns queries use. Two pools:
//! the writer and point reads share `pool`; analytics queries have their own, so a
//! slow report never holds the connections the writer needs.

pub mod analytics;
mod archive;
mod cluster;
pub mod connect;
pub mod fence;
mod unpack;
pub mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::analytics::{AnalyticsQuery, CostStats, PerformanceStats, WorkflowStats};
use super::{retained_since, ListQuery, Manifest, Space, Startup, Store, StoreError};
use crate::config::PostgresConfig;
use crate::domain::{
    Delivery, Event, EventType, IdempotencyRecord, StateChange, StepRecord, StoredDocument,
    Subscription, Workflow, WorkflowResult,
};

/// A cheap-to-clone handle on the two pools.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    analytics: Pool,
    /// Bounds one batch end to end, even when the network stalls silently.
    write_timeout: Duration,
    /// Several instances: every write is fenced by this instance's leases.
    fence: Option<Arc<dyn fence::Fence>>,
}

pub(crate) fn backend(e: impl std::error::Error) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {}", connect::chain(&e)))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl PgStore {
    /// Builds the pools, connects once and applies the migrations. Errors are one
    /// line naming `postgres.url` (password redacted).
    pub async fn connect(cfg: &PostgresConfig) -> Result<PgStore, connect::UrlError> {
        let (pool, analytics) = connect::pools(cfg)?;
        let applied = connect::migrate(cfg, &pool).await?;
        if applied > 0 {
            tracing::info!(applied, "PostgreSQL migrations applied");
        }
        Ok(PgStore {
            pool,
            analytics,
            write_timeout: cfg.statement_timeout + cfg.connect_timeout,
            fence: None,
        })
    }

    /// Fences every write with this instance's leases (`cluster::fence`).
    pub fn with_fence(mut self, fence: Arc<dyn fence::Fence>) -> PgStore {
        self.fence = Some(fence);
        self
    }

    /// Applies migrations only (the `migrate` command); returns how many ran.
    pub async fn migrate(cfg: &PostgresConfig) -> Result<usize, connect::UrlError> {
        let (pool, _) = connect::pools(cfg)?;
        connect::migrate(cfg, &pool).await
    }

    /// Applies migrations up to `version` only: the database as the release
    /// with that schema left it (tests of upgrades).
    pub async fn migrate_until(
        cfg: &PostgresConfig,
        version: i32,
    ) -> Result<usize, connect::UrlError> {
        let (pool, _) = connect::pools(cfg)?;
        connect::migrate_until(cfg, &pool, version).await
    }

    async fn client(pool: &Pool) -> Result<Object, StoreError> {
        pool.get()
            .await
            .map_err(|e| StoreError::Backend(format!("PostgreSQL: {}", connect::describe_pool(&e))))
    }

    async fn query(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let client = Self::client(&self.pool).await?;
        let stmt = client.prepare_cached(sql).await.map_err(backend)?;
        client.query(&stmt, args).await.map_err(backend)
    }

    /// Rows whose first column is a JSON record (selected as text).
    async fn records<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql, args)
            .await?
            .iter()
            .map(|r| {
                parse(
                    "stored record",
                    &r.try_get::<_, String>(0).map_err(backend)?,
                )
            })
            .collect()
    }

    async fn events_of(&self, ids: &[String], after: i64) -> Result<Vec<Event>, StoreError> {
        let rows = self
            .query(
                "SELECT workflow_id, seq, type, ts, data::text FROM events
                 WHERE workflow_id = ANY($1) AND seq > $2 ORDER BY workflow_id, seq",
                &[&ids, &after],
            )
            .await?;
        rows.iter().map(row_event).collect()
    }
}

fn row_event(r: &Row) -> Result<Event, StoreError> {
    let kind: String = r.try_get(2).map_err(backend)?;
    let data: String = r.try_get(4).map_err(backend)?;
    Ok(Event {
        workflow_id: r.try_get::<_, String>(0).map_err(backend)?,
        seq: r.try_get::<_, i64>(1).map_err(backend)? as u64,
        kind: parse::<EventType>("event type", &format!("\"{kind}\""))?,
        timestamp: r.try_get::<_, DateTime<Utc>>(3).map_err(backend)?,
        data: crate::store::stored_data(data)?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn release_idle_connections(&self) {
        self.pool.retain(|_, _| false);
    }

    fn pools(&self) -> Option<serde_json::Value> {
        let status = |p: &Pool| {
            let s = p.status();
            serde_json::json!({"max_size": s.max_size, "open": s.size,
                "idle": s.available, "waiting": s.waiting})
        };
        Some(
            serde_json::json!({"writer": status(&self.pool), "analytics": status(&self.analytics)}),
        )
    }

    async fn write_batch(&self, batch: Vec<Arc<StateChange>>) -> Result<(), StoreError> {
        let work = async {
            let mut client = Self::client(&self.pool).await?;
            let tx = client.transaction().await.map_err(backend)?;
            let (batch, stale) = match &self.fence {
                Some(f) => {
                    let a = f.admit(&tx, batch).await.map_err(backend)?;
                    (a.batch, a.stale)
                }
                None => (batch, Vec::new()),
            };
            write::write_batch(&tx, &batch).await.map_err(|e| match e {
                write::WriteError::Pg(e) => backend(e),
                write::WriteError::Encode(e) => {
                    StoreError::Backend(format!("cannot encode a record: {e}"))
                }
            })?;
            let finished = match &self.fence {
                Some(f) => f.settle(&tx, &batch).await.map_err(backend)?,
                None => Vec::new(),
            };
            tx.commit().await.map_err(backend)?;
            if let Some(f) = &self.fence {
                f.committed(finished, stale);
            }
            Ok(())
        };
        tokio::time::timeout(self.write_timeout, work)
            .await
            .map_err(|_| {
                StoreError::Backend(format!(
                    "PostgreSQL: batch not committed within {:?}",
                    self.write_timeout
                ))
            })?
    }

    async fn get_workflow(&self, id: &str) -> Result<Option<Workflow>, StoreError> {
        let mut v = self
            .records("SELECT record::text FROM workflows WHERE id = $1", &[&id])
            .await?;
        Ok(v.pop())
    }

    async fn get_result(&self, id: &str) -> Result<Option<WorkflowResult>, StoreError> {
        let rows = self
            .query(
                "SELECT result::text FROM results WHERE workflow_id = $1",
                &[&id],
            )
            .await?;
        rows.first()
            .map(|r| parse("result", &r.try_get::<_, String>(0).map_err(backend)?))
            .transpose()
    }

    async fn events_after(&self, id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        self.events_of(&[id.to_string()], after_seq as i64).await
    }

    async fn list(&self, q: ListQuery) -> Result<Vec<Workflow>, StoreError> {
        let status = q.status.map(|s| s.as_str());
        let pattern = q.pattern.map(|p| p.as_str());
        let limit = q.limit as i64;
        self.records(
            "SELECT record::text FROM workflows
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR pattern = $2)
               AND ($3::text IS NULL OR id < $3) AND ($5::text IS NULL OR owner = $5)
             ORDER BY id DESC LIMIT $4",
            &[&status, &pattern, &q.before_id, &limit, &q.owner],
        )
        .await
    }

    async fn load_startup(
        &self,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Startup, StoreError> {
        let oldest = retained_since(max_age);
        let active: Vec<Workflow> = self
            .records(
                "SELECT record::text FROM workflows
                 WHERE status IN ('pending', 'running', 'interrupted') ORDER BY id",
                &[],
            )
            .await?;
        let ids: Vec<String> = active.iter().map(|w| w.id.clone()).collect();
        let events = self.events_of(&ids, 0).await?;
        let limit = max_completed as i64;
        let retained = self
            .records(
                // Archived workflows are read through the archive, never held in
                // memory (their rows keep only the summary).
                "SELECT record::text FROM workflows WHERE completed_at >= $1
                 AND archive_key IS NULL ORDER BY completed_at DESC LIMIT $2",
                &[&oldest, &limit],
            )
            .await?;
        Ok(Startup::assemble(active, events, retained))
    }

    async fn startup_manifest(
        &self,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Manifest, StoreError> {
        let oldest = retained_since(max_age);
        let rows = self
            .query(
                "SELECT w.id, w.status, COUNT(e.seq), COALESCE(MAX(e.seq), 0)::bigint
                 FROM workflows w LEFT JOIN events e ON e.workflow_id = w.id
                 WHERE w.status IN ('pending', 'running', 'interrupted') GROUP BY w.id, w.status",
                &[],
            )
            .await?;
        let active = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(backend)?;
        let limit = max_completed as i64;
        let rows = self
            .query(
                "SELECT id, status FROM workflows WHERE completed_at >= $1
                 AND archive_key IS NULL ORDER BY completed_at DESC LIMIT $2",
                &[&oldest, &limit],
            )
            .await?;
        let retained = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(backend)?;
        Manifest::from_rows(active, retained)
    }

    async fn load_webhooks(&self) -> Result<(Vec<Subscription>, Vec<Delivery>), StoreError> {
        let subs = self
            .records("SELECT record::text FROM webhooks ORDER BY created_at", &[])
            .await?;
        let pending = self
            .records(
                "SELECT record::text FROM deliveries WHERE status = 'pending'
                 ORDER BY workflow_id, event_seq",
                &[],
            )
            .await?;
        Ok((subs, pending))
    }

    async fn find_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT k.request_hash, k.workflow_id, k.created_at FROM idempotency_keys k
                 JOIN workflows w ON w.id = k.workflow_id
                 WHERE k.scope = $1 AND k.key = $2 AND k.created_at >= $3",
                &[&scope, &key, &since],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(IdempotencyRecord {
                    scope: scope.to_string(),
                    key: key.to_string(),
                    request_hash: r.try_get(0).map_err(backend)?,
                    workflow_id: r.try_get(1).map_err(backend)?,
                    created_at: r.try_get(2).map_err(backend)?,
                })
            })
            .transpose()
    }

    async fn steps_of(&self, workflow_ids: &[String]) -> Result<Vec<StepRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT workflow_id, step_key, answered_at, answer::text FROM steps
                 WHERE workflow_id = ANY($1) ORDER BY workflow_id, step_key",
                &[&workflow_ids],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StepRecord {
                    workflow_id: r.try_get(0).map_err(backend)?,
                    step_key: r.try_get(1).map_err(backend)?,
                    answered_at: r.try_get(2).map_err(backend)?,
                    answer: parse("step answer", &r.try_get::<_, String>(3).map_err(backend)?)?,
                })
            })
            .collect()
    }

    async fn deliveries_for(&self, workflow_id: &str) -> Result<Vec<Delivery>, StoreError> {
        self.records(
            "SELECT record::text FROM deliveries WHERE workflow_id = $1 ORDER BY event_seq, id",
            &[&workflow_id],
        )
        .await
    }

    async fn analytics_workflows(&self, q: &AnalyticsQuery) -> Result<WorkflowStats, StoreError> {
        analytics::workflows(&Self::client(&self.analytics).await?, q).await
    }

    async fn analytics_costs(&self, q: &AnalyticsQuery) -> Result<CostStats, StoreError> {
        analytics::costs(&Self::client(&self.analytics).await?, q).await
    }

    async fn analytics_performance(
        &self,
        q: &AnalyticsQuery,
    ) -> Result<PerformanceStats, StoreError> {
        analytics::performance(&Self::client(&self.analytics).await?, q).await
    }

    async fn spend_by_owner_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        let client = Self::client(&self.pool).await?;
        let rows = client
            .query(
                "SELECT owner, COALESCE(SUM(total_cost_usd), 0)::float8 FROM workflows
                 WHERE owner IS NOT NULL AND created_at >= $1 GROUP BY owner",
                &[&since],
            )
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(backend)?,
                    r.try_get(1).map_err(backend)?,
                ))
            })
            .collect()
    }

    async fn archive_candidates(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.candidates(before, limit).await
    }

    async fn count_archive_candidates(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.count_candidates(before).await
    }

    async fn mark_archived(&self, done: Vec<(String, String)>) -> Result<usize, StoreError> {
        self.mark(done).await
    }

    async fn archive_key(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.key(id).await
    }

    async fn documents(
        &self,
        id: &str,
        name: Option<&str>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        self.read_documents(id, name).await
    }

    async fn reclaim(&self) -> Result<Space, StoreError> {
        // Autovacuum reclaims the deleted rows' space for reuse; the sizes show it.
        self.table_sizes().await
    }

    async fn space(&self) -> Result<Space, StoreError> {
        self.table_sizes().await
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let work = async {
            let t = Instant::now();
            let client = Self::client(&self.pool).await?;
            client.simple_query("SELECT 1").await.map_err(backend)?;
            Ok(t.elapsed())
        };
        tokio::time::timeout(connect::PING_TIMEOUT, work)
            .await
            .map_err(|_| StoreError::Backend("PostgreSQL: ping timed out".into()))?
    }
}

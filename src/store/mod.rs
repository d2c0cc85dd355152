//! The primary store (system of record) behind one interface: embedded SQLite now,
//! PostgreSQL when configured. Writes arrive only as batches of `StateChange`s from
//! the writer actor; reads serve what memory no longer holds.

pub mod analytics;
pub mod codec;
pub mod packed;
pub mod plan;
pub mod postgres;
pub mod sqlite;
mod startup;

pub use startup::{retained_since, Manifest, Startup, StoredActive};

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Delivery, Event, IdempotencyRecord, Pattern, StateChange, Status, StepRecord, StoredDocument,
    Subscription, Workflow, WorkflowResult,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Filters and cursor for listing; newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub pattern: Option<Pattern>,
    /// Return workflows with ids below this one (ids are time-ordered UUIDv7).
    pub before_id: Option<String>,
    pub limit: usize,
    /// Only this owner's workflows (a non-admin key); None = everyone's.
    pub owner: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for health and logs.
    fn kind(&self) -> &'static str;
    /// Commits the whole batch in one transaction, or nothing. Idempotent: replaying
    /// a batch never duplicates an event.
    async fn write_batch(&self, batch: Vec<std::sync::Arc<StateChange>>) -> Result<(), StoreError>;
    async fn get_workflow(&self, id: &str) -> Result<Option<Workflow>, StoreError>;
    async fn get_result(&self, id: &str) -> Result<Option<WorkflowResult>, StoreError>;
    async fn events_after(&self, id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError>;
    async fn list(&self, q: ListQuery) -> Result<Vec<Workflow>, StoreError>;
    async fn load_startup(
        &self,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Startup, StoreError>;
    /// The manifest of `load_startup` with the same arguments. Stores override
    /// this with a query that reads no records.
    async fn startup_manifest(
        &self,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Manifest, StoreError> {
        self.load_startup(max_completed, max_age)
            .await
            .map(|s| Manifest::of(&s))
    }
    /// Every webhook subscription, and the deliveries still pending (to resume).
    async fn load_webhooks(&self) -> Result<(Vec<Subscription>, Vec<Delivery>), StoreError>;
    /// The idempotency key `(scope, key)` stored at or after `since`, when the
    /// workflow it names exists (a key committed without its workflow is stale).
    async fn find_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Writes one batch on the calling thread when this store can (SQLite: its
    /// writer connection), else `None` and `write_batch` is to be awaited. The
    /// store writer runs on a thread of its own, so blocking it costs nothing and
    /// saves two thread hand-offs (to the blocking pool and back) per commit.
    fn write_batch_here(
        &self,
        _batch: &[std::sync::Arc<StateChange>],
    ) -> Option<Result<(), StoreError>> {
        None
    }
    /// The committed step answers of these workflows.
    async fn steps_of(&self, workflow_ids: &[String]) -> Result<Vec<StepRecord>, StoreError>;
    /// A workflow's deliveries, oldest event first.
    async fn deliveries_for(&self, workflow_id: &str) -> Result<Vec<Delivery>, StoreError>;
    /// Workflow counts by status and pattern over the whole stored history.
    async fn analytics_workflows(
        &self,
        q: &analytics::AnalyticsQuery,
    ) -> Result<analytics::WorkflowStats, StoreError>;
    /// Costs in total, by pattern, by model and by day.
    async fn analytics_costs(
        &self,
        q: &analytics::AnalyticsQuery,
    ) -> Result<analytics::CostStats, StoreError>;
    /// Execution-time distribution and success rate of finished workflows.
    async fn analytics_performance(
        &self,
        q: &analytics::AnalyticsQuery,
    ) -> Result<analytics::PerformanceStats, StoreError>;
    /// Closes idle pooled connections. Called once start-up reads are done: a
    /// tokio-postgres connection does its I/O on the thread that opened it, and
    /// those were opened on the registry's thread.
    fn release_idle_connections(&self) {}
    /// Connection pools (size, in use), for `/health`; None when there are none.
    fn pools(&self) -> Option<serde_json::Value> {
        None
    }
    /// Each owner's total cost over workflows created at or after `since`.
    async fn spend_by_owner_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, f64)>, StoreError>;
    /// A round trip to the store; its latency goes into `/health`.
    async fn ping(&self) -> Result<Duration, StoreError>;

    // Archival (src/archive/): finished workflows move to object storage and
    // leave a summary row (the workflow row, with its archive key).

    /// Finished, not yet archived workflows completed before `before`, with no
    /// delivery still pending: oldest completion first, at most `limit`.
    async fn archive_candidates(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// How many workflows `archive_candidates` would return without a limit.
    async fn count_archive_candidates(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// In one transaction: records each workflow's archive key and deletes its
    /// results, events and deliveries. Returns how many were newly marked.
    async fn mark_archived(&self, done: Vec<(String, String)>) -> Result<usize, StoreError>;
    /// The archive key of an archived workflow.
    async fn archive_key(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// A workflow's generated documents with their bytes: the one named, or all
    /// (for its archive object). Archived workflows have none here.
    async fn documents(
        &self,
        id: &str,
        name: Option<&str>,
    ) -> Result<Vec<StoredDocument>, StoreError>;
    /// Gives freed space back where the store can (SQLite: incremental vacuum;
    /// PostgreSQL: autovacuum does it) and reports the sizes.
    async fn reclaim(&self) -> Result<Space, StoreError>;
    /// Sizes of the store, in bytes, by part (SQLite: the file; PostgreSQL: tables).
    async fn space(&self) -> Result<Space, StoreError>;
}

/// Sizes in bytes by part, e.g. `file` or a table name.
pub type Space = std::collections::BTreeMap<String, u64>;

/// An error with its causes, one after another: drivers hide the useful part
/// (what the server said) in the source chain.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        msg.push_str(&format!(": {cause}"));
        src = cause.source();
    }
    msg
}

/// An event's data as read from a store row: checked to be JSON (a corrupt row
/// is an error, as before) without building a `Value`, and kept as that text.
pub fn stored_data(text: String) -> Result<crate::domain::EventData, StoreError> {
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?;
    Ok(crate::domain::EventData::from_text(text))
}

//! Several instances on one PostgreSQL. PostgreSQL is the coordination engine:
//! an instance table with heartbeats, a lease row per unfinished workflow (owner,
//! epoch, expiry), admission counted over those rows under an advisory lock,
//! `FOR UPDATE SKIP LOCKED` claims of expired leases and webhook deliveries, and
//! `LISTEN/NOTIFY` to wake event streams and carry cancels between instances.
//!
//! `Cluster` is the shared handle: the leases this instance holds (workflow →
//! epoch), which the store's writer fences every write with (`fence.rs`), and the
//! SQL of each step, one file per concern: `membership.rs` (register, heartbeat,
//! hand-over, members), `admission.rs`, `claims.rs` (expired leases, deliveries),
//! `cancels.rs`, `keys.rs` (idempotency keys). The `ClusterActor`
//! (`actors/cluster.rs`) drives the heartbeat and the claims; `listener.rs` owns
//! the LISTEN connection.

mod admission;
mod cancels;
mod claims;
pub mod fence;
pub mod keys;
pub mod listener;
mod membership;
pub mod metrics;

pub use membership::{Beat, Member};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;

type Param = dyn ToSql + Sync;

use crate::store::postgres::backend;
use crate::store::StoreError;

/// Channels every instance listens on.
pub const EVENTS_CHANNEL: &str = "mcpo_events";
pub const CANCEL_CHANNEL: &str = "mcpo_cancel";
pub const CLAIM_CHANNEL: &str = "mcpo_claim";
pub const WEBHOOKS_CHANNEL: &str = "mcpo_webhooks";

pub struct Cluster {
    pub id: String,
    pub address: String,
    pub ttl: Duration,
    pub claim_batch: usize,
    pool: Pool,
    started_at: DateTime<Utc>,
    /// Leases held here: workflow id → epoch.
    held: Mutex<HashMap<String, i64>>,
    /// Workflows this instance finished lately (their leases are gone): the last
    /// of their changes may still be on the way to the store.
    finished: Mutex<Recent>,
    /// Workflows the writer's fence refused: reported by the next heartbeat.
    fenced: Mutex<Vec<String>>,
    /// Set at shutdown: claim nothing more.
    stopping: std::sync::atomic::AtomicBool,
    /// Wakes local event streams of workflows running elsewhere.
    pub watchers: listener::Watchers,
}

/// A bounded set, oldest out first.
#[derive(Default)]
struct Recent {
    order: std::collections::VecDeque<String>,
    set: std::collections::HashSet<String>,
}

/// Recently finished workflows remembered for the fence (see `finished`).
const FINISHED_KEPT: usize = 65_536;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    backend(e)
}

fn ttl_secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl Cluster {
    pub fn new(id: String, address: String, ttl: Duration, claim_batch: usize, pool: Pool) -> Self {
        Cluster {
            id,
            address,
            ttl,
            claim_batch,
            pool,
            started_at: Utc::now(),
            held: Mutex::new(HashMap::new()),
            finished: Mutex::new(Recent::default()),
            fenced: Mutex::new(Vec::new()),
            stopping: Default::default(),
            watchers: listener::Watchers::default(),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        lock(&self.held)
    }

    /// The epoch this instance holds `id` under, if it does.
    pub fn epoch_of(&self, id: &str) -> Option<i64> {
        self.held().get(id).copied()
    }

    pub fn holds(&self) -> usize {
        self.held().len()
    }

    /// The writer committed these workflows' terminal status (and dropped their
    /// leases).
    pub fn finished(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        self.forget(&ids);
        let mut f = lock(&self.finished);
        for id in ids {
            if f.set.insert(id.clone()) {
                f.order.push_back(id);
            }
        }
        while f.order.len() > FINISHED_KEPT {
            if let Some(old) = f.order.pop_front() {
                f.set.remove(&old);
            }
        }
    }

    pub fn finished_here(&self, id: &str) -> bool {
        lock(&self.finished).set.contains(id)
    }

    /// The writer's fence refused these workflows' changes.
    pub fn fenced_out(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        tracing::warn!(count = ids.len(), first = %ids[0], "writes refused: another instance holds these workflows now");
        self.forget(&ids);
        lock(&self.fenced).extend(ids);
    }

    /// Forgets leases this instance no longer acts on (finished, lost).
    pub fn forget(&self, ids: &[String]) {
        let mut h = self.held();
        for id in ids {
            h.remove(id);
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Backend(format!(
                "PostgreSQL: {}",
                crate::store::postgres::connect::describe_pool(&e)
            ))
        })
    }
}

/// What the registry needs of the cluster, shared with the store's writer.
pub type Shared = Arc<Cluster>;

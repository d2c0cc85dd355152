//! Several instances on one PostgreSQL. PostgreSQL is the coordination engine:
//! an instance table with heartbeats, a lease row per unfinished workflow (owner,
//! epoch, expiry), admission counted over those rows under an advisory lock,
//! `FOR UPDATE SKIP LOCKED` claims of expired leases and webhook deliveries, and
//! `LISTEN/NOTIFY` to wake event streams and carry cancels between instances.
//!
//! `Cluster` is the shared handle: the SQL of each step, and the leases this
//! instance holds (workflow → epoch), which the store's writer fences every write
//! with (`fence.rs`). The `ClusterActor` (`actors/cluster.rs`) drives the
//! heartbeat and the claims; `listener.rs` owns the LISTEN connection.

pub mod fence;
pub mod keys;
pub mod listener;
pub mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::types::ToSql;

type Param = dyn ToSql + Sync;

use crate::domain::Delivery;
use crate::error::ApiError;
use crate::store::postgres::backend;
use crate::store::StoreError;

/// Channels every instance listens on.
pub const EVENTS_CHANNEL: &str = "mcpo_events";
pub const CANCEL_CHANNEL: &str = "mcpo_cancel";
pub const CLAIM_CHANNEL: &str = "mcpo_claim";
pub const WEBHOOKS_CHANNEL: &str = "mcpo_webhooks";

/// Leases a new workflow if there is room, globally and for its key.
const ADMIT: &str = "
INSERT INTO leases (workflow_id, instance_id, epoch, expires_at, owner)
SELECT $1, $2, 1, now() + make_interval(secs => $3), $4
WHERE (SELECT count(*) FROM leases) < $5
  AND ($4::text IS NULL OR $6::int8 IS NULL
       OR (SELECT count(*) FROM leases WHERE owner = $4::text) < $6::int8)
RETURNING 1";

/// Serialises admissions across instances (`pg_advisory_xact_lock`).
const ADMISSION_LOCK: i64 = 0x6d63_706f_6164_6d74; // "mcpoadmt"

/// One live (or recently live) instance, as `/health` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub id: String,
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Heartbeat within the lease TTL.
    pub alive: bool,
    /// Unfinished workflows it holds leases on.
    pub leases: i64,
}

/// What the heartbeat learned.
#[derive(Debug, Default)]
pub struct Beat {
    /// Workflows this instance held and no longer does (claimed by another
    /// instance after its lease expired): their runs must stop without writing.
    pub lost: Vec<String>,
}

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

    /// Registers this instance. Leases still held under the same id belong to an
    /// earlier process of this instance (restarted after a crash): they expire at
    /// once, so the claims resume those workflows without waiting out the TTL.
    pub async fn register(&self) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO instances (id, address, started_at, heartbeat_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (id) DO UPDATE SET address = excluded.address,
               started_at = excluded.started_at, heartbeat_at = now()",
            &[&self.id, &self.address, &self.started_at],
        )
        .await
        .map_err(pg)?;
        let taken = tx
            .execute(
                "UPDATE leases SET expires_at = '-infinity' WHERE instance_id = $1",
                &[&self.id],
            )
            .await
            .map_err(pg)?;
        tx.execute(
            "UPDATE deliveries SET claim_expires = NULL WHERE claimed_by = $1 AND status = 'pending'",
            &[&self.id],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        if taken > 0 {
            tracing::info!(
                instance = %self.id,
                leases = taken,
                "leases of an earlier process of this instance released for claiming"
            );
        }
        Ok(())
    }

    /// Global admission: in one transaction, under an advisory lock, leases the
    /// new workflow to this instance if the unfinished workflows of every instance
    /// (and of the key) are under their limits. The four statements go in one
    /// round trip, so the lock is held for the server's work only: with a round
    /// trip per statement it was held for three, and admission capped the whole
    /// cluster's throughput (BENCHMARKS.md).
    pub async fn admit(
        &self,
        id: &str,
        owner: Option<&str>,
        max_active: usize,
        key_max_active: Option<usize>,
        retry_after_secs: u64,
    ) -> Result<(), ApiError> {
        let store = |e: StoreError| ApiError::StoreUnavailable(e.to_string());
        let c = self.client().await.map_err(store)?;
        let (lock, insert) = futures::try_join!(
            c.prepare_cached("SELECT pg_advisory_xact_lock($1)"),
            c.prepare_cached(ADMIT),
        )
        .map_err(|e| store(pg(e)))?;
        let (max, key_max) = (max_active as i64, key_max_active.map(|k| k as i64));
        let secs = ttl_secs(self.ttl);
        let args: [&(dyn ToSql + Sync); 6] = [&id, &self.id, &secs, &owner, &max, &key_max];
        // In one READ COMMITTED transaction the INSERT's snapshot is taken after
        // the lock is granted, so it counts every admission committed before.
        // The commit does not wait for its WAL flush (which would hold the lock
        // for an fsync): the workflow's own record is written after it with a
        // synchronous commit, which flushes this too, and the create is
        // acknowledged only then. A crash before that loses both, unacknowledged.
        let (_, _, admitted, _) = futures::try_join!(
            c.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
            c.execute(&lock, &[&ADMISSION_LOCK]),
            c.query(&insert, &args),
            c.batch_execute("COMMIT"),
        )
        .map_err(|e| store(pg(e)))?;
        if !admitted.is_empty() {
            // Held only once committed: a heartbeat that ran in between (and did
            // not see the row) would otherwise take it for lost.
            self.held().insert(id.to_string(), 1);
            return Ok(());
        }
        // Refused: which limit, for the answer (counted again, outside the lock).
        let row = c
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE owner = $1) FROM leases",
                &[&owner],
            )
            .await
            .map_err(|e| store(pg(e)))?;
        let (all, mine): (i64, i64) = (row.get(0), row.get(1));
        match (owner, key_max_active) {
            (Some(owner), Some(limit)) if all < max && mine >= limit as i64 => {
                Err(ApiError::QuotaExceeded {
                    key: owner.to_string(),
                    active: mine as usize,
                    limit,
                    retry_after_secs,
                })
            }
            _ => Err(ApiError::ActiveLimitReached {
                active: (all as usize).max(max_active),
                limit: max_active,
                retry_after_secs,
            }),
        }
    }

    /// Gives back an admission whose workflow was not created after all.
    pub async fn release(&self, id: &str) {
        self.forget(&[id.to_string()]);
        let res = async {
            let c = self.client().await?;
            c.execute(
                "DELETE FROM leases WHERE workflow_id = $1 AND instance_id = $2",
                &[&id, &self.id],
            )
            .await
            .map_err(pg)
        }
        .await;
        if let Err(e) = res {
            // Unrenewed, it expires; the claim finds no workflow and deletes it.
            tracing::warn!(workflow_id = id, error = %e, "cannot release an unused admission; it expires");
        }
    }

    /// Renews the instance row and every lease held here; reports the leases
    /// that another instance took over meanwhile.
    pub async fn heartbeat(&self) -> Result<Beat, StoreError> {
        if !self.claiming() {
            // Shutting down: the leases are about to be handed over.
            return Ok(Beat::default());
        }
        let ids: Vec<String> = self.held().keys().cloned().collect();
        let c = self.client().await?;
        let secs = ttl_secs(self.ttl);
        let renew = c.prepare_cached(
            "UPDATE leases SET expires_at = now() + make_interval(secs => $3)
             WHERE instance_id = $1 AND workflow_id = ANY($2) RETURNING workflow_id, epoch",
        );
        let beat = c.prepare_cached(
            "INSERT INTO instances (id, address, started_at, heartbeat_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), address = excluded.address",
        );
        let deliveries = c.prepare_cached(
            "UPDATE deliveries SET claim_expires = now() + make_interval(secs => $2)
             WHERE claimed_by = $1 AND status = 'pending'",
        );
        let (renew, beat, deliveries) = futures::try_join!(renew, beat, deliveries).map_err(pg)?;
        let renew_args: [&Param; 3] = [&self.id, &ids, &secs];
        let beat_args: [&Param; 3] = [&self.id, &self.address, &self.started_at];
        let delivery_args: [&Param; 2] = [&self.id, &secs];
        // Pipelined on the one connection: one round trip for the three.
        let (rows, _, _) = futures::try_join!(
            c.query(&renew, &renew_args),
            c.execute(&beat, &beat_args),
            c.execute(&deliveries, &delivery_args),
        )
        .map_err(pg)?;
        let renewed: HashMap<String, i64> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect();
        let fenced = std::mem::take(&mut *lock(&self.fenced));
        let mut held = self.held();
        // A workflow claimed back since the fence refused it is held again.
        let mut lost: Vec<String> = fenced
            .into_iter()
            .filter(|id| !held.contains_key(id))
            .collect();
        for id in ids {
            let Some(epoch) = held.get(&id).copied() else {
                continue; // finished meanwhile
            };
            match renewed.get(&id) {
                Some(e) if *e == epoch => {}
                // No row: finished (the writer forgets it) or taken and finished
                // elsewhere; another epoch: taken.
                _ => {
                    held.remove(&id);
                    lost.push(id);
                }
            }
        }
        Ok(Beat { lost })
    }

    /// Shutting down: the next passes claim no workflow and no delivery.
    pub fn stop_claiming(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn claiming(&self) -> bool {
        !self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Claims up to `claim_batch` expired leases (SKIP LOCKED: instances never
    /// wait on each other's claims) under a new epoch.
    pub async fn claim_expired(&self) -> Result<Vec<String>, StoreError> {
        if !self.claiming() {
            return Ok(Vec::new());
        }
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE leases l SET instance_id = $1, epoch = l.epoch + 1,
                   expires_at = now() + make_interval(secs => $2)
                 FROM (SELECT workflow_id FROM leases WHERE expires_at < now()
                       ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED) e
                 WHERE l.workflow_id = e.workflow_id
                 RETURNING l.workflow_id, l.epoch",
                &[&self.id, &ttl_secs(self.ttl), &(self.claim_batch as i64)],
            )
            .await
            .map_err(pg)?;
        let mut held = self.held();
        Ok(rows
            .iter()
            .map(|r| {
                let (id, epoch): (String, i64) = (r.get(0), r.get(1));
                held.insert(id.clone(), epoch);
                id
            })
            .collect())
    }

    /// Deletes leases whose workflow is finished or was never stored.
    pub async fn drop_leases(&self, ids: &[String]) -> Result<(), StoreError> {
        self.forget(ids);
        let c = self.client().await?;
        c.execute(
            "DELETE FROM leases WHERE workflow_id = ANY($1) AND instance_id = $2",
            &[&ids, &self.id],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    /// Claims pending webhook deliveries nobody holds (their claimant died).
    pub async fn claim_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        if !self.claiming() {
            return Ok(Vec::new());
        }
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE deliveries d SET claimed_by = $1,
                   claim_expires = now() + make_interval(secs => $2)
                 FROM (SELECT id FROM deliveries WHERE status = 'pending'
                         AND (claim_expires IS NULL OR claim_expires < now())
                       ORDER BY workflow_id, event_seq LIMIT $3 FOR UPDATE SKIP LOCKED) e
                 WHERE d.id = e.id RETURNING d.record::text",
                &[&self.id, &ttl_secs(self.ttl), &(self.claim_batch as i64)],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.get::<_, String>(0))
                    .map_err(|e| StoreError::Corrupt(format!("stored delivery: {e}")))
            })
            .collect()
    }

    /// Gives claimed deliveries back (they could not be handed to the
    /// dispatcher). Best effort: on failure they stay claimed until this
    /// instance stops renewing.
    pub async fn unclaim_deliveries(&self, ids: &[String]) {
        let res = async {
            let c = self.client().await?;
            c.execute(
                "UPDATE deliveries SET claimed_by = NULL, claim_expires = NULL
                 WHERE id = ANY($1) AND claimed_by = $2",
                &[&ids, &self.id],
            )
            .await
            .map_err(pg)
        }
        .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "cannot give claimed webhook deliveries back");
        }
    }

    /// Cancels asked elsewhere of workflows this instance holds.
    pub async fn pending_cancels(&self) -> Result<Vec<String>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT c.workflow_id FROM cancel_requests c JOIN leases l USING (workflow_id)
                 WHERE l.instance_id = $1",
                &[&self.id],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Asks whichever instance runs `id` to cancel it: a durable request (the
    /// next claimant honours it too) and a NOTIFY that wakes the owner now.
    /// False when no instance holds the workflow (it is finished).
    pub async fn request_cancel(&self, id: &str) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let n = tx
            .execute(
                "INSERT INTO cancel_requests (workflow_id, requested_at)
                 SELECT workflow_id, now() FROM leases WHERE workflow_id = $1
                 ON CONFLICT (workflow_id) DO NOTHING",
                &[&id],
            )
            .await
            .map_err(pg)?;
        let leased = tx
            .query_opt("SELECT 1 FROM leases WHERE workflow_id = $1", &[&id])
            .await
            .map_err(pg)?
            .is_some();
        if n > 0 || leased {
            tx.execute("SELECT pg_notify($1, $2)", &[&CANCEL_CHANNEL, &id])
                .await
                .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(leased)
    }

    /// SIGTERM: every lease held here expires now and the others are woken to
    /// claim them; the instance row goes. Call after the runs stopped and the
    /// store is flushed.
    pub async fn hand_over(&self) -> Result<usize, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        // Owned by nobody: a heartbeat still in flight renews none of them.
        let n = tx
            .execute(
                "UPDATE leases SET instance_id = '', expires_at = '-infinity' WHERE instance_id = $1",
                &[&self.id],
            )
            .await
            .map_err(pg)?;
        tx.execute(
            "UPDATE deliveries SET claimed_by = NULL, claim_expires = NULL
             WHERE claimed_by = $1 AND status = 'pending'",
            &[&self.id],
        )
        .await
        .map_err(pg)?;
        tx.execute("DELETE FROM instances WHERE id = $1", &[&self.id])
            .await
            .map_err(pg)?;
        tx.execute("SELECT pg_notify($1, $2)", &[&CLAIM_CHANNEL, &self.id])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        self.held().clear();
        Ok(n as usize)
    }

    /// The instances seen within the last hour, for `/health`.
    pub async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT i.id, i.address, i.started_at, i.heartbeat_at,
                        i.heartbeat_at > now() - make_interval(secs => $1),
                        (SELECT count(*) FROM leases l WHERE l.instance_id = i.id)
                 FROM instances i WHERE i.heartbeat_at > now() - interval '1 hour'
                 ORDER BY i.id",
                &[&ttl_secs(self.ttl)],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| Member {
                id: r.get(0),
                address: r.get(1),
                started_at: r.get(2),
                last_heartbeat: r.get(3),
                alive: r.get(4),
                leases: r.get(5),
            })
            .collect())
    }
}

/// What the registry needs of the cluster, shared with the store's writer.
pub type Shared = Arc<Cluster>;

//! This instance as a member: registering at start, the heartbeat that renews
//! its row and its leases (and learns which were taken), handing everything over
//! at shutdown, and the member list `/health` shows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{lock, pg, ttl_secs, Cluster, Param, CLAIM_CHANNEL};
use crate::store::StoreError;

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

impl Cluster {
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

    pub(super) fn claiming(&self) -> bool {
        !self.stopping.load(std::sync::atomic::Ordering::SeqCst)
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

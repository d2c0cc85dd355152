//! Global admission: a lease per new workflow, counted over every instance under
//! an advisory lock, and giving an unused admission back.

use tokio_postgres::types::ToSql;

use super::{pg, ttl_secs, Cluster};
use crate::error::ApiError;
use crate::store::StoreError;

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

impl Cluster {
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
}

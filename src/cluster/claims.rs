//! Claims of what a stopped instance left: expired leases (under a new epoch) and
//! pending webhook deliveries, both `FOR UPDATE SKIP LOCKED`.

use super::{pg, ttl_secs, Cluster};
use crate::domain::Delivery;
use crate::store::StoreError;

impl Cluster {
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
}

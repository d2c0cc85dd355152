//! Cancels between instances: a durable request the lease holder (or the next
//! claimant) honours, and a NOTIFY that wakes the holder now.

use super::{pg, Cluster, CANCEL_CHANNEL};
use crate::store::StoreError;

impl Cluster {
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
}

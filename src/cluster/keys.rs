//! One `Idempotency-Key` per owner across the cluster: after admission, before
//! the registry creates anything, the instance claims the key's row in
//! `idempotency_keys` (primary key `(scope, key)`). Exactly one instance's claim
//! wins; the others find the winner's request hash and workflow id.
//!
//! A row is taken over only when it expired (`idempotency.ttl`) or was abandoned:
//! its workflow was never stored and holds no lease (the claimant died or was
//! refused between admission and its create's commit). The claimant's lease,
//! inserted by admission before the claim, keeps a row in progress from looking
//! abandoned.

use chrono::{DateTime, Utc};

use super::{pg, Cluster};
use crate::domain::IdempotencyRecord;
use crate::store::StoreError;

/// Claims the key for `rec.workflow_id`, or takes over an expired or abandoned row.
const CLAIM: &str = "
INSERT INTO idempotency_keys AS k (scope, key, request_hash, workflow_id, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
  workflow_id = excluded.workflow_id, created_at = excluded.created_at
WHERE k.created_at < $6
   OR (NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = k.workflow_id)
       AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.workflow_id = k.workflow_id))
RETURNING k.workflow_id";

/// Who holds a key after a claim.
pub enum KeyClaim {
    /// This request: it creates the workflow.
    Mine,
    /// Another request (on any instance): its request hash and workflow id.
    Taken {
        request_hash: String,
        workflow_id: String,
    },
}

impl Cluster {
    /// Claims `rec` (its `workflow_id` is the admitted id) unless an unexpired
    /// row newer than `since` belongs to a live request.
    pub async fn claim_key(
        &self,
        rec: &IdempotencyRecord,
        since: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        let c = self.client().await?;
        // Twice at most: a row given back between the two statements is free.
        for _ in 0..2 {
            let won = c
                .query(
                    CLAIM,
                    &[
                        &rec.scope,
                        &rec.key,
                        &rec.request_hash,
                        &rec.workflow_id,
                        &rec.created_at,
                        &since,
                    ],
                )
                .await
                .map_err(pg)?;
            if won.iter().any(|r| r.get::<_, String>(0) == rec.workflow_id) {
                return Ok(KeyClaim::Mine);
            }
            let row = c
                .query_opt(
                    "SELECT request_hash, workflow_id FROM idempotency_keys WHERE scope = $1 AND key = $2",
                    &[&rec.scope, &rec.key],
                )
                .await
                .map_err(pg)?;
            if let Some(r) = row {
                return Ok(KeyClaim::Taken {
                    request_hash: r.get(0),
                    workflow_id: r.get(1),
                });
            }
        }
        Err(StoreError::Backend(format!(
            "Idempotency-Key '{}' could not be claimed; retry",
            rec.key
        )))
    }

    /// Gives a claimed key back (the create that claimed it was refused).
    pub async fn release_key(&self, rec: &IdempotencyRecord) {
        let res = async {
            let c = self.client().await?;
            c.execute(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND workflow_id = $3",
                &[&rec.scope, &rec.key, &rec.workflow_id],
            )
            .await
            .map_err(pg)
        }
        .await;
        if let Err(e) = res {
            // Without a workflow or a lease the row counts as abandoned anyway.
            tracing::warn!(error = %e, "cannot give back an unused idempotency key claim");
        }
    }
}

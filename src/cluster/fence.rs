//! Fencing: inside the store writer's transaction, every change of a workflow
//! passes only while this instance still holds the workflow's lease under the
//! epoch the change was made under. The lease rows are read `FOR SHARE`, so a claim by another
//! instance waits for this transaction, and a batch written after the claim sees
//! the new owner and is dropped. An owner that wakes after losing its lease
//! (SIGSTOP, a network cut) therefore writes nothing for those workflows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::{Cluster, EVENTS_CHANNEL, WEBHOOKS_CHANNEL};
use crate::domain::{ChangeKind, DeliveryStatus, StateChange};
use crate::store::postgres::fence::{Fence, Fenced};

#[async_trait]
impl Fence for Cluster {
    async fn admit(
        &self,
        tx: &Transaction<'_>,
        batch: Vec<Arc<StateChange>>,
    ) -> Result<Fenced, tokio_postgres::Error> {
        admit_batch(tx, self, batch).await
    }

    async fn settle(
        &self,
        tx: &Transaction<'_>,
        batch: &[Arc<StateChange>],
    ) -> Result<Vec<String>, tokio_postgres::Error> {
        settle(tx, self, batch).await
    }

    fn committed(&self, finished: Vec<String>, stale: Vec<String>) {
        self.finished(finished);
        self.fenced_out(stale);
    }
}

/// Drops every change made under a lease epoch that is no longer the lease's:
/// a change passes only while this instance holds its workflow's lease under the
/// very epoch the change was made under (`StateChange::epoch`). So changes queued
/// before this instance lost a lease stay out even after it claimed the lease
/// back (under a newer epoch) before they were written. Workflows held by
/// another instance now are reported as `stale`; a workflow held here under a
/// newer epoch is not (its current run goes on).
async fn admit_batch(
    tx: &Transaction<'_>,
    cluster: &Cluster,
    batch: Vec<Arc<StateChange>>,
) -> Result<Fenced, tokio_postgres::Error> {
    let ids: HashSet<&str> = batch.iter().filter_map(|c| c.kind.run_workflow()).collect();
    if ids.is_empty() {
        return Ok(Fenced {
            batch,
            stale: Vec::new(),
        });
    }
    let ids: Vec<&str> = ids.into_iter().collect();
    let stmt = tx
        .prepare_cached(
            "SELECT workflow_id, instance_id, epoch FROM leases WHERE workflow_id = ANY($1) FOR SHARE",
        )
        .await?;
    let rows = tx.query(&stmt, &[&ids]).await?;
    let leases: HashMap<String, (String, i64)> = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
        .collect();
    let mut stale = Vec::new();
    for id in &ids {
        let held_here = match (leases.get(*id), cluster.epoch_of(id)) {
            (Some((owner, epoch)), Some(mine)) => *owner == cluster.id && *epoch == mine,
            (None, _) => cluster.finished_here(id),
            (Some(_), None) => false,
        };
        if !held_here {
            stale.push(id.to_string());
        }
    }
    let passes = |c: &StateChange| {
        let Some(id) = c.kind.run_workflow() else {
            return true;
        };
        match leases.get(id) {
            Some((owner, epoch)) => *owner == cluster.id && c.epoch == Some(*epoch),
            // The lease went with the workflow's terminal status, written by
            // this instance in an earlier batch: its last changes follow.
            None => cluster.finished_here(id),
        }
    };
    let before = batch.len();
    let batch: Vec<_> = batch.into_iter().filter(|c| passes(c)).collect();
    if batch.len() < before {
        tracing::warn!(
            dropped = before - batch.len(),
            "changes made under an earlier lease epoch (or another instance's lease) dropped"
        );
    }
    Ok(Fenced { batch, stale })
}

/// After the batch's own statements, in the same transaction: the leases (and
/// cancel requests) of workflows that finished go, and the instances streaming
/// these workflows' events are woken.
async fn settle(
    tx: &Transaction<'_>,
    cluster: &Cluster,
    batch: &[Arc<StateChange>],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut finished: Vec<&str> = Vec::new();
    let mut touched: HashSet<&str> = HashSet::new();
    let mut webhooks = false;
    let mut removed: Vec<&str> = Vec::new();
    let mut deliveries: Vec<&str> = Vec::new();
    for c in batch {
        match &c.kind {
            ChangeKind::Delivery(d) if d.status == DeliveryStatus::Pending => {
                deliveries.push(&d.id)
            }
            ChangeKind::Workflow(w) if w.status.is_terminal() => finished.push(&w.id),
            ChangeKind::Event(e) => {
                touched.insert(&e.workflow_id);
            }
            ChangeKind::Webhook(_) => webhooks = true,
            ChangeKind::WebhookRemoved(id) => removed.push(id),
            _ => {}
        }
    }
    if !finished.is_empty() {
        let del = tx
            .prepare_cached(
                "WITH gone AS (DELETE FROM leases WHERE workflow_id = ANY($1) AND instance_id = $2)
                 DELETE FROM cancel_requests WHERE workflow_id = ANY($1)",
            )
            .await?;
        tx.execute(&del, &[&finished, &cluster.id]).await?;
    }
    if !deliveries.is_empty() {
        // New deliveries are this instance's to make until it stops renewing.
        let claim = tx
            .prepare_cached(
                "UPDATE deliveries SET claimed_by = $2, claim_expires = now() + make_interval(secs => $3)
                 WHERE id = ANY($1) AND claimed_by IS NULL",
            )
            .await?;
        tx.execute(
            &claim,
            &[&deliveries, &cluster.id, &cluster.ttl.as_secs_f64()],
        )
        .await?;
    }
    if !touched.is_empty() {
        let ids: Vec<&str> = touched.into_iter().collect();
        let notify = tx
            .prepare_cached("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS t (id)")
            .await?;
        tx.query(&notify, &[&EVENTS_CHANNEL, &ids]).await?;
    }
    // Other instances reload the global subscriptions; a removal names the id.
    if webhooks {
        tx.execute("SELECT pg_notify($1, '')", &[&WEBHOOKS_CHANNEL])
            .await?;
    }
    if !removed.is_empty() {
        let notify = tx
            .prepare_cached("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS t (id)")
            .await?;
        tx.query(&notify, &[&WEBHOOKS_CHANNEL, &removed]).await?;
    }
    Ok(finished.into_iter().map(str::to_string).collect())
}

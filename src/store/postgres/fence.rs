//! The writer's transactions fenced by a cluster member's leases. The store
//! calls a `Fence` at fixed points of each batch's transaction; the cluster
//! (`cluster::fence`) implements it, so the store never names the cluster.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use crate::domain::StateChange;

/// What a fence let through: the changes to write, and the workflows whose
/// changes were dropped (another instance holds them now).
pub struct Fenced {
    pub batch: Vec<Arc<StateChange>>,
    pub stale: Vec<String>,
}

#[async_trait]
pub trait Fence: Send + Sync {
    /// Inside the transaction, before the batch's own statements.
    async fn admit(
        &self,
        tx: &Transaction<'_>,
        batch: Vec<Arc<StateChange>>,
    ) -> Result<Fenced, tokio_postgres::Error>;

    /// Inside the transaction, after the batch's own statements: returns the
    /// workflows that finished in it.
    async fn settle(
        &self,
        tx: &Transaction<'_>,
        batch: &[Arc<StateChange>],
    ) -> Result<Vec<String>, tokio_postgres::Error>;

    /// After the commit.
    fn committed(&self, finished: Vec<String>, stale: Vec<String>);
}

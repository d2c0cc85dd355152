//! Joining the cluster at start-up: with PostgreSQL as the primary store, the
//! store is opened, this instance registered, and the store's writes fenced with
//! its leases.

use std::sync::Arc;

use super::Cluster;
use crate::config::Config;
use crate::store::postgres::PgStore;
use crate::store::Store;
use crate::StartError;

/// What a PostgreSQL primary brings: this instance's cluster membership.
pub struct Clustered {
    pub store: PgStore,
    pub cluster: Arc<Cluster>,
    pub listen: tokio_postgres::Config,
}

/// The primary store and, on PostgreSQL, the registered cluster member whose
/// leases fence the store's writes.
pub async fn open_primary(
    config: &Config,
) -> Result<(Arc<dyn Store>, Option<Clustered>), StartError> {
    if config.postgres.url.is_none() {
        return Ok((crate::open_store(config).await?, None));
    }
    let pg = PgStore::connect(&config.postgres)
        .await
        .map_err(StartError)?;
    let (pool, listen) = crate::store::postgres::connect::cluster_connections(&config.postgres)
        .map_err(StartError)?;
    let c = &config.cluster;
    let address = match c.advertise_address.is_empty() {
        true => config.server.bind.clone(),
        false => c.advertise_address.clone(),
    };
    let cluster = Arc::new(Cluster::new(
        c.effective_instance_id(),
        address,
        c.lease_ttl,
        c.claim_batch,
        pool,
    ));
    cluster.register().await.map_err(|e| {
        StartError(format!(
            "{}: cannot register this instance ('{}'): {e}",
            crate::store_key(config),
            cluster.id
        ))
    })?;
    let pg = pg.with_cluster(Arc::clone(&cluster));
    Ok((
        Arc::new(pg.clone()),
        Some(Clustered {
            store: pg,
            cluster,
            listen,
        }),
    ))
}

//! The primary store at start-up: embedded SQLite, or PostgreSQL, where this
//! instance also joins the cluster (registered, and the store's writes fenced
//! with its leases).

use std::sync::Arc;

use super::StartError;
use crate::cluster::Cluster;
use crate::config::{self, Config};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

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
        return Ok((open_store(config).await?, None));
    }
    let pg = PgStore::connect(&config.postgres)
        .await
        .map_err(|e| StartError(e.to_string()))?;
    let (pool, listen) = crate::store::postgres::connect::cluster_connections(&config.postgres)
        .map_err(|e| StartError(e.to_string()))?;
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
            store_key(config),
            cluster.id
        ))
    })?;
    let pg = pg.with_fence(Arc::clone(&cluster) as _);
    Ok((
        Arc::new(pg.clone()),
        Some(Clustered {
            store: pg,
            cluster,
            listen,
        }),
    ))
}

/// The primary store: PostgreSQL when `postgres.url` is set, else embedded SQLite.
/// Either is migrated before use.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    match &config.postgres.url {
        Some(_) => {
            let pg = PgStore::connect(&config.postgres)
                .await
                .map_err(|e| StartError(e.to_string()))?;
            Ok(Arc::new(pg))
        }
        None => {
            let sqlite = SqliteStore::open(&config.storage.sqlite_path, config.storage.durability)
                .map_err(|e| StartError(e.to_string()))?;
            Ok(Arc::new(sqlite))
        }
    }
}

/// The config key naming the primary store, for errors.
pub(crate) fn store_key(config: &Config) -> String {
    match &config.postgres.url {
        Some(url) => format!("postgres.url '{}'", config::redact_url(url)),
        None => format!(
            "storage.sqlite_path '{}'",
            config.storage.sqlite_path.display()
        ),
    }
}

//! The actors beside the registry that start once it runs: the archiver (when
//! `archive.enabled`) and, on PostgreSQL, this instance's cluster member (its
//! heartbeat and claims, and the LISTEN connection that wakes it).

use std::sync::{Arc, Mutex};

use actix::prelude::*;

use super::primary::Clustered;
use super::StartError;
use crate::actors::cluster::{ClusterActor, PassHealth};
use crate::actors::registry::{EpochOf, WorkflowRegistry};
use crate::archive::{Archive, Archiver};
use crate::cluster::{self, Cluster};
use crate::config::Config;
use crate::store::Store;

/// This instance's part in the cluster, for the routes and `/health`.
#[derive(Clone)]
pub struct ClusterHandle {
    pub cluster: Arc<Cluster>,
    pub health: Arc<Mutex<PassHealth>>,
}

/// The lease epochs this member holds, stamped on every change.
pub fn epochs(c: &Clustered) -> EpochOf {
    let cluster = Arc::clone(&c.cluster);
    Arc::new(move |id: &str| cluster.epoch_of(id))
}

/// Where archived workflows are read from, and the archiver that writes them
/// when enabled.
pub fn start_archive(
    config: &Config,
    store: &Arc<dyn Store>,
    registry: &Addr<WorkflowRegistry>,
) -> Result<Arc<Archive>, StartError> {
    let archive = Archive::open(&config.archive, &config.storage.sqlite_path)
        .map_err(|e| StartError(e.to_string()))?;
    let archive = Arc::new(archive);
    if config.archive.enabled {
        let (store, a, cfg) = (
            Arc::clone(store),
            Arc::clone(&archive),
            config.archive.clone(),
        );
        let evict = registry.clone().recipient();
        Supervisor::start(move |_| Archiver::new(store, evict, a, &cfg));
        let url = config.archive.effective_url(&config.storage.sqlite_path);
        tracing::info!(url = %url, after = ?config.archive.after,
            interval = ?config.archive.interval, "archiver started under its supervisor");
    }
    Ok(archive)
}

/// The cluster member's actor under its supervisor, and its LISTEN connection.
pub fn join(c: Clustered, registry: &Addr<WorkflowRegistry>) -> ClusterHandle {
    let health = Arc::new(Mutex::new(PassHealth::default()));
    let (cl, pg, reg, h) = (
        Arc::clone(&c.cluster),
        c.store,
        registry.clone(),
        Arc::clone(&health),
    );
    let actor = Supervisor::start(move |_| ClusterActor::new(cl, pg, reg, h));
    actix_rt::spawn(cluster::listener::run(
        c.listen,
        c.cluster.watchers.clone(),
        actor.recipient(),
    ));
    tracing::info!(instance = %c.cluster.id, lease_ttl = ?c.cluster.ttl, "cluster member started");
    ClusterHandle {
        cluster: c.cluster,
        health,
    }
}

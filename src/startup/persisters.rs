//! Starting the persisters: the primary store's writer and, with `redis.url`, the
//! Redis mirror's, each supervised on an arbiter of its own (encoding batches on
//! the registry's thread made it the bottleneck, BENCHMARKS.md), plus the metrics
//! actor. Every one is a subscriber of the registry's `StateChange`s.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::restore::Restored;
use crate::actors::metrics::MetricsActor;
use crate::actors::persist::redis::Refill;
use crate::actors::persist::{PersistHealth, RedisLink, RedisPersister, StoreWriter};
use crate::actors::Publish;
use crate::config::{self, Config};
use crate::domain::StateChange;
use crate::exec::CommitStep;
use crate::store::Store;

/// The running persisters.
pub struct Persisters {
    /// The primary store's committed watermark.
    pub primary: Arc<PersistHealth>,
    /// The primary writer, which commits step answers for the runs.
    pub steps: Recipient<CommitStep>,
    /// Receive every `StateChange`, in order.
    pub subscribers: Vec<Recipient<Publish>>,
    /// Kept so the persister threads live as long as the runtime.
    pub arbiters: Vec<Arbiter>,
}

pub fn start(config: &Config, store: &Arc<dyn Store>, restored: &mut Restored) -> Persisters {
    let primary = Arc::new(PersistHealth::new(store.kind(), config.storage.max_queue));
    let writer_arbiter = Arbiter::new();
    let writer = {
        let (store, primary, batch, interval) = (
            Arc::clone(store),
            Arc::clone(&primary),
            config.storage.batch_max,
            config.storage.commit_interval,
        );
        Supervisor::start_in_arbiter(&writer_arbiter.handle(), move |_| {
            StoreWriter::new(store, primary, batch, interval)
                .with_commit_delay(config::test_commit_delay())
        })
    };
    tracing::info!(
        store = store.kind(),
        "primary store writer started under its supervisor"
    );
    let mut persisters = Persisters {
        primary,
        steps: writer.clone().recipient(),
        subscribers: vec![writer.recipient(), MetricsActor::new().start().recipient()],
        arbiters: vec![writer_arbiter],
    };
    if let Some(link) = &restored.redis {
        let seed = std::mem::take(&mut restored.seed);
        let (persister, arbiter) = start_mirror(config, store, link, seed);
        persisters.subscribers.push(persister);
        persisters.arbiters.push(arbiter);
    }
    persisters
}

/// The Redis mirror's persister, and the upkeep that keeps `redis_memory_bytes`
/// current and prunes expired index entries.
fn start_mirror(
    config: &Config,
    store: &Arc<dyn Store>,
    link: &Arc<RedisLink>,
    seed: Vec<Arc<StateChange>>,
) -> (Recipient<Publish>, Arbiter) {
    let (l, batch) = (Arc::clone(link), config.storage.batch_max);
    let refill = Refill {
        store: Arc::clone(store),
        max_completed: config.retention.max_completed,
        max_age: config.retention.max_age,
    };
    let arbiter = Arbiter::new();
    let persister = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
        RedisPersister::new(l, refill, batch, seed)
    });
    let link = Arc::clone(link);
    actix_rt::spawn(async move {
        loop {
            link.upkeep().await;
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
    (persister.recipient(), arbiter)
}

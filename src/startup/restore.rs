//! Restoring state at start: from the Redis mirror when it holds everything,
//! else from the primary store (and then Redis is reseeded with what it lacked);
//! the committed step answers of unfinished workflows always come from the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::{store_key, StartError};
use crate::actors::persist::{redis as mirror, RedisLink};
use crate::config::Config;
use crate::domain::{StateChange, StepRecord};
use crate::store::{Startup, Store};

/// What the actors start from.
pub struct Restored {
    pub startup: Startup,
    /// The Redis mirror, when `redis.url` is set.
    pub redis: Option<Arc<RedisLink>>,
    /// Changes the mirror lacked, written by its persister before anything new.
    pub seed: Vec<Arc<StateChange>>,
}

/// Reads the workflows to resume and to keep in memory. On a cluster member no
/// workflow is resumed here: whichever instance claims their expired leases does
/// (this one too, at its first pass), never all by each.
pub async fn restore(
    config: &Config,
    store: &Arc<dyn Store>,
    clustered: bool,
) -> Result<Restored, StartError> {
    let redis = match &config.redis.url {
        Some(url) => Some(Arc::new(
            RedisLink::new(&config.redis, url).map_err(|e| StartError(e.to_string()))?,
        )),
        None => None,
    };
    let t0 = Instant::now();
    let (mut startup, source, seed) = match from_redis(config, store, redis.as_deref()).await {
        Some(s) => (s, "redis", Vec::new()),
        None => {
            let s = from_store(config, store).await?;
            // Put what Redis lacked back, so it mirrors the store again.
            let seed = match &redis {
                Some(_) => mirror::reseed(store.as_ref(), &s).await,
                None => Vec::new(),
            };
            (s, store.kind(), seed)
        }
    };
    if clustered {
        startup.active.clear();
    }
    attach_steps(config, store, &mut startup).await?;
    tracing::info!(
        active = startup.active.len(),
        retained = startup.retained.len(),
        took_ms = t0.elapsed().as_millis() as u64,
        "restored state from {source}"
    );
    Ok(Restored {
        startup,
        redis,
        seed,
    })
}

/// Redis first when it holds everything the store does.
async fn from_redis(
    config: &Config,
    store: &Arc<dyn Store>,
    link: Option<&RedisLink>,
) -> Option<Startup> {
    let r = &config.retention;
    match link?
        .restore(store.as_ref(), r.max_completed, r.max_age)
        .await
    {
        Ok(s) => Some(s),
        Err(why) => {
            tracing::info!(reason = %why, "redis cannot restore every workflow; using the primary store");
            None
        }
    }
}

async fn from_store(config: &Config, store: &Arc<dyn Store>) -> Result<Startup, StartError> {
    let r = &config.retention;
    store
        .load_startup(r.max_completed, r.max_age)
        .await
        .map_err(|e| {
            StartError(format!(
                "{}: cannot read stored workflows: {e}",
                store_key(config)
            ))
        })
}

/// Committed step answers come from the primary store whatever the source (Redis
/// does not mirror them): a resumed run reuses every one.
async fn attach_steps(
    config: &Config,
    store: &Arc<dyn Store>,
    startup: &mut Startup,
) -> Result<(), StartError> {
    let ids: Vec<String> = startup
        .active
        .iter()
        .map(|a| a.workflow.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut steps: HashMap<String, Vec<StepRecord>> = HashMap::new();
    for s in store.steps_of(&ids).await.map_err(|e| {
        StartError(format!(
            "{}: cannot read stored step answers: {e}",
            store_key(config)
        ))
    })? {
        steps.entry(s.workflow_id.clone()).or_default().push(s);
    }
    for a in &mut startup.active {
        a.steps = steps.remove(&a.workflow.id).unwrap_or_default();
    }
    Ok(())
}

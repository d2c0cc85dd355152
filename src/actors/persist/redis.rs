//! The Redis mirror: `RedisLink` (client, key layout, codec, health, probe) shared
//! by start-up restore and `/health`, and `RedisPersister`, the supervised actor
//! that mirrors every `StateChange`. Like the primary writer it accepts each change
//! into an ordered queue kept in the struct, writes batches as one MULTI/EXEC
//! pipeline and removes entries only once Redis acknowledged them. A failure drops
//! the connection and stops the actor after a capped backoff; the supervisor
//! restarts it, it reconnects, and the queue is flushed. The queue is bounded by
//! `redis.max_queue` through admission: while full, the registry refuses creates.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig};

use super::redis_schema::{self, BatchBuilder, Compressed, Keys, Probe};
use super::PersistHealth;
use crate::actors::Publish;
use crate::config::{redact_url, RedisConfig};
use crate::domain::{ChangeKind, StateChange};
use crate::store::codec::Codec;
use crate::store::{Manifest, Startup, Store};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything about the Redis mirror that is shared and outlives the actor.
pub struct RedisLink {
    client: redis::Client,
    pub keys: Keys,
    /// The URL with its password redacted: the only form that is logged or shown.
    pub url: String,
    pub ttl: Duration,
    pub codec: Codec,
    pub health: Arc<PersistHealth>,
    probe_conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    compressed: Mutex<Compressed>,
}

/// What went wrong talking to the Redis mirror (`/health` and the log show it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum MirrorError {
    #[error("redis.url: '{url}' is not a valid Redis URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("redis {url}: {reason}")]
    Redis { url: String, reason: String },
    #[error("redis {url}: {what} timed out")]
    TimedOut { url: String, what: &'static str },
    #[error("refilling redis: primary store: {0}")]
    Refill(String),
}

/// Why start-up restores from the primary store rather than from Redis.
#[derive(Debug, thiserror::Error)]
pub enum NotRestorable {
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error("reading redis timed out")]
    TimedOut,
    #[error(transparent)]
    Unreadable(#[from] redis_schema::Unreadable),
    #[error("primary store manifest: {0}")]
    Manifest(crate::store::StoreError),
    #[error("redis holds no workflows")]
    Empty,
    #[error("redis holds {have_active} active and {have_retained} retained workflows, the primary store {want_active} and {want_retained} (or they differ)")]
    Differs {
        have_active: usize,
        have_retained: usize,
        want_active: usize,
        want_retained: usize,
    },
}

impl RedisLink {
    /// Parses the URL (config validation already did; this names the key again
    /// rather than trusting it).
    pub fn new(cfg: &RedisConfig, url: &str) -> Result<RedisLink, MirrorError> {
        let client = redis::Client::open(url).map_err(|e| MirrorError::BadUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        Ok(RedisLink {
            client,
            keys: Keys::new(&cfg.key_prefix),
            url: redact_url(url),
            ttl: cfg.ttl,
            codec: Codec::new(cfg.compression, cfg.compression_level),
            health: Arc::new(PersistHealth::new("redis", cfg.max_queue)),
            probe_conn: tokio::sync::Mutex::new(None),
            compressed: Mutex::new(Compressed::default()),
        })
    }

    pub async fn connect(&self) -> Result<MultiplexedConnection, MirrorError> {
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        match tokio::time::timeout(
            CONNECT_TIMEOUT + RESPONSE_TIMEOUT,
            self.client
                .get_multiplexed_async_connection_with_config(&cfg),
        )
        .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.timed_out("connect")),
        }
    }

    /// Pings Redis, counts the keys under the prefix and reads its memory use;
    /// keeps `redis_memory_bytes` current.
    fn failed(&self, e: redis::RedisError) -> MirrorError {
        MirrorError::Redis {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

    fn timed_out(&self, what: &'static str) -> MirrorError {
        MirrorError::TimedOut {
            url: self.url.clone(),
            what,
        }
    }

    pub async fn probe(&self) -> Result<Probe, MirrorError> {
        let mut slot = self.probe_conn.lock().await;
        let mut conn = match slot.as_ref() {
            Some(c) => c.clone(),
            None => self.connect().await?,
        };
        match tokio::time::timeout(PROBE_TIMEOUT, redis_schema::probe(&mut conn, &self.keys)).await
        {
            Ok(Ok(p)) => {
                *slot = Some(conn);
                if let Some(m) = p.used_memory {
                    metrics::gauge!(crate::actors::metrics::REDIS_MEMORY).set(m as f64);
                }
                Ok(p)
            }
            Ok(Err(e)) => {
                *slot = None;
                Err(self.failed(e))
            }
            Err(_) => {
                *slot = None;
                Err(self.timed_out("probe"))
            }
        }
    }

    /// Periodic upkeep: refresh the memory gauge and prune index entries of
    /// expired workflows. Failures only show in health.
    pub async fn upkeep(&self) {
        if self.probe().await.is_err() {
            return;
        }
        let conn = self.probe_conn.lock().await.clone();
        if let Some(mut conn) = conn {
            match redis_schema::prune_expired(&mut conn, &self.keys, self.ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned index entries of expired workflows"),
                Err(e) => tracing::warn!(error = %e, "redis index pruning failed"),
            }
        }
    }

    fn record_compression(&self, c: Compressed) {
        let Some(batch) = redis_schema::batch_ratio(c) else {
            return;
        };
        if let Ok(mut total) = self.compressed.lock() {
            total.raw += c.raw;
            total.stored += c.stored;
        }
        metrics::gauge!(crate::actors::metrics::REDIS_COMPRESSION_RATIO).set(batch);
    }

    /// Uncompressed over stored size of all results written since start.
    pub fn compression_ratio(&self) -> Option<f64> {
        self.compressed
            .lock()
            .ok()
            .and_then(|c| redis_schema::batch_ratio(*c))
    }

    /// Start-up restore from Redis: the active and retained workflows, but only
    /// when Redis holds exactly what the primary store's manifest lists (ids,
    /// statuses, event counts and last seqs). `Err` says why not.
    pub async fn restore(
        &self,
        store: &dyn Store,
        max_completed: usize,
        max_age: Duration,
    ) -> Result<Startup, NotRestorable> {
        let mut conn = self.connect().await?;
        let startup = tokio::time::timeout(
            Duration::from_secs(30),
            redis_schema::load_startup(&mut conn, &self.keys, max_completed, max_age),
        )
        .await
        .map_err(|_| NotRestorable::TimedOut)??;
        let want = store
            .startup_manifest(max_completed, max_age)
            .await
            .map_err(NotRestorable::Manifest)?;
        let have = Manifest::of(&startup);
        if have == Manifest::default() {
            return Err(NotRestorable::Empty);
        }
        if have != want {
            return Err(NotRestorable::Differs {
                have_active: have.active.len(),
                have_retained: have.retained.len(),
                want_active: want.active.len(),
                want_retained: want.retained.len(),
            });
        }
        Ok(startup)
    }
}

/// The changes that put restored workflows back into Redis after a start-up that
/// found it incomplete (e.g. flushed): records, event logs, results, deliveries.
/// They carry seq 0: they move no watermark.
pub async fn reseed(store: &dyn Store, startup: &Startup) -> Vec<Arc<StateChange>> {
    let change = |kind| {
        Arc::new(StateChange {
            seq: 0,
            epoch: None,
            kind,
        })
    };
    let mut out = Vec::new();
    let active = startup.active.iter().map(|a| &a.workflow);
    for wf in active.chain(&startup.retained) {
        out.push(change(ChangeKind::Workflow(Arc::new(wf.clone()))));
        if let Ok(events) = store.events_after(&wf.id, 0).await {
            out.extend(
                events
                    .into_iter()
                    .map(|e| change(ChangeKind::Event(Arc::new(e)))),
            );
        }
        if let Ok(Some(r)) = store.get_result(&wf.id).await {
            out.push(change(ChangeKind::Result(Arc::new(r))));
        }
        if let Ok(ds) = store.deliveries_for(&wf.id).await {
            out.extend(
                ds.into_iter()
                    .map(|d| change(ChangeKind::Delivery(Arc::new(d)))),
            );
        }
    }
    out
}

/// What the persister needs to refill Redis when Redis itself lost its data.
pub struct Refill {
    pub store: Arc<dyn Store>,
    pub max_completed: usize,
    pub max_age: Duration,
}

pub struct RedisPersister {
    link: Arc<RedisLink>,
    refill: Refill,
    /// Marks "this process has written here" in Redis; gone after a reconnect
    /// means Redis restarted without its data.
    marker: String,
    connected_once: bool,
    conn: Option<MultiplexedConnection>,
    queue: VecDeque<Arc<StateChange>>,
    batch_max: usize,
    /// Connecting, writing or waiting to stop: no other flush starts.
    busy: bool,
    backoff: Duration,
}

impl RedisPersister {
    pub fn new(
        link: Arc<RedisLink>,
        refill: Refill,
        batch_max: usize,
        seed: Vec<Arc<StateChange>>,
    ) -> Self {
        link.health.set_queue_len(seed.len());
        let marker = format!(
            "{}writer:{}",
            link.keys.prefix,
            uuid::Uuid::new_v4().simple()
        );
        RedisPersister {
            link,
            refill,
            marker,
            connected_once: false,
            conn: None,
            queue: seed.into(),
            batch_max,
            busy: false,
            backoff: Duration::from_millis(100),
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>, msg: String) {
        tracing::error!(error = %msg, queued = self.queue.len(), retry_in = ?self.backoff,
            "redis mirror write failed; persister restarts");
        self.link.health.record_failure(&msg);
        self.conn = None;
        self.busy = true;
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        ctx.run_later(wait, |_, ctx| ctx.stop());
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        let link = Arc::clone(&self.link);
        let (marker, first) = (self.marker.clone(), !self.connected_once);
        let store = Arc::clone(&self.refill.store);
        let (max_completed, max_age) = (self.refill.max_completed, self.refill.max_age);
        async move {
            let mut conn = link.connect().await?;
            let e = |e: redis::RedisError| link.failed(e);
            let present: bool = conn.exists(&marker).await.map_err(e)?;
            let ttl_ms = link.ttl.as_millis().min(u64::MAX as u128) as u64;
            let _: () = conn.pset_ex(&marker, 1, ttl_ms).await.map_err(e)?;
            // Redis came back without what this process wrote: refill it from
            // the store, ahead of the changes queued meanwhile.
            let refill = if !first && !present {
                let s = store
                    .load_startup(max_completed, max_age)
                    .await
                    .map_err(|e| MirrorError::Refill(e.to_string()))?;
                Some(reseed(store.as_ref(), &s).await)
            } else {
                None
            };
            Ok::<_, MirrorError>((conn, refill))
        }
        .into_actor(self)
        .map(|res, act, ctx| match res {
            Ok((conn, refill)) => {
                if let Some(seed) = refill {
                    tracing::warn!(url = %act.link.url, changes = seed.len(),
                        "redis lost its data while away; refilling it from the primary store");
                    for c in seed.into_iter().rev() {
                        act.queue.push_front(c);
                    }
                    act.link.health.set_queue_len(act.queue.len());
                }
                tracing::info!(url = %act.link.url, queued = act.queue.len(), "redis mirror connected");
                act.connected_once = true;
                act.conn = Some(conn);
                act.busy = false;
                act.flush(ctx);
            }
            Err(e) => act.fail(ctx, e.to_string()),
        })
        .spawn(ctx);
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.queue.is_empty() {
            return;
        }
        let Some(mut conn) = self.conn.clone() else {
            return;
        };
        let n = self.queue.len().min(self.batch_max);
        let mut builder = BatchBuilder::new(&self.link.keys, self.link.ttl, self.link.codec);
        // Only the last record of each workflow in the batch needs writing: each
        // costs a SET and nine set updates.
        let mut last_record = std::collections::HashMap::new();
        for (i, c) in self.queue.iter().take(n).enumerate() {
            if let ChangeKind::Workflow(w) = &c.kind {
                last_record.insert(w.id.as_str(), i);
            }
        }
        for (i, c) in self.queue.iter().take(n).enumerate() {
            if let ChangeKind::Workflow(w) = &c.kind {
                if last_record.get(w.id.as_str()) != Some(&i) {
                    continue;
                }
            }
            if let Err(e) = builder.add(c) {
                // Domain types always serialize; if one ever did not, it could
                // never be mirrored: say so loudly rather than block the queue.
                tracing::error!(seq = c.seq, error = %e, "change cannot be encoded for redis; not mirrored");
                self.link.health.record_failure(&e.to_string());
            }
        }
        let compressed = builder.compressed;
        let pipe = builder.finish();
        let last_seq = self.queue.iter().take(n).map(|c| c.seq).max().unwrap_or(0);
        self.busy = true;
        async move { pipe.query_async::<()>(&mut conn).await }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(()) => {
                    act.busy = false;
                    act.queue.drain(..n);
                    act.link.health.set_queue_len(act.queue.len());
                    act.link.health.record_batch(n, last_seq);
                    act.link.record_compression(compressed);
                    act.backoff = Duration::from_millis(100);
                    act.flush(ctx);
                }
                Err(e) => act.fail(ctx, format!("redis {}: {e}", act.link.url)),
            })
            .spawn(ctx);
    }
}

impl Actor for RedisPersister {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
    }
}

impl Supervised for RedisPersister {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.conn = None;
        self.busy = false;
        self.link.health.record_restart();
        tracing::warn!(queued = self.queue.len(), "redis persister restarting");
    }
}

impl Handler<Publish> for RedisPersister {
    type Result = ();

    fn handle(&mut self, msg: Publish, ctx: &mut Context<Self>) {
        self.queue.extend(msg.0.iter().cloned());
        self.link.health.set_queue_len(self.queue.len());
        self.flush(ctx);
    }
}

//! The Redis key layout (documented in docs/redis.md) and every command that
//! touches it: how a `StateChange` becomes pipelined writes, how start-up reads
//! workflows back, how `/health` probes the server and how stale index entries
//! are pruned. The persister actor only decides *when*; this module says *what*.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Pipeline};

use crate::domain::status::ALL_STATUSES;
use crate::domain::{ChangeKind, Event, Pattern, StateChange, Status, Workflow};
use crate::store::codec::{self, Codec};
use crate::store::{Startup, StoredActive};

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    pub prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }
    /// STRING: the workflow record as JSON.
    pub fn workflow(&self, id: &str) -> String {
        format!("{}wf:{id}", self.prefix)
    }
    /// ZSET: the event log, member = event JSON, score = event seq.
    pub fn events(&self, id: &str) -> String {
        format!("{}wf:{id}:events", self.prefix)
    }
    /// STRING: the result, JSON compressed by `codec` (tagged bytes).
    pub fn result(&self, id: &str) -> String {
        format!("{}wf:{id}:result", self.prefix)
    }
    /// HASH: webhook deliveries of the workflow, delivery id -> JSON.
    pub fn deliveries(&self, id: &str) -> String {
        format!("{}wf:{id}:deliveries", self.prefix)
    }
    /// SET: ids of workflows in this status.
    pub fn status(&self, s: Status) -> String {
        format!("{}status:{}", self.prefix, s.as_str())
    }
    /// SET: ids of workflows of this pattern.
    pub fn pattern(&self, p: Pattern) -> String {
        format!("{}pattern:{}", self.prefix, p.as_str())
    }
    /// ZSET: finished workflow ids, score = completed_at in microseconds.
    pub fn completed(&self) -> String {
        format!("{}completed", self.prefix)
    }
    /// STRING: a webhook subscription as JSON.
    pub fn webhook(&self, id: &str) -> String {
        format!("{}webhook:{id}", self.prefix)
    }
    /// SET: ids of all webhook subscriptions.
    pub fn webhooks(&self) -> String {
        format!("{}webhooks", self.prefix)
    }
    /// The keys that belong to one workflow (and expire with it).
    fn per_workflow(&self, id: &str) -> [String; 4] {
        [
            self.workflow(id),
            self.events(id),
            self.result(id),
            self.deliveries(id),
        ]
    }
    /// A SCAN pattern matching exactly the keys under the prefix.
    pub fn scan_pattern(&self) -> String {
        let mut p = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('*');
        p
    }
}

/// Sub-keys written after the record went terminal take over its remaining TTL:
/// events and deliveries may arrive after the terminal record. A record already
/// expired (a webhook retry days later) gives its orphans the full TTL instead.
const FOLLOW_TTL: &str = "local t = redis.call('PTTL', KEYS[1]) \
    if t == -2 then t = tonumber(ARGV[1]) end \
    if t > 0 then for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], t) end end return t";

/// Sizes of results compressed while building a batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct Compressed {
    pub raw: usize,
    pub stored: usize,
}

/// Turns changes into commands of one MULTI/EXEC pipeline.
pub struct BatchBuilder<'a> {
    pub keys: &'a Keys,
    pub ttl: Duration,
    pub codec: Codec,
    pipe: Pipeline,
    touched: BTreeSet<String>,
    pub compressed: Compressed,
}

impl<'a> BatchBuilder<'a> {
    pub fn new(keys: &'a Keys, ttl: Duration, codec: Codec) -> Self {
        let mut pipe = redis::pipe();
        pipe.atomic();
        BatchBuilder {
            keys,
            ttl,
            codec,
            pipe,
            touched: BTreeSet::new(),
            compressed: Compressed::default(),
        }
    }

    pub fn add(&mut self, change: &StateChange) -> Result<(), serde_json::Error> {
        let k = self.keys;
        match &change.kind {
            ChangeKind::Workflow(w) => self.workflow(w)?,
            ChangeKind::Event(e) => {
                self.pipe
                    .zadd(k.events(&e.workflow_id), e.to_json(), e.seq)
                    .ignore();
                self.touched.insert(e.workflow_id.clone());
            }
            ChangeKind::Result(r) => {
                let raw = serde_json::to_vec(&**r)?;
                let stored = self.codec.encode(&raw);
                tracing::info!(workflow_id = %r.workflow_id, json_bytes = raw.len(),
                    stored_bytes = stored.len(), ratio = codec::ratio(raw.len(), stored.len()),
                    compression = ?self.codec.compression, "result compressed for redis");
                self.compressed.raw += raw.len();
                self.compressed.stored += stored.len();
                self.pipe.set(k.result(&r.workflow_id), stored).ignore();
                self.touched.insert(r.workflow_id.clone());
            }
            ChangeKind::Delivery(d) => {
                self.pipe
                    .hset(
                        k.deliveries(&d.workflow_id),
                        &d.id,
                        serde_json::to_string(&**d)?,
                    )
                    .ignore();
                self.touched.insert(d.workflow_id.clone());
            }
            ChangeKind::Webhook(s) => {
                self.pipe
                    .set(k.webhook(&s.id), serde_json::to_string(&**s)?)
                    .ignore()
                    .sadd(k.webhooks(), &s.id)
                    .ignore();
            }
            ChangeKind::WebhookRemoved(id) => {
                self.pipe
                    .del(k.webhook(id))
                    .ignore()
                    .srem(k.webhooks(), id)
                    .ignore();
            }
            // Redis keeps evicted workflows (until their TTL): it mirrors the
            // store, not memory. Idempotency keys and step answers are read
            // from the primary store only.
            ChangeKind::Evicted(_)
            | ChangeKind::Idempotency(_)
            | ChangeKind::Step(_)
            | ChangeKind::Document(_) => {}
        }
        Ok(())
    }

    fn workflow(&mut self, w: &Workflow) -> Result<(), serde_json::Error> {
        let k = self.keys;
        self.pipe
            .set(k.workflow(&w.id), serde_json::to_string(w)?)
            .ignore();
        for s in ALL_STATUSES.into_iter().filter(|s| *s != w.status) {
            self.pipe.srem(k.status(s), &w.id).ignore();
        }
        self.pipe
            .sadd(k.status(w.status), &w.id)
            .ignore()
            .sadd(k.pattern(w.pattern), &w.id)
            .ignore();
        if let (true, Some(at)) = (w.status.is_terminal(), w.completed_at) {
            self.pipe
                .zadd(k.completed(), &w.id, at.timestamp_micros())
                .ignore();
            let ms = self.ttl.as_millis().min(i64::MAX as u128) as i64;
            for key in k.per_workflow(&w.id) {
                self.pipe.cmd("PEXPIRE").arg(key).arg(ms).ignore();
            }
        }
        Ok(())
    }

    /// The pipeline, closed with TTL-following for every workflow touched.
    pub fn finish(mut self) -> Pipeline {
        let ms = self.ttl.as_millis().min(i64::MAX as u128) as i64;
        for id in std::mem::take(&mut self.touched) {
            let keys = self.keys.per_workflow(&id);
            self.pipe
                .cmd("EVAL")
                .arg(FOLLOW_TTL)
                .arg(keys.len())
                .arg(&keys[..])
                .arg(ms)
                .ignore();
        }
        self.pipe
    }
}

/// Why Redis does not hold a readable copy of what start-up restores.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("record of {0} is missing")]
    Missing(String),
    #[error("record of {id}: {source}")]
    Record {
        id: String,
        source: serde_json::Error,
    },
    #[error("event log of {id}: {source}")]
    Events {
        id: String,
        source: serde_json::Error,
    },
}

/// Reads back what start-up would restore: active workflows (pending, running,
/// interrupted) with their event logs, and the newest finished ones. A record
/// missing or unreadable means Redis does not hold it all: `Err(reason)`.
pub async fn load_startup(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    max_completed: usize,
    max_age: Duration,
) -> Result<Startup, Unreadable> {
    let active_sets =
        [Status::Pending, Status::Running, Status::Interrupted].map(|s| keys.status(s));
    let mut active_ids: Vec<String> = conn.sunion(&active_sets[..]).await?;
    active_ids.sort();
    let oldest =
        Utc::now() - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(36500));
    let retained_ids: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
        .arg(keys.completed())
        .arg("+inf")
        .arg(oldest.timestamp_micros())
        .arg("LIMIT")
        .arg(0)
        .arg(max_completed)
        .query_async(conn)
        .await?;
    let mut pipe = redis::pipe();
    for id in active_ids.iter().chain(&retained_ids) {
        pipe.get(keys.workflow(id));
    }
    let records: Vec<Option<String>> = if active_ids.is_empty() && retained_ids.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let mut pipe = redis::pipe();
    for id in &active_ids {
        pipe.zrange(keys.events(id), 0, -1);
    }
    let logs: Vec<Vec<String>> = if active_ids.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let ids = active_ids.iter().chain(&retained_ids);
    let mut workflows = Vec::with_capacity(records.len());
    for (id, rec) in ids.zip(records) {
        let rec = rec.ok_or_else(|| Unreadable::Missing(id.clone()))?;
        let wf: Workflow = serde_json::from_str(&rec).map_err(|source| Unreadable::Record {
            id: id.clone(),
            source,
        })?;
        workflows.push(wf);
    }
    let retained = workflows.split_off(active_ids.len());
    let mut active = Vec::with_capacity(workflows.len());
    for (workflow, log) in workflows.into_iter().zip(logs) {
        let events = log
            .iter()
            .map(|j| serde_json::from_str::<Event>(j))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Unreadable::Events {
                id: workflow.id.clone(),
                source,
            })?;
        active.push(StoredActive {
            workflow,
            events,
            steps: Vec::new(),
        });
    }
    Ok(Startup { active, retained })
}

/// What `/health` shows about the Redis server.
#[derive(Debug, Clone)]
pub struct Probe {
    pub latency: Duration,
    pub keys: u64,
    pub used_memory: Option<u64>,
}

pub async fn probe(conn: &mut MultiplexedConnection, keys: &Keys) -> redis::RedisResult<Probe> {
    let t = Instant::now();
    let _: String = redis::cmd("PING").query_async(conn).await?;
    let latency = t.elapsed();
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    let used_memory = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok());
    Ok(Probe {
        latency,
        keys: count_keys(conn, keys).await?,
        used_memory,
    })
}

/// Keys under the prefix, by SCAN (never KEYS: it would block the server).
pub async fn count_keys(conn: &mut MultiplexedConnection, keys: &Keys) -> redis::RedisResult<u64> {
    let pattern = keys.scan_pattern();
    let mut cursor: u64 = 0;
    let mut n = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        n += batch.len() as u64;
        if next == 0 {
            return Ok(n);
        }
        cursor = next;
    }
}

/// Index entries (status and pattern sets, the completed set) of workflows whose
/// keys have expired: the sets cannot expire member by member, so they are pruned.
pub async fn prune_expired(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    ttl: Duration,
) -> redis::RedisResult<usize> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(36500));
    let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(keys.completed())
        .arg("-inf")
        .arg(cutoff.timestamp_micros())
        .arg("LIMIT")
        .arg(0)
        .arg(10_000)
        .query_async(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for s in ALL_STATUSES.into_iter().filter(|s| s.is_terminal()) {
        pipe.srem(keys.status(s), &ids[..]).ignore();
    }
    for p in [Pattern::Research, Pattern::Search] {
        pipe.srem(keys.pattern(p), &ids[..]).ignore();
    }
    pipe.zrem(keys.completed(), &ids[..]).ignore();
    pipe.query_async::<()>(conn).await?;
    Ok(ids.len())
}

/// Compression ratio of one batch, if it held results.
pub fn batch_ratio(c: Compressed) -> Option<f64> {
    (c.raw > 0).then(|| codec::ratio(c.raw, c.stored))
}

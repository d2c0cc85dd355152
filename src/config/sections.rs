//! The config sections: one struct per `[section]`, each with its documented defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address, `host:port`.
    pub bind: String,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 = one per CPU core.
    pub workers: usize,
    /// Origins (`https://host[:port]`) whose pages may call the API from a
    /// browser (CORS); none by default.
    #[serde(deserialize_with = "string_or_list")]
    pub cors_allowed_origins: Vec<String>,
    /// `Host` values (`name` = any port, `name:port`, `"*"` = any) the server
    /// answers; others get 421 `host_not_allowed` (DNS-rebinding protection).
    /// Empty: without keys the bind address and loopback names, with keys any.
    /// Loopback names and the bind address are always allowed.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_hosts: Vec<String>,
    /// A request's head and its whole body must arrive within this; else 408.
    #[serde(with = "humantime_serde")]
    pub client_request_timeout: Duration,
    /// Largest request head (request line and headers); larger heads get 431.
    pub max_header_bytes: usize,
    /// An idle keep-alive connection is closed after this; 0 = no keep-alive.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Open connections per worker thread at most; further ones wait in the backlog.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Answer a create or cancel only after the primary store committed it.
    Sync,
    /// Answer at once; a crash may lose the last few milliseconds of changes.
    Async,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Embedded SQLite database file (the primary store when no PostgreSQL is set).
    pub sqlite_path: PathBuf,
    pub durability: Durability,
    /// How long a sync create/cancel waits for the store before answering 503.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// Changes waiting for the store at most; when full, creates get 503.
    pub max_queue: usize,
    /// Changes written in one transaction at most.
    pub batch_max: usize,
    /// Least time between the starts of two commits. 0 (default) = adaptive
    /// group commit: commit when idle, group while a commit is in flight.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Pending + running workflows at most; creates beyond get 429.
    pub max_active: usize,
    /// The `Retry-After` given with a 429.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Largest per-call timeout a request may set (`config.*_timeout_secs` and the
    /// old routes' `belter_timeout`, `drummer_timeout`, `camina_timeout`, `timeout_seconds`).
    #[serde(with = "humantime_serde")]
    pub max_call_timeout: Duration,
    /// Largest `config.budget_usd` a request may set.
    pub max_budget_usd: f64,
    /// Largest `config.max_tokens_total` a request may set.
    pub max_tokens_total: u64,
    /// A run still going after this long fails with `deadline_exceeded` and its
    /// calls are aborted.
    #[serde(with = "humantime_serde")]
    pub max_workflow_duration: Duration,
    /// Open Server-Sent-Events streams at most (v1 and `/stream`); more get 429.
    pub max_sse_streams: usize,
    /// Open Server-Sent-Events streams of one workflow at most; more get 429.
    pub max_sse_streams_per_workflow: usize,
}

impl LimitsConfig {
    /// The bounds a create request's numbers are checked against.
    pub fn bounds(&self) -> crate::domain::Bounds {
        crate::domain::Bounds {
            max_call_timeout_secs: self.max_call_timeout.as_secs_f64(),
            max_budget_usd: self.max_budget_usd,
            max_tokens_total: self.max_tokens_total,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Finished workflows kept in memory at most (oldest completion evicted first).
    pub max_completed: usize,
    /// Finished workflows older than this (by completion) leave memory.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Time from SIGTERM to exit: running workflows may finish during the first
    /// part; the rest are marked interrupted and everything is flushed.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// Provider used when a request names none.
    pub default_provider: String,
    /// Threads that run workflow executors; 0 = one per CPU core.
    pub threads: usize,
    /// Budget per workflow in USD when the request sets none; 0 = unlimited.
    pub default_budget_usd: f64,
    /// Token limit per workflow when the request sets none; 0 = unlimited.
    pub default_max_tokens_total: u64,
    /// A workflow whose resumed run died with the process this many times fails
    /// with `resume_limit_reached` instead of being resumed again; 0 = unlimited.
    pub max_resumes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Accept `http://` webhook URLs (development only; `https` otherwise).
    pub allow_http: bool,
    /// Hosts exempt from the private-address (SSRF) guard; a list in the file,
    /// comma-separated in the environment.
    #[serde(deserialize_with = "string_or_list")]
    pub allow_hosts: Vec<String>,
    /// First retry delay; doubles per retry, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Timeout of one delivery attempt.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Deliveries in flight at once, overall.
    pub max_concurrent: usize,
    /// Deliveries in flight at once to one host.
    pub max_per_host: usize,
    /// Deliveries waiting to be sent (due or retrying) at most; past it the oldest
    /// is recorded as failed.
    pub max_pending: usize,
    /// Subscriptions at most, global and per workflow together; more get 429.
    pub max_subscriptions: usize,
    /// Subscriptions of one workflow at most; more get 429.
    pub max_subscriptions_per_workflow: usize,
    /// A webhook host name must resolve within this.
    #[serde(with = "humantime_serde")]
    pub dns_timeout: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_http: false,
            allow_hosts: Vec::new(),
            retry_backoff: Duration::from_secs(5),
            max_retries: 3,
            attempt_timeout: Duration::from_secs(10),
            max_concurrent: 32,
            max_per_host: 4,
            max_pending: 10_000,
            max_subscriptions: 1_000,
            max_subscriptions_per_workflow: 10,
            dns_timeout: Duration::from_secs(5),
        }
    }
}

/// Accepts `["a", "b"]` or `"a,b"` (environment variables carry lists that way).
pub(super) fn string_or_list<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        Either::Many(v) => v,
    })
}

/// Redis hot mirror of active and recent workflows (optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port[/db]` or `rediss://…`; unset = no Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Prepended to every key, so several deployments (or tests) share one Redis.
    pub key_prefix: String,
    /// Keys of a finished workflow expire this long after it finished.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How results are compressed in Redis.
    pub compression: Compression,
    /// zstd 1..=22, zlib 0..=9.
    pub compression_level: i32,
    /// Changes waiting for Redis at most; when full, creates get 503.
    pub max_queue: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            key_prefix: "mcpo:".into(),
            ttl: Duration::from_secs(7 * 24 * 3600),
            compression: Compression::Zstd,
            compression_level: 3,
            max_queue: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Zlib,
    None,
}

/// PostgreSQL as the primary store (optional; embedded SQLite otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// `postgres://user[:pass]@host:port/db`; unset = embedded SQLite is primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Connections for the writer and point reads.
    pub pool_size: usize,
    /// Connections for analytics queries: their own pool, so they cannot starve the writer.
    pub analytics_pool_size: usize,
    /// Every statement is cancelled by the server after this long.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// How long a sync create/cancel waits for PostgreSQL before answering 503.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// Opening one connection (and waiting for a free one) at most.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: None,
            pool_size: 8,
            analytics_pool_size: 2,
            statement_timeout: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `mcp_orchestrator=debug`); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:5060".into(),
            max_body_bytes: 1024 * 1024,
            workers: 0,
            cors_allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            client_request_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            keep_alive: Duration::from_secs(5),
            max_connections: 25_000,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sqlite_path: PathBuf::from("data/orchestrator.db"),
            durability: Durability::Sync,
            ack_timeout: Duration::from_secs(5),
            max_queue: 100_000,
            batch_max: 2_000,
            commit_interval: Duration::ZERO,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_active: 50,
            retry_after: Duration::from_secs(5),
            max_call_timeout: Duration::from_secs(600),
            max_budget_usd: 1_000.0,
            max_tokens_total: 100_000_000,
            max_workflow_duration: Duration::from_secs(3600),
            max_sse_streams: 10_000,
            max_sse_streams_per_workflow: 100,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_completed: 100,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace: Duration::from_secs(30),
        }
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            default_provider: "simulated".into(),
            threads: 0,
            default_budget_usd: 0.0,
            default_max_tokens_total: 0,
            max_resumes: 3,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

//! Typed, layered configuration: built-in defaults < config file (`--config`, default
//! `config/default.toml`) < environment `MCPO__SECTION__KEY` < command-line flags.
//! Every key is documented in `config/default.toml`; a test keeps the two in sync.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The default file, relative to the working directory. It is optional unless
/// named explicitly with `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub retention: RetentionConfig,
    pub shutdown: ShutdownConfig,
    pub execution: ExecutionConfig,
    pub log: LogConfig,
    pub webhooks: WebhooksConfig,
    pub redis: RedisConfig,
    pub postgres: PostgresConfig,
    /// Named LLM providers; `execution.default_provider` names one of them.
    pub providers: BTreeMap<String, ProviderConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address, `host:port`.
    pub bind: String,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 = one per CPU core.
    pub workers: usize,
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
    /// Commits start at most this often; under load more changes share one
    /// commit. A sync create waits at most this much longer. 0 = no spacing.
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
        }
    }
}

/// Accepts `["a", "b"]` or `"a,b"` (environment variables carry lists that way).
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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

/// A URL with its password replaced by `***`, for logs, errors and `check-config`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| format!("{u}:***"));
            format!(
                "{scheme}://{}@{host}{tail}",
                user.unwrap_or_else(|| userinfo.to_string())
            )
        }
        None => url.to_string(),
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProviderConfig {
    /// Offline provider: deterministic text after a fixed latency, labelled simulated.
    Simulated {
        #[serde(default = "default_sim_latency")]
        latency_ms: u64,
    },
    /// Any OpenAI-compatible `/v1/chat/completions` endpoint.
    Openai(OpenAiConfig),
}

fn default_sim_latency() -> u64 {
    50
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// Default model; requests may override per role.
    pub model: String,
    /// USD per million input (prompt) tokens.
    #[serde(default)]
    pub input_price_per_mtok: f64,
    /// USD per million output (completion) tokens.
    #[serde(default)]
    pub output_price_per_mtok: f64,
    /// Per-attempt timeout; a workflow's per-role timeout wins when set.
    #[serde(default = "default_llm_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx, timeouts, connection errors
    /// and malformed answers.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff; doubles per retry (with jitter), capped at 30 s.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Requests per minute across all workflows using this provider (a queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute across all workflows using this provider (a queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
    /// `max_tokens` sent with each request, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
}

fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}

fn default_llm_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_retries() -> u32 {
    3
}

fn default_backoff() -> Duration {
    Duration::from_millis(500)
}

impl Default for Config {
    fn default() -> Self {
        let mut providers = BTreeMap::new();
        providers.insert(
            "simulated".to_string(),
            ProviderConfig::Simulated {
                latency_ms: default_sim_latency(),
            },
        );
        Config {
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            limits: LimitsConfig::default(),
            retention: RetentionConfig::default(),
            shutdown: ShutdownConfig::default(),
            execution: ExecutionConfig::default(),
            log: LogConfig::default(),
            webhooks: WebhooksConfig::default(),
            redis: RedisConfig::default(),
            postgres: PostgresConfig::default(),
            providers,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:5060".into(),
            max_body_bytes: 1024 * 1024,
            workers: 0,
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
            commit_interval: Duration::from_millis(2),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_active: 50,
            retry_after: Duration::from_secs(5),
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

/// A configuration problem, always naming the key (or file) and the reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads the layers. `file` is the `--config` argument: a named file must
    /// exist; without one, `config/default.toml` is read when present.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config file '{}' does not exist or is not a file",
                        path.display()
                    )));
                }
                fig = fig.merge(Toml::file(path));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_PATH);
                if default.is_file() {
                    fig = fig.merge(Toml::file(default));
                }
            }
        }
        fig = fig.merge(Env::prefixed("MCPO__").split("__"));
        let config: Config = fig.extract().map_err(|e| ConfigError(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot say; every message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| Err(ConfigError(format!("{key}: {reason}")));
        match self.server.bind.to_socket_addrs().map(|a| a.count()) {
            Ok(n) if n > 0 => {}
            _ => {
                return bad(
                    "server.bind",
                    format!("'{}' is not a host:port address", self.server.bind),
                )
            }
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024".into());
        }
        if self.storage.sqlite_path.as_os_str().is_empty() {
            return bad("storage.sqlite_path", "must not be empty".into());
        }
        if self.storage.max_queue == 0 || self.storage.batch_max == 0 {
            return bad(
                "storage.max_queue/storage.batch_max",
                "must be at least 1".into(),
            );
        }
        if self.postgres.pool_size == 0 || self.postgres.analytics_pool_size == 0 {
            return bad(
                "postgres.pool_size/postgres.analytics_pool_size",
                "must be at least 1".into(),
            );
        }
        for (key, d) in [
            (
                "postgres.statement_timeout",
                self.postgres.statement_timeout,
            ),
            ("postgres.ack_timeout", self.postgres.ack_timeout),
            ("postgres.connect_timeout", self.postgres.connect_timeout),
        ] {
            if d < Duration::from_millis(1) {
                return bad(key, "must be positive".into());
            }
        }
        if self.limits.max_active == 0 {
            return bad("limits.max_active", "must be at least 1".into());
        }
        if self.shutdown.grace < Duration::from_millis(100) {
            return bad("shutdown.grace", "must be at least 100ms".into());
        }
        if self.webhooks.max_concurrent == 0 || self.webhooks.max_per_host == 0 {
            return bad(
                "webhooks.max_concurrent/webhooks.max_per_host",
                "must be at least 1".into(),
            );
        }
        if self.webhooks.attempt_timeout.is_zero() {
            return bad("webhooks.attempt_timeout", "must be positive".into());
        }
        if !(self.execution.default_budget_usd >= 0.0
            && self.execution.default_budget_usd.is_finite())
        {
            return bad(
                "execution.default_budget_usd",
                "must be 0 (unlimited) or positive".into(),
            );
        }
        for (name, p) in &self.providers {
            if let ProviderConfig::Openai(o) = p {
                let key = |k: &str| format!("providers.{name}.{k}");
                if !(o.base_url.starts_with("http://") || o.base_url.starts_with("https://")) {
                    return bad(
                        &key("base_url"),
                        format!("'{}' is not an http(s) URL", o.base_url),
                    );
                }
                if o.model.trim().is_empty() {
                    return bad(&key("model"), "must not be empty".into());
                }
                if o.api_key_env.trim().is_empty() {
                    return bad(
                        &key("api_key_env"),
                        "must name an environment variable".into(),
                    );
                }
                if o.input_price_per_mtok < 0.0 || o.output_price_per_mtok < 0.0 {
                    return bad(
                        &key("input_price_per_mtok/output_price_per_mtok"),
                        "must not be negative".into(),
                    );
                }
                if o.requests_per_minute == Some(0) || o.tokens_per_minute == Some(0) {
                    return bad(
                        &key("requests_per_minute/tokens_per_minute"),
                        "must be at least 1 when set".into(),
                    );
                }
                if o.timeout.is_zero() {
                    return bad(&key("timeout"), "must be positive".into());
                }
            }
        }
        self.validate_redis()?;
        if !self
            .providers
            .contains_key(&self.execution.default_provider)
        {
            return bad(
                "execution.default_provider",
                format!(
                    "'{}' is not a configured provider (configured: {})",
                    self.execution.default_provider,
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        Ok(())
    }

    /// How long a sync create/cancel waits for the primary store.
    pub fn ack_timeout(&self) -> Duration {
        match self.postgres.url {
            Some(_) => self.postgres.ack_timeout,
            None => self.storage.ack_timeout,
        }
    }

    fn validate_redis(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| Err(ConfigError(format!("{key}: {reason}")));
        let r = &self.redis;
        if let Some(url) = &r.url {
            // The client's own parser decides; its message never repeats the URL,
            // and ours shows it with the password redacted.
            if let Err(e) = redis::Client::open(url.as_str()) {
                return bad(
                    "redis.url",
                    format!("'{}' is not a valid Redis URL: {e}", redact_url(url)),
                );
            }
        }
        if r.key_prefix.is_empty() {
            return bad("redis.key_prefix", "must not be empty".into());
        }
        if r.ttl < Duration::from_secs(1) {
            return bad("redis.ttl", "must be at least 1s".into());
        }
        if r.max_queue == 0 {
            return bad("redis.max_queue", "must be at least 1".into());
        }
        let (lo, hi) = match r.compression {
            Compression::Zstd => (1, 22),
            Compression::Zlib => (0, 9),
            Compression::None => (i32::MIN, i32::MAX),
        };
        if !(lo..=hi).contains(&r.compression_level) {
            return bad(
                "redis.compression_level",
                format!(
                    "{} is out of range {lo}..={hi} for {:?}",
                    r.compression_level, r.compression
                ),
            );
        }
        Ok(())
    }

    /// Problems that do not stop the server but will refuse some work.
    pub fn warnings(&self) -> Vec<String> {
        self.providers
            .iter()
            .filter_map(|(name, p)| match p {
                ProviderConfig::Openai(o) if std::env::var_os(&o.api_key_env).is_none() => Some(format!(
                    "providers.{name}.api_key_env: environment variable {} is not set; workflows using provider '{name}' are refused with 422 provider_unavailable",
                    o.api_key_env
                )),
                _ => None,
            })
            .collect()
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        // API keys are read from the environment variables the config names; the
        // only secrets in the config are database passwords in URLs.
        let mut c = self.clone();
        c.redis.url = c.redis.url.as_deref().map(redact_url);
        c.postgres.url = c.postgres.url.as_deref().map(redact_url);
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// figment's errors name the key, the source and the reason; keep them on one line.
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!(" (from {src})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../config/default.toml");

    /// Keys of a TOML document, dotted, leaves only.
    fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    keys(v, &key, out);
                } else {
                    out.push(key);
                }
            }
        }
    }

    #[test]
    fn shipped_default_file_matches_built_in_defaults() {
        let parsed: Config = toml::from_str(SHIPPED).expect("config/default.toml parses");
        assert_eq!(
            parsed,
            Config::default(),
            "config/default.toml differs from Config::default()"
        );
    }

    #[test]
    fn shipped_default_file_lists_and_documents_every_key() {
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        let mut want = Vec::new();
        keys(&defaults, "", &mut want);
        let shipped: toml::Value = toml::from_str(SHIPPED).unwrap();
        let mut have = Vec::new();
        keys(&shipped, "", &mut have);
        want.sort();
        have.sort();
        assert_eq!(have, want);
        // Each key line is preceded by a comment line (or is the provider kind).
        let lines: Vec<&str> = SHIPPED.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with('[') || l.starts_with("kind") {
                continue;
            }
            assert!(
                lines[i - 1].trim().starts_with('#'),
                "undocumented key: {l}"
            );
        }
    }

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(
            redact_url("postgres://postgres:pw@127.0.0.1/test?sslmode=disable"),
            "postgres://postgres:***@127.0.0.1/test?sslmode=disable"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("rediss://:pw@h"), "rediss://:***@h");
        let mut c = Config::default();
        c.redis.url = Some("redis://:hunter2@h:1".into());
        assert!(!c.to_redacted_toml().contains("hunter2"));
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.limits.max_active = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.max_active"));
        let mut c = Config::default();
        c.execution.default_provider = "nope".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("execution.default_provider"));
        for url in ["http://host:6379", "redis://:pw@host:notaport", "redis://"] {
            let mut c = Config::default();
            c.redis.url = Some(url.into());
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("redis.url"), "{url}: {e}");
        }
        let mut c = Config::default();
        c.redis.url = Some("redis://:hunter2@host:notaport".into());
        assert!(!c.validate().unwrap_err().to_string().contains("hunter2"));
        for url in [
            "redis://127.0.0.1:6379",
            "redis://user:pass@host:6380/2",
            "rediss://host:6380",
        ] {
            let mut c = Config::default();
            c.redis.url = Some(url.into());
            assert!(c.validate().is_ok(), "{url}");
        }
        let mut c = Config::default();
        c.redis.compression = Compression::Zlib;
        c.redis.compression_level = 12;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("redis.compression_level"));
        let mut c = Config::default();
        c.server.bind = "not an address".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.bind"));
    }
}

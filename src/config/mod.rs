//! Typed, layered configuration: built-in defaults < config file (`--config`, default
//! `config/default.toml`) < environment `MCPO__SECTION__KEY` < command-line flags.
//! Every key is documented in `config/default.toml`; a test keeps the two in sync.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

mod archive;
mod auth;
mod cluster;
mod documents;
mod idempotency;
mod providers;
mod redact;
mod sections;
mod validate;
pub use archive::ArchiveConfig;
pub use auth::*;
pub use cluster::{ClusterConfig, MAX_INSTANCE_ID};
mod mcp;
mod tools;
pub use documents::DocumentsConfig;
pub use idempotency::IdempotencyConfig;
pub use mcp::McpConfig;
pub use providers::*;
pub use redact::redact_url;
pub use sections::*;
pub use tools::{expand_env, tool_allowed, ToolServerConfig, ToolsConfig, MAX_TOOL_ROUNDS};

/// Enables providers of kind `fault`, which exist only to test run supervision.
pub const TEST_FAULTS_ENV: &str = "MCPO_TEST_FAULTS";

/// For tests only, and only with `MCPO_TEST_FAULTS=1`: `MCPO_TEST_COMMIT_DELAY_MS`
/// holds every primary-store commit back this long, widening the window between
/// a change's emission and its commit (crash and fencing tests). Zero otherwise.
pub fn test_commit_delay() -> std::time::Duration {
    let faults = std::env::var_os(TEST_FAULTS_ENV).is_some_and(|v| v == "1");
    let ms = std::env::var("MCPO_TEST_COMMIT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| faults)
        .unwrap_or(0);
    std::time::Duration::from_millis(ms.min(60_000))
}
use serde::{Deserialize, Serialize};

/// The default file, relative to the working directory. It is optional unless
/// named explicitly with `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

/// actix-web refuses request heads over 128 KiB whatever `server.max_header_bytes` says.
pub const MAX_HEADER_BYTES: usize = 128 * 1024;

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
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub mcp: McpConfig,
    pub archive: ArchiveConfig,
    pub idempotency: IdempotencyConfig,
    pub cluster: ClusterConfig,
    /// MCP tool servers the agents may call.
    pub tools: ToolsConfig,
    pub documents: DocumentsConfig,
    /// Named LLM providers; `execution.default_provider` names one of them.
    pub providers: BTreeMap<String, ProviderConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let mut providers = BTreeMap::new();
        providers.insert(
            "simulated".to_string(),
            ProviderConfig::Simulated {
                latency_ms: default_sim_latency(),
                models: default_sim_models(),
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
            auth: AuthConfig::default(),
            metrics: MetricsConfig::default(),
            mcp: McpConfig::default(),
            archive: ArchiveConfig::default(),
            idempotency: IdempotencyConfig::default(),
            cluster: ClusterConfig::default(),
            tools: ToolsConfig::default(),
            documents: DocumentsConfig::default(),
            providers,
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
        let mut config: Config = fig.extract().map_err(|e| ConfigError(describe(e)))?;
        config.auth.load_keys_file()?;
        config.validate()?;
        Ok(config)
    }

    /// How long a sync create/cancel waits for the primary store.
    pub fn ack_timeout(&self) -> Duration {
        match self.postgres.url {
            Some(_) => self.postgres.ack_timeout,
            None => self.storage.ack_timeout,
        }
    }

    /// Problems that do not stop the server but will refuse some work.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .providers
            .iter()
            .filter_map(|(name, p)| match p {
                ProviderConfig::Openai(o) if std::env::var_os(&o.api_key_env).is_none() => Some(format!(
                    "providers.{name}.api_key_env: environment variable {} is not set; workflows using provider '{name}' are refused with 422 provider_unavailable",
                    o.api_key_env
                )),
                _ => None,
            })
            .collect();
        out.extend(self.tools.warnings());
        out
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        // API keys are read from the environment variables the config names; the
        // only secrets in the config are database passwords in URLs.
        let mut c = self.clone();
        c.redis.url = c.redis.url.as_deref().map(redact_url);
        c.postgres.url = c.postgres.url.as_deref().map(redact_url);
        // Tool servers' headers and env may hold tokens written in literally;
        // `${VAR}` references name a variable and are shown.
        for s in c.tools.servers.values_mut() {
            for v in s.headers.values_mut().chain(s.env.values_mut()) {
                if !v.contains("${") {
                    *v = "[redacted]".into();
                }
            }
        }
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
mod tests;

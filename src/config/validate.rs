//! The checks types alone cannot express: every message names the key.

use std::net::ToSocketAddrs;
use std::time::Duration;

use super::{
    redact_url, Compression, Config, ConfigError, ProviderConfig, MAX_HEADER_BYTES, TEST_FAULTS_ENV,
};

impl Config {
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
        self.validate_bounds()?;
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
        if self.mcp.max_sessions == 0 {
            return bad("mcp.max_sessions", "must be at least 1".into());
        }
        if self.mcp.session_idle_timeout.is_zero() {
            return bad("mcp.session_idle_timeout", "must be positive".into());
        }
        if self.webhooks.attempt_timeout.is_zero() {
            return bad("webhooks.attempt_timeout", "must be positive".into());
        }
        if self.webhooks.dns_timeout.is_zero() {
            return bad("webhooks.dns_timeout", "must be positive".into());
        }
        for (key, n) in [
            ("limits.max_sse_streams", self.limits.max_sse_streams),
            (
                "limits.max_sse_streams_per_workflow",
                self.limits.max_sse_streams_per_workflow,
            ),
            ("webhooks.max_pending", self.webhooks.max_pending),
            (
                "webhooks.max_subscriptions",
                self.webhooks.max_subscriptions,
            ),
            (
                "webhooks.max_subscriptions_per_workflow",
                self.webhooks.max_subscriptions_per_workflow,
            ),
        ] {
            if n == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if !(self.execution.default_budget_usd >= 0.0
            && self.execution.default_budget_usd.is_finite())
        {
            return bad(
                "execution.default_budget_usd",
                "must be 0 (unlimited) or positive".into(),
            );
        }
        self.validate_providers()?;
        if self.idempotency.ttl < Duration::from_secs(1) {
            return bad("idempotency.ttl", "must be at least 1s".into());
        }
        if self.idempotency.max_cached == 0 {
            return bad("idempotency.max_cached", "must be at least 1".into());
        }
        self.documents.validate()?;
        self.validate_redis()?;
        self.auth.validate(&self.server.bind)?;
        for (i, origin) in self.server.cors_allowed_origins.iter().enumerate() {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                return bad(
                    &format!("server.cors_allowed_origins[{i}]"),
                    format!("'{origin}' is not an origin like https://example.com"),
                );
            }
        }
        self.archive.validate()?;
        self.cluster.validate()?;
        self.tools.validate()?;
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

    /// Each provider: `fault` only under tests; an OpenAI-compatible one's URL,
    /// model, key variable, prices, rates and timeout.
    fn validate_providers(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| Err(ConfigError(format!("{key}: {reason}")));
        for (name, p) in &self.providers {
            if matches!(p, ProviderConfig::Fault(_))
                && std::env::var_os(TEST_FAULTS_ENV).is_none_or(|v| v != "1")
            {
                return bad(
                    &format!("providers.{name}.kind"),
                    format!("kind \"fault\" exists only for tests (set {TEST_FAULTS_ENV}=1)"),
                );
            }
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
        Ok(())
    }

    /// The limits on what clients may send or hold: each must itself be bounded.
    fn validate_bounds(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| Err(ConfigError(format!("{key}: {reason}")));
        let (s, l) = (&self.server, &self.limits);
        if !(Duration::from_millis(100)..=Duration::from_secs(3600))
            .contains(&s.client_request_timeout)
        {
            return bad(
                "server.client_request_timeout",
                "must be between 100ms and 1h".into(),
            );
        }
        // actix-web itself refuses request heads over 128 KiB.
        if !(1024..=MAX_HEADER_BYTES).contains(&s.max_header_bytes) {
            return bad(
                "server.max_header_bytes",
                format!("must be between 1024 and {MAX_HEADER_BYTES}"),
            );
        }
        if s.keep_alive > Duration::from_secs(3600) {
            return bad("server.keep_alive", "must be at most 1h".into());
        }
        if s.max_connections == 0 {
            return bad("server.max_connections", "must be at least 1".into());
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&l.max_call_timeout) {
            return bad(
                "limits.max_call_timeout",
                "must be between 1s and 1day".into(),
            );
        }
        if !(l.max_budget_usd.is_finite() && l.max_budget_usd > 0.0) {
            return bad("limits.max_budget_usd", "must be a positive number".into());
        }
        if l.max_tokens_total == 0 {
            return bad("limits.max_tokens_total", "must be at least 1".into());
        }
        if self.execution.default_budget_usd > l.max_budget_usd {
            return bad(
                "execution.default_budget_usd",
                format!(
                    "must not exceed limits.max_budget_usd ({})",
                    l.max_budget_usd
                ),
            );
        }
        if self.execution.default_max_tokens_total > l.max_tokens_total {
            return bad(
                "execution.default_max_tokens_total",
                format!(
                    "must not exceed limits.max_tokens_total ({})",
                    l.max_tokens_total
                ),
            );
        }
        for (name, p) in &self.providers {
            if p.allowed_models().iter().any(|m| m.trim().is_empty()) {
                return bad(
                    &format!("providers.{name}.models"),
                    "must not contain an empty name".into(),
                );
            }
        }
        Ok(())
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
}

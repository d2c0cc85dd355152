//! `[providers.<name>]`: the LLM providers workflows may use (simulated, any
//! OpenAI-compatible endpoint, and the test-only fault kind), with their defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sections::string_or_list;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProviderConfig {
    /// Offline provider: deterministic text after a fixed latency, labelled simulated.
    Simulated {
        #[serde(default = "default_sim_latency")]
        latency_ms: u64,
        /// Model names requests may ask for; default `["simulated"]`.
        #[serde(default = "default_sim_models", deserialize_with = "string_or_list")]
        models: Vec<String>,
    },
    /// Any OpenAI-compatible `/v1/chat/completions` endpoint.
    Openai(OpenAiConfig),
    /// For tests only: answers like the simulator, then injects a fault. Refused
    /// unless the process runs with `MCPO_TEST_FAULTS=1`.
    Fault(FaultConfig),
}

/// A fault injected into runs, to test supervision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    pub fault: FaultKind,
    /// Calls answered normally before the fault.
    #[serde(default)]
    pub after_calls: u32,
    #[serde(default)]
    pub latency_ms: u64,
    /// As for `simulated`.
    #[serde(default)]
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The call panics.
    Panic,
    /// The call stops the executor thread it runs on, then never returns.
    StopExecutor,
}

pub(super) fn default_sim_latency() -> u64 {
    50
}

pub(super) fn default_sim_models() -> Vec<String> {
    vec![SIMULATED_MODEL.into()]
}

/// The model name the simulated provider answers with when none is asked.
pub const SIMULATED_MODEL: &str = "simulated";

/// In `providers.<name>.models`: any model name is accepted (and becomes a metric
/// label, so the number of series is then up to the clients).
pub const ANY_MODEL: &str = "*";

impl ProviderConfig {
    /// The model a call uses when the request names none.
    pub fn default_model(&self) -> &str {
        match self {
            ProviderConfig::Simulated { .. } | ProviderConfig::Fault(_) => SIMULATED_MODEL,
            ProviderConfig::Openai(o) => &o.model,
        }
    }

    /// The models requests may ask for: `models`, else the provider's own model.
    pub fn allowed_models(&self) -> Vec<&str> {
        let listed = match self {
            ProviderConfig::Simulated { models, .. } => models,
            ProviderConfig::Fault(f) => &f.models,
            ProviderConfig::Openai(o) => &o.models,
        };
        if listed.is_empty() {
            vec![self.default_model()]
        } else {
            listed.iter().map(String::as_str).collect()
        }
    }

    pub fn accepts_model(&self, model: &str) -> bool {
        let allowed = self.allowed_models();
        allowed.contains(&ANY_MODEL) || allowed.contains(&model)
    }
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
    /// Model names requests may ask for (`config.primary_model`, `config.agent_model`);
    /// empty = `model` only; `["*"]` = any name (each becomes a metric label).
    #[serde(
        default,
        deserialize_with = "string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub models: Vec<String>,
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

//! The interface every LLM provider implements: the offline simulator and any
//! OpenAI-compatible HTTP endpoint. Patterns only see `Provider`.

pub mod fault;
pub mod instrumented;
pub mod openai;
pub mod quota;
pub mod simulated;
mod timer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::ProviderConfig;
use crate::domain::TokenUsage;

/// What a call is for; the pattern picks the model per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRole {
    Decompose,
    Agent,
    Synthesis,
}

impl CallRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CallRole::Decompose => "decompose",
            CallRole::Agent => "agent",
            CallRole::Synthesis => "synthesis",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub role: CallRole,
    /// Overrides the provider's default model when set.
    pub model: Option<String>,
    pub system: String,
    pub prompt: String,
    /// For decomposition: how many items the answer should list.
    pub expected_items: Option<u32>,
    /// Per-attempt timeout; the provider's own when absent.
    pub timeout: Option<Duration>,
    /// The call's step key (`wf_…/agent/3`), sent as the `Idempotency-Key` header:
    /// gateways that honour it answer a repeated call without running it again.
    pub step_key: Option<String>,
    /// Function definitions the model may call (OpenAI `tools`); empty = none.
    pub tools: Vec<serde_json::Value>,
    /// Messages after the system and user ones: the tool loop's earlier
    /// assistant turns and tool results, in order.
    pub history: Vec<serde_json::Value>,
}

impl ChatRequest {
    /// A plain call: one system and one user message, no tools.
    pub fn new(role: CallRole, system: String, prompt: String) -> ChatRequest {
        ChatRequest {
            role,
            model: None,
            system,
            prompt,
            expected_items: None,
            timeout: None,
            step_key: None,
            tools: Vec::new(),
            history: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub text: String,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost_usd: f64,
    /// Attempts beyond the first.
    pub retries: u32,
    /// Time spent waiting for the provider's quota.
    pub queued: Duration,
    /// Tools the model asked for (`tool_calls`); `text` may then be empty.
    pub tool_calls: Vec<crate::domain::ToolRequest>,
}

/// Why a provider cannot take work now (checked when a workflow is created).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    #[error("provider '{provider}' has no API key: environment variable {env} is not set")]
    NoApiKey { provider: String, env: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("provider timed out after {0:?}")]
    Timeout(Duration),
    #[error("provider answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("provider answer is malformed: {0}")]
    Malformed(String),
    #[error("cannot reach provider: {0}")]
    Connect(String),
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("{last} (gave up after {attempts} attempts)")]
    Exhausted {
        attempts: u32,
        last: Box<ProviderError>,
    },
}

impl ProviderError {
    /// Worth another attempt: rate limits, server errors, timeouts, broken answers.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Timeout(_) | ProviderError::Malformed(_) | ProviderError::Connect(_) => {
                true
            }
            ProviderError::Http { status, .. } => {
                *status == 429 || *status >= 500 || *status == 408
            }
            ProviderError::Unavailable(_) | ProviderError::Exhausted { .. } => false,
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &str;
    /// Results of a simulated provider are labelled as such everywhere.
    fn simulated(&self) -> bool;
    /// Whether the provider can take work now (e.g. its API key is set); the reason
    /// when not. Checked when a workflow is created.
    fn check_available(&self) -> Result<(), Unavailable> {
        Ok(())
    }
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError>;
}

pub type Providers = HashMap<String, Arc<dyn Provider>>;

/// Builds every configured provider.
pub fn build(configs: &std::collections::BTreeMap<String, ProviderConfig>) -> Providers {
    configs
        .iter()
        .map(|(name, cfg)| {
            let (p, model): (Arc<dyn Provider>, &str) = match cfg {
                ProviderConfig::Simulated { latency_ms, .. } => (
                    Arc::new(simulated::SimulatedProvider::new(
                        name,
                        Duration::from_millis(*latency_ms),
                    )),
                    "simulated",
                ),
                ProviderConfig::Fault(c) => (
                    Arc::new(fault::FaultProvider::new(name, c.clone())),
                    "simulated",
                ),
                ProviderConfig::Openai(c) => (
                    Arc::new(openai::OpenAiProvider::new(name, c.clone())),
                    c.model.as_str(),
                ),
            };
            // Every call is counted the same way, whatever the provider.
            (name.clone(), instrumented::Instrumented::wrap(p, model))
        })
        .collect()
}

/// A rough token count for quota reservations before the provider reports usage.
pub fn estimate_tokens(s: &str) -> u64 {
    (s.len() as u64).div_ceil(4)
}

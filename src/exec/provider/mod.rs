//! The interface every LLM provider implements. An OpenAI-compatible HTTP provider
//! plugs in here next to the offline simulator; patterns only see `Provider`.

pub mod simulated;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::ProviderConfig;
use crate::domain::TokenUsage;

/// What a call is for; providers may pick a model per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRole {
    Decompose,
    Agent,
    Synthesis,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub role: CallRole,
    /// Overrides the provider's model when set.
    pub model: Option<String>,
    pub system: String,
    pub prompt: String,
    /// For decomposition: how many items the answer should list.
    pub expected_items: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub text: String,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost_usd: f64,
    pub retries: u32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("provider timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("provider answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("provider answer is malformed: {0}")]
    Malformed(String),
    #[error("cannot reach provider: {0}")]
    Connect(String),
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &str;
    /// Results of a simulated provider are labelled as such everywhere.
    fn simulated(&self) -> bool;
    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError>;
}

pub type Providers = HashMap<String, Arc<dyn Provider>>;

/// Builds every configured provider.
pub fn build(configs: &std::collections::BTreeMap<String, ProviderConfig>) -> Providers {
    configs
        .iter()
        .map(|(name, cfg)| {
            let p: Arc<dyn Provider> = match cfg {
                ProviderConfig::Simulated { latency_ms } => {
                    Arc::new(simulated::SimulatedProvider::new(
                        name,
                        std::time::Duration::from_millis(*latency_ms),
                    ))
                }
            };
            (name.clone(), p)
        })
        .collect()
}

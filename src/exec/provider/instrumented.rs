//! A wrapper every configured provider is built inside: it counts each call,
//! its tokens, cost and latency, and the time it queued for the provider's quota
//! (`llm_*` metrics, named in `crate::metric_names`). Patterns never see the difference.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use metrics::{counter, histogram, Label};

use super::{ChatRequest, ChatResponse, Provider, ProviderError};
use crate::metric_names::{LLM_DURATION, LLM_QUEUE_WAIT, LLM_REQUESTS, LLM_TOKENS};

pub struct Instrumented {
    inner: Arc<dyn Provider>,
    /// The model a call uses when the request names none.
    default_model: String,
}

impl Instrumented {
    pub fn wrap(inner: Arc<dyn Provider>, default_model: &str) -> Arc<dyn Provider> {
        Arc::new(Instrumented {
            inner,
            default_model: default_model.to_string(),
        })
    }
}

#[async_trait]
impl Provider for Instrumented {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn simulated(&self) -> bool {
        self.inner.simulated()
    }

    fn check_available(&self) -> Result<(), super::Unavailable> {
        self.inner.check_available()
    }

    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError> {
        let provider = self.inner.name().to_string();
        // The label is the model asked for (admission checked it against
        // `providers.<name>.models`), never the name the provider answers with.
        let model = req
            .model
            .clone()
            .unwrap_or_else(|| self.default_model.clone());
        let t0 = Instant::now();
        let res = self.inner.chat(req).await;
        let elapsed = t0.elapsed();
        let pm = [("provider", provider.clone()), ("model", model)];
        match &res {
            Ok(r) => {
                counter!(LLM_REQUESTS, with(&pm, ("outcome", "ok"))).increment(1);
                counter!(LLM_TOKENS, with(&pm, ("kind", "input"))).increment(r.tokens.input);
                counter!(LLM_TOKENS, with(&pm, ("kind", "output"))).increment(r.tokens.output);
                histogram!(LLM_DURATION, &pm)
                    .record(elapsed.saturating_sub(r.queued).as_secs_f64());
                histogram!(LLM_QUEUE_WAIT, "provider" => provider).record(r.queued.as_secs_f64());
            }
            Err(_) => {
                counter!(LLM_REQUESTS, with(&pm, ("outcome", "error"))).increment(1);
                histogram!(LLM_DURATION, &pm).record(elapsed.as_secs_f64());
            }
        }
        res
    }
}

/// Provider and model labels plus one more.
fn with(pm: &[(&'static str, String); 2], extra: (&'static str, &'static str)) -> Vec<Label> {
    let mut v: Vec<Label> = pm.iter().map(Label::from).collect();
    v.push(Label::new(extra.0, extra.1));
    v
}

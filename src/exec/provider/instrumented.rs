//! A wrapper every configured provider is built inside: it counts each call,
//! its tokens, cost and latency, and the time it queued for the provider's quota
//! (`llm_*` metrics, named in `crate::metric_names`). Patterns never see the difference.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use metrics::{counter, histogram, Counter, Histogram, Label};

use super::{ChatRequest, ChatResponse, Provider, ProviderError};
use crate::metric_names::{LLM_DURATION, LLM_QUEUE_WAIT, LLM_REQUESTS, LLM_TOKENS};

pub struct Instrumented {
    inner: Arc<dyn Provider>,
    /// The model a call uses when the request names none.
    default_model: String,
    /// The metric handles of each model called so far: looking a labelled
    /// metric up builds and hashes its key on every call (a few percent of the
    /// server's CPU under load). Models are the configured ones (admission
    /// checks them), so the map stays small.
    handles: RwLock<HashMap<String, Arc<Handles>>>,
}

struct Handles {
    ok: Counter,
    error: Counter,
    tokens_in: Counter,
    tokens_out: Counter,
    duration: Histogram,
    queue_wait: Histogram,
}

impl Handles {
    fn new(provider: &str, model: &str) -> Handles {
        let pm = [
            ("provider", provider.to_string()),
            ("model", model.to_string()),
        ];
        Handles {
            ok: counter!(LLM_REQUESTS, with(&pm, ("outcome", "ok"))),
            error: counter!(LLM_REQUESTS, with(&pm, ("outcome", "error"))),
            tokens_in: counter!(LLM_TOKENS, with(&pm, ("kind", "input"))),
            tokens_out: counter!(LLM_TOKENS, with(&pm, ("kind", "output"))),
            duration: histogram!(LLM_DURATION, &pm),
            queue_wait: histogram!(LLM_QUEUE_WAIT, "provider" => provider.to_string()),
        }
    }
}

impl Instrumented {
    pub fn wrap(inner: Arc<dyn Provider>, default_model: &str) -> Arc<dyn Provider> {
        Arc::new(Instrumented {
            inner,
            default_model: default_model.to_string(),
            handles: RwLock::new(HashMap::new()),
        })
    }

    fn handles(&self, model: &str) -> Arc<Handles> {
        if let Some(h) = self.handles.read().ok().and_then(|m| m.get(model).cloned()) {
            return h;
        }
        let h = Arc::new(Handles::new(self.inner.name(), model));
        if let Ok(mut m) = self.handles.write() {
            m.insert(model.to_string(), Arc::clone(&h));
        }
        h
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
        // The label is the model asked for (admission checked it against
        // `providers.<name>.models`), never the name the provider answers with.
        let m = self.handles(req.model.as_deref().unwrap_or(&self.default_model));
        let t0 = Instant::now();
        let res = self.inner.chat(req).await;
        let elapsed = t0.elapsed();
        match &res {
            Ok(r) => {
                m.ok.increment(1);
                m.tokens_in.increment(r.tokens.input);
                m.tokens_out.increment(r.tokens.output);
                m.duration
                    .record(elapsed.saturating_sub(r.queued).as_secs_f64());
                m.queue_wait.record(r.queued.as_secs_f64());
            }
            Err(_) => {
                m.error.increment(1);
                m.duration.record(elapsed.as_secs_f64());
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

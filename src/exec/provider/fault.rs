//! For tests only (`kind = "fault"`, refused unless `MCPO_TEST_FAULTS=1`): answers
//! like the simulator for `after_calls` calls, then injects a fault into the run
//! that makes the call, so tests can show a run that panics or loses its
//! executor thread still ends its workflow.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::simulated::SimulatedProvider;
use super::{ChatRequest, ChatResponse, Provider, ProviderError};
use crate::config::{FaultConfig, FaultKind};

pub struct FaultProvider {
    inner: SimulatedProvider,
    cfg: FaultConfig,
    calls: AtomicU32,
}

impl FaultProvider {
    pub fn new(name: &str, cfg: FaultConfig) -> FaultProvider {
        FaultProvider {
            inner: SimulatedProvider::new(name, Duration::from_millis(cfg.latency_ms)),
            cfg,
            calls: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl Provider for FaultProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn simulated(&self) -> bool {
        true
    }

    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError> {
        if self.calls.fetch_add(1, Ordering::Relaxed) < self.cfg.after_calls {
            return self.inner.chat(req).await;
        }
        match self.cfg.fault {
            FaultKind::Panic => panic!("injected test fault (provider kind \"fault\")"),
            FaultKind::StopExecutor => {
                actix::Arbiter::current().stop();
                std::future::pending().await
            }
        }
    }
}

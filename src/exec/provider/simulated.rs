//! The offline provider: deterministic text (same prompt, same answer) after a fixed
//! latency, zero cost, always labelled simulated. For demos, tests and load runs.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use async_trait::async_trait;

use super::{CallRole, ChatRequest, ChatResponse, Provider, ProviderError};
use crate::domain::TokenUsage;

pub struct SimulatedProvider {
    name: String,
    latency: Duration,
}

const ANGLES: [&str; 8] = [
    "background and definitions",
    "current state of the evidence",
    "key actors and incentives",
    "quantitative indicators",
    "risks and open problems",
    "historical context",
    "practical implications",
    "competing viewpoints",
];

fn digest(s: &str) -> u64 {
    // DefaultHasher::new() uses fixed keys: stable within a build.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn approx_tokens(s: &str) -> u64 {
    (s.split_whitespace().count() as u64 * 4).div_ceil(3)
}

impl SimulatedProvider {
    pub fn new(name: &str, latency: Duration) -> SimulatedProvider {
        SimulatedProvider {
            name: name.to_string(),
            latency,
        }
    }

    fn answer(req: &ChatRequest) -> String {
        let h = digest(&req.prompt);
        let subject = req.prompt.lines().last().unwrap_or("").trim();
        match req.role {
            CallRole::Decompose => {
                let n = req.expected_items.unwrap_or(3) as usize;
                let items: Vec<String> = (0..n)
                    .map(|i| {
                        let angle = ANGLES[(h as usize + i) % ANGLES.len()];
                        format!("Investigate {angle} of: {subject} (part {})", i + 1)
                    })
                    .collect();
                serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
            }
            CallRole::Agent => format!(
                "[simulated] Findings on \"{subject}\".\n\n- Observation {a}: the topic has {b} notable aspects.\n- Observation {c}: sources agree on the main points.\n- Confidence: {d}%.",
                a = h % 97,
                b = 2 + h % 5,
                c = (h >> 8) % 89,
                d = 60 + (h >> 16) % 40
            ),
            CallRole::Synthesis => format!(
                "[simulated] Synthesis ({} characters of input, digest {:08x}): the findings converge on a consistent picture; differences are noted where sources disagree.",
                req.prompt.len(),
                h as u32
            ),
        }
    }
}

#[async_trait]
impl Provider for SimulatedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn simulated(&self) -> bool {
        true
    }

    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError> {
        if !self.latency.is_zero() {
            super::timer::sleep_precisely(self.latency).await;
        }
        let text = Self::answer(&req);
        let tokens = TokenUsage::new(
            approx_tokens(&req.system) + approx_tokens(&req.prompt),
            approx_tokens(&text),
        );
        Ok(ChatResponse {
            text,
            model: req.model.unwrap_or_else(|| "simulated".into()),
            tokens,
            cost_usd: 0.0,
            retries: 0,
            queued: Duration::ZERO,
            tool_calls: Vec::new(),
        })
    }
}

//! Any OpenAI-compatible `/v1/chat/completions` endpoint. Every attempt has a
//! timeout; 429 (honouring Retry-After), 5xx, timeouts, connection errors and
//! malformed answers are retried with capped, jittered exponential backoff. Cost is
//! the reported usage times the configured prices. The API key is read from the
//! environment variable the config names, and is never logged or echoed: provider
//! error text is scrubbed of it.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::quota::Quota;
use super::{estimate_tokens, ChatRequest, ChatResponse, Provider, ProviderError};
use crate::config::OpenAiConfig;
use crate::domain::TokenUsage;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const MAX_ERROR_TEXT: usize = 300;

pub struct OpenAiProvider {
    name: String,
    cfg: OpenAiConfig,
    url: String,
    api_key: Option<String>,
    client: reqwest::Client,
    quota: Option<Quota>,
}

impl OpenAiProvider {
    pub fn new(name: &str, cfg: OpenAiConfig) -> OpenAiProvider {
        let api_key = std::env::var(&cfg.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let quota = Quota::new(cfg.requests_per_minute, cfg.tokens_per_minute);
        OpenAiProvider {
            name: name.to_string(),
            cfg,
            url,
            api_key,
            client,
            quota,
        }
    }

    /// Provider text may echo what it was sent; never let the key through.
    fn scrub(&self, text: &str) -> String {
        let mut t: String = text.chars().take(MAX_ERROR_TEXT).collect();
        if let Some(k) = &self.api_key {
            t = t.replace(k.as_str(), "[redacted]");
        }
        t
    }

    fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .cfg
            .retry_backoff
            .saturating_mul(1 << retry.min(16))
            .min(MAX_BACKOFF);
        // Up to +50% jitter so that retries of many agents do not align.
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        base + base.mul_f64((r % 1000) as f64 / 2000.0)
    }

    async fn attempt(&self, key: &str, body: &Value, timeout: Duration) -> Result<Answer, Failure> {
        let send = async {
            let resp = self
                .client
                .post(&self.url)
                .bearer_auth(key)
                .json(body)
                .send()
                .await
                .map_err(|e| Failure::now(ProviderError::Connect(self.scrub(&without_url(&e)))))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s).min(MAX_BACKOFF));
            let text = resp
                .text()
                .await
                .map_err(|e| Failure::now(ProviderError::Connect(self.scrub(&without_url(&e)))))?;
            if !(200..300).contains(&status) {
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                return Err(Failure {
                    error: ProviderError::Http {
                        status,
                        message: self.scrub(&message),
                    },
                    retry_after,
                });
            }
            parse_answer(&text).map_err(|m| Failure::now(ProviderError::Malformed(self.scrub(&m))))
        };
        match tokio::time::timeout(timeout, send).await {
            Ok(r) => r,
            Err(_) => Err(Failure::now(ProviderError::Timeout(timeout))),
        }
    }
}

struct Answer {
    text: String,
    model: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

struct Failure {
    error: ProviderError,
    retry_after: Option<Duration>,
}

impl Failure {
    fn now(error: ProviderError) -> Failure {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// reqwest errors print the URL; ours carries no secret, but keep messages short.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "broken response body"
    } else {
        "request failed"
    };
    format!("{kind}: {}", s.trim())
}

fn parse_answer(text: &str) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let choice = v["choices"]
        .as_array()
        .and_then(|c| c.first())
        .ok_or("no choices in the answer")?;
    let content = choice["message"]["content"]
        .as_str()
        .ok_or("choices[0].message.content is missing")?;
    if content.trim().is_empty() {
        return Err("choices[0].message.content is empty".into());
    }
    let usage = &v["usage"];
    Ok(Answer {
        text: content.to_string(),
        model: v["model"].as_str().map(str::to_string),
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
    })
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn simulated(&self) -> bool {
        false
    }

    fn check_available(&self) -> Result<(), String> {
        match self.api_key {
            Some(_) => Ok(()),
            None => Err(format!(
                "provider '{}' has no API key: environment variable {} is not set",
                self.name, self.cfg.api_key_env
            )),
        }
    }

    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError> {
        let key = self.api_key.as_deref().ok_or_else(|| {
            ProviderError::Unavailable(self.check_available().err().unwrap_or_default())
        })?;
        let model = req.model.clone().unwrap_or_else(|| self.cfg.model.clone());
        let mut body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.prompt},
            ],
        });
        if let Some(m) = self.cfg.max_output_tokens {
            body["max_tokens"] = json!(m);
        }
        let timeout = req.timeout.unwrap_or(self.cfg.timeout);
        let estimate = estimate_tokens(&req.system)
            + estimate_tokens(&req.prompt)
            + u64::from(self.cfg.max_output_tokens.unwrap_or(500));
        let mut queued = Duration::ZERO;
        let mut retries = 0;
        loop {
            if let Some(q) = &self.quota {
                let wait = q.reserve(estimate);
                if !wait.is_zero() {
                    let t = Instant::now();
                    tokio::time::sleep(wait).await;
                    queued += t.elapsed();
                }
            }
            match self.attempt(key, &body, timeout).await {
                Ok(a) => {
                    if let Some(q) = &self.quota {
                        q.settle(estimate, a.prompt_tokens + a.completion_tokens);
                    }
                    let cost = a.prompt_tokens as f64 * self.cfg.input_price_per_mtok / 1e6
                        + a.completion_tokens as f64 * self.cfg.output_price_per_mtok / 1e6;
                    return Ok(ChatResponse {
                        text: a.text,
                        model: a.model.unwrap_or(model),
                        tokens: TokenUsage::new(a.prompt_tokens, a.completion_tokens),
                        cost_usd: cost,
                        retries,
                        queued,
                    });
                }
                Err(f) if f.error.retryable() && retries < self.cfg.max_retries => {
                    let wait = f.retry_after.unwrap_or_else(|| self.backoff(retries));
                    tracing::warn!(provider = %self.name, %model, retry = retries + 1, wait_ms = wait.as_millis() as u64,
                        error = %f.error, "provider call failed; retrying");
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(f) if retries == 0 => return Err(f.error),
                Err(f) => {
                    return Err(ProviderError::Exhausted {
                        attempts: retries + 1,
                        last: Box::new(f.error),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_chat_completion() {
        let a = parse_answer(
            r#"{"model": "m-1", "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3}}"#,
        )
        .unwrap();
        assert_eq!(
            (a.text.as_str(), a.prompt_tokens, a.completion_tokens),
            ("hi", 12, 3)
        );
        assert_eq!(a.model.as_deref(), Some("m-1"));
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            "not json",
            r#"{"choices": []}"#,
            r#"{"choices": [{"message": {}}]}"#,
            r#"{"choices": [{"message": {"content": "  "}}]}"#,
        ] {
            assert!(parse_answer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_classes() {
        let http = |status| ProviderError::Http {
            status,
            message: String::new(),
        };
        assert!(http(429).retryable());
        assert!(http(503).retryable());
        assert!(!http(400).retryable());
        assert!(!http(401).retryable());
        assert!(ProviderError::Timeout(Duration::from_secs(1)).retryable());
        assert!(ProviderError::Malformed(String::new()).retryable());
    }
}

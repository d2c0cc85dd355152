//! Any OpenAI-compatible `/v1/chat/completions` endpoint. Every attempt has a
//! timeout; 429 (honouring Retry-After, clamped to the call timeout), 5xx,
//! timeouts, connection errors and malformed answers are retried with capped,
//! jittered exponential backoff (`backon`). Cost is the reported usage times the
//! configured prices. The API key is read from the environment variable the config
//! names, and is never logged or echoed: provider error text is scrubbed of it
//! before it is shortened.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use serde_json::{json, Value};

use super::quota::Quota;
use super::{estimate_tokens, ChatRequest, ChatResponse, Provider, ProviderError};
use crate::config::OpenAiConfig;
use crate::domain::{TokenUsage, ToolRequest};

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

    /// Provider text may echo what it was sent; never let the key through. The key
    /// goes first: shortening first could cut it and leave a prefix behind.
    fn scrub(&self, text: &str) -> String {
        let scrubbed = match &self.api_key {
            Some(k) => text.replace(k.as_str(), "[redacted]"),
            None => text.to_string(),
        };
        scrubbed.chars().take(MAX_ERROR_TEXT).collect()
    }

    /// Doubling from `retry_backoff` up to 30 s, plus up to 100% jitter so that
    /// retries of many agents do not align.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.cfg.retry_backoff)
            .with_max_delay(MAX_BACKOFF)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.cfg.max_retries as usize)
    }

    async fn attempt(
        &self,
        key: &str,
        step_key: Option<&str>,
        body: &Value,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let send =
            async {
                let mut req = self.client.post(&self.url).bearer_auth(key).json(body);
                if let Some(k) = step_key {
                    req = req.header("Idempotency-Key", k);
                }
                let resp = req.send().await.map_err(|e| {
                    Failure::now(ProviderError::Connect(self.scrub(&without_url(&e))))
                })?;
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, chrono::Utc::now()))
                    .map(|d| d.min(timeout).min(MAX_BACKOFF));
                let text = resp.text().await.map_err(|e| {
                    Failure::now(ProviderError::Connect(self.scrub(&without_url(&e))))
                })?;
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
                parse_answer(&text)
                    .map_err(|m| Failure::now(ProviderError::Malformed(self.scrub(&m.to_string()))))
            };
        match tokio::time::timeout(timeout, send).await {
            Ok(r) => r,
            Err(_) => Err(Failure::now(ProviderError::Timeout(timeout))),
        }
    }
}

/// A `Retry-After` value: delay-seconds (fractions accepted) or an HTTP-date.
/// Anything else (negative, not finite, garbage) is no advice at all; a huge value
/// saturates instead of panicking (the caller clamps it).
fn retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is an RFC 2822 date.
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

struct Answer {
    text: String,
    tool_calls: Vec<ToolRequest>,
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

/// What is wrong with an answer that came back 200 (`ProviderError::Malformed`).
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("no choices in the answer")]
    NoChoices,
    #[error("choices[0].message.content is missing")]
    NoContent,
    #[error("choices[0].message.content is empty")]
    EmptyContent,
    #[error("{0} tool calls in one answer (at most {MAX_TOOL_CALLS})")]
    TooManyCalls(usize),
    #[error("tool_calls[{0}].function.name is missing")]
    NoName(usize),
    #[error("tool_calls[{0}].function.arguments is too long")]
    LongArguments(usize),
}

fn parse_answer(text: &str) -> Result<Answer, Malformed> {
    let v: Value = serde_json::from_str(text).map_err(Malformed::NotJson)?;
    let choice = v["choices"]
        .as_array()
        .and_then(|c| c.first())
        .ok_or(Malformed::NoChoices)?;
    let tool_calls = parse_tool_calls(&choice["message"]["tool_calls"])?;
    let content = match choice["message"]["content"].as_str() {
        Some(c) => c,
        None if !tool_calls.is_empty() => "",
        None => return Err(Malformed::NoContent),
    };
    if content.trim().is_empty() && tool_calls.is_empty() {
        return Err(Malformed::EmptyContent);
    }
    let usage = &v["usage"];
    Ok(Answer {
        text: content.to_string(),
        tool_calls,
        model: v["model"].as_str().map(str::to_string),
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
    })
}

/// Tool calls a model can ask for in one turn at most; more is a malformed answer.
const MAX_TOOL_CALLS: usize = 16;
/// The arguments of one tool call at most, in bytes.
const MAX_ARGUMENTS: usize = 64 * 1024;

/// `message.tool_calls`: function calls with an id, a name and JSON arguments text.
fn parse_tool_calls(v: &Value) -> Result<Vec<ToolRequest>, Malformed> {
    let Some(calls) = v.as_array() else {
        return Ok(Vec::new());
    };
    if calls.len() > MAX_TOOL_CALLS {
        return Err(Malformed::TooManyCalls(calls.len()));
    }
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = &c["function"];
            let name = f["name"]
                .as_str()
                .filter(|n| !n.is_empty() && n.len() <= 128)
                .ok_or(Malformed::NoName(i))?;
            let arguments = match &f["arguments"] {
                Value::String(s) => s.clone(),
                Value::Null => "{}".into(),
                other => other.to_string(),
            };
            if arguments.len() > MAX_ARGUMENTS {
                return Err(Malformed::LongArguments(i));
            }
            let id = c["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{i}"));
            Ok(ToolRequest {
                id,
                name: name.to_string(),
                arguments,
            })
        })
        .collect()
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn simulated(&self) -> bool {
        false
    }

    fn check_available(&self) -> Result<(), super::Unavailable> {
        match self.api_key {
            Some(_) => Ok(()),
            None => Err(super::Unavailable::NoApiKey {
                provider: self.name.clone(),
                env: self.cfg.api_key_env.clone(),
            }),
        }
    }

    async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, ProviderError> {
        let key = self.api_key.as_deref().ok_or_else(|| {
            ProviderError::Unavailable(
                self.check_available()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            )
        })?;
        let model = req.model.clone().unwrap_or_else(|| self.cfg.model.clone());
        let mut messages = vec![
            json!({"role": "system", "content": req.system}),
            json!({"role": "user", "content": req.prompt}),
        ];
        messages.extend(req.history.iter().cloned());
        let mut body = json!({
            "model": model,
            "messages": messages,
        });
        if !req.tools.is_empty() {
            body["tools"] = Value::Array(req.tools.clone());
        }
        if let Some(m) = self.cfg.max_output_tokens {
            body["max_tokens"] = json!(m);
        }
        let timeout = req.timeout.unwrap_or(self.cfg.timeout);
        let estimate = estimate_tokens(&req.system)
            + estimate_tokens(&req.prompt)
            + req
                .history
                .iter()
                .map(|m| estimate_tokens(m["content"].as_str().unwrap_or("")))
                .sum::<u64>()
            + u64::from(self.cfg.max_output_tokens.unwrap_or(500));
        // Shared by the attempts (atomics: the future must be Send).
        let queued_ns = AtomicU64::new(0);
        let attempts = AtomicU32::new(0);
        let attempt = || async {
            attempts.fetch_add(1, Relaxed);
            if let Some(q) = &self.quota {
                let waited = q.acquire(estimate).await;
                queued_ns.fetch_add(waited.as_nanos() as u64, Relaxed);
            }
            self.attempt(key, req.step_key.as_deref(), &body, timeout)
                .await
        };
        let outcome = attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(|f: &Failure| f.error.retryable())
            // The provider's own advice wins over our backoff.
            .adjust(|f: &Failure, next| next.map(|d| f.retry_after.unwrap_or(d)))
            .notify(|f: &Failure, wait| {
                tracing::warn!(provider = %self.name, %model, retry = attempts.load(Relaxed), wait_ms = wait.as_millis() as u64,
                    error = %f.error, "provider call failed; retrying");
            })
            .await;
        let retries = attempts.load(Relaxed).saturating_sub(1);
        match outcome {
            Ok(a) => {
                if let Some(q) = &self.quota {
                    q.settle(estimate, a.prompt_tokens + a.completion_tokens);
                }
                let cost = a.prompt_tokens as f64 * self.cfg.input_price_per_mtok / 1e6
                    + a.completion_tokens as f64 * self.cfg.output_price_per_mtok / 1e6;
                Ok(ChatResponse {
                    text: a.text,
                    model: a.model.unwrap_or(model),
                    tokens: TokenUsage::new(a.prompt_tokens, a.completion_tokens),
                    cost_usd: cost,
                    retries,
                    queued: Duration::from_nanos(queued_ns.load(Relaxed)),
                    tool_calls: a.tool_calls,
                })
            }
            Err(f) if retries == 0 => Err(f.error),
            Err(f) => Err(ProviderError::Exhausted {
                attempts: retries + 1,
                last: Box::new(f.error),
            }),
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
    fn parses_tool_calls_without_content() {
        let a = parse_answer(
            r#"{"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "web__fetch", "arguments": "{\"url\": \"http://x\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "kb__read", "arguments": {"path": "a"}}}
            ]}}]}"#,
        )
        .unwrap();
        assert_eq!(a.text, "");
        assert_eq!(a.tool_calls.len(), 2);
        assert_eq!(a.tool_calls[0].name, "web__fetch");
        assert_eq!(a.tool_calls[0].arguments, r#"{"url": "http://x"}"#);
        assert_eq!(a.tool_calls[1].arguments, r#"{"path":"a"}"#);
        assert!(
            parse_answer(r#"{"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}"#)
                .is_err()
        );
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
    fn retry_after_never_panics_and_saturates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(retry_after("2", now), secs(2));
        assert_eq!(retry_after(" 0.5 ", now), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("1e20", now), Some(Duration::MAX));
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("NaN", now), None);
        assert_eq!(retry_after("inf", now), None);
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("", now), None);
        assert_eq!(retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now), secs(30));
        assert_eq!(retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now), secs(0));
        assert_eq!(
            retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).map(|d| d > secs(1 << 30).unwrap()),
            Some(true)
        );
    }

    #[test]
    fn the_key_is_scrubbed_before_the_text_is_shortened() {
        let key = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz";
        std::env::set_var("MCPO_UNIT_SCRUB_KEY", key);
        let p = OpenAiProvider::new(
            "p",
            OpenAiConfig {
                base_url: "http://127.0.0.1:9/v1".into(),
                api_key_env: "MCPO_UNIT_SCRUB_KEY".into(),
                model: "m".into(),
                input_price_per_mtok: 0.0,
                output_price_per_mtok: 0.0,
                timeout: Duration::from_secs(1),
                max_retries: 0,
                retry_backoff: Duration::from_millis(1),
                requests_per_minute: None,
                tokens_per_minute: None,
                max_output_tokens: None,
                models: Vec::new(),
            },
        );
        // The key straddles the length limit.
        let text = format!("{}{key} trailing", "x".repeat(MAX_ERROR_TEXT - 10));
        let out = p.scrub(&text);
        assert!(!out.contains(&key[..10]), "{out}");
        assert!(out.chars().count() <= MAX_ERROR_TEXT);
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

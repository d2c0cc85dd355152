//! The dispatcher's one HTTP client and a single delivery attempt. The client is
//! shared by every delivery, so connections to a receiver are pooled and reused;
//! it resolves names through the SSRF guard (each new connection goes only to
//! checked addresses), ignores proxy environment variables (a proxy would connect
//! on our behalf to whatever the name resolves to there) and follows no redirects.

use std::error::Error as _;
use std::time::Duration;

use crate::config::WebhooksConfig;
use crate::events::address_policy::{BadUrl, Guard, Refused};

/// Why an attempt has no status code: the text recorded on the attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
    #[error("the subscription was removed; nothing to sign with")]
    NoSecret,
    #[error(transparent)]
    Url(#[from] BadUrl),
    #[error("{0}")]
    Encode(String),
    #[error(transparent)]
    Refused(Refused),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("connection failed")]
    Connect,
    #[error("request failed: {0}")]
    Request(String),
}

/// Idle pooled connections to a receiver are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);

pub fn build(guard: &Guard, cfg: &WebhooksConfig) -> Result<reqwest::Client, AttemptError> {
    reqwest::Client::builder()
        .dns_resolver(guard.clone())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.attempt_timeout)
        .pool_max_idle_per_host(cfg.max_per_host)
        .pool_idle_timeout(POOL_IDLE)
        .user_agent(concat!("mcp-orchestrator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AttemptError::Client(e.to_string()))
}

/// What one attempt is about.
pub struct Request<'a> {
    pub url: &'a str,
    pub payload: &'a serde_json::Value,
    pub secret: &'a str,
    pub event: &'a str,
    pub task: &'a str,
    pub delivery_id: &'a str,
}

/// Sends one signed attempt; the receiver's status code, or why there is none.
pub async fn send(
    client: &reqwest::Client,
    guard: &Guard,
    req: Request<'_>,
    timeout: Duration,
) -> Result<u16, AttemptError> {
    // IP literals never reach the resolver: the guard checks them here, at every
    // attempt, as it checks names at every new connection.
    let url = guard.parse(req.url)?;
    let body = serde_json::to_vec(req.payload).map_err(|e| AttemptError::Encode(e.to_string()))?;
    let ts = chrono::Utc::now().timestamp().to_string();
    let signature = super::sign(req.secret, &ts, &body);
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-MCP-Event", req.event)
        .header("X-MCP-Task-ID", req.task)
        .header("X-MCP-Timestamp", &ts)
        .header("X-MCP-Signature", signature)
        .header("X-MCP-Delivery", req.delivery_id)
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e, timeout))?;
    Ok(resp.status().as_u16())
}

/// A short reason: the guard's refusal when it refused the connection, else the
/// kind of failure (reqwest's text would repeat the URL).
fn describe(e: &reqwest::Error, timeout: Duration) -> AttemptError {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return AttemptError::Refused(r.clone());
        }
        cause = c.source();
    }
    if e.is_timeout() {
        AttemptError::TimedOut(timeout)
    } else if e.is_connect() {
        AttemptError::Connect
    } else {
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "the URL");
        }
        AttemptError::Request(text)
    }
}

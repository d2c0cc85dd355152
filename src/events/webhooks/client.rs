//! The dispatcher's one HTTP client and a single delivery attempt. The client is
//! shared by every delivery, so connections to a receiver are pooled and reused;
//! it resolves names through the SSRF guard (each new connection goes only to
//! checked addresses), ignores proxy environment variables (a proxy would connect
//! on our behalf to whatever the name resolves to there) and follows no redirects.

use std::error::Error as _;
use std::time::Duration;

use crate::config::WebhooksConfig;
use crate::events::address_policy::{Guard, Refused};

/// Idle pooled connections to a receiver are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);

pub fn build(guard: &Guard, cfg: &WebhooksConfig) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .dns_resolver(guard.clone())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.attempt_timeout)
        .pool_max_idle_per_host(cfg.max_per_host)
        .pool_idle_timeout(POOL_IDLE)
        .user_agent(concat!("mcp-orchestrator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))
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
) -> Result<u16, String> {
    // IP literals never reach the resolver: the guard checks them here, at every
    // attempt, as it checks names at every new connection.
    let url = guard.parse(req.url)?;
    let body = serde_json::to_vec(req.payload).map_err(|e| e.to_string())?;
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
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return r.0.clone();
        }
        cause = c.source();
    }
    if e.is_timeout() {
        format!("timed out after {timeout:?}")
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "the URL");
        }
        format!("request failed: {text}")
    }
}

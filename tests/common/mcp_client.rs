//! An MCP client over raw HTTP for the tests: JSON-RPC requests to `/mcp` and
//! their answers (JSON or SSE), the session handshake, calls.

use serde_json::{json, Value};

use super::{parse_sse, Server};

pub const ACCEPT: &str = "application/json, text/event-stream";
pub const LEGACY: &str = "2025-11-25";
pub const CURRENT: &str = "2026-07-28";

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub session: Option<String>,
    /// The JSON-RPC messages of the body (one for JSON, each `data:` for SSE).
    pub messages: Vec<Value>,
    pub text: String,
}

impl Answer {
    /// The response to request `id`.
    pub fn reply(&self) -> &Value {
        self.messages
            .iter()
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC reply in {:?}", self.text))
    }
}

pub async fn post(s: &Server, headers: &[(&str, &str)], body: &Value) -> Answer {
    post_as(s, None, headers, body).await
}

/// `post` with `Authorization: Bearer <token>` when a token is given.
pub async fn post_as(
    s: &Server,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> Answer {
    let mut req = s
        .http
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.body(body.to_string()).send().await.expect("POST /mcp");
    answer(r).await
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let session = header("mcp-session-id");
    let text = r.text().await.unwrap_or_default();
    let messages = if content_type.starts_with("text/event-stream") {
        parse_sse(&text)
            .into_iter()
            .map(|e| e.data)
            .filter(|d| d.is_object())
            .collect()
    } else {
        serde_json::from_str(&text).into_iter().collect()
    };
    Answer {
        status,
        content_type,
        session,
        messages,
        text,
    }
}

/// The `initialize` request of protocol revision `version`.
pub fn initialize(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

/// An initialized session (the handshake of the revisions before 2026-07-28).
pub async fn session(s: &Server) -> String {
    session_as(s, None).await
}

pub async fn session_as(s: &Server, token: Option<&str>) -> String {
    let a = post_as(s, token, &[], &initialize(LEGACY)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.reply()["result"]["protocolVersion"], LEGACY);
    let id = a.session.expect("Mcp-Session-Id");
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let n = post_as(
        s,
        token,
        &[("mcp-session-id", &id), ("mcp-protocol-version", LEGACY)],
        &done,
    )
    .await;
    assert_eq!(n.status, 202, "{}", n.text);
    id
}

pub async fn call(s: &Server, sid: &str, id: u64, method: &str, params: Value) -> Answer {
    call_as(s, None, sid, id, method, params).await
}

pub async fn call_as(
    s: &Server,
    token: Option<&str>,
    sid: &str,
    id: u64,
    method: &str,
    params: Value,
) -> Answer {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let headers = [("mcp-session-id", sid), ("mcp-protocol-version", LEGACY)];
    post_as(s, token, &headers, &body).await
}

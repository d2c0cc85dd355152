//! `/mcp` over raw HTTP: what the protocol promises at its edges (Origin and Host
//! refusal, JSON-RPC protocol errors, session lifecycle and cap, JSON or SSE
//! answers) and tool errors carrying the HTTP API's codes. The official clients
//! (Python SDK, Inspector CLI) drive the happy paths in tests/mcp/.

use serde_json::{json, Value};

use crate::common::mcp_client::*;
use crate::common::*;

async fn tool(s: &Server, sid: &str, name: &str, args: Value) -> Value {
    tool_as(s, None, sid, name, args).await
}

async fn tool_as(s: &Server, token: Option<&str>, sid: &str, name: &str, args: Value) -> Value {
    let params = json!({"name": name, "arguments": args});
    let a = call_as(s, token, sid, 7, "tools/call", params).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.reply()["result"].clone()
}

#[tokio::test]
async fn origin_and_host_are_checked() {
    let s = server().start();
    let evil = post(
        &s,
        &[("origin", "http://evil.example")],
        &initialize(LEGACY),
    )
    .await;
    assert_eq!(evil.status, 403, "{}", evil.text);
    // DNS rebinding: the attacker's name resolving to loopback.
    let port_origin = format!("http://evil.example:{}", s.base.rsplit(':').next().unwrap());
    let rebound = post(&s, &[("origin", &port_origin)], &initialize(LEGACY)).await;
    assert_eq!(rebound.status, 403, "{}", rebound.text);
    // Host is every route's check (server.allowed_hosts): 421 host_not_allowed.
    let host = post(&s, &[("host", "evil.example")], &initialize(LEGACY)).await;
    assert_eq!(host.status, 421, "{}", host.text);
    assert!(host.text.contains("host_not_allowed"), "{}", host.text);
    // A loopback origin (e.g. a local browser tool) and no Origin at all pass.
    let local = post(
        &s,
        &[("origin", "http://localhost:6274")],
        &initialize(LEGACY),
    )
    .await;
    assert_eq!(local.status, 200, "{}", local.text);
    assert_eq!(post(&s, &[], &initialize(LEGACY)).await.status, 200);
}

#[tokio::test]
async fn configured_origins_replace_the_defaults() {
    let s = server()
        .env("MCPO__MCP__ALLOWED_ORIGINS", "https://app.example:443")
        .start();
    let ok = post(
        &s,
        &[("origin", "https://app.example")],
        &initialize(LEGACY),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let local = post(
        &s,
        &[("origin", "http://localhost:6274")],
        &initialize(LEGACY),
    )
    .await;
    assert_eq!(local.status, 403);

    let none = server().env("MCPO__MCP__ALLOWED_ORIGINS", "").start();
    let refused = post(
        &none,
        &[("origin", "http://localhost:6274")],
        &initialize(LEGACY),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(post(&none, &[], &initialize(LEGACY)).await.status, 200);
}

#[tokio::test]
async fn protocol_errors_are_json_rpc_errors() {
    let s = server().start();
    let sid = session(&s).await;
    let unknown = call(&s, &sid, 2, "workflows/launch", json!({})).await;
    assert_eq!(unknown.reply()["error"]["code"], -32601, "{}", unknown.text);
    assert_eq!(unknown.reply()["id"], 2);
    let no_tool = call(
        &s,
        &sid,
        3,
        "tools/call",
        json!({"name": "rm_rf", "arguments": {}}),
    )
    .await;
    assert_eq!(no_tool.reply()["error"]["code"], -32602, "{}", no_tool.text);
    // Params that do not fit the method: a JSON-RPC error (rmcp says -32601, as
    // for any message it cannot parse), never an HTTP error.
    let bad_params = call(&s, &sid, 4, "resources/read", json!({"url": "x"})).await;
    assert_eq!(bad_params.status, 200);
    let code = bad_params.reply()["error"]["code"].as_i64();
    assert!(code.is_some_and(|c| c < 0), "{}", bad_params.text);
    let missing = call(
        &s,
        &sid,
        5,
        "resources/read",
        json!({"uri": "orchestrator://nothing"}),
    )
    .await;
    assert_eq!(missing.reply()["error"]["code"], -32002, "{}", missing.text);
    assert_eq!(missing.reply()["error"]["data"]["code"], "not_found");
    let r = s
        .http
        .post(s.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .header("mcp-session-id", &sid)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let parse = answer(r).await;
    assert_eq!(parse.status, 400, "{}", parse.text);
    assert_eq!(parse.reply()["error"]["code"], -32700, "{}", parse.text);
    // Without a session, only initialize (or a current-revision request) is served.
    let orphan = post(
        &s,
        &[],
        &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
    )
    .await;
    assert!(
        (400..500).contains(&orphan.status),
        "{} {}",
        orphan.status,
        orphan.text
    );
    let version = post(
        &s,
        &[("mcp-protocol-version", "1999-01-01")],
        &initialize("1999-01-01"),
    )
    .await;
    assert_eq!(version.status, 400, "{}", version.text);
}

#[tokio::test]
async fn tool_errors_carry_the_api_codes() {
    let s = server()
        .env("MCPO__PROVIDERS__SLOW__KIND", "simulated")
        .env("MCPO__PROVIDERS__SLOW__LATENCY_MS", 600_000)
        .start();
    let sid = session(&s).await;
    let bad = tool(
        &s,
        &sid,
        "orchestrate_research",
        json!({"task": "x", "config": {"num_agents": 2}}),
    )
    .await;
    assert_eq!(bad["isError"], true, "{bad}");
    assert_eq!(
        bad["structuredContent"]["error"]["code"],
        "validation_error"
    );
    assert_eq!(
        bad["structuredContent"]["error"]["field"],
        "config.num_agents"
    );
    let extra = tool(
        &s,
        &sid,
        "orchestrate_research",
        json!({"task": "x", "colour": "red"}),
    )
    .await;
    assert_eq!(
        extra["structuredContent"]["error"]["field"], "colour",
        "{extra}"
    );
    let query = tool(&s, &sid, "orchestrate_search", json!({"query": "  "})).await;
    assert_eq!(
        query["structuredContent"]["error"]["field"], "query",
        "{query}"
    );
    let gone = tool(
        &s,
        &sid,
        "get_orchestration_status",
        json!({"task_id": "wf_missing"}),
    )
    .await;
    assert_eq!(gone["isError"], true);
    assert_eq!(
        gone["structuredContent"]["error"]["code"],
        "workflow_not_found"
    );

    let started = tool(
        &s,
        &sid,
        "orchestrate_research",
        json!({"task": "slow", "config": {"provider": "slow", "num_agents": 3}}),
    )
    .await;
    assert_eq!(started["isError"], false, "{started}");
    let id = started["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The same record as the HTTP API's.
    let status = tool(&s, &sid, "get_orchestration_status", json!({"task_id": id})).await;
    assert_eq!(status["structuredContent"], s.workflow(&id).await);
    let early = tool(&s, &sid, "get_orchestration_result", json!({"task_id": id})).await;
    assert_eq!(
        early["structuredContent"]["error"]["code"], "not_finished",
        "{early}"
    );
    let read = call(
        &s,
        &sid,
        8,
        "resources/read",
        json!({"uri": format!("orchestrator://workflows/{id}/report.md")}),
    )
    .await;
    assert_eq!(
        read.reply()["error"]["data"]["code"],
        "not_finished",
        "{}",
        read.text
    );
    let cancelled = tool(&s, &sid, "cancel_orchestration", json!({"task_id": id})).await;
    assert_eq!(cancelled["structuredContent"]["status"], "cancelled");
    let again = tool(&s, &sid, "cancel_orchestration", json!({"task_id": id})).await;
    assert_eq!(
        again["structuredContent"]["error"]["code"],
        "already_finished"
    );
}

#[tokio::test]
async fn sessions_end_with_delete_and_are_capped() {
    let s = server().env("MCPO__MCP__MAX_SESSIONS", 1).start();
    let sid = session(&s).await;
    let full = post(&s, &[], &initialize(LEGACY)).await;
    assert_eq!(full.status, 503, "{}", full.text);
    let body: Value = serde_json::from_str(&full.text).unwrap();
    assert_eq!(body["error"]["code"], "too_many_sessions");

    let del = s
        .http
        .delete(s.url("/mcp"))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    let after = call(&s, &sid, 2, "ping", json!({})).await;
    assert_eq!(after.status, 404, "{}", after.text);
    // The slot is free again.
    session(&s).await;
}

#[tokio::test]
async fn answers_are_json_or_sse() {
    let s = server().start();
    // A session's answers stream as SSE.
    let sid = session(&s).await;
    let listed = call(&s, &sid, 2, "tools/list", json!({})).await;
    assert!(
        listed.content_type.starts_with("text/event-stream"),
        "{}",
        listed.content_type
    );
    assert_eq!(
        listed.reply()["result"]["tools"].as_array().unwrap().len(),
        6
    );
    // The current revision: no session, the version in each request, plain JSON
    // for a plain answer.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": CURRENT,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": meta}});
    let modern = post(
        &s,
        &[
            ("mcp-protocol-version", CURRENT),
            ("mcp-method", "tools/list"),
        ],
        &body,
    )
    .await;
    assert_eq!(modern.status, 200, "{}", modern.text);
    assert!(
        modern.content_type.starts_with("application/json"),
        "{}",
        modern.content_type
    );
    assert!(modern.session.is_none());
    assert_eq!(
        modern.reply()["result"]["tools"].as_array().unwrap().len(),
        6
    );
}

#[tokio::test]
async fn api_keys_apply_with_the_http_apis_scopes_and_ownership() {
    let alice = keys::key("alice", &["read", "write"]);
    let bob = keys::key("bob", &["read", "write"]);
    let reader = keys::key("reader", &["read"]);
    let s = server()
        .keys(&[&alice, &bob, &reader])
        .env("MCPO__PROVIDERS__SLOW__KIND", "simulated")
        .env("MCPO__PROVIDERS__SLOW__LATENCY_MS", 600_000)
        .start();
    let (a, b, r) = (
        Some(alice.token.as_str()),
        Some(bob.token.as_str()),
        Some(reader.token.as_str()),
    );
    let anonymous = post(&s, &[], &initialize(LEGACY)).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);

    let sa = session_as(&s, a).await;
    let args = json!({"task": "slow", "config": {"provider": "slow", "num_agents": 3}});
    let started = tool_as(&s, a, &sa, "orchestrate_research", args.clone()).await;
    assert_eq!(started["isError"], false, "{started}");
    let id = started["structuredContent"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = tool_as(
        &s,
        a,
        &sa,
        "get_orchestration_status",
        json!({"task_id": id}),
    )
    .await;
    assert_eq!(mine["structuredContent"]["owner"], "alice", "{mine}");

    // Another key neither sees nor cancels it, and cannot even use the owner's
    // session: it belongs to the key that opened it (404, as an unknown one).
    let sb = session_as(&s, b).await;
    let borrowed = call_as(&s, b, &sa, 7, "tools/list", json!({})).await;
    assert_eq!(borrowed.status, 404, "{}", borrowed.text);
    {
        let sid = &sb;
        let seen = tool_as(
            &s,
            b,
            sid,
            "get_orchestration_status",
            json!({"task_id": id}),
        )
        .await;
        assert_eq!(
            seen["structuredContent"]["error"]["code"], "workflow_not_found",
            "{seen}"
        );
        let cancel = tool_as(&s, b, sid, "cancel_orchestration", json!({"task_id": id})).await;
        assert_eq!(
            cancel["structuredContent"]["error"]["code"],
            "workflow_not_found"
        );
    }
    let uri = format!("orchestrator://workflows/{id}");
    let read = call_as(&s, b, &sb, 8, "resources/read", json!({"uri": uri})).await;
    assert_eq!(
        read.reply()["error"]["data"]["code"],
        "workflow_not_found",
        "{}",
        read.text
    );
    let listed = call_as(&s, b, &sb, 9, "resources/list", json!({})).await;
    assert!(!listed.text.contains(&id), "{}", listed.text);
    let listed = call_as(&s, a, &sa, 9, "resources/list", json!({})).await;
    assert!(listed.text.contains(&id), "{}", listed.text);

    // A read-only key cannot start workflows.
    let sr = session_as(&s, r).await;
    let refused = tool_as(&s, r, &sr, "orchestrate_research", args).await;
    assert_eq!(refused["isError"], true);
    assert_eq!(
        refused["structuredContent"]["error"]["code"], "forbidden",
        "{refused}"
    );
    let patterns = tool_as(&s, r, &sr, "list_orchestrator_patterns", json!({})).await;
    assert_eq!(patterns["isError"], false);

    let done = tool_as(&s, a, &sa, "cancel_orchestration", json!({"task_id": id})).await;
    assert_eq!(done["structuredContent"]["status"], "cancelled", "{done}");
}

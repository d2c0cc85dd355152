//! What a web page elsewhere can do, each test written as the attack:
//! DNS rebinding (a page whose name re-resolves to the server sends its own
//! `Host`), a cross-site state change without a body, and a write key probing
//! internal names through `/webhook/register` without owning a workflow.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::keys::{code, key};
use crate::common::{research, server, Resp, Server};
use mcp_orchestrator::events::address_policy::REFUSED;

/// A request with these extra headers (e.g. a rebound `Host`, an `Origin`).
async fn send(
    s: &Server,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    let mut req = s.http.request(method, s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    Server::into_resp(req.send().await.expect("request")).await
}

fn port(s: &Server) -> &str {
    s.base.rsplit(':').next().unwrap_or_default()
}

fn mcp_initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "rebound page", "version": "1"}}})
}

/// One request of each route family, as a rebound page would send it.
fn every_family() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::POST,
            "/v1/workflows",
            Some(research("exfiltrate me", 3)),
        ),
        (Method::GET, "/v1/workflows", None),
        (
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": "https://8.8.8.8/exfil"})),
        ),
        (Method::GET, "/v1/patterns", None),
        (Method::GET, "/v1/analytics/costs", None),
        (
            Method::POST,
            "/tools/orchestrate_search",
            Some(json!({"query": "old route"})),
        ),
        (Method::GET, "/stats", None),
        (Method::GET, "/", None),
        (Method::GET, "/health", None),
        (Method::GET, "/ready", None),
        (Method::GET, "/metrics", None),
        (Method::GET, "/dashboard", None),
        (Method::GET, "/openapi.json", None),
        (Method::POST, "/mcp", Some(mcp_initialize())),
        (Method::GET, "/no-such-route", None),
    ]
}

#[tokio::test]
async fn a_rebound_page_gets_421_on_every_route_family_without_keys() {
    let s = server().latency_ms(30_000).start();
    let rebound = format!("attacker.example:{}", port(&s));
    for host in [rebound.as_str(), "attacker.example", "127.0.0.1.nip.io"] {
        for (method, path, body) in every_family() {
            let r = send(&s, method.clone(), path, &[("host", host)], body.as_ref()).await;
            assert_eq!(
                (r.status, code(&r).as_str()),
                (421, "host_not_allowed"),
                "{method} {path} with Host {host}: {:?}",
                r.body
            );
        }
    }
    // Nothing was created, registered or shown.
    let listed = s.get("/v1/workflows").await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0));
    let hooks = s.get("/v1/webhooks").await;
    assert_eq!(hooks.body["items"].as_array().map(Vec::len), Some(0));
    // The server's own names still work, with or without the port.
    let own = [
        format!("127.0.0.1:{}", port(&s)),
        format!("localhost:{}", port(&s)),
        format!("[::1]:{}", port(&s)),
        "localhost".to_string(),
    ];
    for host in &own {
        let r = send(&s, Method::GET, "/health", &[("host", host)], None).await;
        assert_eq!(r.status, 200, "Host {host}: {:?}", r.body);
    }
    let made = send(
        &s,
        Method::POST,
        "/v1/workflows",
        &[("host", &own[1])],
        Some(&research("local", 3)),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
}

#[tokio::test]
async fn with_keys_any_host_is_answered_unless_a_list_is_set() {
    let k = key("ops", &["admin"]);
    // Keys: a rebound page has none, so any Host reaches auth (401, not 421).
    let s = server().keys(&[&k]).start();
    let r = send(
        &s,
        Method::GET,
        "/v1/workflows",
        &[("host", "attacker.example")],
        None,
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"));
    drop(s);

    // Behind a reverse proxy: only the public name (and loopback) is answered.
    let s = server()
        .keys(&[&k])
        .env("MCPO__SERVER__ALLOWED_HOSTS", "orchestrator.example.com")
        .start();
    let auth = format!("Bearer {}", k.token);
    for (method, path, body) in every_family() {
        let r = send(
            &s,
            method.clone(),
            path,
            &[("host", "attacker.example"), ("authorization", &auth)],
            body.as_ref(),
        )
        .await;
        assert_eq!(
            (r.status, code(&r).as_str()),
            (421, "host_not_allowed"),
            "{method} {path}: {:?}",
            r.body
        );
    }
    for host in ["orchestrator.example.com", "orchestrator.example.com:443"] {
        let r = send(
            &s,
            Method::GET,
            "/v1/patterns",
            &[("host", host), ("authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(r.status, 200, "Host {host}: {:?}", r.body);
    }
    // The container healthcheck asks over loopback.
    assert_eq!(s.get("/health").await.status, 200);
}

#[tokio::test]
async fn the_deprecated_mcp_allowed_hosts_adds_to_the_list() {
    let s = server()
        .env("MCPO__MCP__ALLOWED_HOSTS", "mcp.example")
        .start();
    for path in ["/health", "/v1/workflows"] {
        let ok = send(&s, Method::GET, path, &[("host", "mcp.example")], None).await;
        assert_eq!(ok.status, 200, "{path}: {:?}", ok.body);
        let refused = send(&s, Method::GET, path, &[("host", "other.example")], None).await;
        assert_eq!(refused.status, 421, "{path}");
    }
}

#[tokio::test]
async fn a_cross_site_cancel_without_a_body_is_refused() {
    let s = server()
        .latency_ms(30_000)
        .env("MCPO__SERVER__CORS_ALLOWED_ORIGINS", "https://ops.example")
        .start();
    let id = s.create(research("keep running", 3)).await;
    let cancel = format!("/v1/workflows/{id}/cancel");
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = send(&s, Method::POST, &cancel, &[("origin", origin)], None).await;
        assert_eq!(
            (r.status, code(&r).as_str()),
            (403, "origin_not_allowed"),
            "Origin {origin}: {:?}",
            r.body
        );
    }
    // The old routes and the other state changes, with a JSON body as well.
    let old = send(
        &s,
        Method::POST,
        "/tools/cancel_orchestration",
        &[("origin", "http://evil.example")],
        Some(&json!({"task_id": id})),
    )
    .await;
    assert_eq!(
        (
            old.status,
            old.body["success"].as_bool(),
            code(&old).as_str()
        ),
        (403, Some(false), "origin_not_allowed")
    );
    for (path, body) in [
        ("/v1/workflows", research("cross-site", 3)),
        ("/v1/webhooks", json!({"url": "https://8.8.8.8/exfil"})),
    ] {
        let r = send(
            &s,
            Method::POST,
            path,
            &[("origin", "http://evil.example")],
            Some(&body),
        )
        .await;
        assert_eq!(r.status, 403, "{path}: {:?}", r.body);
    }
    let del = send(
        &s,
        Method::DELETE,
        "/v1/webhooks/wh_x",
        &[("origin", "http://evil.example")],
        None,
    )
    .await;
    assert_eq!(code(&del), "origin_not_allowed");
    assert_eq!(s.workflow(&id).await["status"], "running");
    // A cross-origin read is not refused here (CORS keeps the answer from the page).
    let read = send(
        &s,
        Method::GET,
        &cancel.replace("/cancel", ""),
        &[("origin", "http://evil.example")],
        None,
    )
    .await;
    assert_eq!(read.status, 200);

    // Same origin (the dashboard), a configured origin, and no Origin (curl) act.
    let same = format!("http://127.0.0.1:{}", port(&s));
    let r = send(&s, Method::POST, &cancel, &[("origin", &same)], None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let other = s.create(research("ops cancels", 3)).await;
    let r = send(
        &s,
        Method::POST,
        &format!("/v1/workflows/{other}/cancel"),
        &[("origin", "https://ops.example")],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let third = s.create(research("curl cancels", 3)).await;
    let r = send(
        &s,
        Method::POST,
        &format!("/v1/workflows/{third}/cancel"),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn register_checks_the_workflow_before_resolving_anything() {
    let (w, other) = (
        key("writer", &["read", "write"]),
        key("other", &["read", "write"]),
    );
    let s = server().keys(&[&w, &other]).latency_ms(30_000).start();
    let register = |task: &str, url: &str| json!({"task_id": task, "webhook_url": url, "secret": "longenough"});
    let urls = [
        "http://localhost/",
        "https://localhost/",
        "https://no-such-name.invalid/",
        "https://10.0.0.1/",
        "https://8.8.8.8/",
    ];
    // A made-up task_id, or another key's workflow: the same 404 for every URL,
    // so nothing about the names is learnt.
    let theirs = s.create_as(&other, research("not yours", 3)).await;
    for task in ["wf_madeup", theirs.as_str()] {
        for url in urls {
            let r = s
                .post_as(&w, "/webhook/register", &register(task, url))
                .await;
            assert_eq!(
                (r.status, code(&r).as_str()),
                (404, "workflow_not_found"),
                "{task} {url}: {:?}",
                r.body
            );
        }
    }
    // On its own workflow every refused destination answers the one message.
    let mine = s.create_as(&w, research("mine", 3)).await;
    for url in &urls[1..4] {
        let r = s
            .post_as(&w, "/webhook/register", &register(&mine, url))
            .await;
        assert_eq!(r.status, 400, "{url}: {:?}", r.body);
        assert_eq!(
            r.body["error"].as_str(),
            Some(format!("Invalid webhook_url: {REFUSED}").as_str()),
            "{url}"
        );
    }
    // Global webhooks: a write key is refused before the body is even read.
    let r = s
        .post_as(&w, "/v1/webhooks", &json!({"url": "https://localhost/"}))
        .await;
    assert_eq!((r.status, code(&r).as_str()), (403, "forbidden"));
}

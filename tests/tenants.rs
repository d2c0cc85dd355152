//! What one tenant (key) can do to another, and what an anonymous client
//! learns, each test written as the attack: a second key reading an admin's
//! global webhook URL from its own deliveries, a second key on a live MCP session
//! (call, resume, DELETE), one key filling each shared cap while another still
//! gets in, and anonymous `/metrics` and `/health`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::keys::{code, key, TestKey};
use crate::common::mcp_client::{initialize, ACCEPT, LEGACY};
use crate::common::receiver::Receiver;
use crate::common::{research, server, Builder, Resp, Server, SEC};

/// Webhooks to the loopback test receiver; a provider `slow` that never ends.
fn dev(b: Builder) -> Builder {
    b.webhooks_to("127.0.0.1")
        .env("MCPO__PROVIDERS__SLOW__KIND", "simulated")
        .env("MCPO__PROVIDERS__SLOW__LATENCY_MS", 600_000)
}

fn slow(task: &str) -> Value {
    json!({"pattern": "research", "task": task, "config": {"num_agents": 3, "provider": "slow"}})
}

async fn deliveries_as(s: &Server, k: &TestKey, id: &str) -> Resp {
    let r = s.get_as(k, &format!("/v1/workflows/{id}/deliveries")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r
}

/// Polls `id`'s deliveries (as `k`) until `done` holds for them.
async fn deliveries_until(
    s: &Server,
    k: &TestKey,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let items = deliveries_as(s, k, id).await.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&items) {
            return items;
        }
        assert!(t.elapsed() < 60 * SEC, "deliveries of {id}: {items:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_global_webhook_url_never_reaches_another_keys_deliveries() {
    let recv = Receiver::start();
    let (ops, ci) = (key("ops", &["admin"]), key("ci", &["read", "write"]));
    let s = dev(server()).keys(&[&ops, &ci]).latency_ms(5).start();
    // Such URLs are credentials.
    let secret_url = format!("{}/services/T0/B0/secretToken?sig=abc", recv.url);
    let global = s
        .post_as(
            &ops,
            "/v1/webhooks",
            &json!({"url": secret_url, "events": ["workflow_completed"]}),
        )
        .await;
    assert_eq!(global.status, 201, "{:?}", global.body);
    let global_id = global.body["id"].as_str().unwrap().to_string();
    let own_url = format!("{}/ci-own", recv.url);
    let id = s
        .create_as(
            &ci,
            json!({"pattern": "research", "task": "ci's", "config": {"num_agents": 3},
                   "webhook": {"url": own_url, "events": ["workflow_completed"]}}),
        )
        .await;
    let done = |d: &[Value]| d.len() == 2 && d.iter().all(|x| x["status"] == "delivered");
    let seen = deliveries_until(&s, &ci, &id, done).await;
    let text = Value::from(seen.clone()).to_string();
    assert!(!text.contains("secretToken"), "{text}");
    assert!(!text.contains(&global_id), "{text}");
    // Its own subscription's delivery is shown in full; the global one without
    // url and subscription_id.
    let own: Vec<&Value> = seen.iter().filter(|d| d["url"] == own_url).collect();
    assert_eq!(own.len(), 1, "{seen:?}");
    assert!(own[0]["subscription_id"]
        .as_str()
        .is_some_and(|s| s.starts_with("wh_")));
    let other: Vec<&Value> = seen.iter().filter(|d| d["url"] != own_url).collect();
    assert_eq!(other.len(), 1, "{seen:?}");
    assert!(other[0].get("url").is_none() && other[0].get("subscription_id").is_none());
    assert_eq!(other[0]["status"], "delivered");
    // The admin sees both in full.
    let all = deliveries_as(&s, &ops, &id).await.body.to_string();
    assert!(
        all.contains("secretToken") && all.contains(&global_id),
        "{all}"
    );
}

async fn mcp(
    s: &Server,
    method: Method,
    token: &str,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Option<String>, String) {
    let mut req = s
        .http
        .request(method, s.url("/mcp"))
        .bearer_auth(token)
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", LEGACY);
    if let Some(id) = session {
        req = req.header("mcp-session-id", id);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.expect("/mcp");
    let status = r.status().as_u16();
    let sid = r
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // An SSE answer to a GET stays open: read only what came within a moment.
    let text = tokio::time::timeout(Duration::from_secs(2), r.text())
        .await
        .map(|t| t.unwrap_or_default())
        .unwrap_or_default();
    (status, sid, text)
}

/// Opens an MCP session as `k` (the handshake of the revisions before 2026-07-28).
async fn open_session(s: &Server, k: &TestKey) -> Result<String, (u16, String)> {
    let init = initialize(LEGACY);
    let (status, sid, text) = mcp(s, Method::POST, &k.token, None, &[], Some(&init)).await;
    if status != 200 {
        return Err((status, text));
    }
    let sid = sid.expect("Mcp-Session-Id");
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, text) = mcp(s, Method::POST, &k.token, Some(&sid), &[], Some(&done)).await;
    assert_eq!(status, 202, "{text}");
    Ok(sid)
}

fn ping(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}})
}

#[tokio::test]
async fn another_key_cannot_use_resume_or_end_a_live_mcp_session() {
    let (alice, bob) = (
        key("alice", &["read", "write"]),
        key("bob", &["read", "write"]),
    );
    let s = dev(server()).keys(&[&alice, &bob]).start();
    let sa = open_session(&s, &alice).await.expect("alice's session");
    // Alice's live work in her session.
    let start = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "orchestrate_research", "arguments": {"task": "alice's", "config": {"provider": "slow", "num_agents": 3}}}});
    let (status, _, text) = mcp(&s, Method::POST, &alice.token, Some(&sa), &[], Some(&start)).await;
    assert_eq!(status, 200, "{text}");

    // Bob holding Alice's session id: every method answers as if it did not exist.
    let unknown = "Not Found: Session not found";
    let (status, _, text) = mcp(&s, Method::POST, &bob.token, Some(&sa), &[], Some(&ping(3))).await;
    assert_eq!((status, text.as_str()), (404, unknown));
    for resume in [
        &[][..],
        &[("last-event-id", "0")][..],
        &[("last-event-id", "1/0")][..],
    ] {
        let (status, _, text) = mcp(&s, Method::GET, &bob.token, Some(&sa), resume, None).await;
        assert_eq!((status, text.as_str()), (404, unknown), "GET {resume:?}");
        assert!(!text.contains("alice's"));
    }
    let (status, _, text) = mcp(&s, Method::DELETE, &bob.token, Some(&sa), &[], None).await;
    assert_eq!((status, text.as_str()), (404, unknown));
    // A made-up id answers the same.
    let (status, _, _) = mcp(
        &s,
        Method::POST,
        &bob.token,
        Some("made-up"),
        &[],
        Some(&ping(4)),
    )
    .await;
    assert_eq!(status, 404);

    // Alice's session is untouched, and only she ends it.
    let (status, _, text) = mcp(
        &s,
        Method::POST,
        &alice.token,
        Some(&sa),
        &[],
        Some(&ping(5)),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("orchestrate_research"), "{text}");
    let (status, _, _) = mcp(&s, Method::DELETE, &alice.token, Some(&sa), &[], None).await;
    assert_eq!(status, 200);
    let (status, _, _) = mcp(
        &s,
        Method::POST,
        &alice.token,
        Some(&sa),
        &[],
        Some(&ping(6)),
    )
    .await;
    assert_eq!(status, 404);
    // The session id, a bearer credential, is not in the log.
    assert!(!s.log().contains(&sa), "session id logged");
}

#[tokio::test]
async fn one_key_cannot_take_every_mcp_session() {
    let (reader, other) = (key("reader", &["read"]), key("other", &["read"]));
    let s = server()
        .keys(&[&reader, &other])
        .env("MCPO__MCP__MAX_SESSIONS", 4)
        .start();
    let mine = [
        open_session(&s, &reader).await.expect("first"),
        open_session(&s, &reader).await.expect("second"),
    ];
    let (status, text) = open_session(&s, &reader).await.expect_err("over its share");
    assert_eq!(status, 503, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(body["error"]["code"], "too_many_sessions", "{text}");
    assert!(text.contains("auth.max_share"), "{text}");
    // Another key still gets in.
    open_session(&s, &other)
        .await
        .expect("the other key's session");
    // A closed session frees its place.
    let (status, _, _) = mcp(&s, Method::DELETE, &reader.token, Some(&mine[0]), &[], None).await;
    assert_eq!(status, 200);
    open_session(&s, &reader).await.expect("room again");
    let m = s.get_as(&other, "/metrics").await;
    let m = crate::common::prometheus::samples(m.body.as_str().unwrap_or(""));
    assert_eq!(
        m.get("auth_key_share_refusals_total{key=\"reader\",cap=\"mcp_sessions\"}"),
        Some(&1.0),
        "{m:?}"
    );
}

#[tokio::test]
async fn one_key_cannot_take_every_event_stream() {
    let (a, b) = (key("a", &["read", "write"]), key("b", &["read", "write"]));
    let s = dev(server())
        .keys(&[&a, &b])
        .env("MCPO__LIMITS__MAX_SSE_STREAMS", 4)
        .start();
    let wa = s.create_as(&a, slow("a's")).await;
    let wb = s.create_as(&b, slow("b's")).await;
    let stream = |k: &TestKey, id: &str| {
        s.http
            .get(s.url(&format!("/v1/workflows/{id}/events")))
            .bearer_auth(&k.token)
            .send()
    };
    // Held open (the workflows never end).
    let held = [
        stream(&a, &wa).await.unwrap(),
        stream(&a, &wa).await.unwrap(),
    ];
    assert!(held.iter().all(|r| r.status() == 200));
    let third = Server::into_resp(stream(&a, &wa).await.unwrap()).await;
    assert_eq!(
        (third.status, code(&third).as_str()),
        (429, "too_many_streams")
    );
    let old = s.get_as(&a, &format!("/stream/{wa}")).await;
    assert_eq!((old.status, code(&old).as_str()), (429, "too_many_streams"));
    let theirs = stream(&b, &wb).await.unwrap();
    assert_eq!(theirs.status(), 200, "the other key still gets a stream");
    drop(held);
}

#[tokio::test]
async fn one_key_cannot_take_every_webhook_subscription() {
    let (w, ops) = (key("w", &["read", "write"]), key("ops", &["admin"]));
    let s = dev(server())
        .keys(&[&w, &ops])
        .env("MCPO__WEBHOOKS__MAX_SUBSCRIPTIONS", 4)
        .start();
    let recv = Receiver::start();
    let id = s.create_as(&w, slow("hooks")).await;
    let register = |n: usize| json!({"task_id": id, "webhook_url": format!("{}/{n}", recv.url), "secret": "longenough"});
    for n in 0..2 {
        let r = s.post_as(&w, "/webhook/register", &register(n)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = s.post_as(&w, "/webhook/register", &register(2)).await;
    assert_eq!(
        (r.status, code(&r).as_str()),
        (429, "too_many_webhooks"),
        "{:?}",
        r.body
    );
    let r = s
        .post_as(
            &w,
            "/v1/workflows",
            &json!({"pattern": "research", "task": "x",
            "webhook": {"url": format!("{}/x", recv.url)}}),
        )
        .await;
    assert_eq!(code(&r), "too_many_webhooks", "{:?}", r.body);
    // The admin still registers one.
    let g = s
        .post_as(
            &ops,
            "/v1/webhooks",
            &json!({"url": format!("{}/g", recv.url)}),
        )
        .await;
    assert_eq!(g.status, 201, "{:?}", g.body);
}

#[tokio::test]
async fn a_flooding_key_loses_its_own_oldest_delivery_not_anothers() {
    let recv = Receiver::start();
    let (a, b) = (key("a", &["read", "write"]), key("b", &["read", "write"]));
    let s = dev(server())
        .keys(&[&a, &b])
        .latency_ms(5)
        .env("MCPO__WEBHOOKS__MAX_PENDING", 4)
        .env("MCPO__WEBHOOKS__MAX_CONCURRENT", 1)
        .env("MCPO__WEBHOOKS__MAX_PER_HOST", 1)
        .start();
    recv.hold();
    let started = json!(["workflow_started"]);
    let hook = |path: &str, events: &Value| json!({"url": format!("{}/{path}", recv.url), "events": events});
    // B's first delivery takes the one place in flight (held); its second waits,
    // the oldest of all waiting.
    let b1 = s
        .create_as(&b, json!({"pattern": "research", "task": "b1", "config": {"num_agents": 3, "provider": "slow"}, "webhook": hook("b1", &started)}))
        .await;
    recv.wait_for(1, 30 * SEC).await;
    let b2 = s
        .create_as(&b, json!({"pattern": "research", "task": "b2", "config": {"num_agents": 3, "provider": "slow"}, "webhook": hook("b2", &started)}))
        .await;
    deliveries_until(&s, &b, &b2, |d| d.len() == 1).await;
    // A floods: every event of its workflow is a delivery.
    let fa = s
        .create_as(&a, json!({"pattern": "research", "task": "flood", "config": {"num_agents": 3}, "webhook": hook("a", &json!(null))}))
        .await;
    let t = Instant::now();
    while s.get_as(&a, &format!("/v1/workflows/{fa}")).await.body["status"] != "completed" {
        assert!(t.elapsed() < 30 * SEC, "the flood did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = s
        .http
        .get(s.url(&format!("/v1/workflows/{fa}/events")))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = crate::common::parse_sse(&log).len();
    assert!(events > 4, "{events}");
    // Over its share (2 of 4): A's oldest are given up, B's delivery stays.
    let a_given_up = |d: &[Value]| {
        d.iter()
            .filter(|x| x["status"] == "failed")
            .filter(|x| {
                x["attempts"][0]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("webhooks.max_pending"))
            })
            .count()
    };
    deliveries_until(&s, &a, &fa, |d| {
        d.len() == events && a_given_up(d) == events - 2
    })
    .await;
    recv.release();
    let b_done =
        deliveries_until(&s, &b, &b2, |d| d.iter().all(|x| x["status"] != "pending")).await;
    assert_eq!(b_done[0]["status"], "delivered", "{b_done:?}");
    let a_done =
        deliveries_until(&s, &a, &fa, |d| d.iter().all(|x| x["status"] != "pending")).await;
    let delivered = a_done.iter().filter(|x| x["status"] == "delivered").count();
    assert_eq!(
        (delivered, a_given_up(&a_done)),
        (2, events - 2),
        "{a_done:?}"
    );
    deliveries_until(&s, &b, &b1, |d| {
        d.iter().all(|x| x["status"] == "delivered")
    })
    .await;
}

#[tokio::test]
async fn anonymous_callers_learn_nothing_about_tenants() {
    let (ops, reader) = (key("ops", &["admin"]), key("reader", &["read"]));
    let s = server()
        .keys(&[&ops, &reader])
        .env("MCPO__ARCHIVE__ENABLED", "true")
        .start();
    s.create_as(&ops, research("some work", 3)).await;
    // /metrics names every key: not without one.
    let m = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!((m.status, code(&m).as_str()), (401, "unauthorized"));
    let m = s.get_as(&reader, "/metrics").await;
    assert!(m.body.as_str().unwrap_or("").contains("key=\"ops\""));

    // /health: status words only.
    let h = s.call(Method::GET, "/health", None, None).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let mut top: Vec<&String> = h.body.as_object().unwrap().keys().collect();
    top.sort();
    assert_eq!(top, ["components", "redis", "status"], "{:?}", h.body);
    let components = h.body["components"].as_object().unwrap();
    assert!(components.contains_key("store") && components.contains_key("archive"));
    for (name, c) in components {
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["status"], "{name}: {c}");
    }
    let text = h.body.to_string();
    for secret in ["file://", "orchestrator.db", "\"url\"", "version", "active"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // A wrong key is anonymous too; a read key gets the detail.
    let wrong = s
        .call(Method::GET, "/health", Some("mcpo_wrong"), None)
        .await;
    assert_eq!(wrong.body, h.body);
    let full = s.get_as(&reader, "/health").await;
    assert!(
        full.body["components"]["archive"]["url"].is_string(),
        "{:?}",
        full.body
    );
    assert!(full.body["active_workflows"].is_number());
}

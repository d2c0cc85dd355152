//! Webhooks: signed, persisted, retried deliveries with SSRF protection.

use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::receiver::{Received, Receiver};
use crate::common::*;

/// Receivers on 127.0.0.1 or localhost; retries 100 ms apart.
fn dev(b: Builder) -> Builder {
    b.webhooks_to("127.0.0.1,localhost")
        .env("MCPO__WEBHOOKS__RETRY_BACKOFF", "100ms")
}

/// What a receiver does: HMAC-SHA256 over "{timestamp}.{raw body}", hex, compared.
fn verify(secret: &str, r: &Received) -> bool {
    verify_parts(
        secret,
        r.header("X-MCP-Timestamp").unwrap_or(""),
        &r.body,
        r.header("X-MCP-Signature").unwrap_or(""),
    )
}

fn verify_parts(secret: &str, ts: &str, body: &[u8], signature: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex == signature
}

async fn wait_deliveries(s: &Server, id: &str, n: usize, status: &str) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let d = deliveries(s, id).await;
        if d.len() >= n && d.iter().all(|x| x["status"] == status) {
            return d;
        }
        assert!(t.elapsed() < 30 * SEC, "deliveries not {status}: {d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deliveries_are_signed_filtered_and_recorded() {
    let recv = Receiver::start();
    let s = dev(server()).latency_ms(5).start();
    let secret = "topsecret-1";
    let id = s
        .create(json!({"pattern": "research", "task": "hooked", "config": {"num_agents": 3},
                       "webhook": {"url": recv.url, "secret": secret, "events": ["workflow_completed"]}}))
        .await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let got = recv.wait_for(1, 10 * SEC).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recv.received().len(), 1, "only the filtered event type");
    let r = &got[0];
    assert_eq!(r.header("X-MCP-Event"), Some("workflow_completed"));
    assert_eq!(r.header("X-MCP-Task-ID"), Some(id.as_str()));
    let ts: i64 = r.header("X-MCP-Timestamp").unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert!(verify(secret, r), "signature verifies");
    let mut tampered = r.body.clone();
    tampered[5] ^= 1;
    assert!(!verify_parts(
        secret,
        r.header("X-MCP-Timestamp").unwrap(),
        &tampered,
        r.header("X-MCP-Signature").unwrap()
    ));
    assert!(!verify("another-secret", r));
    let body = r.json();
    assert_eq!(body["event"], "workflow_completed");
    assert_eq!(body["task_id"], id.as_str());
    assert!(body["timestamp"].is_string());
    assert_eq!(body["data"]["status"], "completed");

    let d = wait_deliveries(&s, &id, 1, "delivered").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(d[0]["attempts"][0]["status_code"], 200);
    // The secret is never echoed.
    assert!(!s.workflow(&id).await.to_string().contains(secret));
    assert!(!s
        .get("/v1/webhooks")
        .await
        .body
        .to_string()
        .contains(secret));
    assert!(!s
        .get(&format!("/v1/workflows/{id}/deliveries"))
        .await
        .body
        .to_string()
        .contains(secret));
}

#[tokio::test]
async fn global_subscriptions_get_every_event_until_deleted() {
    let recv = Receiver::start();
    let s = dev(server()).latency_ms(5).start();
    let r = s.post("/v1/webhooks", &json!({"url": recv.url})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let hook = r.body["id"].as_str().unwrap().to_string();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "generated secret shown once");
    let listed = s.get("/v1/webhooks").await.body;
    assert_eq!(listed["items"][0]["id"], hook.as_str());
    assert!(listed["items"][0].get("secret").is_none());

    let id = s.create(research("global", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let events = s.sse(&id, None, 10 * SEC).await;
    let got = recv.wait_for(events.len(), 10 * SEC).await;
    let mut kinds: Vec<String> = got
        .iter()
        .map(|r| r.header("X-MCP-Event").unwrap().to_string())
        .collect();
    let mut want: Vec<String> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    kinds.sort();
    want.sort();
    assert_eq!(kinds, want, "one delivery per event");
    assert!(got.iter().all(|r| verify(&secret, r)));

    assert_eq!(
        s.request(reqwest::Method::DELETE, &format!("/v1/webhooks/{hook}"))
            .await
            .status,
        204
    );
    let again = s
        .request(reqwest::Method::DELETE, &format!("/v1/webhooks/{hook}"))
        .await;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (404, Some("webhook_not_found"))
    );
    let before = recv.received().len();
    let id2 = s.create(research("after delete", 3)).await;
    s.wait_status(&id2, "completed", 30 * SEC).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recv.received().len(), before);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff() {
    let flaky = Receiver::start();
    flaky.answer(&[500, 503], 200);
    let dead = Receiver::start();
    dead.answer(&[], 500);
    let s = dev(server()).latency_ms(5).start();
    let only_done = json!(["workflow_completed"]);
    let a = s
        .create(json!({"pattern": "search", "task": "flaky", "webhook": {"url": flaky.url, "events": only_done}}))
        .await;
    let b = s
        .create(json!({"pattern": "search", "task": "dead", "webhook": {"url": dead.url.replace("127.0.0.1", "localhost"), "events": only_done}}))
        .await;
    let d = wait_deliveries(&s, &a, 1, "delivered").await;
    let codes: Vec<u64> = d[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    let got = flaky.received();
    assert_eq!(got.len(), 3);
    let (g1, g2) = (got[1].at - got[0].at, got[2].at - got[1].at);
    assert!(
        g1 >= Duration::from_millis(75) && g2 >= Duration::from_millis(150),
        "backoff doubles: {g1:?} {g2:?}"
    );
    // Every attempt is signed afresh and verifies.

    let d = wait_deliveries(&s, &b, 1, "failed").await;
    assert_eq!(
        d[0]["attempts"].as_array().unwrap().len(),
        4,
        "1 + max_retries (3)"
    );
    assert!(d[0]["attempts"][3]["error"]
        .as_str()
        .unwrap()
        .contains("HTTP 500"));
    let stats = s.get("/stats").await.body;
    assert!(stats["webhooks"]["failed_deliveries"].as_u64().unwrap() >= 1);
    assert!(stats["webhooks"]["total_deliveries"].as_u64().unwrap() >= 2);
    assert!(stats["total_events_emitted"].as_u64().unwrap() > 0);
    // Both workflows finished and their deliveries are final: their own
    // subscriptions are gone (issue 12: bounded subscriptions).
    assert_eq!(stats["webhooks"]["registered"], 0);
    // /metrics counts the same deliveries and attempts.
    let m = crate::common::prometheus::samples(&crate::common::prometheus::scrape(&s).await);
    let w = &stats["webhooks"];
    assert_eq!(m[r#"webhook_deliveries_total{outcome="delivered"}"#], 1.0);
    assert_eq!(m[r#"webhook_deliveries_total{outcome="failed"}"#], 1.0);
    assert_eq!(m["webhook_attempts_total"], w["attempts"].as_f64().unwrap());
    assert_eq!(m["webhook_attempts_total"], 7.0);
}

#[tokio::test]
async fn pending_deliveries_resume_after_sigkill() {
    let recv = Receiver::start();
    recv.answer(&[], 503);
    let dir = new_dir();
    let mut s = dev(server())
        .dir(&dir)
        .latency_ms(5)
        .env("MCPO__WEBHOOKS__RETRY_BACKOFF", "2s")
        .start();
    let id = s
        .create(json!({"pattern": "search", "task": "resume hooks", "webhook": {"url": recv.url, "events": ["workflow_completed"]}}))
        .await;
    recv.wait_for(1, 20 * SEC).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.kill9();
    drop(s);
    recv.answer(&[], 200);
    let s = dev(server())
        .dir(&dir)
        .latency_ms(5)
        .env("MCPO__WEBHOOKS__RETRY_BACKOFF", "2s")
        .start();
    let d = wait_deliveries(&s, &id, 1, "delivered").await;
    let codes: Vec<u64> = d[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(
        codes,
        [503, 200],
        "the attempt before the crash is kept, the delivery resumed"
    );
}

#[tokio::test]
async fn the_default_guard_refuses_internal_destinations() {
    let s = server().start();
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
    ] {
        let r = s.post("/v1/webhooks", &json!({"url": url})).await;
        assert_eq!(r.status, 400, "{url}: {:?}", r.body);
        assert_eq!(r.body["error"]["field"], "url");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("refused"),
            "{:?}",
            r.body
        );
        let r = s
            .post(
                "/v1/workflows",
                &json!({"pattern": "research", "task": "x", "webhook": {"url": url}}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["field"].as_str()),
            (400, Some("webhook.url")),
            "{url}"
        );
    }
    let r = s
        .post("/v1/webhooks", &json!({"url": "http://example.com/hook"}))
        .await;
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HTTPS"));
    let r = s
        .post(
            "/v1/webhooks",
            &json!({"url": "https://example.com/hook", "events": ["bogus"]}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "events[0]");
    // The old route checks the workflow first (a made-up id: 404, nothing
    // resolved), then the destination.
    let r = s
        .post(
            "/webhook/register",
            &json!({"task_id": "x", "webhook_url": "https://127.0.0.1/h", "secret": "longenough"}),
        )
        .await;
    assert_eq!((r.status, r.body["success"].as_bool()), (404, Some(false)));
    let id = s.create(research("hooked", 3)).await;
    let r = s
        .post(
            "/webhook/register",
            &json!({"task_id": id, "webhook_url": "https://127.0.0.1/h", "secret": "longenough"}),
        )
        .await;
    assert_eq!((r.status, r.body["success"].as_bool()), (400, Some(false)));
    assert_eq!(
        s.get("/v1/webhooks").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Only the one made for the register above: every refused create made none.
    assert_eq!(
        s.get("/v1/workflows").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_guard_is_applied_again_at_delivery_time() {
    let recv = Receiver::start();
    let dir = new_dir();
    // Registered while localhost was allowed …
    let s = dev(server()).dir(&dir).start();
    let url = recv.url.replace("127.0.0.1", "localhost");
    assert_eq!(
        s.post(
            "/v1/webhooks",
            &json!({"url": url, "events": ["workflow_completed"]})
        )
        .await
        .status,
        201
    );
    drop(s);
    // … delivered after the allowance was withdrawn: refused, never sent.
    let s = server()
        .dir(&dir)
        .latency_ms(5)
        .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
        .env("MCPO__WEBHOOKS__RETRY_BACKOFF", "50ms")
        .start();
    let id = s.create(research("rebound", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let d = wait_deliveries(&s, &id, 1, "failed").await;
    let err = d[0]["attempts"][0]["error"].as_str().unwrap();
    assert_eq!(err, mcp_orchestrator::events::address_policy::REFUSED);
    assert!(recv.received().is_empty());
}

/// Everything else happens while a receiver answers nothing at all: workflows,
/// SSE, creates and another receiver's deliveries go on; the held receiver gets
/// at most `max_per_host` in flight, and everything once it answers. (Asserts
/// order, not speed: no duration to tune.)
#[tokio::test]
async fn a_slow_receiver_blocks_nothing_else() {
    let slow = Receiver::start();
    slow.hold();
    let fast = Receiver::start();
    let s = dev(server())
        .latency_ms(5)
        // Held requests never time out (and so are never retried) meanwhile.
        .env("MCPO__WEBHOOKS__ATTEMPT_TIMEOUT", "10m")
        .start();
    let slow_url = slow.url.replace("127.0.0.1", "localhost");
    assert_eq!(
        s.post("/v1/webhooks", &json!({"url": slow_url}))
            .await
            .status,
        201
    );
    assert_eq!(
        s.post("/v1/webhooks", &json!({"url": fast.url}))
            .await
            .status,
        201
    );
    let id = s.create(research("slow receiver", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let events = s.sse(&id, None, 30 * SEC).await;
    fast.wait_for(events.len(), 30 * SEC).await;
    // Creating and running another still works.
    let again = s.create(research("still fast", 3)).await;
    s.wait_status(&again, "completed", 30 * SEC).await;
    let total = events.len() + s.sse(&again, None, 30 * SEC).await.len();
    fast.wait_for(total, 30 * SEC).await;
    slow.wait_for(1, 30 * SEC).await;
    assert_eq!(
        slow.answered(),
        0,
        "all of the above while the slow one held"
    );
    let in_flight = slow.received().len();
    assert!(
        in_flight <= 4,
        "at most webhooks.max_per_host in flight to one host: {in_flight}"
    );
    // Once it answers, it gets every delivery the other one got.
    slow.release();
    slow.wait_for(fast.received().len(), 60 * SEC).await;
}

#[tokio::test]
async fn old_register_and_unregister_routes() {
    let recv = Receiver::start();
    let s = dev(server()).latency_ms(100).start();
    let id = s
        .create(json!({"pattern": "research", "task": "old hooks", "config": {"num_agents": 4, "max_concurrent_agents": 1}}))
        .await;
    let r = s
        .post("/webhook/register", &json!({"task_id": id, "webhook_url": recv.url, "secret": "old-secret-1", "events": ["workflow_completed"]}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["success"], true);
    assert!(r.body["registered_at"].is_string());
    let first = r.body["webhook_id"].as_str().unwrap().to_string();
    // A second one, unregistered while the workflow runs.
    let other = format!("{}?other", recv.url);
    let r = s
        .post(
            "/webhook/register",
            &json!({"task_id": id, "webhook_url": other, "secret": "old-secret-2", "events": ["workflow_completed"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let un = s
        .post(
            "/webhook/unregister",
            &json!({"task_id": id, "webhook_url": other}),
        )
        .await;
    assert_eq!((un.status, un.body["success"].as_bool()), (200, Some(true)));
    let again = s
        .post(
            "/webhook/unregister",
            &json!({"task_id": id, "webhook_url": other}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["success"].as_bool()),
        (404, Some(false))
    );
    s.wait_status(&id, "completed", 30 * SEC).await;
    let got = recv.wait_for(1, 10 * SEC).await;
    assert!(verify("old-secret-1", &got[0]));
    // Only the first subscription got deliveries; it is gone now that they are
    // final (issue 12: a finished workflow's subscriptions leave).
    let d = wait_deliveries(&s, &id, 1, "delivered").await;
    assert!(
        d.iter().all(|x| x["subscription_id"] == first.as_str()),
        "{d:?}"
    );
    assert_eq!(
        s.post(
            "/webhook/unregister",
            &json!({"task_id": id, "webhook_url": recv.url})
        )
        .await
        .status,
        404
    );
    let unknown = s
        .post(
            "/webhook/register",
            &json!({"task_id": "nope", "webhook_url": recv.url, "secret": "old-secret-1"}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let missing = s
        .post(
            "/webhook/register",
            &json!({"task_id": id, "webhook_url": recv.url}),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert!(missing.body["error"].as_str().unwrap().contains("secret"));

    // The old `webhook_url` parameter of orchestrate_research registers one too.
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "old param", "num_agents": 3, "webhook_url": recv.url}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret = r.body["webhook_secret"].as_str().unwrap().to_string();
    let task = r.body["task_id"].as_str().unwrap().to_string();
    s.wait_status(&task, "completed", 30 * SEC).await;
    let d = wait_deliveries(&s, &task, 5, "delivered").await;
    assert!(!d.is_empty());
    let mine: Vec<Received> = recv
        .received()
        .into_iter()
        .filter(|r| r.header("X-MCP-Task-ID") == Some(task.as_str()))
        .collect();
    assert!(!mine.is_empty() && mine.iter().all(|r| verify(&secret, r)));

    let stats = s.get("/stats").await.body;
    for k in ["active_streams", "total_events_emitted"] {
        assert!(stats[k].is_u64(), "{k}");
    }
    for k in [
        "registered",
        "total_deliveries",
        "failed_deliveries",
        "retry_queue_size",
    ] {
        assert!(stats["webhooks"][k].is_u64(), "{k}");
    }
}

#[tokio::test]
async fn webhooks_announce_only_events_the_store_committed_even_across_sigkill() {
    let recv = Receiver::start();
    let dir = new_dir();
    // Every commit held back 300 ms (test hook): an event waits that long between
    // its emission and its commit, and the kill lands inside such a window.
    let b = dev(server())
        .dir(&dir)
        .latency_ms(40)
        .env("MCPO_TEST_FAULTS", "1")
        .env("MCPO_TEST_COMMIT_DELAY_MS", 300);
    let mut s = b.clone().start();
    let id = s
        .create(json!({"pattern": "research", "task": "committed hooks",
            "config": {"num_agents": 8, "max_concurrent_agents": 1},
            "webhook": {"url": recv.url}}))
        .await;
    recv.wait_for(4, 30 * SEC).await;
    s.kill9();
    drop(s);
    // Deliveries already on the wire when the process died still arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heard = recv.received();
    assert!(heard.len() >= 4);
    let s = b.env("MCPO_TEST_COMMIT_DELAY_MS", 0).start();
    s.wait_status(&id, "completed", 60 * SEC).await;
    let stored: Vec<Value> = s
        .sse(&id, None, 30 * SEC)
        .await
        .iter()
        .map(|e| e.data.clone())
        .collect();
    for r in &heard {
        let body = r.json();
        let found = stored.iter().any(|e| {
            e["type"] == body["event"]
                && e["timestamp"] == body["timestamp"]
                && e["data"] == body["data"]
        });
        assert!(
            found,
            "a receiver heard of an event the store does not hold: {body}\nstored: {stored:?}"
        );
    }
}

//! Per-key quotas (max_active, request rate, daily spend), JSON-only
//! bodies (CSRF) and CORS.

use reqwest::Method;
use serde_json::json;

use crate::common::fake_openai::FakeOpenAi;
use crate::common::keys::{code, key};
use crate::common::{research, server, SEC};

#[tokio::test]
async fn max_active_counts_the_keys_own_unfinished_workflows() {
    let (q, free) = (
        key("q", &["read", "write"]).with("max_active = 1"),
        key("free", &["read", "write"]),
    );
    let s = server().keys(&[&q, &free]).latency_ms(30_000).start();
    let first = s.create_as(&q, research("one", 3)).await;
    let r = s.post_as(&q, "/v1/workflows", &research("two", 3)).await;
    assert_eq!((r.status, code(&r).as_str()), (429, "quota_exceeded"));
    assert_eq!(r.headers["retry-after"], "5");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("auth.keys.max_active"));
    // The old API says it in its shape.
    let old = s
        .post_as(&q, "/tools/orchestrate_research", &json!({"task": "t"}))
        .await;
    assert_eq!(
        (old.status, old.body["success"].as_bool()),
        (429, Some(false))
    );
    assert_eq!(code(&old), "quota_exceeded");
    // Other keys are not affected.
    s.create_as(&free, research("free", 3)).await;
    // A finished workflow frees its slot.
    let c = s
        .post_as(&q, &format!("/v1/workflows/{first}/cancel"), &json!({}))
        .await;
    assert_eq!(c.status, 200);
    s.create_as(&q, research("three", 3)).await;
    // With keys configured /metrics needs one (it names every key).
    let m = s
        .get_as(&free, "/metrics")
        .await
        .body
        .as_str()
        .unwrap_or("")
        .to_string();
    let m = crate::common::prometheus::samples(&m);
    assert_eq!(
        m.get("auth_key_rejections_total{key=\"q\",reason=\"quota_exceeded\"}"),
        Some(&2.0),
        "metrics"
    );
    assert_eq!(
        m.get("auth_key_active_workflows{key=\"q\"}"),
        Some(&1.0),
        "metrics"
    );
}

#[tokio::test]
async fn the_request_rate_is_a_token_bucket_per_key() {
    let (r1, other) = (
        key("slow", &["read"]).with("requests_per_second = 1\nburst = 2"),
        key("other", &["read"]),
    );
    let s = server().keys(&[&r1, &other]).start();
    assert_eq!(s.get_as(&r1, "/v1/patterns").await.status, 200);
    assert_eq!(s.get_as(&r1, "/v1/patterns").await.status, 200);
    let third = s.get_as(&r1, "/v1/patterns").await;
    assert_eq!((third.status, code(&third).as_str()), (429, "rate_limited"));
    let wait: u64 = third.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(s.get_as(&other, "/v1/patterns").await.status, 200);
    let m = s
        .get_as(&other, "/metrics")
        .await
        .body
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        crate::common::prometheus::samples(&m)
            .get("auth_key_requests_total{key=\"slow\",outcome=\"rate_limited\"}"),
        Some(&1.0),
        "metrics"
    );
}

#[tokio::test]
async fn the_daily_budget_stops_running_workflows_and_refuses_creates_across_restarts() {
    let fake = FakeOpenAi::start();
    let (spender, other) = (
        key("spender", &["read", "write"]).with("budget_usd_per_day = 0.025"),
        key("other", &["read", "write"]),
    );
    let dir = crate::common::new_dir();
    let start = || {
        server()
            .dir(&dir)
            .keys(&[&spender, &other])
            .env("MCPO__PROVIDERS__FAKE__KIND", "openai")
            .env("MCPO__PROVIDERS__FAKE__BASE_URL", &fake.base_url)
            .env("MCPO__PROVIDERS__FAKE__MODEL", "fake-default")
            .env("MCPO__PROVIDERS__FAKE__API_KEY_ENV", "MCPO_TEST_KEY_SPEND")
            .env("MCPO_TEST_KEY_SPEND", "sk-test")
            // 100 prompt tokens at $100 per million: $0.01 per call.
            .env("MCPO__PROVIDERS__FAKE__INPUT_PRICE_PER_MTOK", "100.0")
            .env("MCPO__PROVIDERS__FAKE__OUTPUT_PRICE_PER_MTOK", "0.0")
            .env("MCPO__EXECUTION__DEFAULT_PROVIDER", "fake")
            .start()
    };
    let s = start();
    let id = s
        .create_as(
            &spender,
            json!({"pattern": "research", "task": "spending",
                   "config": {"num_agents": 5, "max_concurrent_agents": 1}}),
        )
        .await;
    let t = std::time::Instant::now();
    let wf = loop {
        let wf = s
            .get_as(&spender, &format!("/v1/workflows/{id}"))
            .await
            .body;
        if wf["status"] == "failed" {
            break wf;
        }
        assert!(t.elapsed() < 30 * SEC, "still {}", wf["status"]);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(wf["error"]["code"], "spend_limit_reached");
    assert!(wf["error"]["message"]
        .as_str()
        .unwrap()
        .contains("budget_usd_per_day"));
    let spent = wf["total_cost_usd"].as_f64().unwrap();
    assert!((spent - 0.03).abs() < 1e-9, "{spent}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        fake.requests_for("spending").len(),
        3,
        "no calls after the limit"
    );

    let r = s
        .post_as(&spender, "/v1/workflows", &research("more", 3))
        .await;
    assert_eq!((r.status, code(&r).as_str()), (429, "spend_limit_reached"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until UTC midnight: {retry}");
    s.create_as(&other, research("someone else", 3)).await;
    drop(s);

    // The spend is read back from the store at start.
    let s = start();
    let r = s
        .post_as(&spender, "/v1/workflows", &research("after restart", 3))
        .await;
    assert_eq!((r.status, code(&r).as_str()), (429, "spend_limit_reached"));
}

#[tokio::test]
async fn json_routes_refuse_other_content_types_and_cors_is_off_by_default() {
    let s = server().start();
    let form = s
        .http
        .post(s.url("/v1/workflows"))
        .header("content-type", "text/plain")
        .body(r#"{"pattern": "research", "task": "csrf"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(form.status().as_u16(), 415);
    let body: serde_json::Value = form.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let form = s
        .http
        .post(s.url("/tools/orchestrate_research"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("task=csrf")
        .send()
        .await
        .expect("POST");
    assert_eq!(form.status().as_u16(), 415);
    let none = s
        .http
        .post(s.url("/v1/workflows"))
        .body(r#"{"pattern": "research", "task": "csrf"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(none.status().as_u16(), 415);
    // Nothing was created by any of them.
    assert_eq!(
        s.get("/v1/workflows").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // An empty POST (cancel) needs no Content-Type.
    let id = s.create(research("cancel me", 3)).await;
    let c = s
        .call(
            Method::POST,
            &format!("/v1/workflows/{id}/cancel"),
            None,
            None,
        )
        .await;
    assert_eq!(c.status, 200);

    let cross = s
        .http
        .get(s.url("/v1/workflows"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET");
    assert!(cross.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn configured_origins_get_cors_and_others_do_not() {
    let k = key("web", &["read"]);
    let s = server()
        .keys(&[&k])
        .env("MCPO__SERVER__CORS_ALLOWED_ORIGINS", "https://ops.example")
        .start();
    let pre = s
        .http
        .request(Method::OPTIONS, s.url("/v1/workflows"))
        .header("origin", "https://ops.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(pre.status().as_u16(), 200);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
    let get = s
        .http
        .get(s.url("/v1/workflows"))
        .header("origin", "https://ops.example")
        .bearer_auth(&k.token)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status().as_u16(), 200);
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
    let evil = s
        .http
        .request(Method::OPTIONS, s.url("/v1/workflows"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("OPTIONS");
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

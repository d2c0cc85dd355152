//! Hostile input against capped resources, secrets, the SSRF guard and provider
//! advice (the Retry-After clamp): each test feeds the attack, asserts the refusal
//! or the clean failure, then runs a normal workflow.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::fake_openai::{Behaviour, FakeOpenAi};
use crate::common::prometheus::{metric, wait_metric};
use crate::common::receiver::Receiver;
use crate::common::*;

const KEY: &str = "sk-test-CAPS-0a1b2c3d4e5f6a7b8c9d";

fn with_fake(b: Builder, fake: &FakeOpenAi, key_env: &str) -> Builder {
    b.fake_provider(fake, key_env, KEY)
        .env("MCPO__PROVIDERS__FAKE__RETRY_BACKOFF", "20ms")
}

/// A search workflow of one agent that completes: the service still works.
async fn a_normal_workflow_completes(s: &Server) {
    let id = s
        .create(json!({"pattern": "search", "task": "after the attack",
                       "config": {"agent_types": ["text"]}}))
        .await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    assert!(!s.log().contains("panicked"), "no panic in the log");
}

#[tokio::test]
async fn sse_streams_are_capped_in_total_and_per_workflow() {
    let fake = FakeOpenAi::start();
    // The two workflows under attack wait on their provider until cancelled.
    fake.set(Behaviour::Hang(Duration::from_secs(120)));
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_CAPS_SSE")
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "120s")
        .env("MCPO__LIMITS__MAX_SSE_STREAMS", 3)
        .env("MCPO__LIMITS__MAX_SSE_STREAMS_PER_WORKFLOW", 2)
        .start();
    let a = s.create(research("streams a", 3)).await;
    let b = s.create(research("streams b", 3)).await;
    let open = |id: &str| {
        s.http
            .get(s.url(&format!("/v1/workflows/{id}/events")))
            .send()
    };
    let a1 = open(&a).await.unwrap();
    let a2 = open(&a).await.unwrap();
    assert_eq!((a1.status().as_u16(), a2.status().as_u16()), (200, 200));

    // A third stream of the same workflow, by either route.
    let r = s.get(&format!("/v1/workflows/{a}/events")).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "too_many_streams");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("limits.max_sse_streams_per_workflow"), "{msg}");
    assert!(r.headers.contains_key("retry-after"));
    let r = s.get(&format!("/stream/{a}")).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(
        (r.body["success"].as_bool(), r.body["code"].as_str()),
        (Some(false), Some("too_many_streams"))
    );

    // The total: any workflow, even one that does not exist.
    let b1 = open(&b).await.unwrap();
    assert_eq!(b1.status().as_u16(), 200);
    for path in [
        format!("/v1/workflows/{b}/events"),
        "/stream/wf_nope".into(),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, 429, "{path}: {:?}", r.body);
        assert!(r.body.to_string().contains("(limits.max_sse_streams)"));
    }
    assert_eq!(metric(&s, "sse_streams_open").await, 3.0);
    assert_eq!(metric(&s, "sse_streams_refused_total").await, 4.0);

    // Ending a workflow ends its streams and frees their places.
    assert_eq!(
        s.post(&format!("/v1/workflows/{a}/cancel"), &json!({}))
            .await
            .status,
        200
    );
    for r in [a1, a2] {
        let text = tokio::time::timeout(10 * SEC, r.text())
            .await
            .unwrap()
            .unwrap();
        let last = parse_sse(&text).pop().unwrap();
        assert_eq!(last.event.as_deref(), Some("workflow_cancelled"));
    }
    wait_metric(&s, "sse_streams_open", 1.0).await;
    let replay = s.sse(&a, None, 10 * SEC).await;
    assert_eq!(
        replay.last().and_then(|e| e.event.as_deref()),
        Some("workflow_cancelled")
    );
    drop(b1);
    s.post(&format!("/v1/workflows/{b}/cancel"), &json!({}))
        .await;

    fake.set(Behaviour::Ok {
        prompt_tokens: 10,
        completion_tokens: 5,
    });
    a_normal_workflow_completes(&s).await;
}

#[tokio::test]
async fn a_delivery_flood_is_capped_and_every_delivery_is_recorded() {
    let recv = Receiver::start();
    recv.delay(Duration::from_millis(800));
    let s = server()
        .webhooks_to("127.0.0.1")
        .latency_ms(5)
        .env("MCPO__WEBHOOKS__MAX_PENDING", 2)
        .env("MCPO__WEBHOOKS__MAX_CONCURRENT", 1)
        .env("MCPO__WEBHOOKS__MAX_PER_HOST", 1)
        .start();
    let r = s.post("/v1/webhooks", &json!({"url": recv.url})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // Every event of this workflow becomes a delivery, far faster than the
    // receiver takes them.
    let id = s.create(research("flood", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let events = s.sse(&id, None, 10 * SEC).await;
    let t = Instant::now();
    let all = loop {
        let d = deliveries(&s, &id).await;
        if d.len() == events.len() && d.iter().all(|x| x["status"] != "pending") {
            break d;
        }
        assert!(t.elapsed() < 60 * SEC, "deliveries not final: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seqs: HashSet<u64> = all
        .iter()
        .map(|d| d["event_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), events.len(), "one record per event, none lost");
    let given_up: Vec<&Value> = all
        .iter()
        .filter(|d| d["status"] == "failed")
        .filter(|d| {
            d["attempts"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("webhooks.max_pending"))
        })
        .collect();
    let delivered = all.iter().filter(|d| d["status"] == "delivered").count();
    assert!(!given_up.is_empty(), "the cap was reached: {all:?}");
    assert!(delivered >= 1);
    assert_eq!(given_up.len() + delivered, events.len(), "{all:?}");
    assert_eq!(
        metric(&s, "webhook_deliveries_overflowed_total").await,
        given_up.len() as f64
    );
    let got = recv.received();
    assert_eq!(got.len(), delivered);
    // One client, one pooled connection: every delivery came from one port.
    let ports: HashSet<u16> = got.iter().map(|r| r.peer_port).collect();
    assert_eq!(ports.len(), 1, "connections were not reused: {ports:?}");

    a_normal_workflow_completes(&s).await;
}

#[tokio::test]
async fn the_ssrf_guard_refuses_every_special_range_and_ignores_proxies() {
    let proxy = Receiver::start();
    let recv = Receiver::start();
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let mut b = server().webhooks_to("127.0.0.1").latency_ms(5);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        b = b.env(var, &proxy_url);
    }
    let s = b.env("NO_PROXY", "").env("no_proxy", "").start();
    for host in [
        "10.1.2.3",
        "[64:ff9b::a01:203]",
        "[64:ff9b:1::a01:203]",
        "[2002:a01:203::1]",
        "[::10.1.2.3]",
        "[::ffff:169.254.169.254]",
        "[fec0::1]",
        "[fd00:ec2::254]",
        "198.18.0.1",
        "240.0.0.1",
        "192.0.0.170",
        "100.64.0.1",
        "224.0.0.251",
        "[ff02::1]",
        "255.255.255.255",
    ] {
        let url = format!("https://{host}/hook");
        let r = s.post("/v1/webhooks", &json!({"url": url})).await;
        assert_eq!(r.status, 400, "{url}: {:?}", r.body);
        assert_eq!(r.body["error"]["field"], "url");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("refused"), "{url}: {msg}");
        let r = s
            .post(
                "/v1/workflows",
                &json!({"pattern": "search", "task": "x", "webhook": {"url": url}}),
            )
            .await;
        assert_eq!(r.status, 400, "{url}: {:?}", r.body);
    }
    // A name that resolves to a private address: refused with the one message
    // every refused destination gets, the address and its kind unsaid.
    let r = s
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://localhost:{}/hook", recv.port)}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert_eq!(msg, mcp_orchestrator::events::address_policy::REFUSED);
    assert!(
        !msg.contains("127.0.0.1") && !msg.contains("loopback"),
        "{msg}"
    );
    assert!(s.get("/v1/webhooks").await.body["items"]
        .as_array()
        .unwrap()
        .is_empty());

    // The proxy variables are ignored: the delivery goes straight to the receiver.
    let r = s
        .post(
            "/v1/webhooks",
            &json!({"url": recv.url, "events": ["workflow_completed"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    a_normal_workflow_completes(&s).await;
    recv.wait_for(1, 20 * SEC).await;
    assert!(proxy.received().is_empty(), "a delivery went to the proxy");
}

#[tokio::test]
async fn a_providers_retry_after_is_clamped_to_the_call_timeout() {
    let fake = FakeOpenAi::start();
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_CAPS_RA")
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "1s")
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 1)
        .start();
    for (i, advice) in [
        "1e20",
        "18446744073709551616",
        "-5",
        "NaN",
        "soon, maybe",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
    ]
    .iter()
    .enumerate()
    {
        fake.set(Behaviour::RetryAfter(advice.to_string()));
        let task = format!("retry-after-{i}");
        let id = s
            .create(json!({"pattern": "search", "task": task,
                           "config": {"agent_types": ["text"], "enable_synthesis": false}}))
            .await;
        s.wait_status(&id, "failed", 30 * SEC).await;
        let reqs = fake.requests_for(&task);
        assert_eq!(reqs.len(), 2, "{advice}: one attempt + one retry");
        let gap = reqs[1].at - reqs[0].at;
        assert!(
            gap < Duration::from_secs(3),
            "{advice}: waited {gap:?}, more than the 1 s call timeout allows"
        );
        let res = s.get(&format!("/v1/workflows/{id}/result")).await.body;
        let err = res["agent_results"][0]["error"].as_str().unwrap();
        assert!(
            err.contains("HTTP 429") && err.contains("after 2 attempts"),
            "{err}"
        );
    }
    fake.set(Behaviour::Ok {
        prompt_tokens: 10,
        completion_tokens: 5,
    });
    a_normal_workflow_completes(&s).await;
}

#[tokio::test]
async fn secrets_stay_hidden_in_every_form() {
    // A provider that echoes the key right where error text is shortened.
    let fake = FakeOpenAi::start();
    fake.set(Behaviour::EchoAuthAfter(280));
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_CAPS_SEC")
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 0)
        .start();
    let id = s
        .create(json!({"pattern": "search", "task": "echo at the edge",
                       "config": {"agent_types": ["text"], "enable_synthesis": false}}))
        .await;
    s.wait_status(&id, "failed", 30 * SEC).await;
    let res = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    let err = res["agent_results"][0]["error"].as_str().unwrap();
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(
        !err.contains(&KEY[..12]),
        "a prefix of the key leaked: {err}"
    );
    assert!(!s.log().contains(&KEY[..12]));

    // Passwords in every form of connection string: check-config shows none, and
    // a start-up that fails on the database names it without the password.
    for (key, url) in [
        (
            "MCPO__POSTGRES__URL",
            "host=127.0.0.1 port=1 user=postgres password=hunter2-kv dbname=x",
        ),
        (
            "MCPO__POSTGRES__URL",
            "postgres://postgres@127.0.0.1:1/x?sslmode=disable&password=hunter2-query",
        ),
        (
            "MCPO__POSTGRES__URL",
            "postgres://postgres:hunter2-userinfo@127.0.0.1:1/x",
        ),
        (
            "MCPO__REDIS__URL",
            "redis://127.0.0.1:1/0?pass=hunter2-pass",
        ),
    ] {
        let bind = ("MCPO__SERVER__BIND", "127.0.0.1:0");
        let (code, out, err) = run_bin(&["check-config"], &[bind, (key, url)], &new_dir());
        let out = out + &err;
        assert!(!out.contains("hunter2"), "{url}: {out}");
        if code == 0 {
            assert!(out.contains("***"), "{url}: {out}");
        }
        if key == "MCPO__POSTGRES__URL" {
            let timeout = ("MCPO__POSTGRES__CONNECT_TIMEOUT", "2s");
            let (code, out, err) = run_bin(&[], &[bind, (key, url), timeout], &new_dir());
            let out = out + &err;
            assert_ne!(code, 0, "{url}: {out}");
            assert!(out.contains("postgres.url"), "{url}: {out}");
            assert!(!out.contains("hunter2"), "{url}: {out}");
        }
    }
    fake.set(Behaviour::Ok {
        prompt_tokens: 10,
        completion_tokens: 5,
    });
    a_normal_workflow_completes(&s).await;
}

#[tokio::test]
async fn webhook_subscriptions_are_capped_and_a_finished_workflows_leave() {
    let recv = Receiver::start();
    let fake = FakeOpenAi::start();
    fake.set(Behaviour::Hang(Duration::from_secs(120)));
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_CAPS_WH")
        .webhooks_to("127.0.0.1")
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "120s")
        .env("MCPO__WEBHOOKS__MAX_SUBSCRIPTIONS", 3)
        .env("MCPO__WEBHOOKS__MAX_SUBSCRIPTIONS_PER_WORKFLOW", 2)
        .start();
    let a = s.create(research("hooks a", 3)).await;
    let register = |n: u32| {
        json!({"task_id": a, "webhook_url": format!("{}?n={n}", recv.url),
               "secret": "old-secret-1", "events": ["workflow_cancelled"]})
    };
    for n in 0..2 {
        let r = s.post("/webhook/register", &register(n)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // A third of the same workflow (old route, old shape).
    let r = s.post("/webhook/register", &register(2)).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(
        (r.body["success"].as_bool(), r.body["code"].as_str()),
        (Some(false), Some("too_many_webhooks"))
    );
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("webhooks.max_subscriptions_per_workflow"));
    // The total: a global one fits, then nothing does, not even a create's own.
    let g = s.post("/v1/webhooks", &json!({"url": recv.url})).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let r = s.post("/v1/webhooks", &json!({"url": recv.url})).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "too_many_webhooks");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("(webhooks.max_subscriptions)"));
    let before = s.get("/v1/workflows").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    let r = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "search", "task": "x", "webhook": {"url": recv.url}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (429, Some("too_many_webhooks"))
    );
    let after = s.get("/v1/workflows").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused create stores nothing");
    assert_eq!(metric(&s, "webhook_subscriptions").await, 3.0);
    assert_eq!(metric(&s, "webhook_subscriptions_refused_total").await, 3.0);

    // Once the workflow has finished and its deliveries are final, its own
    // subscriptions leave and free their places; the global one stays.
    assert_eq!(
        s.post(&format!("/v1/workflows/{a}/cancel"), &json!({}))
            .await
            .status,
        200
    );
    let t = Instant::now();
    loop {
        let items = s.get("/v1/webhooks").await.body["items"]
            .as_array()
            .unwrap()
            .clone();
        if items.len() == 1 {
            assert_eq!(items[0]["id"], g.body["id"]);
            break;
        }
        assert!(t.elapsed() < 20 * SEC, "subscriptions left: {items:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let own: Vec<Value> = deliveries(&s, &a)
        .await
        .into_iter()
        .filter(|d| d["event"] == "workflow_cancelled")
        .collect();
    assert_eq!(
        own.len(),
        3,
        "two own subscriptions and the global one: {own:?}"
    );
    assert!(own.iter().all(|d| d["status"] == "delivered"));
    // A finished workflow takes no new subscription.
    let r = s.post("/webhook/register", &register(3)).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("already_finished"))
    );

    let id = g.body["id"].as_str().unwrap();
    s.request(reqwest::Method::DELETE, &format!("/v1/webhooks/{id}"))
        .await;
    fake.set(Behaviour::Ok {
        prompt_tokens: 10,
        completion_tokens: 5,
    });
    a_normal_workflow_completes(&s).await;
}

//! Redis persistence: the mirror's contents, TTL, compression, restore,
//! outages and a full queue, health, URLs. Each test uses its own key prefix on the
//! shared Redis, or its own `redis-server` when it must stop Redis.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::receiver::Receiver;
use crate::common::redis_util::*;
use crate::common::*;

fn with_redis(b: Builder, url: &str, prefix: &str) -> Builder {
    b.env("MCPO__REDIS__URL", url)
        .env("MCPO__REDIS__KEY_PREFIX", prefix)
}

/// Asserts that Redis holds exactly what the API (memory or primary store) shows
/// for a finished workflow: record, event log, result and deliveries.
async fn assert_mirrored(s: &Server, m: &mut Mirror, id: &str) {
    let api = s.workflow(id).await;
    assert_eq!(m.record(id).await.as_ref(), Some(&api), "record of {id}");
    let sse: Vec<Value> = s
        .sse(id, None, 30 * SEC)
        .await
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert!(!sse.is_empty());
    assert_eq!(m.events(id).await, sse, "event log of {id}");
    let r = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(r.status, 200);
    let (stored, _) = m.result(id).await.expect("result in redis");
    assert_eq!(stored, r.body, "result of {id}");
    let d = s.get(&format!("/v1/workflows/{id}/deliveries")).await;
    let mut api_d: Vec<Value> = d.body["items"].as_array().cloned().unwrap_or_default();
    let mut red_d = m.deliveries(id).await;
    let by_id = |a: &Value, b: &Value| a["id"].as_str().cmp(&b["id"].as_str());
    api_d.sort_by(by_id);
    red_d.sort_by(by_id);
    assert_eq!(red_d, api_d, "deliveries of {id}");
}

async fn health(s: &Server) -> Value {
    s.get("/health").await.body
}

/// Polls `/health` until `pred` holds for the redis component.
async fn wait_redis(
    s: &Server,
    what: &str,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let t = Instant::now();
    loop {
        let h = health(s).await;
        if pred(&h["components"]["redis"]) {
            return h;
        }
        assert!(
            t.elapsed() < within,
            "redis health never became {what}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn drained(s: &Server) -> Value {
    wait_redis(s, "drained and healthy", 60 * SEC, |r| {
        r["queue_depth"] == 0 && r["status"] == "healthy"
    })
    .await
}

#[tokio::test]
async fn mirrors_records_indexes_events_results_and_webhooks_with_ttl() {
    let p = SharedPrefix::new();
    let recv = Receiver::start();
    let s = with_redis(server(), SHARED_URL, &p)
        .env("MCPO__REDIS__TTL", "1h")
        .env("MCPO__WEBHOOKS__ALLOW_HOSTS", "127.0.0.1")
        .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
        .latency_ms(10)
        .start();
    // A global subscription stays; the workflow's own leaves once its delivery is
    // final (issue 12).
    let global = s
        .post(
            "/v1/webhooks",
            &json!({"url": recv.url, "events": ["workflow_failed"]}),
        )
        .await;
    assert_eq!(global.status, 201, "{:?}", global.body);
    let done = s
        .create(
            json!({"pattern": "research", "task": "consensus protocols in depth",
            "config": {"num_agents": 6},
            "webhook": {"url": recv.url, "events": ["workflow_completed"]}}),
        )
        .await;
    let search = s
        .create(json!({"pattern": "search", "task": "rust actors"}))
        .await;
    s.wait_status(&done, "completed", 60 * SEC).await;
    s.wait_status(&search, "completed", 60 * SEC).await;
    recv.wait_for(1, 30 * SEC).await;
    let t = std::time::Instant::now();
    while s.get("/v1/webhooks").await.body["items"]
        .as_array()
        .map_or(0, Vec::len)
        != 1
    {
        assert!(
            t.elapsed() < 30 * SEC,
            "the workflow's own subscription never left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = drained(&s).await;

    let mut m = Mirror::new(SHARED_URL, &p).await;
    for id in [&done, &search] {
        assert_mirrored(&s, &mut m, id).await;
    }
    // Indexes: status, pattern, completion time.
    let k = m.keys.clone();
    assert!(
        m.is_member(
            &k.status(mcp_orchestrator::domain::Status::Completed),
            &done
        )
        .await
    );
    assert!(
        !m.is_member(&k.status(mcp_orchestrator::domain::Status::Running), &done)
            .await
    );
    assert!(
        m.is_member(
            &k.pattern(mcp_orchestrator::domain::Pattern::Research),
            &done
        )
        .await
    );
    assert!(
        m.is_member(
            &k.pattern(mcp_orchestrator::domain::Pattern::Search),
            &search
        )
        .await
    );
    let score: Option<f64> = redis::AsyncCommands::zscore(&mut m.conn, k.completed(), &done)
        .await
        .unwrap();
    let completed_at = s.workflow(&done).await["completed_at"]
        .as_str()
        .unwrap()
        .to_string();
    let at = chrono::DateTime::parse_from_rfc3339(&completed_at).unwrap();
    assert_eq!(score, Some(at.timestamp_micros() as f64));
    // Webhook subscriptions mirrored: the global one, not the finished workflow's.
    let subs: Vec<String> = redis::AsyncCommands::smembers(&mut m.conn, k.webhooks())
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    assert!(
        subs[0].contains(global.body["id"].as_str().unwrap()),
        "{subs:?}"
    );

    // TTL: every key of a finished workflow expires within redis.ttl; active ones never.
    for key in [
        k.workflow(&done),
        k.events(&done),
        k.result(&done),
        k.deliveries(&done),
    ] {
        let t = m.pttl(&key).await;
        assert!(t > 0 && t <= 3_600_000, "{key}: pttl {t}");
    }

    // Compression: a typical result stores in under half its JSON size.
    let (json_val, stored_len) = m.result(&done).await.unwrap();
    let json_len = serde_json::to_vec(&json_val).unwrap().len();
    assert!(
        stored_len * 2 < json_len,
        "stored {stored_len} of {json_len}"
    );
    let r = &h["components"]["redis"];
    assert!(r["compression_ratio"].as_f64().unwrap() > 2.0, "{r}");
    assert_eq!(r["compression"], "zstd");
    assert!(s.log().contains("result compressed for redis"));

    // Health: latency, keys under the prefix, memory.
    let h = health(&s).await;
    let r = &h["components"]["redis"];
    assert_eq!(h["status"], "healthy");
    assert!(r["latency_ms"].as_f64().unwrap() >= 0.0, "{r}");
    assert!(r["keys"].as_u64().unwrap() >= 12, "{r}");
    // The plan's top-level keys beside the components.
    assert_eq!(h["redis"], "healthy");
    assert_eq!(h["redis_keys"], r["keys"]);
    assert!(r["used_memory_bytes"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["key_prefix"], &*p);
}

#[tokio::test]
async fn active_workflows_carry_no_ttl_until_they_finish() {
    let p = SharedPrefix::new();
    let s = with_redis(server(), SHARED_URL, &p)
        .env("MCPO__REDIS__TTL", "1h")
        .latency_ms(60_000)
        .start();
    let slow = s.create(research("slow one", 3)).await;
    s.wait_status(&slow, "running", 30 * SEC).await;
    drained(&s).await;
    let mut m = Mirror::new(SHARED_URL, &p).await;
    let k = m.keys.clone();
    assert!(
        m.is_member(&k.status(mcp_orchestrator::domain::Status::Running), &slow)
            .await
    );
    for key in [k.workflow(&slow), k.events(&slow)] {
        assert_eq!(
            m.pttl(&key).await,
            -1,
            "{key} of an active workflow has a TTL"
        );
    }
    // Cancelling makes it terminal: now all its keys expire, within redis.ttl.
    let r = s
        .post(&format!("/v1/workflows/{slow}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200);
    drained(&s).await;
    for key in [k.workflow(&slow), k.events(&slow), k.result(&slow)] {
        let t = m.pttl(&key).await;
        assert!(t > 0 && t <= 3_600_000, "cancelled: {key}: pttl {t}");
    }
    assert!(
        !m.is_member(&k.status(mcp_orchestrator::domain::Status::Running), &slow)
            .await
    );
    assert!(
        m.is_member(
            &k.status(mcp_orchestrator::domain::Status::Cancelled),
            &slow
        )
        .await
    );
}

#[tokio::test]
async fn zlib_is_selectable_and_round_trips() {
    let p = SharedPrefix::new();
    let s = with_redis(server(), SHARED_URL, &p)
        .env("MCPO__REDIS__COMPRESSION", "zlib")
        .env("MCPO__REDIS__COMPRESSION_LEVEL", "6")
        .latency_ms(5)
        .start();
    let id = s.create(research("zlib please", 5)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    drained(&s).await;
    let mut m = Mirror::new(SHARED_URL, &p).await;
    let raw: Vec<u8> = redis::AsyncCommands::get(&mut m.conn, m.keys.result(&id))
        .await
        .unwrap();
    assert_eq!(raw[0], b'F', "zlib tag");
    assert_mirrored(&s, &mut m, &id).await;
    assert_eq!(
        health(&s).await["components"]["redis"]["compression"],
        "zlib"
    );
}

#[tokio::test]
async fn restores_from_redis_and_falls_back_to_the_store_when_flushed() {
    let p = SharedPrefix::new();
    let dir = new_dir();
    let base = || {
        with_redis(server(), SHARED_URL, &p)
            .dir(&dir)
            .env("MCPO__SHUTDOWN__GRACE", "1s")
    };
    let mut s = base().latency_ms(5).start();
    let mut done = Vec::new();
    for i in 0..4 {
        done.push(s.create(research(&format!("task {i}"), 3)).await);
    }
    for id in &done {
        s.wait_status(id, "completed", 60 * SEC).await;
    }
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);
    // An unfinished workflow: interrupted at shutdown, resumed at start.
    let mut s = base().latency_ms(60_000).start();
    let open = s.create(research("left running", 3)).await;
    s.wait_status(&open, "running", 30 * SEC).await;
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);
    std::fs::remove_file(dir.join("server.log")).unwrap();
    let before: Vec<Value> = {
        let s = base().latency_ms(60_000).start();
        let mut v = Vec::new();
        for id in &done {
            v.push(s.workflow(id).await);
        }
        assert!(s.log().contains("restored state from redis"), "{}", s.log());
        assert_eq!(s.workflow(&open).await["status"], "running");
        let mut s = s;
        s.signal(libc::SIGTERM);
        s.wait_exit(30 * SEC);
        v
    };

    // FLUSH the prefix: Redis is empty, the store still has everything.
    assert!(flush_prefix(SHARED_URL, &p).await > 0);
    std::fs::remove_file(dir.join("server.log")).unwrap();
    let s = base().latency_ms(60_000).start();
    let log = s.log();
    assert!(log.contains("restored state from sqlite"), "{log}");
    assert!(log.contains("redis cannot restore every workflow"), "{log}");
    for (id, want) in done.iter().zip(&before) {
        assert_eq!(&s.workflow(id).await, want);
    }
    assert_eq!(s.workflow(&open).await["status"], "running");
    // Redis was refilled from the store: it mirrors again.
    drained(&s).await;
    let mut m = Mirror::new(SHARED_URL, &p).await;
    for id in &done {
        assert_mirrored(&s, &mut m, id).await;
    }
    assert!(m.record(&open).await.is_some());
}

#[tokio::test]
async fn survives_redis_outages_and_mirrors_exactly_what_the_store_holds() {
    let mut r = PrivateRedis::new(&[]);
    r.start();
    let p = prefix();
    let s = with_redis(server(), &r.url(), &p).latency_ms(20).start();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(s.create(research(&format!("before {i}"), 3)).await);
    }
    for id in &ids {
        s.wait_status(id, "completed", 60 * SEC).await;
    }
    drained(&s).await;

    // Two outages: one where Redis keeps its data (queued writes are flushed),
    // one where it comes back empty (refilled from the store, then flushed).
    for (round, keep_data) in [(0, true), (1, false)] {
        r.stop(keep_data);
        let mut during = Vec::new();
        for i in 0..3 {
            during.push(
                s.create(research(&format!("round {round} during {i}"), 3))
                    .await,
            );
        }
        let h = wait_redis(&s, "degraded", 30 * SEC, |c| c["status"] == "degraded").await;
        assert_eq!(h["status"], "degraded", "{h}");
        assert!(h["components"]["redis"]["error"].is_string(), "{h}");
        for id in &during {
            s.wait_status(id, "completed", 60 * SEC).await;
        }
        // The service keeps answering while Redis is away.
        assert_eq!(s.get("/v1/workflows").await.status, 200);
        assert!(
            health(&s).await["components"]["redis"]["queue_depth"]
                .as_u64()
                .unwrap()
                > 0
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        r.start();
        let h = drained(&s).await;
        let c = &h["components"]["redis"];
        assert!(c["persister_restarts"].as_u64().unwrap() > round, "{c}");
        assert!(c["write_failures"].as_u64().unwrap() > round, "{c}");
        ids.extend(during);
    }
    assert!(s.log().contains("redis persister restarting"));
    assert!(s.log().contains("refilling it from the primary store"));
    // The restarts are counted in a metric, as are the failures; memory is exported.
    let metrics = s
        .get("/metrics")
        .await
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    let m = crate::common::prometheus::samples(&metrics);
    let value = |name: &str| {
        m.get(name)
            .copied()
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert!(value("persister_restarts_total{persister=\"redis\"}") >= 2.0);
    assert!(value("persister_failures_total{persister=\"redis\"}") >= 2.0);
    assert_eq!(value("persister_queue_depth{persister=\"redis\"}"), 0.0);
    assert!(value("redis_memory_bytes") > 0.0);
    assert!(value("redis_compression_ratio") > 2.0);
    let mut m = Mirror::new(&r.url(), &p).await;
    for id in &ids {
        assert_mirrored(&s, &mut m, id).await;
    }
}

#[tokio::test]
async fn a_full_mirror_queue_refuses_creates_with_503_and_loses_nothing() {
    // Nothing listens on the port yet: Redis is down from the start.
    let mut r = PrivateRedis::new(&[]);
    let p = prefix();
    let s = with_redis(server(), &r.url(), &p)
        .env("MCPO__REDIS__MAX_QUEUE", "5")
        .latency_ms(5)
        .start();
    let mut ids = Vec::new();
    let refused = loop {
        let resp = s.post("/v1/workflows", &research("queue me", 3)).await;
        if resp.status != 201 {
            break resp;
        }
        ids.push(resp.body["id"].as_str().unwrap().to_string());
        assert!(ids.len() < 10, "creates never refused");
    };
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "store_unavailable");
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("redis.max_queue"));
    assert_eq!(s.get("/ready").await.status, 503);
    for id in &ids {
        s.wait_status(id, "completed", 60 * SEC).await;
    }
    r.start();
    drained(&s).await;
    let id = s.create(research("admitted again", 3)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    ids.push(id);
    drained(&s).await;
    let mut m = Mirror::new(&r.url(), &p).await;
    for id in &ids {
        assert_mirrored(&s, &mut m, id).await;
    }
}

#[tokio::test]
async fn urls_with_credentials_and_db_work_and_never_leak_the_password() {
    let pw = "s3cret-Pa55-for-test";
    let mut r = PrivateRedis::new(&["--requirepass", pw]);
    r.start();
    let p = prefix();
    let url = format!("redis://default:{pw}@127.0.0.1:{}/3", r.port);
    let s = with_redis(server(), &url, &p)
        .env("MCPO__LOG__LEVEL", "debug")
        .latency_ms(5)
        .start();
    let id = s.create(research("with a password", 3)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let h = drained(&s).await;
    // Database 3 holds it.
    let mut m = Mirror::new(&url, &p).await;
    assert_mirrored(&s, &mut m, &id).await;
    let in_db0: Option<String> = {
        let mut c = conn(&format!("redis://default:{pw}@127.0.0.1:{}/0", r.port)).await;
        redis::AsyncCommands::get(&mut c, m.keys.workflow(&id))
            .await
            .unwrap()
    };
    assert!(in_db0.is_none());
    let shown = h["components"]["redis"]["url"].as_str().unwrap();
    assert!(shown.contains("***") && !shown.contains(pw), "{shown}");
    // Outage: errors are logged, the password is not.
    r.stop(true);
    let during = s.create(research("while redis is away", 3)).await;
    s.wait_status(&during, "completed", 60 * SEC).await;
    wait_redis(&s, "failing", 30 * SEC, |c| {
        c["write_failures"].as_u64() > Some(0)
    })
    .await;
    r.start();
    drained(&s).await;
    let log = s.log();
    assert!(
        log.contains("redis mirror write failed") || log.contains("redis persister restarting")
    );
    assert!(!log.contains(pw), "password in the log");
    assert!(!health(&s).await.to_string().contains(pw));

    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .env("MCPO__REDIS__URL", &url)
        .current_dir(new_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("redis://default:***@127.0.0.1"), "{text}");
    assert!(!text.contains(pw), "{text}");
}

#[tokio::test]
async fn malformed_url_is_a_config_error_naming_the_key() {
    let pw = "hunter2-xyz";
    for args in [vec!["check-config"], vec![]] {
        for url in [
            format!("redis://:{pw}@host:notaport"),
            "http://127.0.0.1:6379".to_string(),
        ] {
            let out = std::process::Command::new(BIN)
                .args(&args)
                .env("MCPO__REDIS__URL", &url)
                .env("MCPO__SERVER__BIND", "127.0.0.1:0")
                .current_dir(new_dir())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{url}: {err}");
            assert!(err.contains("redis.url"), "{err}");
            assert!(!err.contains(pw), "{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[tokio::test]
async fn rediss_url_starts_without_panic_and_reports_degraded() {
    // A plain Redis behind a rediss:// URL: the TLS handshake fails, the service
    // runs on, degraded, and no crypto-provider panic happens.
    let mut r = PrivateRedis::new(&[]);
    r.start();
    let p = prefix();
    let s = with_redis(server(), &format!("rediss://127.0.0.1:{}", r.port), &p)
        .latency_ms(5)
        .start();
    let h = wait_redis(&s, "degraded", 30 * SEC, |c| c["status"] == "degraded").await;
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["redis"], "unavailable");
    assert_eq!(h["redis_keys"], 0);
    let id = s.create(research("over tls", 3)).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[tokio::test]
async fn restores_from_redis_with_postgresql_as_the_primary_store() {
    let db = crate::common::pg::PgDb::new();
    let p = SharedPrefix::new();
    let dir = new_dir();
    let base = || {
        with_redis(server(), SHARED_URL, &p)
            .dir(&dir)
            .env("MCPO__POSTGRES__URL", &db.url)
            .env("MCPO__SHUTDOWN__GRACE", "1s")
    };
    let mut s = base().latency_ms(5).start();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(s.create(research(&format!("pg task {i}"), 3)).await);
    }
    let mut want = Vec::new();
    for id in &ids {
        want.push(s.wait_status(id, "completed", 60 * SEC).await);
    }
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);
    assert!(
        s.log().contains("restored state from postgres"),
        "{}",
        s.log()
    );
    std::fs::remove_file(dir.join("server.log")).unwrap();
    let s = base().latency_ms(5).start();
    assert!(s.log().contains("restored state from redis"), "{}", s.log());
    for (id, w) in ids.iter().zip(&want) {
        assert_eq!(&s.workflow(id).await, w);
    }
}

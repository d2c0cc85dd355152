//! Several instances on one PostgreSQL: three real servers on loopback ports
//! sharing a database of their own. Global admission, failover after SIGKILL,
//! SSE and cancel across instances, fencing of an owner that wakes after losing
//! its leases (SIGSTOP), and hand-over on SIGTERM.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::fake_openai::FakeOpenAi;
use crate::common::pg::PgDb;
use crate::common::{self, crash, server, Builder, Server, SEC};
use serde_json::{json, Value};

/// A cluster member on `db` with a short lease, so failover is quick to test.
fn member(db: &PgDb, ttl: &str) -> Builder {
    server()
        .env("MCPO__POSTGRES__URL", &db.url)
        .env("MCPO__CLUSTER__LEASE_TTL", ttl)
}

fn research(task: &str) -> Value {
    json!({"pattern": "research", "task": task,
           "config": {"num_agents": 3, "synthesis_group_size": 3, "max_concurrent_agents": 3}})
}

/// `n` as a u64 read from one psql row.
fn count(db: &PgDb, sql: &str) -> u64 {
    db.query(sql)
        .parse()
        .unwrap_or_else(|_| panic!("a count from {sql}"))
}

async fn members(s: &Server) -> Vec<Value> {
    let h = s.get("/health").await;
    h.body["components"]["cluster"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn health_lists_every_member_with_its_heartbeat() {
    let db = PgDb::new();
    let a = member(&db, "3s").start();
    let b = member(&db, "3s").start();
    let h = a.get("/health").await;
    let c = &h.body["components"]["cluster"];
    assert_eq!(c["status"], "healthy", "{c}");
    assert_eq!(c["instance_id"], common::instance_id(&a.dir));
    let ids: HashSet<String> = members(&b)
        .await
        .iter()
        .filter(|m| m["alive"] == true)
        .map(|m| m["id"].as_str().unwrap_or("").to_string())
        .collect();
    let want: HashSet<String> = [&a, &b]
        .iter()
        .map(|s| common::instance_id(&s.dir))
        .collect();
    assert_eq!(ids, want, "both members, alive, seen from either");
    for m in members(&a).await {
        assert!(
            m["last_heartbeat"].is_string() && m["started_at"].is_string(),
            "{m}"
        );
        assert!(m["address"].is_string(), "{m}");
    }
}

/// `n` creates sent to every server at once (as `key`, if given): every answer.
async fn race(
    servers: &[Server],
    n: usize,
    key: Option<&common::keys::TestKey>,
) -> Vec<common::Resp> {
    let per_server = servers.iter().enumerate().map(|(i, s)| async move {
        let bodies: Vec<Value> = (0..n).map(|j| research(&format!("race {i}/{j}"))).collect();
        let posts = bodies.iter().map(|b| async move {
            match key {
                Some(k) => s.post_as(k, "/v1/workflows", b).await,
                None => s.post("/v1/workflows", b).await,
            }
        });
        futures::future::join_all(posts).await
    });
    futures::future::join_all(per_server)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[tokio::test]
async fn three_clients_race_three_hundred_creates_and_exactly_k_are_admitted() {
    const K: usize = 20;
    let db = PgDb::new();
    // Slow calls: nothing finishes during the race.
    let start = || {
        member(&db, "10s")
            .latency_ms(60_000)
            .env("MCPO__LIMITS__MAX_ACTIVE", K)
            .start()
    };
    let servers = [start(), start(), start()];
    let results = race(&servers, 100, None).await;
    let admitted = results.iter().filter(|r| r.status == 201).count();
    let refused: Vec<_> = results.iter().filter(|r| r.status != 201).collect();
    assert_eq!(admitted, K, "exactly K admitted across three instances");
    for r in &refused {
        assert_eq!(r.status, 429, "{:?}", r.body);
        assert_eq!(
            r.body["error"]["code"], "active_limit_reached",
            "{:?}",
            r.body
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM leases"), K as u64);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM workflows WHERE status IN ('pending','running')"
        ),
        K as u64
    );
}

#[tokio::test]
async fn a_keys_max_active_holds_across_instances() {
    let db = PgDb::new();
    let k = common::keys::key("team", &["read", "write"]).with("max_active = 5");
    let file = common::keys::keys_file(&[&k]);
    let start = || {
        member(&db, "10s")
            .latency_ms(60_000)
            .env("MCPO__AUTH__KEYS_FILE", file.display())
            .start()
    };
    let servers = [start(), start(), start()];
    let results = race(&servers, 20, Some(&k)).await;
    assert_eq!(results.iter().filter(|r| r.status == 201).count(), 5);
    for r in results.iter().filter(|r| r.status != 201) {
        assert_eq!(r.body["error"]["code"], "quota_exceeded", "{:?}", r.body);
    }
}

#[tokio::test]
async fn sse_on_b_streams_every_event_of_a_workflow_running_on_a() {
    let db = PgDb::new();
    let a = member(&db, "5s").latency_ms(150).start();
    let b = member(&db, "5s").start();
    let id = a.create(research("streamed across instances")).await;
    // From the start on B, while it runs on A.
    let live = b.sse(&id, None, 60 * SEC).await;
    let stored = a.sse(&id, None, 60 * SEC).await;
    assert!(live.len() >= 8, "a whole run's events: {}", live.len());
    let seqs: Vec<u64> = live.iter().map(|e| e.id.unwrap_or(0)).collect();
    let want: Vec<u64> = (1..=live.len() as u64).collect();
    assert_eq!(seqs, want, "every event, in order, no gap, no repeat");
    assert_eq!(
        live.last().and_then(|e| e.event.clone()).as_deref(),
        Some("workflow_completed")
    );
    let data = |v: &[common::SseEvent]| v.iter().map(|e| e.data.clone()).collect::<Vec<_>>();
    assert_eq!(
        data(&live),
        data(&stored),
        "what B streamed is what A stored"
    );

    // Last-Event-ID on B, mid-run of another workflow on A.
    let id2 = a.create(research("resumed stream across instances")).await;
    a.wait_status(&id2, "running", 30 * SEC).await;
    let rest = b.sse(&id2, Some(3), 60 * SEC).await;
    assert_eq!(
        rest.first().and_then(|e| e.id),
        Some(4),
        "replay starts after 3"
    );
    let seqs: Vec<u64> = rest.iter().map(|e| e.id.unwrap_or(0)).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[tokio::test]
async fn a_cancel_via_c_stops_a_run_on_a() {
    let db = PgDb::new();
    let a = member(&db, "5s").latency_ms(60_000).start();
    let c = member(&db, "5s").start();
    let id = a.create(research("cancelled from elsewhere")).await;
    a.wait_status(&id, "running", 30 * SEC).await;
    let t = Instant::now();
    let r = c
        .post(&format!("/v1/workflows/{id}/cancel"), &json!({}))
        .await;
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    eprintln!("cancel via another instance confirmed in {took:?}");
    let on_a = a.workflow(&id).await;
    assert_eq!(on_a["status"], "cancelled", "the owner stopped it");
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM leases WHERE workflow_id = '{id}'")
        ),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM cancel_requests"), 0);
    // A second cancel anywhere: already finished.
    let again = c
        .post(&format!("/v1/workflows/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
}

/// Each workflow's stored events: seqs 1..=n, none twice, one completion.
async fn assert_event_logs_whole(ids: &[String], s: &Server) {
    // A connection of its own per stream: the server's pooled ones sat idle for
    // the whole failover and may be closed (keep-alive) just as one is reused.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(30 * SEC)
        .build()
        .expect("client");
    for id in ids {
        let text = http
            .get(s.url(&format!("/v1/workflows/{id}/events")))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("event stream")
            .text()
            .await
            .expect("whole event stream");
        let ev = common::parse_sse(&text);
        let seqs: Vec<u64> = ev.iter().map(|e| e.id.unwrap_or(0)).collect();
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, want, "{id}: every seq once, in order");
        let done = ev
            .iter()
            .filter(|e| e.event.as_deref() == Some("workflow_completed"))
            .count();
        assert_eq!(done, 1, "{id} completed exactly once");
    }
}

#[tokio::test]
async fn three_hundred_workflows_survive_sigkill_of_one_instance() {
    let fake = FakeOpenAi::start();
    // Runs of a few seconds: many are mid-run at the kill.
    fake.set_latency(Duration::from_millis(250));
    let db = PgDb::new();
    let n = 300;
    let start = || crash::with_fake(member(&db, "3s"), &fake, n).start();
    let mut servers = [start(), start(), start()];
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(30) {
        let posts = chunk.iter().map(|i| servers[i % 3].create(crash::body(*i)));
        ids.extend(futures::future::join_all(posts).await);
    }
    // SIGKILL A once a tenth is done: most of its workflows are mid-run.
    let t = Instant::now();
    while count(
        &db,
        "SELECT count(*) FROM workflows WHERE status = 'completed'",
    ) < (n / 10) as u64
    {
        assert!(t.elapsed() < 300 * SEC, "too slow before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = common::instance_id(&servers[0].dir);
    // The premise: no lease changed hands yet (an instance starved of CPU for a
    // whole lease TTL would lose its leases before the kill).
    assert_eq!(
        count(&db, "SELECT count(*) FROM leases WHERE epoch > 1"),
        0,
        "a lease was taken over before the kill: the machine is too loaded for lease_ttl"
    );
    let kill_at = Instant::now();
    servers[0].kill9();
    // What A held and had committed when it died (it writes nothing more).
    let orphans: HashSet<String> = db
        .query(&format!(
            "SELECT workflow_id FROM leases WHERE instance_id = '{victim}'"
        ))
        .lines()
        .map(str::to_string)
        .collect();
    // Every workflow A created (round-robin: every third).
    let of_a: HashSet<&str> = ids.iter().step_by(3).map(String::as_str).collect();
    let committed_by_a: Vec<String> = db
        .query(&format!(
            "SELECT data->>'step_key' FROM events
             WHERE type IN ('task_decomposed', 'agent_completed', 'synthesis_completed')
               AND data->>'status' IS DISTINCT FROM 'failed'
               AND workflow_id IN (SELECT workflow_id FROM leases WHERE instance_id = '{victim}')
             UNION SELECT step_key FROM steps WHERE workflow_id IN
               (SELECT workflow_id FROM leases WHERE instance_id = '{victim}')"
        ))
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!orphans.is_empty(), "A held running workflows when it died");
    // Failover: until no lease is left with the dead instance.
    loop {
        let left = count(
            &db,
            &format!("SELECT count(*) FROM leases WHERE instance_id = '{victim}'"),
        );
        if left == 0 {
            break;
        }
        assert!(kill_at.elapsed() < 60 * SEC, "{left} leases never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "failover: {} orphaned workflows claimed {:?} after SIGKILL (lease_ttl 3s)",
        orphans.len(),
        kill_at.elapsed()
    );
    let survivor = &servers[1];
    let t = Instant::now();
    while count(
        &db,
        "SELECT count(*) FROM workflows WHERE status = 'completed'",
    ) < n as u64
    {
        assert!(
            t.elapsed() < 300 * SEC,
            "not all completed: {}",
            db.query("SELECT status, count(*) FROM workflows GROUP BY status")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&db, "SELECT count(*) FROM workflows"), n as u64);
    assert_eq!(
        count(&db, "SELECT count(*) FROM leases"),
        0,
        "no lease outlives its workflow"
    );
    assert_event_logs_whole(&ids, survivor).await;

    // No committed answer is asked for again; a key is called at most twice (the
    // second time only when A died between its answer and the commit).
    let calls = fake.calls_by_step_key();
    // The documents step calls no model: it is not among the fake's calls.
    for key in committed_by_a.iter().filter(|k| !k.ends_with("/documents")) {
        let n = calls.get(key).map_or(0, Vec::len);
        assert_eq!(
            n, 1,
            "{key}: committed by A before it died, called {n} times"
        );
    }
    let mut repeats = (0, 0);
    for (key, v) in &calls {
        assert!(v.len() <= 2, "{key} called {} times", v.len());
        if v.len() == 2 {
            let wf = key.split('/').next().unwrap_or("");
            assert!(
                of_a.contains(wf),
                "{key} repeated but its workflow was not A's"
            );
            match v[0].answered_before(kill_at) {
                true => repeats.0 += 1,
                false => repeats.1 += 1,
            }
        }
    }
    eprintln!(
        "after SIGKILL: {} committed steps of A reused, {} answered-but-uncommitted and {} in-flight calls made again, of {} calls",
        committed_by_a.len(),
        repeats.0,
        repeats.1,
        calls.values().map(Vec::len).sum::<usize>()
    );
}

/// Everything stored about these workflows, as one comparable text.
fn snapshot(db: &PgDb) -> String {
    db.query(
        "SELECT (SELECT count(*) FROM events) || ' ' || (SELECT coalesce(max(seq), 0) FROM events)
           || ' ' || (SELECT count(*) FROM steps) || ' ' || (SELECT count(*) FROM results)
           || ' ' || (SELECT md5(coalesce(string_agg(id || status || record::text, ',' ORDER BY id), '')) FROM workflows)
           || ' ' || (SELECT md5(coalesce(string_agg(workflow_id || result::text, ',' ORDER BY workflow_id), '')) FROM results)",
    )
}

/// Creates `n` research workflows on `s` and waits until each one runs.
async fn running_on(s: &Server, n: usize, label: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(s.create(research(&format!("{label} {i}"))).await);
    }
    for id in &ids {
        s.wait_status(id, "running", 30 * SEC).await;
    }
    ids
}

#[tokio::test]
async fn an_owner_resumed_after_losing_its_leases_writes_nothing() {
    let db = PgDb::new();
    // Calls take 1.5 s: A is mid-call when it is stopped.
    let mut a = member(&db, "2s").latency_ms(1500).start();
    let b = member(&db, "2s").latency_ms(50).start();
    let ids = running_on(&a, 4, "frozen owner").await;
    let victim = common::instance_id(&a.dir);
    a.signal(libc::SIGSTOP);
    // B claims them once the leases expire, and finishes them.
    for id in &ids {
        b.wait_status(id, "completed", 60 * SEC).await;
    }
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM leases WHERE instance_id = '{victim}'")
        ),
        0
    );
    let before = snapshot(&db);
    a.signal(libc::SIGCONT);
    // A wakes mid-call: its calls answer, its heartbeat finds the leases gone,
    // its writer's fence refuses every change. Give it several lease periods.
    let t = Instant::now();
    while !a
        .log()
        .contains("another instance holds these workflows now")
        && !a.log().contains("lease lost to another instance")
    {
        assert!(t.elapsed() < 30 * SEC, "A never noticed; log:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(6 * SEC).await;
    assert_eq!(snapshot(&db), before, "A wrote nothing after waking");
    for id in &ids {
        let wf = b.workflow(id).await;
        assert_eq!(wf["status"], "completed");
        assert_eq!(
            a.workflow(id).await["status"],
            "completed",
            "A reads the store's truth"
        );
    }
    // A is still a working member.
    let fresh = a.create(research("after waking")).await;
    assert!(fresh.starts_with("wf_"));
    a.kill9();
}

#[tokio::test]
async fn sigterm_hands_running_workflows_to_the_others_at_once() {
    let db = PgDb::new();
    // A 60 s lease: without a hand-over nobody could resume them for a minute.
    let mut a = member(&db, "60s").latency_ms(400).start();
    let b = member(&db, "60s").latency_ms(20).start();
    let ids = running_on(&a, 6, "handed over").await;
    let t = Instant::now();
    a.signal(libc::SIGTERM);
    let (status, _) = a.wait_exit(30 * SEC);
    assert!(status.success(), "clean exit: {status:?}");
    assert!(a.log().contains("leases handed over"), "{}", a.log());
    for id in &ids {
        b.wait_status(id, "completed", 30 * SEC).await;
    }
    let took = t.elapsed();
    assert!(
        took < 30 * SEC,
        "resumed by B long before the 60 s leases could have expired ({took:?})"
    );
    for id in &ids {
        let wf = b.workflow(id).await;
        assert!(
            wf["resumes"].as_u64().unwrap_or(0) >= 1,
            "{id} was resumed: {wf}"
        );
    }
    let alive: Vec<String> = members(&b)
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !alive.contains(&common::instance_id(&a.dir)),
        "A left the instance table"
    );
}

fn hooks(b: Builder) -> Builder {
    b.env("MCPO__WEBHOOKS__ALLOW_HOSTS", "127.0.0.1,localhost")
        .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
        .env("MCPO__WEBHOOKS__RETRY_BACKOFF", "2s")
}

/// HMAC-SHA256 over "{timestamp}.{raw body}", hex: what a receiver checks.
fn signed_with(secret: &str, r: &common::receiver::Received) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(r.header("X-MCP-Timestamp").unwrap_or("").as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let want = hex::encode(mac.finalize().into_bytes());
    r.header("X-MCP-Signature")
        .is_some_and(|s| s.trim_start_matches("sha256=") == want)
}

#[tokio::test]
async fn a_pending_delivery_of_a_dead_instance_is_retried_once_by_a_survivor() {
    let recv = common::receiver::Receiver::start();
    recv.answer(&[], 503);
    let db = PgDb::new();
    let mut a = hooks(member(&db, "2s")).latency_ms(5).start();
    let b = hooks(member(&db, "2s")).start();
    let id = a
        .create(json!({"pattern": "search", "task": "hooked across instances",
            "webhook": {"url": recv.url, "secret": "s3cret-hook", "events": ["workflow_completed"]}}))
        .await;
    recv.wait_for(1, 30 * SEC).await;
    a.kill9();
    recv.answer(&[], 200);
    let t = Instant::now();
    let d = loop {
        let r = b.get(&format!("/v1/workflows/{id}/deliveries")).await;
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        if items.len() == 1 && items[0]["status"] == "delivered" {
            break items;
        }
        assert!(t.elapsed() < 60 * SEC, "not delivered by B: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let codes: Vec<u64> = d[0]["attempts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["status_code"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(codes.last(), Some(&200), "{codes:?}");
    assert!(
        codes[..codes.len() - 1].iter().all(|c| *c == 503),
        "{codes:?}"
    );
    let got = recv.received();
    let ok: Vec<_> = got
        .iter()
        .filter(|r| signed_with("s3cret-hook", r))
        .collect();
    assert_eq!(
        ok.len(),
        got.len(),
        "every attempt signed with the subscription's secret"
    );
    assert_eq!(
        db.query("SELECT claimed_by FROM deliveries"),
        common::instance_id(&b.dir),
        "claimed by the survivor"
    );
    // Delivered once: no attempt after the 200, by B or anyone.
    let seen = got.len();
    tokio::time::sleep(3 * SEC).await;
    assert_eq!(recv.received().len(), seen);
}

#[tokio::test]
async fn a_global_webhook_added_on_a_receives_events_of_workflows_on_b() {
    let recv = common::receiver::Receiver::start();
    let db = PgDb::new();
    let a = hooks(member(&db, "5s")).start();
    let b = hooks(member(&db, "5s")).latency_ms(5).start();
    let r = a
        .post(
            "/v1/webhooks",
            &json!({"url": recv.url, "events": ["workflow_completed"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let hook = r.body["id"].as_str().unwrap_or("").to_string();
    // B learns of it by NOTIFY.
    let t = Instant::now();
    while !b.get("/v1/webhooks").await.body.to_string().contains(&hook) {
        assert!(
            t.elapsed() < 10 * SEC,
            "B never listed the new subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = b.create(research("seen by a hook from A")).await;
    let got = recv.wait_for(1, 30 * SEC).await;
    assert!(got[0].json().to_string().contains(&id), "{}", got[0].json());
    // Removed on B: A stops listing it too.
    let del = b
        .request(reqwest::Method::DELETE, &format!("/v1/webhooks/{hook}"))
        .await;
    assert!(del.status == 204 || del.status == 200, "{:?}", del.body);
    let t = Instant::now();
    while a.get("/v1/webhooks").await.body.to_string().contains(&hook) {
        assert!(
            t.elapsed() < 10 * SEC,
            "A still lists the removed subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_instance_shows_the_same_dashboard_figures() {
    // The dashboard's cards come from /analytics/*, which read the shared store:
    // behind a load balancer every replica answers the same.
    let db = PgDb::new();
    let a = member(&db, "3s").latency_ms(5).start();
    let b = member(&db, "3s").latency_ms(5).start();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(a.create(research(&format!("figures {i}"))).await);
    }
    ids.push(b.create(research("figures on b")).await);
    for id in &ids {
        // Read through the other instance too: finished there means stored.
        a.wait_status(id, "completed", 60 * SEC).await;
        b.wait_status(id, "completed", 60 * SEC).await;
    }
    for path in [
        "/analytics/workflows",
        "/analytics/costs",
        "/analytics/performance",
    ] {
        let (on_a, on_b) = (a.get(path).await, b.get(path).await);
        assert_eq!(on_a.status, 200, "{path}: {:?}", on_a.body);
        assert_eq!(on_a.body, on_b.body, "{path} differs between instances");
    }
    let w = a.get("/analytics/workflows").await.body;
    assert_eq!(
        (w["completed"].as_u64(), w["active"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(
        a.get("/analytics/performance").await.body["success_rate"],
        100.0
    );
}

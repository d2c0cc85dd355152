//! PostgreSQL as the primary store, against a real server: each test has its own
//! database (common::pg). Covers migrations, idempotent batched writes, reads of
//! evicted and old workflows, start-up errors, and the writer surviving killed
//! connections and a PostgreSQL restart under load.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_orchestrator::config::PostgresConfig;
use mcp_orchestrator::domain::{
    ChangeKind, Delivery, DeliveryStatus, Event, EventType, Pattern, PatternConfig, Status,
    Subscription, Workflow, WorkflowResult,
};
use mcp_orchestrator::store::postgres::PgStore;
use mcp_orchestrator::store::Store;
use serde_json::json;

use crate::common::pg::{PgDb, PrivatePg};
use crate::common::{change, research, server, Builder, Server, BIN, SEC};

fn pg_server(url: &str) -> Builder {
    server().env("MCPO__POSTGRES__URL", url).latency_ms(1)
}

fn pg_config(url: &str) -> PostgresConfig {
    PostgresConfig {
        url: Some(url.to_string()),
        ..Default::default()
    }
}

/// Every acknowledged workflow is stored, finished, with events 1..n exactly
/// once and one terminal event, as the store reads them back (a finished
/// workflow's events stay rows until archival).
async fn assert_acknowledged_intact(db: &PgDb, acked: &[String]) {
    let stored: HashSet<String> = db
        .query("SELECT id FROM workflows WHERE status IN ('completed', 'failed', 'cancelled')")
        .lines()
        .map(str::to_string)
        .collect();
    let store = PgStore::connect(&pg_config(&db.url))
        .await
        .expect("connect");
    for id in acked {
        assert!(
            stored.contains(id),
            "acknowledged workflow {id} is not stored as finished"
        );
        let events = store.events_after(id, 0).await.expect("events");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "events of {id} are not 1..n exactly once");
        let terminal = events.iter().filter(|e| e.kind.is_terminal()).count();
        assert_eq!(terminal, 1, "{id} has {terminal} terminal events");
    }
}

/// Creates workflows from `tasks` concurrent clients until `stop`; returns the
/// ids acknowledged with 201 and the other statuses seen. `acked_so_far` counts
/// the 201s as they come.
async fn load(
    s: Arc<Server>,
    tasks: usize,
    stop: Arc<AtomicBool>,
    acked_so_far: Arc<AtomicUsize>,
) -> (Vec<String>, BTreeMap<u16, usize>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let other = Arc::new(Mutex::new(BTreeMap::new()));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (s, stop, acked, other) = (s.clone(), stop.clone(), acked.clone(), other.clone());
        let acked_so_far = acked_so_far.clone();
        handles.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = s
                    .post("/v1/workflows", &research(&format!("load {t}/{i}"), 3))
                    .await;
                match r.status {
                    201 => {
                        acked
                            .lock()
                            .unwrap()
                            .push(r.body["id"].as_str().unwrap().to_string());
                        acked_so_far.fetch_add(1, Ordering::Relaxed);
                    }
                    code => {
                        if code == 503 {
                            assert_eq!(
                                r.body["error"]["code"], "store_unavailable",
                                "{:?}",
                                r.body
                            );
                        }
                        *other.lock().unwrap().entry(code).or_insert(0) += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("load task");
    }
    let acked = acked.lock().unwrap().clone();
    let other = other.lock().unwrap().clone();
    (acked, other)
}

async fn wait_all_finished(s: &Server, ids: &[String]) {
    for id in ids {
        let t = Instant::now();
        loop {
            let wf = s.workflow(id).await;
            if ["completed", "failed", "cancelled"].contains(&wf["status"].as_str().unwrap_or("")) {
                break;
            }
            assert!(t.elapsed() < 120 * SEC, "{id} did not finish: {wf}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn store_health(s: &Server) -> serde_json::Value {
    s.get("/health").await.body["components"]["store"].clone()
}

#[tokio::test]
async fn migrate_command_creates_the_schema_once() {
    let db = PgDb::new();
    for _ in 0..2 {
        let out = std::process::Command::new(BIN)
            .arg("migrate")
            .env("MCPO__POSTGRES__URL", &db.url)
            .output()
            .expect("run migrate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    }
    let tables = db.query(
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> 'refinery_schema_history'",
    );
    assert_eq!(
        tables,
        "cancel_requests,deliveries,documents,events,idempotency_keys,instances,leases,model_costs,results,steps,webhooks,workflows"
    );
    // Each migration once, however often `migrate` runs.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("migrations dir")
        .count();
    assert_eq!(
        db.query("SELECT count(*) FROM refinery_schema_history"),
        files.to_string()
    );
    // Integrity of events and results holds by construction (one writer, record
    // first); V2 drops the per-row foreign-key checks.
    assert_eq!(
        db.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f'"),
        "0"
    );
    assert_eq!(
        db.query("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.views WHERE table_schema = 'plan'"),
        "events,results,workflows"
    );
    // TOAST compresses the JSON columns with lz4 (PostgreSQL 14 and later).
    if db
        .query("SHOW server_version_num")
        .parse::<u32>()
        .unwrap_or(0)
        >= 140_000
    {
        assert_eq!(
            db.query(
                "SELECT string_agg(attrelid::regclass || '.' || attname || '=' || attcompression::text, ',' ORDER BY attrelid::regclass::text)
                 FROM pg_attribute WHERE (attrelid, attname) IN
                   (('results'::regclass, 'result'), ('events'::regclass, 'data'), ('workflows'::regclass, 'record'))"
            ),
            "events.data=l,results.result=l,workflows.record=l"
        );
    }
    let indexes =
        db.query("SELECT string_agg(indexdef, E'\\n') FROM pg_indexes WHERE schemaname = 'public'");
    for needle in [
        "workflows USING btree (status, id)",
        "workflows USING btree (pattern, id)",
        "workflows USING btree (created_at DESC)",
        "workflows USING btree (orchestrator_type)",
        "workflows USING btree (completed_at)",
        "workflows USING btree (total_cost_usd)",
        "events_pkey ON public.events USING btree (workflow_id, seq)",
        // The plan's (migration V8): the history as queryable JSONB.
        "events USING btree (workflow_id, ts)",
        "results USING gin (result jsonb_path_ops)",
        "results USING gin (to_tsvector('english'::regconfig, result))",
        "results USING btree (total_cost DESC)",
    ] {
        assert!(
            indexes.contains(needle),
            "missing index {needle} in\n{indexes}"
        );
    }
}

#[tokio::test]
async fn replayed_batches_never_duplicate_events_or_results() {
    let db = PgDb::new();
    let store = PgStore::connect(&pg_config(&db.url))
        .await
        .expect("connect");
    let mut wf = Workflow::new(
        "wf_replay".into(),
        Pattern::Research,
        "t".into(),
        "t".into(),
        PatternConfig::default_for(Pattern::Research),
        "simulated".into(),
        true,
    );
    wf.created_at = chrono::Utc::now();
    let event = |seq: u64, kind| {
        Arc::new(Event {
            workflow_id: "wf_replay".into(),
            seq,
            kind,
            timestamp: chrono::Utc::now(),
            data: json!({"n": seq}).into(),
        })
    };
    let first = vec![
        change(1, ChangeKind::Workflow(Arc::new(wf.clone()))),
        change(2, ChangeKind::Event(event(1, EventType::WorkflowStarted))),
    ];
    wf.transition(Status::Running, chrono::Utc::now()).unwrap();
    wf.transition(Status::Completed, chrono::Utc::now())
        .unwrap();
    let mut result = WorkflowResult::empty("wf_replay", Pattern::Research, true);
    result.status = Status::Completed;
    result.total_cost = 0.5;
    let second = vec![
        change(3, ChangeKind::Workflow(Arc::new(wf.clone()))),
        change(4, ChangeKind::Event(event(2, EventType::WorkflowCompleted))),
        change(5, ChangeKind::Result(Arc::new(result.clone()))),
        change(6, ChangeKind::Evicted("wf_replay".into())),
    ];
    for _ in 0..3 {
        store.write_batch(first.clone()).await.expect("first batch");
        store
            .write_batch(second.clone())
            .await
            .expect("second batch");
    }
    // Finished: both events stay rows, once each; the result is JSONB, once.
    assert_eq!(db.query("SELECT count(*) FROM events"), "2");
    assert_eq!(
        db.query("SELECT count(*) FROM results WHERE result->>'workflow_id' = 'wf_replay'"),
        "1"
    );
    let events = store.events_after("wf_replay", 0).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(events[1].data, json!({"n": 2}));
    assert_eq!(store.get_result("wf_replay").await.unwrap(), Some(result));
    assert_eq!(store.get_workflow("wf_replay").await.unwrap(), Some(wf));
}

#[tokio::test]
async fn webhooks_and_deliveries_round_trip_in_batch_order() {
    let db = PgDb::new();
    let store = PgStore::connect(&pg_config(&db.url))
        .await
        .expect("connect");
    let now = chrono::Utc::now();
    let sub = |id: &str, wf: Option<&str>| -> Arc<Subscription> {
        Arc::new(Subscription {
            id: id.into(),
            workflow_id: wf.map(str::to_string),
            url: format!("http://127.0.0.1:9/{id}"),
            secret: "s3cret".into(),
            events: vec![EventType::WorkflowCompleted],
            created_at: now,
            owner: Some("ops".into()),
        })
    };
    let delivery = |id: &str, seq: u64, status: DeliveryStatus| -> Arc<Delivery> {
        Arc::new(Delivery {
            id: id.into(),
            subscription_id: "sub_a".into(),
            workflow_id: "wf_hooks".into(),
            url: "http://127.0.0.1:9/sub_a".into(),
            event: EventType::WorkflowCompleted,
            event_seq: seq,
            payload: json!({"event": "workflow_completed", "task_id": "wf_hooks"}),
            status,
            attempts: vec![],
            next_attempt_at: None,
            created_at: now,
            completed_at: None,
            global: Some(true),
            owner: Some("ci".into()),
        })
    };
    let batch = vec![
        change(1, ChangeKind::Webhook(sub("sub_a", None))),
        change(2, ChangeKind::Webhook(sub("sub_b", Some("wf_hooks")))),
        change(3, ChangeKind::WebhookRemoved("sub_b".into())),
        change(
            4,
            ChangeKind::Delivery(delivery("dl_1", 5, DeliveryStatus::Pending)),
        ),
        change(
            5,
            ChangeKind::Delivery(delivery("dl_2", 7, DeliveryStatus::Pending)),
        ),
        change(
            6,
            ChangeKind::Delivery(delivery("dl_1", 5, DeliveryStatus::Delivered)),
        ),
    ];
    for _ in 0..2 {
        store.write_batch(batch.clone()).await.expect("batch");
    }
    let (subs, pending) = store.load_webhooks().await.expect("load");
    assert_eq!(subs, vec![(*sub("sub_a", None)).clone()]);
    assert_eq!(
        pending.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["dl_2"]
    );
    let all = store.deliveries_for("wf_hooks").await.expect("deliveries");
    assert_eq!(
        all.iter()
            .map(|d| (d.id.as_str(), d.status))
            .collect::<Vec<_>>(),
        [
            ("dl_1", DeliveryStatus::Delivered),
            ("dl_2", DeliveryStatus::Pending)
        ]
    );
}

#[tokio::test]
async fn evicted_and_old_workflows_are_read_from_postgres() {
    let db = PgDb::new();
    let env = |b: Builder| b.env("MCPO__RETENTION__MAX_COMPLETED", 2);
    let mut s = env(pg_server(&db.url)).start();
    assert_eq!(store_health(&s).await["kind"], "postgres");
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = s.create(research(&format!("history {i}"), 3)).await;
        s.wait_status(&id, "completed", 30 * SEC).await;
        ids.push(id);
    }
    assert!(
        !s.dir.join("orchestrator.db").exists(),
        "SQLite must not be used when postgres.url is set"
    );
    let retained = s.get("/health").await.body["components"]["registry"]["retained"].clone();
    assert!(retained.as_u64().unwrap() <= 2, "retained {retained}");
    assert_eq!(db.query("SELECT count(*) FROM workflows"), "5");
    assert_eq!(db.query("SELECT count(*) FROM results"), "5");

    check_readable(&s, &ids).await;
    // After a restart only two are restored into memory; all five stay readable.
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);
    let s2 = env(pg_server(&db.url)).start();
    check_readable(&s2, &ids).await;
}

/// Records, results and complete event streams of `ids`, and the list.
async fn check_readable(s: &Server, ids: &[String]) {
    for id in ids {
        let wf = s.workflow(id).await;
        assert_eq!(wf["status"], "completed");
        let r = s.get(&format!("/v1/workflows/{id}/result")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["agent_results"].as_array().unwrap().len(), 3);
        let events = s.sse(id, None, 10 * SEC).await;
        let seqs: Vec<u64> = events.iter().filter_map(|e| e.id).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        assert_eq!(
            events.last().unwrap().event.as_deref(),
            Some("workflow_completed")
        );
    }
    let list = s.get("/v1/workflows?limit=10").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), ids.len());
}

#[test]
fn bad_or_unreachable_postgres_url_is_one_clear_line() {
    for (url, reason) in [
        ("postgres://app:hunter2@127.0.0.1:1/nodb", "cannot connect"),
        (
            "postgres://app:hunter2@127.0.0.1:notaport/nodb",
            "not a valid PostgreSQL URL",
        ),
    ] {
        for cmd in [None, Some("migrate")] {
            let mut c = std::process::Command::new(BIN);
            c.args(cmd)
                .env("MCPO__POSTGRES__URL", url)
                .env("MCPO__POSTGRES__CONNECT_TIMEOUT", "2s")
                .env("MCPO__SERVER__BIND", "127.0.0.1:0")
                .env("MCPO__LOG__LEVEL", "error")
                .current_dir(crate::common::new_dir());
            let out = c.output().expect("run binary");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{url} {cmd:?} must fail");
            assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
            let last = stderr.trim().lines().last().unwrap_or_default();
            assert!(
                last.starts_with("mcp-orchestrator: postgres.url 'postgres://app:***@127.0.0.1:")
                    && last.contains(reason),
                "{url} {cmd:?}: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_survives_killed_connections_under_load() {
    let db = PgDb::new();
    let s = Arc::new(pg_server(&db.url).start());
    let stop = Arc::new(AtomicBool::new(false));
    let acked_so_far = Arc::new(AtomicUsize::new(0));
    let loader = tokio::spawn(load(s.clone(), 4, stop.clone(), acked_so_far.clone()));
    // Kill the application's sessions until one kill lands inside a batch and the
    // writer has been restarted by its supervisor; keep the load on until enough
    // was acknowledged to check (a loaded machine may get the restart first).
    let t = Instant::now();
    let mut kills = 0;
    loop {
        let restarted = store_health(&s).await["writer_restarts"]
            .as_u64()
            .unwrap_or(0)
            >= 1;
        let acked = acked_so_far.load(Ordering::Relaxed);
        if restarted && acked >= 10 {
            break;
        }
        assert!(
            t.elapsed() < 120 * SEC,
            "restarted: {restarted} after {kills} kills, {acked} acknowledged"
        );
        if !restarted {
            kills += db.terminate_backends();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, other) = loader.await.expect("loader");
    assert!(
        acked.len() >= 10,
        "too little load: {} acked, {other:?}",
        acked.len()
    );
    assert!(
        other.keys().all(|c| *c == 503),
        "unexpected statuses {other:?}"
    );
    wait_all_finished(&s, &acked).await;
    // Healthy again once the writer reconnected after the last kill.
    let t = Instant::now();
    loop {
        let h = s.get("/health").await.body;
        assert_eq!(h["components"]["store"]["kind"], "postgres");
        if h["components"]["store"]["status"] == "healthy" {
            break;
        }
        assert!(t.elapsed() < 60 * SEC, "store never healthy again: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything emitted is committed once the queue drains.
    let t = Instant::now();
    while store_health(&s).await["queue_depth"] != 0 {
        assert!(t.elapsed() < 60 * SEC, "queue never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_acknowledged_intact(&db, &acked).await;
    eprintln!(
        "killed sessions: {kills}, acknowledged: {}, refused: {other:?}, store: {}",
        acked.len(),
        store_health(&s).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_loses_nothing_and_503s_within_ack_timeout() {
    let pg = PrivatePg::start();
    let db = PgDb::on(&pg.server_url());
    let s = Arc::new(
        pg_server(&db.url)
            .env("MCPO__POSTGRES__ACK_TIMEOUT", "1s")
            .env("MCPO__POSTGRES__CONNECT_TIMEOUT", "1s")
            .start(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(s.clone(), 3, stop.clone(), Default::default()));
    // Let some work be acknowledged first.
    let t = Instant::now();
    while db
        .query("SELECT count(*) FROM workflows")
        .parse::<u32>()
        .unwrap_or(0)
        < 5
    {
        assert!(t.elapsed() < 30 * SEC, "no load reached PostgreSQL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pg.stop();
    // During the outage a sync create waits at most ack_timeout (1s), then 503.
    let t = Instant::now();
    let r = s.post("/v1/workflows", &research("during outage", 3)).await;
    let waited = t.elapsed();
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "store_unavailable");
    assert!(
        waited < 5 * SEC,
        "create hung for {waited:?} with ack_timeout 1s"
    );
    let store = store_health(&s).await;
    assert_ne!(store["status"], "healthy", "{store}");
    pg.restart();
    // The restarted writer flushes what it queued; then stop the load.
    let t = Instant::now();
    while store_health(&s).await["status"] != "healthy" {
        assert!(
            t.elapsed() < 60 * SEC,
            "store did not recover: {}",
            store_health(&s).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, other) = loader.await.expect("loader");
    assert!(
        other.keys().all(|c| *c == 503),
        "unexpected statuses {other:?}"
    );
    wait_all_finished(&s, &acked).await;
    let t = Instant::now();
    while store_health(&s).await["queue_depth"] != 0 {
        assert!(t.elapsed() < 30 * SEC, "queue never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = store_health(&s).await;
    assert!(store["writer_restarts"].as_u64().unwrap() >= 1, "{store}");
    assert_acknowledged_intact(&db, &acked).await;
    eprintln!(
        "outage create answered 503 after {waited:?}; acknowledged: {}, refused: {other:?}, store: {store}",
        acked.len()
    );
    drop(s);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_analytics_cannot_starve_the_writer() {
    let db = PgDb::new();
    let s = Arc::new(
        pg_server(&db.url)
            .latency_ms(60_000)
            .env("MCPO__POSTGRES__ANALYTICS_POOL_SIZE", 1)
            .env("MCPO__POSTGRES__STATEMENT_TIMEOUT", "2s")
            .start(),
    );
    // Hold an exclusive lock on `model_costs`: cost analytics block on it, while
    // the writer (creating workflows writes no costs yet) does not need it.
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute("BEGIN; LOCK TABLE model_costs IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock model_costs");
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.get("/v1/analytics/costs").await })
        })
        .collect();
    let analytics_sessions = |waiting: bool| {
        db.query(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'
               AND application_name = 'mcp-orchestrator-analytics'{}",
            db.name,
            if waiting {
                " AND wait_event_type = 'Lock'"
            } else {
                ""
            }
        ))
    };
    let t = Instant::now();
    while analytics_sessions(true) != "1" {
        assert!(
            t.elapsed() < 10 * SEC,
            "analytics never blocked on the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While analytics is stuck, sync creates are still committed and acknowledged.
    for i in 0..5 {
        s.create(research(&format!("not starved {i}"), 3)).await;
    }
    assert_eq!(
        analytics_sessions(false),
        "1",
        "analytics exceeded its pool"
    );
    let mut timed_out = 0;
    for h in slow {
        let r = h.await.expect("analytics request");
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "store_unavailable");
        let msg = r.body["error"]["message"].as_str().unwrap_or_default();
        timed_out += msg.contains("statement timeout") as usize;
    }
    assert!(
        timed_out >= 1,
        "no analytics query was cancelled by the statement timeout"
    );
    client.batch_execute("ROLLBACK").await.expect("unlock");
    let r = s.get("/v1/analytics/costs").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["workflow_count"], 5);
    let pools = &store_health(&s).await["pools"];
    assert_eq!(pools["analytics"]["max_size"], 1);
    assert_eq!(pools["writer"]["max_size"], 8);
}

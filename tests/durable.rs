//! Durable steps and idempotent creates: step keys on every LLM call
//! (events and the provider's `Idempotency-Key`), committed answers reused after
//! SIGKILL with cost counted once, the crash test on SQLite and on PostgreSQL +
//! Redis, and `Idempotency-Key` on `POST /v1/workflows` and the old routes.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::crash::{self, committed_before_kill, CrashReport};
use crate::common::fake_openai::FakeOpenAi;
use crate::common::pg::PgDb;
use crate::common::redis_util::{SharedPrefix, SHARED_URL};
use crate::common::*;

fn data(e: &SseEvent) -> &Value {
    if e.data["data"].is_object() {
        &e.data["data"]
    } else {
        &e.data
    }
}

#[tokio::test]
async fn every_call_has_a_step_key_in_its_events_and_idempotency_header() {
    let fake = FakeOpenAi::start();
    fake.decompose_into(&["a", "b", "c", "d"]);
    let s = crash::with_fake(server(), &fake, 10).start();
    let id = s
        .create(json!({"pattern": "research", "task": "keyed steps",
                       "config": {"num_agents": 4, "synthesis_group_size": 2}}))
        .await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    let sent: BTreeSet<String> = fake
        .requests_for("keyed steps")
        .iter()
        .map(|r| r.idempotency_key.clone().expect("Idempotency-Key header"))
        .collect();
    let want: BTreeSet<String> = [
        "decompose",
        "agent/1",
        "agent/2",
        "agent/3",
        "agent/4",
        "synthesis/1",
        "synthesis/2",
        "final",
    ]
    .iter()
    .map(|k| format!("{id}/{k}"))
    .collect();
    assert_eq!(sent, want);
    let events = s.sse(&id, None, 10 * SEC).await;
    let mut in_events = BTreeSet::new();
    for e in &events {
        let kind = e.event.as_deref().unwrap_or("");
        if [
            "task_decomposed",
            "agent_started",
            "agent_completed",
            "synthesis_started",
            "synthesis_completed",
        ]
        .contains(&kind)
        {
            let k = data(e)["step_key"]
                .as_str()
                .unwrap_or_else(|| panic!("{kind} without step_key: {:?}", e.data));
            in_events.insert(k.to_string());
        }
    }
    assert_eq!(in_events, want);
}

/// An answer its event carries in full (decomposition, agent, synthesis) is
/// written once, as that event: the steps table never holds it. What it does hold
/// (the documents step here; tool turns and calls) serves resumes only and leaves
/// once the workflow finished (its result holds it), on SQLite and on PostgreSQL
/// alike.
#[tokio::test]
async fn answers_are_written_once_and_step_rows_leave_with_the_finished_workflow() {
    let db = PgDb::new();
    for pg in [false, true] {
        let mut b = server().latency_ms(300);
        if pg {
            b = b.env("MCPO__POSTGRES__URL", &db.url);
        }
        let mut s = b.start();
        let id = s
            .create(json!({"pattern": "research", "task": "steps leave",
                           "config": {"num_agents": 3, "synthesis_group_size": 3}}))
            .await;
        s.wait_status(&id, "running", 30 * SEC).await;
        let query = |s: &Server, sql: &str| match pg {
            true => db.query(sql),
            false => sqlite_value(&s.dir.join("orchestrator.db"), sql),
        };
        let answers = format!(
            "SELECT count(*) FROM events WHERE workflow_id = '{id}'
               AND type IN ('task_decomposed', 'agent_completed', 'synthesis_completed')"
        );
        // The documents step's row may stand for a moment before the finish: not
        // one of the answers its event carries.
        let answer_rows = format!(
            "SELECT count(*) FROM steps WHERE workflow_id = '{id}' AND step_key NOT LIKE '%/documents'"
        );
        let steps = format!("SELECT count(*) FROM steps WHERE workflow_id = '{id}'");
        // While it runs, its answers are committed one by one, as events only.
        let t = std::time::Instant::now();
        let mut seen = 0;
        while seen < 4 && s.workflow(&id).await["status"] != "completed" {
            assert!(t.elapsed() < 30 * SEC, "no answer committed while running");
            let n: i64 = query(&s, &answers).parse().unwrap_or(0);
            if n > 0 {
                seen = seen.max(n);
                assert_eq!(
                    query(&s, &answer_rows),
                    "0",
                    "pg={pg}: {n} answers committed; none of them is also a step row"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(seen > 0, "pg={pg}: an answer event was seen while running");
        s.wait_status(&id, "completed", 60 * SEC).await;
        s.signal(libc::SIGTERM);
        s.wait_exit(30 * SEC);
        assert_eq!(
            query(&s, &steps),
            "0",
            "pg={pg}: finished, its steps are gone"
        );
    }
}

/// Kills the server right after the first `synthesis_completed` event of a
/// research run: that synthesis is never called again, and cost and tokens equal
/// a run without the crash.
#[tokio::test]
async fn a_synthesis_reported_before_a_crash_is_not_called_again() {
    let fake = FakeOpenAi::start();
    fake.set_latency(Duration::from_millis(50));
    let start = |dir: Option<&std::path::Path>| {
        let b = crash::with_fake(server(), &fake, 10);
        match dir {
            Some(d) => b.dir(d).start(),
            None => b.start(),
        }
    };
    let body = |task: &str| {
        json!({"pattern": "research", "task": task,
               "config": {"num_agents": 6, "synthesis_group_size": 2, "max_concurrent_agents": 1}})
    };
    let mut s = start(None);
    // The reference: the same shape, no crash.
    let clean = s.create(body("clean reference")).await;
    let clean = s.wait_status(&clean, "completed", 60 * SEC).await;

    let id = s.create(body("crash after synthesis")).await;
    let resp = s
        .http
        .get(s.url(&format!("/v1/workflows/{id}/events")))
        .send()
        .await
        .expect("SSE");
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let first = loop {
        use futures::StreamExt;
        let chunk = tokio::time::timeout(60 * SEC, stream.next())
            .await
            .expect("events in time")
            .expect("stream open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
        let done = parse_sse(&text)
            .into_iter()
            .find(|e| e.event.as_deref() == Some("synthesis_completed"));
        if let Some(e) = done {
            break data(&e)["step_key"].as_str().expect("step_key").to_string();
        }
    };
    s.kill9();
    let dir = s.dir.clone();
    drop(s);
    let s = start(Some(&dir));
    let wf = s.wait_status(&id, "completed", 60 * SEC).await;
    let calls = fake.calls_by_step_key();
    assert_eq!(calls[&first].len(), 1, "{first} was called again");
    assert!(committed_before_kill(&s.sse(&id, None, 10 * SEC).await).contains(&first));
    assert_eq!(wf["resumes"], 1);
    assert_eq!(wf["total_cost_usd"], clean["total_cost_usd"]);
    assert_eq!(wf["tokens"], clean["tokens"]);
    // 1 decomposition + 6 agents + 3 group syntheses + final, each counted once.
    assert_eq!(wf["tokens"]["total"], 150 * 11);
    let result = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    assert_eq!(
        result["synthesis_results"].as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(result["agent_results"].as_array().map(Vec::len), Some(6));
}

fn print(label: &str, r: &CrashReport) {
    eprintln!(
        "CRASH {label}: {} workflows ({} calls), {} finished at the kill; lost 0; \
         calls in flight at the kill {}; repeated after their answer arrived {} \
         (answered, not yet committed; {} answered >= 50 ms before the kill); repeated in flight {}; finished {:.2?} after the restart; \
         commit window: {} answers, mean {:.1} ms, {:.0}% within 10 ms; \
         store batches: {}, mean {:.1} ms",
        r.workflows,
        r.calls,
        r.finished_before_kill,
        r.in_flight_at_kill,
        r.repeated_after_answer,
        r.repeated_answered_50ms_before,
        r.repeated_in_flight,
        r.finish_after_restart,
        r.window.0,
        r.window.1 * 1000.0,
        r.window.2 * 100.0,
        r.batches.0,
        r.batches.1 * 1000.0
    );
}

/// The crash window: an answer is committed within a few milliseconds of its
/// arrival, so none that arrived 50 ms or more before the kill is asked for again.
/// Checked where that bound is a promise: a release binary on a machine not busy
/// with other builds (`scripts/bench.sh crash` sets MCPO_CRASH_WINDOW_CHECK=1 and
/// MCPO_TEST_BIN). The suite's debug binary, sharing two cores with the other
/// tests, only reports the figure.
fn assert_crash_window(r: &CrashReport) {
    if std::env::var_os("MCPO_CRASH_WINDOW_CHECK").is_none() {
        return;
    }
    assert_eq!(
        r.repeated_answered_50ms_before, 0,
        "answers received 50 ms or more before the kill were requested again"
    );
}

/// How many workflows the crash tests run; at least 300 (MCPO_CRASH_WORKFLOWS
/// raises it for a benchmark).
fn crash_workflows() -> usize {
    std::env::var("MCPO_CRASH_WORKFLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
        .max(300)
}

#[tokio::test]
#[ignore = "heavy: scripts/test.sh runs the crash tests in a step of their own"]
async fn crash_test_sigkill_at_30_percent_sqlite() {
    let fake = FakeOpenAi::start();
    let n = crash_workflows();
    let start = |dir: Option<&std::path::Path>| {
        let b = crash::with_fake(server(), &fake, n);
        match dir {
            Some(d) => b.dir(d).start(),
            None => b.start(),
        }
    };
    let r = crash::crash_and_resume(start, &fake, n, 0.3).await;
    print("sqlite", &r);
    assert_crash_window(&r);
}

#[tokio::test]
#[ignore = "heavy: scripts/test.sh runs the crash tests in a step of their own"]
async fn crash_test_sigkill_at_30_percent_postgres_redis() {
    let fake = FakeOpenAi::start();
    let db = PgDb::new();
    let prefix = SharedPrefix::new();
    let n = crash_workflows();
    let start = |dir: Option<&std::path::Path>| {
        let b = crash::with_fake(server(), &fake, n)
            .env("MCPO__POSTGRES__URL", &db.url)
            .env("MCPO__REDIS__URL", SHARED_URL)
            .env("MCPO__REDIS__KEY_PREFIX", &*prefix);
        match dir {
            Some(d) => b.dir(d).start(),
            None => b.start(),
        }
    };
    let r = crash::crash_and_resume(start, &fake, n, 0.3).await;
    print("postgres+redis", &r);
    assert_crash_window(&r);
}

// ---- Idempotency-Key on creates ----

async fn post_keyed(s: &Server, path: &str, key: &str, body: &Value) -> Resp {
    let r = s
        .http
        .post(s.url(path))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

fn replayed(r: &Resp) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn idempotency_key_returns_the_first_workflow_also_after_a_restart() {
    let mut s = server().latency_ms(1).start();
    let body = json!({"pattern": "search", "task": "idempotent create"});
    let first = post_keyed(&s, "/v1/workflows", "key-1", &body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(!replayed(&first));
    let id = first.body["id"].as_str().unwrap().to_string();
    // Same key, same body (keys in another order): the same workflow.
    let same = json!({"task": "idempotent create", "pattern": "search"});
    let again = post_keyed(&s, "/v1/workflows", "key-1", &same).await;
    assert_eq!(
        (again.status, again.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
    assert!(replayed(&again));
    // Same key, another body: refused, naming the header.
    let other = json!({"pattern": "search", "task": "something else"});
    let conflict = post_keyed(&s, "/v1/workflows", "key-1", &other).await;
    assert_eq!(conflict.status, 422);
    assert_eq!(conflict.body["error"]["code"], "idempotency_conflict");
    assert_eq!(conflict.body["error"]["field"], "Idempotency-Key");
    // Bad keys are 400.
    for bad in ["k".repeat(256), "tab\there".to_string()] {
        let r = post_keyed(&s, "/v1/workflows", &bad, &body).await;
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(r.body["error"]["field"], "Idempotency-Key");
    }
    assert!(
        post_keyed(&s, "/v1/workflows", &"k".repeat(255), &body)
            .await
            .status
            == 201
    );

    // The old routes take the header too; a key is bound to its route's request.
    let old = json!({"query": "old idempotent search", "num_agents": 2});
    let o1 = post_keyed(&s, "/tools/orchestrate_search", "key-2", &old).await;
    assert_eq!((o1.status, o1.body["success"].as_bool()), (200, Some(true)));
    assert!(!replayed(&o1));
    let o2 = post_keyed(&s, "/tools/orchestrate_search", "key-2", &old).await;
    assert_eq!(o2.body["task_id"], o1.body["task_id"]);
    assert!(replayed(&o2));
    let cross = post_keyed(
        &s,
        "/tools/orchestrate_research",
        "key-2",
        &json!({"task": "x"}),
    )
    .await;
    assert_eq!(cross.status, 422);

    // After a SIGKILL and a restart the keys still answer.
    s.kill9();
    let dir = s.dir.clone();
    drop(s);
    let s = server().latency_ms(1).dir(&dir).start();
    let after = post_keyed(&s, "/v1/workflows", "key-1", &body).await;
    assert_eq!(
        (after.status, after.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
    assert!(replayed(&after));
    let o3 = post_keyed(&s, "/tools/orchestrate_search", "key-2", &old).await;
    assert_eq!(o3.body["task_id"], o1.body["task_id"]);
    let conflict = post_keyed(&s, "/v1/workflows", "key-1", &other).await;
    assert_eq!(conflict.status, 422);
    let list = s.get("/v1/workflows?limit=500").await.body;
    let same_task = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["task"] == "idempotent create")
        .count();
    assert_eq!(
        same_task, 2,
        "one per distinct key (key-1 and the 255-character one)"
    );
}

/// A sync create that waited past `storage.ack_timeout` got 503 while its
/// workflow was admitted: the retry with the same key gets that workflow.
#[tokio::test]
async fn a_retry_after_a_503_gets_the_admitted_workflow() {
    let s = server()
        .latency_ms(1)
        .env("MCPO__STORAGE__ACK_TIMEOUT", "50ms")
        .env("MCPO__STORAGE__COMMIT_INTERVAL", "3s")
        .start();
    // A first commit starts the writer's interval: the next one waits for it.
    let _ = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "search", "task": "primer"}),
        )
        .await;
    let body = json!({"pattern": "search", "task": "slow ack"});
    let first = post_keyed(&s, "/v1/workflows", "retry-me", &body).await;
    assert_eq!(first.status, 503, "{:?}", first.body);
    assert_eq!(first.body["error"]["code"], "store_unavailable");
    let t = std::time::Instant::now();
    let id = loop {
        let r = post_keyed(&s, "/v1/workflows", "retry-me", &body).await;
        if r.status == 200 {
            assert!(replayed(&r));
            break r.body["id"].as_str().unwrap().to_string();
        }
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert!(t.elapsed() < 30 * SEC, "the retry never succeeded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    s.wait_status(&id, "completed", 30 * SEC).await;
    let list = s.get("/v1/workflows?limit=500").await.body;
    let n = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["task"] == "slow ack")
        .count();
    assert_eq!(n, 1, "the retry created no second workflow");
}

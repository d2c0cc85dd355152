//! Every query of docs/queries.md, read from the file and run with psql against
//! a PostgreSQL store populated through the real writer; each answer is checked
//! against one computed here from the same data, and `EXPLAIN` shows the GIN
//! indexes used.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use mcp_orchestrator::config::PostgresConfig;
use mcp_orchestrator::domain::{
    ChangeKind, Event, EventType, Pattern, PatternConfig, StateChange, Status, Workflow,
    WorkflowError, WorkflowResult,
};
use mcp_orchestrator::store::postgres::PgStore;
use mcp_orchestrator::store::Store;
use serde_json::json;

use crate::common::change;
use crate::common::pg::PgDb;

const N: usize = 240;
const TYPES: [&str; 4] = ["text", "news", "academic", "video"];

/// One workflow of the data set and what the queries see of it.
struct Wf {
    id: String,
    task: String,
    pattern: &'static str,
    owner: Option<&'static str>,
    status: &'static str,
    error: Option<&'static str>,
    created: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    exec: Option<f64>,
    cost: f64,
    /// (agent_type, model, cost, failed) of each agent; then the synthesis call.
    agents: Vec<(&'static str, &'static str, f64, bool)>,
    synthesis: Option<(&'static str, f64)>,
    mentions_raft: bool,
    events: Vec<Event>,
}

fn dataset(now: DateTime<Utc>) -> Vec<Wf> {
    let base = (now - Duration::days(9))
        .duration_trunc(Duration::seconds(1))
        .unwrap();
    (0..N)
        .map(|i| {
            let id = format!("wf_q{i:04}");
            let created = base + Duration::minutes(54 * i as i64);
            let (status, error) = match (i % 10, i % 20) {
                (7, 7) | (7, 17) => ("failed", Some("synthesis_failed")),
                (8, 8) => ("failed", Some("deadline_exceeded")),
                (8, 18) => ("failed", Some("budget_exceeded")),
                (9, _) => ("cancelled", None),
                _ => ("completed", None),
            };
            // Cancelled before its run started: no start, no agents, one event.
            let never_ran = i % 20 == 19;
            let started = (!never_ran).then(|| created + Duration::seconds(1));
            let exec = started.map(|_| (i % 37) as f64 + 0.5);
            let agents = if never_ran {
                vec![]
            } else {
                (0..3)
                    .map(|k| {
                        (
                            TYPES[(i + k) % 4],
                            ["m-large", "m-small"][(i + k) % 2],
                            0.001 * (k + 1) as f64,
                            (i + k) % 11 == 0,
                        )
                    })
                    .collect()
            };
            let mut w = Wf {
                task: format!("historical task {i}"),
                pattern: if i % 3 == 0 { "search" } else { "research" },
                owner: [Some("alice"), Some("bob"), None][(i / 2) % 3],
                status,
                error,
                created,
                started,
                exec,
                cost: ((i * 7) % 100) as f64 / 1000.0,
                synthesis: (!never_ran).then_some(("m-synth", 0.002)),
                mentions_raft: i % 25 == 0,
                agents,
                events: vec![],
                id,
            };
            w.events = events(&w);
            w
        })
        .collect()
}

fn events(w: &Wf) -> Vec<Event> {
    let mut out: Vec<(EventType, serde_json::Value, DateTime<Utc>)> = Vec::new();
    let t = w.started.unwrap_or(w.created);
    if w.started.is_some() {
        out.push((EventType::WorkflowStarted, json!({}), t));
        for k in 0..w.agents.len() {
            out.push((
                EventType::AgentCompleted,
                json!({"agent_id": format!("agent_{k}")}),
                t + Duration::seconds(k as i64 + 1),
            ));
        }
    }
    let terminal = match w.status {
        "completed" => EventType::WorkflowCompleted,
        "failed" => EventType::WorkflowFailed,
        _ => EventType::WorkflowCancelled,
    };
    out.push((
        terminal,
        json!({"status": w.status}),
        t + Duration::seconds(10),
    ));
    out.into_iter()
        .enumerate()
        .map(|(n, (kind, data, timestamp))| Event {
            workflow_id: w.id.clone(),
            seq: n as u64 + 1,
            kind,
            timestamp,
            data: data.into(),
        })
        .collect()
}

fn changes(set: &[Wf]) -> Vec<Arc<StateChange>> {
    let mut out = Vec::new();
    let mut push = |kind| {
        let seq = out.len() as u64 + 1;
        out.push(change(seq, kind));
    };
    for w in set {
        let pattern = Pattern::parse(w.pattern).unwrap();
        let mut wf = Workflow::new(
            w.id.clone(),
            pattern,
            w.task.clone(),
            w.task.clone(),
            PatternConfig::default_for(pattern),
            "simulated".into(),
            true,
        );
        wf.created_at = w.created;
        wf.owner = w.owner.map(String::from);
        wf.started_at = w.started;
        wf.status = Status::parse(w.status).unwrap();
        wf.execution_time = w.exec;
        wf.completed_at = Some(
            w.started.unwrap_or(w.created)
                + Duration::milliseconds((w.exec.unwrap_or(0.0) * 1000.0) as i64),
        );
        wf.total_cost_usd = w.cost;
        wf.error = w.error.map(|code| WorkflowError {
            code: serde_json::from_value(code.into()).unwrap(),
            message: format!("{code} happened"),
        });
        push(ChangeKind::Workflow(Arc::new(wf)));
        for e in &w.events {
            push(ChangeKind::Event(Arc::new(e.clone())));
        }
        let mut r = WorkflowResult::empty(&w.id, pattern, true);
        r.status = Status::parse(w.status).unwrap();
        r.total_cost = w.cost;
        r.execution_time = w.exec.unwrap_or(0.0);
        r.final_synthesis = Some(if w.mentions_raft {
            "The rafts of the consensus protocol elect a leader.".into()
        } else {
            "Nothing notable.".into()
        });
        r.agent_results = w
            .agents
            .iter()
            .enumerate()
            .map(|(k, (kind, model, cost, failed))| {
                serde_json::from_value(json!({"agent_id": format!("agent_{k}"),
                    "agent_type": kind, "subtask": "s", "content": "c",
                    "status": if *failed { "failed" } else { "completed" }, "model": model,
                    "tokens": {"input": 1, "output": 1, "total": 2}, "cost": cost,
                    "execution_time": 1.0, "error": failed.then_some("boom")}))
                .unwrap()
            })
            .collect();
        r.synthesis_results = w
            .synthesis
            .iter()
            .map(|(model, cost)| {
                serde_json::from_value(json!({"level": "final", "group": null, "sources": [],
                    "content": "s", "model": model, "tokens": {"input": 1, "output": 1, "total": 2},
                    "cost": cost, "execution_time": 1.0}))
                .unwrap()
            })
            .collect();
        push(ChangeKind::Result(Arc::new(r)));
    }
    out
}

/// The SQL blocks of docs/queries.md, in order.
fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/queries.md"))
        .expect("docs/queries.md");
    doc.split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_string())
        .collect()
}

/// Runs `sql` with psql (UTC, unaligned, no headers) and the query variables.
fn run(db: &PgDb, sql: &str) -> String {
    let out = Command::new("psql")
        .args([db.url.as_str(), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"])
        .args(["-v", "word=raft", "-v", "workflow=wf_q0001", "-f", "-"])
        .env("PGTZ", "UTC")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(sql.as_bytes())?;
            c.wait_with_output()
        })
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn lines<I: IntoIterator<Item = String>>(rows: I) -> String {
    rows.into_iter().collect::<Vec<_>>().join("\n")
}

/// Nearest rank (1-based) of `p` among `n` sorted values.
fn nth(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1]
}

/// The eight answers, computed from the data set.
fn expected(set: &[Wf], now: DateTime<Utc>) -> Vec<String> {
    let week_ago = now - Duration::days(7);
    let mut models: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for w in set.iter().filter(|w| w.created >= week_ago) {
        let calls = w.agents.iter().map(|a| (a.1, a.2)).chain(w.synthesis);
        for (m, c) in calls {
            let e = models.entry(m).or_default();
            e.0 += 1;
            e.1 += c;
        }
    }
    let mut models: Vec<_> = models.into_iter().collect();
    models.sort_by(|a, b| {
        format!("{:.4}", b.1 .1)
            .cmp(&format!("{:.4}", a.1 .1))
            .then(a.0.cmp(b.0))
    });
    let q1 = lines(models.iter().map(|(m, (n, c))| format!("{m}|{n}|{c:.4}")));

    let q2 = lines(["research", "search"].iter().map(|p| {
        let mut t: Vec<f64> = set
            .iter()
            .filter(|w| w.pattern == *p)
            .filter_map(|w| w.exec)
            .collect();
        t.sort_by(f64::total_cmp);
        format!("{p}|{}|{}|{}", t.len(), nth(&t, 0.5), nth(&t, 0.95))
    }));

    let mut codes: BTreeMap<&str, u64> = BTreeMap::new();
    for w in set.iter().filter_map(|w| w.error) {
        *codes.entry(w).or_default() += 1;
    }
    let mut codes: Vec<_> = codes.into_iter().collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let q3 = lines(codes.iter().map(|(c, n)| format!("{c}|{n}")));

    let q4 = lines(
        set.iter()
            .filter(|w| w.mentions_raft)
            .map(|w| format!("{}|{}", w.id, w.task)),
    );

    let q5 = lines(set[1].events.iter().map(|e| {
        format!(
            "{}|{}|{}|{}",
            e.seq,
            e.timestamp.format("%Y-%m-%d %H:%M:%S+00"),
            e.kind.as_str(),
            e.data["agent_id"].as_str().unwrap_or_default()
        )
    }));

    let mut failed: BTreeMap<&str, u64> = BTreeMap::new();
    for a in set.iter().flat_map(|w| &w.agents).filter(|a| a.3) {
        *failed.entry(a.0).or_default() += 1;
    }
    let mut failed: Vec<_> = failed.into_iter().collect();
    failed.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let q6 = lines(failed.iter().map(|(t, n)| format!("{t}|{n}")));

    let mut spend: BTreeMap<(String, &str), (u64, f64)> = BTreeMap::new();
    for w in set {
        let day = w.created.format("%Y-%m-%d").to_string();
        let e = spend.entry((day, w.owner.unwrap_or("no key"))).or_default();
        e.0 += 1;
        e.1 += w.cost;
    }
    let q7 = lines(
        spend
            .iter()
            .map(|((day, key), (n, c))| format!("{key}|{day}|{n}|{c:.4}")),
    );

    let q8 = lines(
        set.iter()
            .filter(|w| w.status == "cancelled" && w.started.is_some())
            .map(|w| format!("{}|{:.1}", w.id, w.exec.unwrap_or(0.0))),
    );
    vec![q1, q2, q3, q4, q5, q6, q7, q8]
}

#[tokio::test]
async fn every_documented_query_answers_what_the_data_says() {
    let db = PgDb::new();
    let now = Utc::now();
    let set = dataset(now);
    let store = PgStore::connect(&PostgresConfig {
        url: Some(db.url.clone()),
        ..Default::default()
    })
    .await
    .expect("connect");
    for chunk in changes(&set).chunks(1000) {
        store.write_batch(chunk.to_vec()).await.expect("batch");
    }
    db.query("ANALYZE");
    // Finished workflows keep their result and their events, in the plan's columns.
    assert_eq!(db.query("SELECT count(*) FROM plan.results"), N.to_string());
    assert_eq!(
        db.query("SELECT count(*) FROM plan.events"),
        set.iter()
            .map(|w| w.events.len())
            .sum::<usize>()
            .to_string()
    );

    let queries = documented();
    assert!(queries.len() >= 8, "{} queries documented", queries.len());
    let want = expected(&set, now);
    for (i, (sql, want)) in queries.iter().zip(&want).enumerate() {
        assert!(
            !want.is_empty(),
            "query {}: an empty answer proves nothing",
            i + 1
        );
        assert_eq!(
            &run(&db, sql),
            want,
            "query {} of docs/queries.md:\n{sql}",
            i + 1
        );
    }
    // The word search and the failed-agents query go through the GIN indexes.
    for (i, index) in [(3, "idx_results_words"), (5, "idx_results_metadata")] {
        let plan = run(
            &db,
            &format!(
                "SET enable_seqscan = off;\nEXPLAIN (COSTS OFF) {}",
                queries[i]
            ),
        );
        assert!(
            plan.contains(index),
            "query {}: {index} not used:\n{plan}",
            i + 1
        );
    }
}

//! Analytics over the whole stored history, on both primary stores: 10,000
//! synthetic historical workflows are written straight into the database (one
//! store batch per 2,000 changes), two live ones are started through the API, and
//! every figure of `/v1/analytics/*` (and the old `/analytics/*`) is checked
//! against a reference computed here from the same data.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mcp_orchestrator::config::{Durability, PostgresConfig};
use mcp_orchestrator::domain::{
    ChangeKind, Pattern, PatternConfig, StateChange, Status, Workflow, WorkflowResult,
};
use mcp_orchestrator::store::postgres::PgStore;
use mcp_orchestrator::store::sqlite::SqliteStore;
use mcp_orchestrator::store::Store;
use serde_json::{json, Value};

use crate::common::pg::PgDb;
use crate::common::{change, new_dir, research, server, Builder, Server, SEC};

const N: usize = 10_000;
const MODELS: [&str; 3] = ["gpt-4o-mini", "claude-haiku", "llama-3"];

/// One workflow as the reference sees it.
#[derive(Clone)]
struct Row {
    pattern: &'static str,
    status: &'static str,
    created: DateTime<Utc>,
    completed: Option<DateTime<Utc>>,
    cost: f64,
    exec: Option<f64>,
    /// (model, cost) of each agent and synthesis call in the stored result.
    calls: Vec<(&'static str, f64)>,
    /// LLM tokens in the record.
    tokens: u64,
}

/// A small deterministic generator (no test depends on luck).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn synthetic(now: DateTime<Utc>) -> Vec<Row> {
    let mut rng = Lcg(42);
    let base = now - Duration::days(40);
    (0..N)
        .map(|i| {
            // Most over 35 days ending five days ago; the last 100 twelve hours ago,
            // so "finished in the last 24 hours" is not trivially zero.
            let created = if i < N - 100 {
                base + Duration::seconds((i as i64) * 35 * 86_400 / N as i64)
                    + Duration::milliseconds(rng.next(60_000) as i64)
            } else {
                now - Duration::hours(12) + Duration::minutes(i as i64 - (N as i64 - 100))
            };
            let status = match rng.next(10) {
                0..=6 => "completed",
                7 | 8 => "failed",
                _ => "cancelled",
            };
            let exec = match status {
                "cancelled" if rng.next(2) == 0 => None,
                _ => Some(rng.next(600_000) as f64 / 1000.0 + 0.5),
            };
            let calls = match status {
                "cancelled" => vec![],
                _ => (0..4)
                    .map(|k| {
                        let model = if k == 3 {
                            "gpt-4o"
                        } else {
                            MODELS[rng.next(3) as usize]
                        };
                        (model, rng.next(10_000) as f64 / 100_000.0)
                    })
                    .collect(),
            };
            Row {
                pattern: if i % 3 == 0 { "search" } else { "research" },
                status,
                completed: Some(
                    created + Duration::milliseconds((exec.unwrap_or(0.1) * 1000.0) as i64),
                ),
                created,
                cost: rng.next(100_000) as f64 / 100_000.0,
                exec,
                calls,
                tokens: (i % 7) as u64 * 100,
            }
        })
        .collect()
}

/// The rows as store changes: a workflow record and, unless cancelled, a result.
fn changes(rows: &[Row]) -> Vec<Arc<StateChange>> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let id = format!("wf_syn{i:06}");
        let pattern = Pattern::parse(r.pattern).unwrap();
        let mut wf = Workflow::new(
            id.clone(),
            pattern,
            format!("historical task {i}"),
            format!("historical {i}"),
            PatternConfig::default_for(pattern),
            "simulated".into(),
            true,
        );
        wf.created_at = r.created;
        wf.started_at = Some(r.created);
        wf.completed_at = r.completed;
        wf.status = Status::parse(r.status).unwrap();
        wf.total_cost_usd = r.cost;
        wf.execution_time = r.exec;
        wf.tokens.total = r.tokens;
        let seq = out.len() as u64 + 1;
        out.push(change(seq, ChangeKind::Workflow(Arc::new(wf))));
        if r.calls.is_empty() {
            continue;
        }
        let call = |(model, cost): &(&str, f64), k: usize| {
            json!({"agent_id": format!("agent_{k}"), "agent_type": "text", "subtask": "s",
                "content": "c", "status": "completed", "model": model,
                "tokens": {"input": 1, "output": 1, "total": 2}, "cost": cost,
                "execution_time": 1.0, "error": null})
        };
        let (model, cost) = r.calls[3];
        let mut result = WorkflowResult::empty(&id, pattern, true);
        result.status = Status::parse(r.status).unwrap();
        result.agent_results = (0..3)
            .map(|k| serde_json::from_value(call(&r.calls[k], k)).unwrap())
            .collect();
        result.synthesis_results = vec![serde_json::from_value(json!({"level": "final",
            "group": null, "sources": [], "content": "s", "model": model,
            "tokens": {"input": 1, "output": 1, "total": 2}, "cost": cost, "execution_time": 1.0}))
        .unwrap()];
        let seq = out.len() as u64 + 1;
        out.push(change(seq, ChangeKind::Result(Arc::new(result))));
    }
    out
}

async fn load_into(store: &dyn Store, rows: &[Row]) {
    let changes = changes(rows);
    let t = std::time::Instant::now();
    for chunk in changes.chunks(2000) {
        store
            .write_batch(chunk.to_vec())
            .await
            .expect("synthetic batch");
    }
    // A measurement for the record, not an assertion.
    eprintln!(
        "{}: wrote {} changes in {:?}",
        store.kind(),
        changes.len(),
        t.elapsed()
    );
}

struct Window {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    pattern: Option<&'static str>,
}

impl Window {
    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(s) = self.since {
            q.push(format!(
                "since={}",
                s.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ));
        }
        if let Some(u) = self.until {
            q.push(format!(
                "until={}",
                u.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ));
        }
        if let Some(p) = self.pattern {
            q.push(format!("pattern={p}"));
        }
        q.join("&").replace('+', "%2B")
    }

    fn holds(&self, r: &Row) -> bool {
        self.since.is_none_or(|s| r.created >= s)
            && self.until.is_none_or(|u| r.created < u)
            && self.pattern.is_none_or(|p| r.pattern == p)
    }
}

fn counts<'a>(rows: impl Iterator<Item = &'a Row>) -> Value {
    let mut c: BTreeMap<&str, u64> = [
        "total",
        "active",
        "pending",
        "running",
        "interrupted",
        "completed",
        "failed",
        "cancelled",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    for r in rows {
        *c.get_mut("total").unwrap() += 1;
        *c.get_mut(r.status).unwrap() += 1;
        if ["pending", "running", "interrupted"].contains(&r.status) {
            *c.get_mut("active").unwrap() += 1;
        }
    }
    json!(c)
}

fn cost_group(rows: &[&Row]) -> Value {
    let total: f64 = rows.iter().map(|r| r.cost).sum();
    let n = rows.len() as f64;
    json!({"workflow_count": rows.len(), "total_cost_usd": total,
        "average_cost_usd": if rows.is_empty() { 0.0 } else { total / n }})
}

/// Every figure, computed here from the rows.
fn reference(all: &[Row], w: &Window, now: DateTime<Utc>) -> (Value, Value, Value) {
    let rows: Vec<&Row> = all.iter().filter(|r| w.holds(r)).collect();
    let mut workflows = counts(rows.iter().copied());
    let by_pattern: BTreeMap<&str, Value> = ["research", "search"]
        .into_iter()
        .map(|p| (p, counts(rows.iter().copied().filter(|r| r.pattern == p))))
        .collect();
    workflows["by_pattern"] = json!(by_pattern);
    let day_ago = now - Duration::hours(24);
    workflows["recent_24h"] = json!(rows
        .iter()
        .filter(|r| r.completed.is_some_and(|c| c >= day_ago) && r.status != "running")
        .count());

    let mut costs = cost_group(&rows);
    costs["total_execution_hours"] =
        json!(rows.iter().filter_map(|r| r.exec).sum::<f64>() / 3600.0);
    costs["total_tokens"] = json!(rows.iter().map(|r| r.tokens).sum::<u64>());
    let by_pattern: BTreeMap<&str, Value> = ["research", "search"]
        .into_iter()
        .map(|p| {
            (
                p,
                cost_group(
                    &rows
                        .iter()
                        .copied()
                        .filter(|r| r.pattern == p)
                        .collect::<Vec<_>>(),
                ),
            )
        })
        .collect();
    costs["by_pattern"] = json!(by_pattern);
    let mut by_model: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    let mut by_day: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for r in &rows {
        for (m, c) in &r.calls {
            let e = by_model.entry(m).or_default();
            e.0 += 1;
            e.1 += c;
        }
        let e = by_day
            .entry(r.created.format("%Y-%m-%d").to_string())
            .or_default();
        e.0 += 1;
        e.1 += r.cost;
    }
    costs["by_model"] = json!(by_model
        .into_iter()
        .map(|(m, (calls, c))| (m, json!({"calls": calls, "total_cost_usd": c})))
        .collect::<BTreeMap<_, _>>());
    costs["by_day"] = json!(by_day
        .into_iter()
        .map(|(d, (n, c))| json!({"date": d, "workflow_count": n, "total_cost_usd": c}))
        .collect::<Vec<_>>());

    let finished: Vec<&&Row> = rows
        .iter()
        .filter(|r| ["completed", "failed", "cancelled"].contains(&r.status))
        .collect();
    let mut times: Vec<f64> = finished.iter().filter_map(|r| r.exec).collect();
    times.sort_by(f64::total_cmp);
    let n = times.len();
    // Nearest rank, independently of the server's helper.
    let pct = |p: f64| (n > 0).then(|| times[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
    let count = |s: &str| finished.iter().filter(|r| r.status == s).count();
    let performance = json!({
        "workflow_count": n,
        "avg_execution_time": (n > 0).then(|| times.iter().sum::<f64>() / n as f64),
        "min_execution_time": times.first(),
        "max_execution_time": times.last(),
        "p50_execution_time": pct(0.50),
        "p95_execution_time": pct(0.95),
        "p99_execution_time": pct(0.99),
        "success_rate": (!finished.is_empty()).then(|| 100.0 * count("completed") as f64 / finished.len() as f64),
        "completed": count("completed"),
        "failed": count("failed"),
        "cancelled": count("cancelled"),
    });
    (workflows, costs, performance)
}

/// Equal JSON, numbers within a relative 1e-9 (sums may add in another order).
fn assert_close(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{path}: got {g}, want {w}"
            );
        }
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<_> = g.keys().filter(|k| *k != "window").collect();
            let wk: Vec<_> = w.keys().collect();
            let (mut gs, mut ws) = (gk.clone(), wk.clone());
            gs.sort();
            ws.sort();
            assert_eq!(gs, ws, "{path}: keys differ");
            for k in wk {
                assert_close(&g[k], &w[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: lengths differ");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_close(g, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// Starts two long-running workflows through the API and returns them as rows.
async fn live_rows(s: &Server) -> Vec<Row> {
    let mut rows = Vec::new();
    for i in 0..2 {
        let id = s.create(research(&format!("live {i}"), 3)).await;
        let wf = s.wait_status(&id, "running", 30 * SEC).await;
        rows.push(Row {
            pattern: "research",
            status: "running",
            created: wf["created_at"].as_str().unwrap().parse().unwrap(),
            completed: None,
            cost: wf["total_cost_usd"].as_f64().unwrap(),
            exec: None,
            calls: vec![],
            tokens: wf["tokens"]["total"].as_u64().unwrap(),
        });
    }
    rows
}

async fn check_all(s: &Server, mut rows: Vec<Row>, now: DateTime<Utc>) {
    rows.extend(live_rows(s).await);
    let base = now - Duration::days(40);
    let windows = [
        Window {
            since: None,
            until: None,
            pattern: None,
        },
        Window {
            since: Some(base + Duration::days(10)),
            until: Some(base + Duration::days(20)),
            pattern: None,
        },
        Window {
            since: None,
            until: None,
            pattern: Some("search"),
        },
        Window {
            since: Some(base + Duration::days(3)),
            until: None,
            pattern: Some("research"),
        },
        Window {
            since: Some(now - Duration::days(1)),
            until: Some(now + Duration::days(1)),
            pattern: None,
        },
    ];
    for w in &windows {
        let q = w.query();
        let (wf, costs, perf) = reference(&rows, w, Utc::now());
        for (name, want) in [("workflows", wf), ("costs", costs), ("performance", perf)] {
            let t = std::time::Instant::now();
            let r = s.get(&format!("/v1/analytics/{name}?{q}")).await;
            eprintln!("analytics {name}?{q}: {:?}", t.elapsed());
            assert_eq!(r.status, 200, "{name}?{q}: {:?}", r.body);
            assert_close(&r.body, &want, &format!("{name}?{q}"));
            assert_eq!(r.body["window"]["pattern"], json!(w.pattern));
        }
    }
    assert_eq!(rows.len(), N + 2);
    // The old paths: same figures plus the keys the old server's clients read.
    let old = s.get("/analytics/workflows").await.body;
    let research_total = old["by_pattern"]["research"]["total"].clone();
    assert_eq!(old["by_type"]["beltalowda"], research_total);
    assert_eq!(
        old["by_type"]["swarm"],
        old["by_pattern"]["search"]["total"]
    );
    assert_eq!(old["active"], 2);
    // The old costs and performance as the plan defines them: finished
    // workflows only (not the two running), rounded as the plan rounds.
    let finished: Vec<Row> = rows
        .iter()
        .filter(|r| r.status != "running")
        .cloned()
        .collect();
    let every = Window {
        since: None,
        until: None,
        pattern: None,
    };
    let (_, want, want_perf) = reference(&finished, &every, Utc::now());
    let old = s.get("/analytics/costs").await.body;
    assert_eq!(old["workflow_count"], json!(N));
    assert_eq!(old["total_tokens"], want["total_tokens"]);
    for (key, places) in [
        ("total_cost_usd", 4),
        ("average_cost_usd", 4),
        ("total_execution_hours", 2),
    ] {
        assert_rounded(&old[key], &want[key], places, key);
    }
    assert_rounded(
        &old["by_model"]["gpt-4o"]["total_cost_usd"],
        &want["by_model"]["gpt-4o"]["total_cost_usd"],
        4,
        "by_model.gpt-4o",
    );
    assert_rounded(
        &old["by_pattern"]["search"]["average_cost_usd"],
        &want["by_pattern"]["search"]["average_cost_usd"],
        4,
        "by_pattern.search",
    );
    let old = s.get("/analytics/performance").await.body;
    for key in [
        "avg_execution_time",
        "min_execution_time",
        "max_execution_time",
        "p50_execution_time",
        "p95_execution_time",
        "p99_execution_time",
        "success_rate",
    ] {
        assert_rounded(&old[key], &want_perf[key], 2, key);
    }
    let old = s.get("/analytics/performance?pattern=swarm").await.body;
    let v1 = s.get("/v1/analytics/performance?pattern=search").await.body;
    assert_rounded(&old["success_rate"], &v1["success_rate"], 2, "success_rate");
    assert!(old["p95_execution_time"].is_number());
}

/// `got` is `want` rounded to `places` decimals (half a unit either way, as
/// sums may add in another order), and has no more decimals than that.
fn assert_rounded(got: &Value, want: &Value, places: i32, what: &str) {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    let scale = 10f64.powi(places);
    assert!(
        (g * scale - (g * scale).round()).abs() < 1e-6,
        "{what}: {g} has more than {places} decimals"
    );
    assert!(
        (g - w).abs() <= 0.5 / scale + 1e-9,
        "{what}: got {g}, want {w} rounded to {places} places"
    );
}

fn live(b: Builder) -> Builder {
    // Live workflows stay running while the figures are read.
    b.latency_ms(60_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_over_10000_workflows_on_postgres() {
    let db = PgDb::new();
    let now = Utc::now();
    let rows = synthetic(now);
    let cfg = PostgresConfig {
        url: Some(db.url.clone()),
        ..Default::default()
    };
    let store = PgStore::connect(&cfg).await.expect("connect");
    load_into(&store, &rows).await;
    let s = live(server().env("MCPO__POSTGRES__URL", &db.url)).start();
    check_all(&s, rows, now).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_over_10000_workflows_on_sqlite() {
    let dir = new_dir();
    let now = Utc::now();
    let rows = synthetic(now);
    let store = SqliteStore::open(&dir.join("orchestrator.db"), Durability::Async).expect("open");
    load_into(&store, &rows).await;
    drop(store);
    let s = live(server().dir(Path::new(&dir))).start();
    check_all(&s, rows, now).await;
}

#[tokio::test]
async fn analytics_parameters_are_validated_and_empty_history_answers() {
    let s = server().start();
    for path in ["/v1/analytics/costs", "/analytics/workflows"] {
        for (q, field) in [
            ("since=yesterday", "since"),
            ("until=2026-02-30", "until"),
            ("pattern=poetry", "pattern"),
            ("since=2026-02-01&until=2026-01-01", "until"),
            ("limit=3", "limit"),
        ] {
            let r = s.get(&format!("{path}?{q}")).await;
            assert_eq!(r.status, 400, "{path}?{q}: {:?}", r.body);
            assert_eq!(r.body["error"]["field"], field, "{path}?{q}: {:?}", r.body);
        }
    }
    let r = s.get("/v1/analytics/performance").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["workflow_count"], 0);
    assert_eq!(r.body["p99_execution_time"], Value::Null);
    let r = s.get("/analytics/performance").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, json!({"error": "No data"}));
    let r = s.get("/v1/analytics/workflows").await;
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["by_pattern"]["search"]["total"], 0);
    let r = s.post("/v1/analytics/workflows", &json!({})).await;
    assert_eq!(r.status, 405);
}

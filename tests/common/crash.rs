//! The crash harness: many workflows against the fake OpenAI server, SIGKILL at
//! a given share finished, restart on the same state, and an account of every
//! LLM call by step key — which were answered before the kill, which were
//! committed, which were made again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fake_openai::FakeOpenAi;
use super::{Builder, Server, SEC};

pub const SEARCH_TYPES: [&str; 8] = [
    "text",
    "image",
    "video",
    "news",
    "academic",
    "social",
    "product",
    "technical",
];

/// Points the server at the fake with fixed prices, generous timeouts (no
/// retries: every repeat of a step key is a resume) and room for `n` workflows.
pub fn with_fake(b: Builder, fake: &FakeOpenAi, n: usize) -> Builder {
    b.fake_provider(fake, "MCPO_CRASH_TEST_KEY", "sk-crash-test")
        .env("MCPO__PROVIDERS__FAKE__INPUT_PRICE_PER_MTOK", "0.15")
        .env("MCPO__PROVIDERS__FAKE__OUTPUT_PRICE_PER_MTOK", "0.6")
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 0)
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "120s")
        .env("MCPO__LIMITS__MAX_ACTIVE", n + 10)
        .env("MCPO__RETENTION__MAX_COMPLETED", n + 10)
}

/// Workflow `i`: even ones search (8 agents + 1 synthesis = 9 calls), odd ones
/// research (decomposition + 6 agents + 2 group syntheses + final = 10 calls).
pub fn body(i: usize) -> Value {
    if i.is_multiple_of(2) {
        json!({"pattern": "search", "task": format!("crash search {i}"),
               "config": {"agent_types": SEARCH_TYPES, "max_concurrent_agents": 2}})
    } else {
        json!({"pattern": "research", "task": format!("crash research {i}"),
               "config": {"num_agents": 6, "synthesis_group_size": 3, "max_concurrent_agents": 2}})
    }
}

pub async fn count(s: &Server, status: &str) -> u64 {
    let r = s.get("/v1/analytics/workflows").await;
    r.body[status].as_u64().unwrap_or(0)
}

/// Waits until `done(completed, failed+cancelled)` holds; returns how long.
pub async fn wait_until(s: &Server, within: Duration, done: impl Fn(u64, u64) -> bool) -> Duration {
    let t = Instant::now();
    loop {
        let c = count(s, "completed").await;
        let f = count(s, "failed").await + count(s, "cancelled").await;
        if done(c, f) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "not done within {within:?}: {c} completed, {f} failed or cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The step keys whose answer a workflow's event log shows committed before the
/// process died: answer events before its first `workflow_interrupted`, and the
/// ones a restart logged from the steps table (`restored`).
pub fn committed_before_kill(events: &[super::SseEvent]) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut interrupted = false;
    for e in events {
        match e.event.as_deref() {
            Some("workflow_interrupted") => interrupted = true,
            Some("task_decomposed" | "agent_completed" | "synthesis_completed") => {
                let restored = e.data["data"]["restored"] == true || e.data["restored"] == true;
                if !interrupted || restored {
                    let d = if e.data["data"].is_object() {
                        &e.data["data"]
                    } else {
                        &e.data
                    };
                    if let Some(k) = d["step_key"].as_str() {
                        out.insert(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Default)]
pub struct CrashReport {
    pub workflows: usize,
    pub finished_before_kill: u64,
    /// Calls started before the kill whose answer was not written before it.
    pub in_flight_at_kill: usize,
    /// Step keys called again whose first answer had been written before the
    /// kill (answered, but not yet committed when the process died).
    pub repeated_after_answer: usize,
    /// Of those, the ones whose answer had arrived at least 50 ms before the
    /// kill: a commit takes far less, so this must be 0.
    pub repeated_answered_50ms_before: usize,
    /// Step keys called again whose first call was still in flight at the kill.
    pub repeated_in_flight: usize,
    pub finish_after_restart: Duration,
    pub calls: usize,
    /// From `llm_step_commit_seconds` just before the kill: (answers committed,
    /// mean seconds from an answer's arrival to its commit, share within 10 ms).
    pub window: (u64, f64, f64),
    /// From `persister_batch_seconds` just before the kill: (batches committed,
    /// mean seconds from a batch's cut to its commit).
    pub batches: (u64, f64),
}

/// Reads the step commit window off a `/metrics` exposition.
pub fn commit_window(metrics: &Value) -> (u64, f64, f64) {
    let m = crate::common::prometheus::samples(metrics.as_str().unwrap_or(""));
    let value = |series: &str| m.get(series).copied().unwrap_or(0.0);
    let count = value("llm_step_commit_seconds_count");
    let sum = value("llm_step_commit_seconds_sum");
    let within_10ms = value("llm_step_commit_seconds_bucket{le=\"0.01\"}");
    let mean = if count > 0.0 { sum / count } else { 0.0 };
    let share = if count > 0.0 {
        within_10ms / count
    } else {
        0.0
    };
    (count as u64, mean, share)
}

/// Reads the primary store's batch count and mean duration off a `/metrics`
/// exposition.
pub fn batch_times(metrics: &Value) -> (u64, f64) {
    let m = crate::common::prometheus::samples(metrics.as_str().unwrap_or(""));
    let value = |series: &str| m.get(series).copied().unwrap_or(0.0);
    let count = value("persister_batch_seconds_count{persister=\"primary\"}");
    let sum = value("persister_batch_seconds_sum{persister=\"primary\"}");
    (count as u64, if count > 0.0 { sum / count } else { 0.0 })
}

/// Runs `n` workflows, SIGKILLs the server once `share` of them finished,
/// restarts it on the same state and checks: every workflow completes, no step
/// whose answer was committed is called again, every workflow's cost and tokens
/// equal those of a workflow of the same shape that ran without a crash.
pub async fn crash_and_resume(
    start: impl Fn(Option<&std::path::Path>) -> Server,
    fake: &FakeOpenAi,
    n: usize,
    share: f64,
) -> CrashReport {
    fake.set_latency(Duration::from_millis(50));
    let mut s = start(None);
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let posts = chunk.iter().map(|i| s.create(body(*i)));
        ids.extend(futures::future::join_all(posts).await);
    }
    let target = (n as f64 * share).ceil() as u64;
    let t = Instant::now();
    let finished_before_kill = loop {
        let c = count(&s, "completed").await;
        if c >= target {
            break c;
        }
        assert!(t.elapsed() < 300 * SEC, "only {c} of {n} finished");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let metrics = s.get("/metrics").await.body;
    let (window, batches) = (commit_window(&metrics), batch_times(&metrics));
    assert!(batches.0 > 0, "persister_batch_seconds counts the batches");
    let kill_at = Instant::now();
    s.kill9();
    let before = fake.requests();
    let dir = s.dir.clone();
    drop(s);
    let s = start(Some(&dir));
    let t = Instant::now();
    wait_until(&s, 300 * SEC, |c, f| c + f >= n as u64).await;
    let finish_after_restart = t.elapsed();
    assert_eq!(count(&s, "failed").await, 0, "no workflow may fail");
    assert_eq!(
        count(&s, "completed").await,
        n as u64,
        "every workflow completes"
    );

    // Every call by step key; which answers had been written before the kill.
    let calls = fake.calls_by_step_key();
    let in_flight_at_kill = before
        .iter()
        .filter(|r| !r.answered_before(kill_at))
        .count();
    let mut repeated: HashMap<String, bool> = HashMap::new();
    let mut repeated_answered_50ms_before = 0;
    let well_before = kill_at.checked_sub(Duration::from_millis(50));
    for (k, v) in &calls {
        if v.len() > 1 {
            assert_eq!(v.len(), 2, "step {k} called {} times", v.len());
            repeated.insert(k.clone(), v[0].answered_before(kill_at));
            if well_before.is_some_and(|t| v[0].answered_before(t)) {
                repeated_answered_50ms_before += 1;
            }
        }
    }

    // Repeats are allowed only for answers the store had not committed.
    let mut per_wf: HashMap<&str, Vec<&String>> = HashMap::new();
    for k in repeated.keys() {
        per_wf
            .entry(k.split('/').next().unwrap_or(""))
            .or_default()
            .push(k);
    }
    for (wf, keys) in per_wf {
        let events = s.sse(wf, None, 30 * SEC).await;
        let committed = committed_before_kill(&events);
        for k in keys {
            assert!(
                !committed.contains(k),
                "step {k} was called again although its answer was committed before the kill"
            );
        }
    }

    // Cost and tokens: every workflow equals a clean one of its shape.
    let mut clean: HashMap<String, (f64, u64)> = HashMap::new();
    let mut records = Vec::new();
    for id in &ids {
        let wf = s.workflow(id).await;
        let shape = wf["pattern"].as_str().unwrap_or("").to_string();
        let resumed = wf["resumes"].as_u64().unwrap_or(0) > 0;
        let totals = (
            wf["total_cost_usd"].as_f64().unwrap_or(-1.0),
            wf["tokens"]["total"].as_u64().unwrap_or(0),
        );
        if !resumed && wf["status"] == "completed" {
            clean.entry(shape.clone()).or_insert(totals);
        }
        records.push((id.clone(), shape, totals));
    }
    let calls_of = |shape: &str| if shape == "search" { 9 } else { 10 };
    for (id, shape, totals) in &records {
        let want = clean
            .get(shape)
            .unwrap_or_else(|| panic!("no clean {shape} workflow to compare with"));
        assert_eq!(
            totals, want,
            "{id} ({shape}): cost/tokens differ from a clean run"
        );
        assert_eq!(
            totals.1,
            150 * calls_of(shape),
            "{id}: tokens of {} calls",
            calls_of(shape)
        );
    }
    CrashReport {
        workflows: n,
        finished_before_kill,
        window,
        batches,
        in_flight_at_kill,
        repeated_after_answer: repeated.values().filter(|a| **a).count(),
        repeated_answered_50ms_before,
        repeated_in_flight: repeated.values().filter(|a| !**a).count(),
        finish_after_restart,
        calls: calls.values().map(Vec::len).sum(),
    }
}

//! `e2e`: research workflows submitted and followed over SSE until completed,
//! closed loop (fixed in flight) or open loop (fixed rate).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::stats::{client, cpu_secs, summary, Tally};

#[derive(clap::Args)]
pub struct E2e {
    /// The server; repeat for several instances (workflow i goes to the
    /// i-th mod n, and is followed on the same one).
    #[arg(long, default_value = "http://127.0.0.1:5060")]
    url: Vec<String>,
    /// Closed loop: workflows in flight at all times.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Open loop instead: workflows submitted per second.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[arg(long, default_value_t = 8)]
    agents: u32,
    #[arg(long, default_value_t = 4)]
    group: u32,
    /// The server's providers.simulated.latency_ms, for the critical path.
    #[arg(long)]
    sim_latency_ms: u64,
    /// The server's process id (same machine): report its CPU time per workflow.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// Why one workflow of the load did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Admission refused it (429): counted apart from errors.
    #[error("429")]
    Refused,
    #[error("create: HTTP {0}")]
    Create(reqwest::StatusCode),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("no id")]
    NoId,
    #[error("workflow did not complete")]
    NotCompleted,
    #[error("event stream ended early")]
    StreamEnded,
}

/// Submits one workflow and follows its events until the terminal one; returns the
/// submit→completed latency.
pub async fn one_workflow(
    c: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<Duration, RunError> {
    let t0 = Instant::now();
    let r = c
        .post(format!("{url}/v1/workflows"))
        .json(body)
        .send()
        .await?;
    if r.status().as_u16() == 429 {
        return Err(RunError::Refused);
    }
    if r.status().as_u16() != 201 {
        return Err(RunError::Create(r.status()));
    }
    let v: Value = r.json().await?;
    let id = v["id"].as_str().ok_or(RunError::NoId)?.to_string();
    let resp = c
        .get(format!("{url}/v1/workflows/{id}/events"))
        .send()
        .await?;
    let mut stream = resp.bytes_stream();
    let mut tail = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if tail.contains("event: workflow_completed") {
            return Ok(t0.elapsed());
        }
        if tail.contains("event: workflow_failed") || tail.contains("event: workflow_cancelled") {
            return Err(RunError::NotCompleted);
        }
        // Keep only what a marker split across chunks needs.
        if tail.len() > 256 {
            tail = tail[tail.len() - 64..].to_string();
        }
    }
    Err(RunError::StreamEnded)
}

/// The i-th server, round-robin.
fn pick(urls: &[String], i: usize) -> String {
    urls.get(i % urls.len().max(1)).cloned().unwrap_or_default()
}

pub async fn e2e(a: E2e) {
    let c = client();
    let calls = 1 + a.agents + a.agents.div_ceil(a.group) + 1;
    // decomposition, one wave of agents, one wave of group syntheses, final synthesis
    let critical_ms = (4 * a.sim_latency_ms) as f64;
    let body = json!({"pattern": "research", "task": "load test",
        "config": {"num_agents": a.agents, "synthesis_group_size": a.group, "max_concurrent_agents": a.agents}});
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let measure_from = start + a.warmup;
    let end = measure_from + a.duration;
    let record = {
        let tally = Arc::clone(&tally);
        move |res: Result<Duration, RunError>, finished: Instant| {
            if finished < measure_from || finished > end {
                return;
            }
            match res {
                Ok(d) => {
                    tally.done.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = tally.latencies_ms.lock() {
                        l.push(d.as_secs_f64() * 1000.0);
                    }
                }
                Err(RunError::Refused) => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
    // CPU seconds (user + system) of the server and of this tool over the window.
    let cpu = {
        let pid = a.server_pid;
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = (pid.map(cpu_secs), cpu_secs(std::process::id()));
            tokio::time::sleep_until(end.into()).await;
            let after = (pid.map(cpu_secs), cpu_secs(std::process::id()));
            (
                after.0.zip(before.0).map(|(a, b)| a - b),
                after.1 - before.1,
            )
        })
    };
    let mut tasks = Vec::new();
    match a.rate {
        None => {
            for i in 0..a.concurrency {
                let (c, url, body, record) =
                    (c.clone(), pick(&a.url, i), body.clone(), record.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let r = one_workflow(&c, &url, &body).await;
                        if matches!(r, Err(RunError::Refused)) {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        record(r, Instant::now());
                    }
                }));
            }
        }
        Some(rate) => {
            // A rate of 0, a negative or a huge one must not panic: at least one a day.
            let gap = Duration::try_from_secs_f64(1.0 / rate)
                .map_or(Duration::from_secs(86_400), |g| {
                    g.min(Duration::from_secs(86_400))
                });
            let mut next = Instant::now();
            let mut i = 0;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let (c, url, body, record) =
                    (c.clone(), pick(&a.url, i), body.clone(), record.clone());
                i += 1;
                tasks.push(tokio::spawn(async move {
                    let r = one_workflow(&c, &url, &body).await;
                    record(r, Instant::now());
                }));
                next += gap;
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = a.duration.as_secs_f64();
    let done = tally.done.load(Ordering::Relaxed);
    let lat = tally
        .latencies_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let overhead: Vec<f64> = lat.iter().map(|l| l - critical_ms).collect();
    let mode = match a.rate {
        Some(r) => format!("open loop, {r} workflows/s offered"),
        None => format!("closed loop, {} in flight", a.concurrency),
    };
    println!(
        "e2e research ({} agents, group {}, {calls} calls each), simulated latency {} ms, {mode}",
        a.agents, a.group, a.sim_latency_ms
    );
    println!(
        "completed: {done} in {secs:.1} s = {:.1} workflows/s, {:.0} LLM calls/s",
        done as f64 / secs,
        done as f64 * f64::from(calls) / secs
    );
    println!(
        "refused (429): {}, errors: {}",
        tally.refused.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed)
    );
    println!("{}", summary("submit→completed latency", lat));
    println!(
        "critical path {critical_ms} ms; {}",
        summary("orchestration overhead", overhead)
    );
    if let Ok((server, own)) = cpu.await {
        let per = |s: f64| s * 1000.0 / done.max(1) as f64;
        match server {
            Some(s) => println!(
                "CPU: server {:.2} ms per workflow ({:.0}% of one core), loadgen {:.2} ms per workflow",
                per(s),
                s / secs * 100.0,
                per(own)
            ),
            None => println!("CPU: loadgen {:.2} ms per workflow", per(own)),
        }
    }
}

//! loadgen: drives a running mcp-orchestrator over real HTTP and reports throughput,
//! latency percentiles and orchestration overhead; seeds a store with synthetic
//! history; measures restore time and resident memory of the real binary.
//!
//! ```text
//! loadgen e2e  --url http://127.0.0.1:5060 --concurrency 200 --duration 20s --sim-latency-ms 50
//! loadgen e2e  --url … --rate 500 --duration 20s --sim-latency-ms 0        (open loop)
//! loadgen http --url … --op get --concurrency 64 --duration 10s
//! loadgen seed --sqlite /tmp/x.db --count 100000
//! loadgen restore --bin target/release/mcp-orchestrator --sqlite /tmp/x.db --retain 100000
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Load and measurement tool for mcp-orchestrator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// End-to-end research workflows: submit, follow over SSE until completed.
    E2e(E2e),
    /// Plain request rate of one route at fixed concurrency.
    Http(HttpLoad),
    /// Write synthetic finished workflows straight into a SQLite store.
    Seed(Seed),
    /// Start the server on a seeded store: time to listen, resident memory.
    Restore(Restore),
}

#[derive(clap::Args)]
struct E2e {
    #[arg(long, default_value = "http://127.0.0.1:5060")]
    url: String,
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

#[derive(clap::Args)]
struct HttpLoad {
    #[arg(long, default_value = "http://127.0.0.1:5060")]
    url: String,
    /// `get` (GET /v1/workflows/{id}) or `post` (POST /v1/workflows).
    #[arg(long)]
    op: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many successful requests (e.g. to fill a store through the API).
    #[arg(long)]
    requests: Option<u64>,
}

#[derive(clap::Args)]
struct Seed {
    #[arg(long)]
    sqlite: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    count: usize,
}

#[derive(clap::Args)]
struct Restore {
    /// The server binary to start.
    #[arg(long)]
    bin: PathBuf,
    /// The embedded store to restore from (omit when `--env` points at PostgreSQL).
    #[arg(long)]
    sqlite: Option<PathBuf>,
    /// retention.max_completed for the run (how many finished workflows to restore).
    #[arg(long, default_value_t = 100_000)]
    retain: usize,
    /// Extra server environment, `KEY=VALUE` (e.g. MCPO__POSTGRES__URL=…); repeatable.
    #[arg(long = "env")]
    envs: Vec<String>,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn summary(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{name}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n = {})",
        pct(&v, 50.0),
        pct(&v, 95.0),
        pct(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default()
}

#[derive(Default)]
struct Tally {
    latencies_ms: Mutex<Vec<f64>>,
    done: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
}

/// Submits one workflow and follows its events until the terminal one; returns the
/// submit→completed latency.
async fn one_workflow(c: &reqwest::Client, url: &str, body: &Value) -> Result<Duration, String> {
    let t0 = Instant::now();
    let r = c
        .post(format!("{url}/v1/workflows"))
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() == 429 {
        return Err("429".into());
    }
    if r.status().as_u16() != 201 {
        return Err(format!("create: HTTP {}", r.status()));
    }
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    let id = v["id"].as_str().ok_or("no id")?.to_string();
    let resp = c
        .get(format!("{url}/v1/workflows/{id}/events"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = resp.bytes_stream();
    let mut tail = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if tail.contains("event: workflow_completed") {
            return Ok(t0.elapsed());
        }
        if tail.contains("event: workflow_failed") || tail.contains("event: workflow_cancelled") {
            return Err("workflow did not complete".into());
        }
        // Keep only what a marker split across chunks needs.
        if tail.len() > 256 {
            tail = tail[tail.len() - 64..].to_string();
        }
    }
    Err("event stream ended early".into())
}

async fn e2e(a: E2e) {
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
        move |res: Result<Duration, String>, finished: Instant| {
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
                Err(e) if e == "429" => {
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
            for _ in 0..a.concurrency {
                let (c, url, body, record) =
                    (c.clone(), a.url.clone(), body.clone(), record.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        let r = one_workflow(&c, &url, &body).await;
                        if r.as_ref().err().is_some_and(|e| e == "429") {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        record(r, Instant::now());
                    }
                }));
            }
        }
        Some(rate) => {
            let gap = Duration::from_secs_f64(1.0 / rate);
            let mut next = Instant::now();
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let (c, url, body, record) =
                    (c.clone(), a.url.clone(), body.clone(), record.clone());
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

async fn http(a: HttpLoad) {
    let c = client();
    let body = json!({"pattern": "research", "task": "http load", "config": {"num_agents": 3}});
    let id = if a.op == "get" {
        let r: Value = c
            .post(format!("{}/v1/workflows", a.url))
            .json(&body)
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        r["id"].as_str().expect("id").to_string()
    } else {
        String::new()
    };
    let end = Instant::now() + a.duration;
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    let max = a.requests;
    let t_start = Instant::now();
    for _ in 0..a.concurrency {
        let (c, url, body, id, op, tally) = (
            c.clone(),
            a.url.clone(),
            body.clone(),
            id.clone(),
            a.op.clone(),
            Arc::clone(&tally),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            while Instant::now() < end && max.is_none_or(|m| tally.done.load(Ordering::Relaxed) < m)
            {
                let t = Instant::now();
                let r = if op == "get" {
                    c.get(format!("{url}/v1/workflows/{id}")).send().await
                } else {
                    c.post(format!("{url}/v1/workflows"))
                        .json(&body)
                        .send()
                        .await
                };
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        local.push(t.elapsed().as_secs_f64() * 1000.0);
                        tally.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) if r.status().as_u16() == 429 => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        // The first few errors are worth seeing: status and body.
                        if tally.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            let what = match other {
                                Ok(r) => format!(
                                    "HTTP {}: {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                ),
                                Err(e) => e.to_string(),
                            };
                            eprintln!("error: {what}");
                        }
                    }
                }
            }
            if let Ok(mut l) = tally.latencies_ms.lock() {
                l.extend(local);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let done = tally.done.load(Ordering::Relaxed);
    let took = t_start.elapsed().min(a.duration);
    println!(
        "{} {} at concurrency {}: {done} ok in {:.1} s = {:.0} requests/s; refused {}, errors {}",
        a.op.to_uppercase(),
        if a.op == "get" {
            "/v1/workflows/{id}"
        } else {
            "/v1/workflows"
        },
        a.concurrency,
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64(),
        tally.refused.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed)
    );
    let lat = tally
        .latencies_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    println!("{}", summary("latency", lat));
}

async fn seed(a: Seed) {
    use mcp_orchestrator::config::Durability;
    use mcp_orchestrator::domain::*;
    use mcp_orchestrator::store::{sqlite::SqliteStore, Store};
    let store = SqliteStore::open(&a.sqlite, Durability::Async).expect("open store");
    let t = Instant::now();
    let mut seq = 0u64;
    for chunk in (0..a.count).collect::<Vec<_>>().chunks(2000) {
        let mut batch = Vec::new();
        for &i in chunk {
            let mut wf = Workflow::new(
                format!("wf_{}", uuid::Uuid::now_v7().simple()),
                if i % 3 == 0 {
                    Pattern::Search
                } else {
                    Pattern::Research
                },
                format!("synthetic task {i}"),
                format!("synthetic {i}"),
                PatternConfig::default_for(Pattern::Research),
                "simulated".into(),
                true,
            );
            let at = now();
            let _ = wf.transition(Status::Running, at);
            let _ = wf.transition(Status::Completed, at + chrono::Duration::milliseconds(200));
            wf.total_cost_usd = 0.01;
            seq += 1;
            batch.push(Arc::new(StateChange {
                seq,
                kind: ChangeKind::Workflow(Arc::new(wf)),
            }));
        }
        store.write_batch(batch).await.expect("write");
    }
    println!(
        "seeded {} finished workflows into {} in {:.2} s",
        a.count,
        a.sqlite.display(),
        t.elapsed().as_secs_f64()
    );
}

/// utime + stime of a process, in seconds (from /proc; 0 if unreadable).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// One start of the server on the seeded store, keeping at most `retain` finished
/// workflows in memory: (time to listening, workflows retained, resident KiB).
async fn start_once(a: &Restore, retain: usize) -> (Duration, u64, u64) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let t = Instant::now();
    let mut child = tokio::process::Command::new(&a.bin)
        .env("MCPO__SERVER__BIND", "127.0.0.1:0")
        .env("MCPO__RETENTION__MAX_COMPLETED", retain.to_string())
        .env("MCPO__RETENTION__MAX_AGE", "3650days")
        .env("RUST_LOG", "warn")
        .envs(
            a.sqlite
                .iter()
                .map(|p| ("MCPO__STORAGE__SQLITE_PATH", p.as_os_str())),
        )
        .envs(a.envs.iter().filter_map(|kv| kv.split_once('=')))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        if let Some(x) = l.strip_prefix("mcp-orchestrator listening on ") {
            addr = x.to_string();
            break;
        }
    }
    let ready = t.elapsed();
    let pid = child.id().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(pid);
    let health: Value = reqwest::get(format!("{addr}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    let retained = health["components"]["registry"]["retained"]
        .as_u64()
        .unwrap_or(0);
    let _ = child.kill().await;
    (ready, retained, rss)
}

async fn restore(a: Restore) {
    // Same binary, same store, nothing retained: the baseline memory.
    let (t0, _, rss0) = start_once(&a, 0).await;
    let (t, retained, rss) = start_once(&a, a.retain).await;
    println!(
        "start to listening (migrations + restore): {:.3} s with {retained} retained ({:.3} s with none)",
        t.as_secs_f64(),
        t0.as_secs_f64()
    );
    let per = (rss.saturating_sub(rss0)) as f64 / retained.max(1) as f64;
    println!(
        "resident memory: {rss} KiB with {retained} retained, {rss0} KiB with none: {:.0} KiB per 10,000 retained ({:.2} KiB each)",
        per * 10_000.0,
        per
    );
}

#[tokio::main]
async fn main() {
    match Cli::parse().cmd {
        Cmd::E2e(a) => e2e(a).await,
        Cmd::Http(a) => http(a).await,
        Cmd::Seed(a) => seed(a).await,
        Cmd::Restore(a) => restore(a).await,
    }
}

//! `soak`: a closed-loop run of ordinary research workflows with a share of the
//! hostile requests of issue 12 mixed in. It passes when every ordinary workflow
//! completed, every hostile request got the answer a bounded server gives, the
//! server's log has no panic line, and its resident memory stayed flat.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::e2e::one_workflow;
use crate::hostile::{self, Ctx, Kind, KINDS};
use crate::stats::{client, rss_kib, summary};

#[derive(clap::Args)]
pub struct Soak {
    #[arg(long, default_value = "http://127.0.0.1:5060")]
    url: String,
    /// Requests (ordinary workflows or hostile ones) in flight at all times.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Share of requests that are hostile, in percent.
    #[arg(long, default_value_t = 5.0)]
    hostile_percent: f64,
    /// Agents per ordinary research workflow.
    #[arg(long, default_value_t = 3)]
    agents: u32,
    /// The server's process id (same machine): its resident memory is sampled each second.
    #[arg(long)]
    server_pid: u32,
    /// The server's log: a line containing "panicked" fails the soak.
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// A webhook URL the server accepts (see webhooks.allow_hosts), for webhook floods.
    #[arg(long, default_value = "http://127.0.0.1:9/hook")]
    webhook_url: String,
    /// Only these hostile kinds (comma-separated, e.g. `SseFlood,WebhookFlood`); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Largest growth of the server's peak resident memory from 20–50% of the run
    /// to its last fifth, in percent, still called flat.
    #[arg(long, default_value_t = 10.0)]
    flat_percent: f64,
}

#[derive(Default)]
struct Outcomes {
    completed: AtomicU64,
    not_completed: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
    /// Per hostile kind: (as expected, otherwise).
    hostile: Mutex<BTreeMap<String, (u64, u64)>>,
    /// The first few things that went wrong, to print.
    problems: Mutex<Vec<String>>,
}

impl Outcomes {
    fn problem(&self, p: String) {
        if let Ok(mut v) = self.problems.lock() {
            if v.len() < 10 {
                v.push(p);
            }
        }
    }
}

pub async fn soak(a: Soak) -> bool {
    let c = client();
    let body = json!({"pattern": "research", "task": "soak",
        "config": {"num_agents": a.agents, "max_concurrent_agents": a.agents}});
    let out = Arc::new(Outcomes::default());
    let next_kind = Arc::new(AtomicUsize::new(0));
    let kinds: Arc<Vec<Kind>> = Arc::new(
        KINDS
            .iter()
            .copied()
            .filter(|k| a.only.is_empty() || a.only.contains(&format!("{k:?}")))
            .collect(),
    );
    let start = Instant::now();
    let end = start + a.duration;
    let rss = tokio::spawn(sample_rss(a.server_pid, end));
    let mut tasks = Vec::new();
    for worker in 0..a.concurrency {
        let (c, url, body, out, next_kind, hook, kinds) = (
            c.clone(),
            a.url.clone(),
            body.clone(),
            Arc::clone(&out),
            Arc::clone(&next_kind),
            a.webhook_url.clone(),
            Arc::clone(&kinds),
        );
        let share = a.hostile_percent / 100.0;
        tasks.push(tokio::spawn(async move {
            let mut noise =
                0x2545_f491_4f6c_dd1d_u64 ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9);
            while Instant::now() < end {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                if !kinds.is_empty() && ((noise % 10_000) as f64 / 10_000.0) < share {
                    let kind = kinds[next_kind.fetch_add(1, Ordering::Relaxed) % kinds.len()];
                    let ctx = Ctx {
                        url: &url,
                        client: &c,
                        webhook_url: &hook,
                        noise,
                    };
                    let res = hostile::run(kind, &ctx).await;
                    record_hostile(&out, kind, res);
                } else {
                    match one_workflow(&c, &url, &body).await {
                        Ok(d) => {
                            out.completed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut l) = out.latencies_ms.lock() {
                                l.push(d.as_secs_f64() * 1000.0);
                            }
                        }
                        Err(e) => {
                            out.not_completed.fetch_add(1, Ordering::Relaxed);
                            out.problem(format!("ordinary workflow: {e}"));
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let samples = rss.await.unwrap_or_default();
    report(&a, &out, &samples, start.elapsed())
}

fn record_hostile(out: &Outcomes, kind: Kind, res: Result<(), hostile::Finding>) {
    let name = format!("{kind:?}");
    if let Ok(mut h) = out.hostile.lock() {
        let e = h.entry(name.clone()).or_default();
        match &res {
            Ok(()) => e.0 += 1,
            Err(_) => e.1 += 1,
        }
    }
    if let Err(e) = res {
        out.problem(format!("{name}: {e}"));
    }
}

/// (seconds since start, resident KiB), once a second until `end` and 5 s after.
async fn sample_rss(pid: u32, end: Instant) -> Vec<(f64, u64)> {
    let t0 = Instant::now();
    let mut v = Vec::new();
    while Instant::now() < end + Duration::from_secs(5) {
        v.push((t0.elapsed().as_secs_f64(), rss_kib(pid)));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    v
}

fn panic_lines(log: &Option<PathBuf>) -> Option<usize> {
    let text = std::fs::read_to_string(log.as_ref()?).ok()?;
    Some(text.lines().filter(|l| l.contains("panicked")).count())
}

fn report(a: &Soak, out: &Outcomes, samples: &[(f64, u64)], took: Duration) -> bool {
    let completed = out.completed.load(Ordering::Relaxed);
    let failed = out.not_completed.load(Ordering::Relaxed);
    println!(
        "soak: {:.0} s, {} in flight, {}% hostile, research with {} agents",
        took.as_secs_f64(),
        a.concurrency,
        a.hostile_percent,
        a.agents
    );
    println!(
        "ordinary workflows: {completed} completed ({:.1}/s), {failed} not completed",
        completed as f64 / a.duration.as_secs_f64()
    );
    let lat = out
        .latencies_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    println!("{}", summary("submit→completed latency", lat));
    let hostile = out.hostile.lock().map(|h| h.clone()).unwrap_or_default();
    let (mut ok, mut bad) = (0, 0);
    for (kind, (o, b)) in &hostile {
        println!("hostile {kind}: {o} answered as expected, {b} otherwise");
        ok += o;
        bad += b;
    }
    println!("hostile total: {ok} as expected, {bad} otherwise");
    for p in out.problems.lock().map(|p| p.clone()).unwrap_or_default() {
        println!("problem: {p}");
    }
    let panics = panic_lines(&a.server_log);
    match panics {
        Some(n) => println!("server log: {n} panic lines"),
        None => println!("server log: not read"),
    }
    let flat = rss_report(samples, a.duration.as_secs_f64(), a.flat_percent);
    let pass = failed == 0 && bad == 0 && panics.unwrap_or(0) == 0 && flat && completed > 0;
    println!("soak verdict: {}", if pass { "PASS" } else { "FAIL" });
    pass
}

/// Prints resident memory per tenth of the run; flat = the peak of the last fifth
/// is within `flat_percent` of the peak from 20% to 50% of the run (the first fifth
/// is warm-up: caches and allocator arenas fill).
fn rss_report(samples: &[(f64, u64)], secs: f64, flat_percent: f64) -> bool {
    let peak = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(t, _)| *t >= from * secs && *t < to * secs)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(0)
    };
    let peaks: Vec<u64> = (0..10)
        .map(|i| peak(i as f64 / 10.0, (i + 1) as f64 / 10.0))
        .collect();
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "server RSS (MiB, peak per tenth of the run): {}",
        peaks
            .iter()
            .map(|k| format!("{:.1}", mib(*k)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let first = samples.first().map_or(0, |s| s.1);
    let after = samples.last().map_or(0, |s| s.1);
    println!(
        "server RSS: {:.1} MiB before the load, {:.1} MiB 5 s after it",
        mib(first),
        mib(after)
    );
    let (base, last) = (peak(0.2, 0.5), peak(0.8, 1.0));
    let growth = (last as f64 - base as f64) / base.max(1) as f64 * 100.0;
    let flat = base > 0 && growth <= flat_percent;
    println!(
        "server RSS peak: {:.1} MiB from 20% to 50% of the run, {:.1} MiB in the last fifth: {growth:+.1}% ({})",
        mib(base),
        mib(last),
        if flat { "flat" } else { "NOT flat" }
    );
    flat
}

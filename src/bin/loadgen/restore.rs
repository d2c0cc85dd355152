//! `restore`: the real binary started on a seeded store: time to listen and
//! resident memory, against a start that retains nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stats::rss_kib;

#[derive(clap::Args)]
pub struct Restore {
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

/// One start of the server on the seeded store, keeping at most `retain` finished
/// workflows in memory: (time to listening, workflows retained, resident KiB).
pub async fn start_once(a: &Restore, retain: usize) -> (Duration, u64, u64) {
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

pub async fn restore(a: Restore) {
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

//! loadgen: drives a running mcp-orchestrator over real HTTP and reports throughput,
//! latency percentiles and orchestration overhead; seeds a store with synthetic
//! history; measures restore time and resident memory of the real binary; soaks it
//! with ordinary work mixed with hostile requests (`scripts/soak.sh`).
//!
//! ```text
//! loadgen e2e  --url http://127.0.0.1:5060 --concurrency 200 --duration 20s --sim-latency-ms 50
//! loadgen e2e  --url … --rate 500 --duration 20s --sim-latency-ms 0        (open loop)
//! loadgen http --url … --op get --concurrency 64 --duration 10s
//! loadgen seed --sqlite /tmp/x.db --count 100000
//! loadgen restore --bin target/release/mcp-orchestrator --sqlite /tmp/x.db --retain 100000
//! loadgen soak --url … --concurrency 200 --duration 60s --hostile-percent 5 --server-pid PID --server-log LOG
//! ```

mod e2e;
mod hostile;
mod http;
mod restore;
mod seed;
mod soak;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use e2e::E2e;
use http::HttpLoad;
use restore::Restore;
use seed::Seed;
use soak::Soak;

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
    /// Ordinary workflows with hostile requests mixed in; exits 1 unless every
    /// workflow completed, every attack was refused as it should be, the server
    /// logged no panic and its memory stayed flat.
    Soak(Soak),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::E2e(a) => e2e::e2e(a).await,
        Cmd::Http(a) => http::http(a).await,
        Cmd::Seed(a) => seed::seed(a).await,
        Cmd::Restore(a) => restore::restore(a).await,
        Cmd::Soak(a) => {
            return match soak::soak(a).await {
                true => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            }
        }
    }
    ExitCode::SUCCESS
}

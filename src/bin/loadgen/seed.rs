//! `seed`: synthetic finished workflows written straight into a SQLite store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Seed {
    #[arg(long)]
    sqlite: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    count: usize,
}

pub async fn seed(a: Seed) {
    use mcp_orchestrator::clock::now;
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
            wf.created_at = at;
            let _ = wf.transition(Status::Running, at);
            let _ = wf.transition(Status::Completed, at + chrono::Duration::milliseconds(200));
            wf.total_cost_usd = 0.01;
            seq += 1;
            batch.push(Arc::new(StateChange {
                epoch: None,
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

//! The Archiver: a supervised actor that runs an archive pass every
//! `archive.interval`, one at a time, keeps what `/health` shows about it, and
//! has the registry drop its in-memory copies of what a pass archived.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;
use serde_json::{json, Value};

use super::pass::{self, PassReport};
use super::Archive;
use crate::actors::evictor::Evict;
use crate::store::Store;

/// What the last passes did, for `/health` (components.archive).
#[derive(Default)]
pub struct ArchiveHealth {
    state: Mutex<HealthState>,
}

#[derive(Default)]
struct HealthState {
    passes: u64,
    archived_total: u64,
    last: Option<PassReport>,
    /// Set while the last pass failed; cleared by one that succeeds.
    failing: Option<String>,
}

impl ArchiveHealth {
    pub fn record(&self, r: &PassReport) {
        if let Ok(mut s) = self.state.lock() {
            s.passes += 1;
            s.archived_total += r.archived;
            s.failing = r.error.clone();
            s.last = Some(r.clone());
        }
    }

    pub fn is_failing(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.failing.is_some())
            .unwrap_or(true)
    }

    /// The `/health` component: degraded while the last pass failed.
    pub fn component(&self, url: &str, enabled: bool) -> Value {
        let Ok(s) = self.state.lock() else {
            return json!({"status": "degraded", "error": "archive health unreadable"});
        };
        json!({
            "status": if s.failing.is_some() { "degraded" } else { "healthy" },
            "enabled": enabled,
            "url": url,
            "passes": s.passes,
            "archived_total": s.archived_total,
            "error": s.failing,
            "last_pass": s.last,
        })
    }
}

pub struct Archiver {
    store: Arc<dyn Store>,
    /// The registry: archived workflows leave its retained set.
    registry: Recipient<Evict>,
    archive: Arc<Archive>,
    after: Duration,
    interval: Duration,
    batch: usize,
    running: bool,
}

impl Archiver {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Recipient<Evict>,
        archive: Arc<Archive>,
        cfg: &crate::config::ArchiveConfig,
    ) -> Archiver {
        Archiver {
            store,
            registry,
            archive,
            after: cfg.after,
            interval: cfg.interval,
            batch: cfg.batch,
            running: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let (store, archive) = (Arc::clone(&self.store), Arc::clone(&self.archive));
        let (after, batch) = (self.after, self.batch);
        let work = async move {
            // A panic in a pass must not take the actor's thread down: it is a
            // failed pass like any other.
            AssertUnwindSafe(pass::run(&store, &archive, after, batch, false))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| PassReport {
                    error: Some("archive pass panicked".into()),
                    ..Default::default()
                })
        };
        work.into_actor(self)
            .map(|mut report, act, _| {
                act.running = false;
                act.archive.health.record(&report);
                if !report.archived_ids.is_empty() {
                    act.registry
                        .do_send(Evict(std::mem::take(&mut report.archived_ids)));
                }
                match &report.error {
                    Some(e) => tracing::warn!(error = %e, archived = report.archived,
                        "archive pass stopped; nothing unverified was deleted, the next pass retries"),
                    None if report.archived > 0 => tracing::info!(archived = report.archived,
                        bytes = report.bytes, seconds = report.seconds, "archive pass done"),
                    None => tracing::debug!("archive pass: nothing to archive"),
                }
            })
            .spawn(ctx);
    }
}

impl Actor for Archiver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}

impl Supervised for Archiver {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.running = false;
    }
}

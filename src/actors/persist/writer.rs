//! The primary-store writer: a supervised actor that accepts every `StateChange`
//! into an ordered queue first and removes entries only once the store committed
//! them, one transaction per batch. While one batch commits the next accumulates,
//! so write rate adapts to load (group commit). A failed batch stops the actor;
//! the supervisor restarts it and the queue, kept in the struct, is flushed again.
//! Commits start at most every `commit_interval`: under load each commit carries
//! more changes (a commit rewrites every page it touches and syncs; at ~1,300
//! commits/s that was a third of the server's CPU), and when idle a change is
//! written at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::PersistHealth;
use crate::actors::Publish;
use crate::domain::StateChange;
use crate::store::Store;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct StoreWriter {
    store: Arc<dyn Store>,
    health: Arc<PersistHealth>,
    queue: VecDeque<Arc<StateChange>>,
    batch_max: usize,
    in_flight: bool,
    backoff: Duration,
    commit_interval: Duration,
    /// When the last batch started, and whether a delayed flush is scheduled.
    last_start: Option<Instant>,
    delayed: bool,
}

impl StoreWriter {
    pub fn new(
        store: Arc<dyn Store>,
        health: Arc<PersistHealth>,
        batch_max: usize,
        commit_interval: Duration,
    ) -> Self {
        StoreWriter {
            store,
            health,
            queue: VecDeque::new(),
            batch_max,
            in_flight: false,
            backoff: Duration::from_millis(50),
            commit_interval,
            last_start: None,
            delayed: false,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.delayed || self.queue.is_empty() {
            return;
        }
        let since = self.last_start.map_or(Duration::MAX, |t| t.elapsed());
        if since < self.commit_interval && self.queue.len() < self.batch_max {
            self.delayed = true;
            ctx.run_later(self.commit_interval - since, |act, ctx| {
                act.delayed = false;
                act.flush(ctx);
            });
            return;
        }
        self.last_start = Some(Instant::now());
        let n = self.queue.len().min(self.batch_max);
        let batch: Vec<_> = self.queue.iter().take(n).cloned().collect();
        let last_seq = batch.last().map(|c| c.seq).unwrap_or(0);
        self.in_flight = true;
        let store = Arc::clone(&self.store);
        async move { store.write_batch(batch).await }
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.in_flight = false;
                match res {
                    Ok(()) => {
                        act.queue.drain(..n);
                        act.health.set_queue_len(act.queue.len());
                        act.health.record_batch(n, last_seq);
                        act.backoff = Duration::from_millis(50);
                        act.flush(ctx);
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        tracing::error!(store = act.store.kind(), error = %msg, queued = act.queue.len(),
                            retry_in = ?act.backoff, "batch write failed; writer restarts");
                        act.health.record_failure(&msg);
                        // No further flush until the restart: keep the backoff.
                        act.in_flight = true;
                        let wait = act.backoff;
                        act.backoff = (act.backoff * 2).min(MAX_BACKOFF);
                        ctx.run_later(wait, |_, ctx| ctx.stop());
                    }
                }
            })
            .spawn(ctx);
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.flush(ctx);
    }
}

impl Supervised for StoreWriter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.in_flight = false;
        // Timers of the stopped context are gone with it.
        self.delayed = false;
        self.health.record_restart();
        tracing::warn!(
            store = self.store.kind(),
            queued = self.queue.len(),
            "store writer restarting"
        );
    }
}

impl Handler<Publish> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: Publish, ctx: &mut Context<Self>) {
        // Evictions are queued too (stores skip them) so the committed watermark
        // passes their seq: a read barrier waits for every emitted change.
        self.queue.extend(msg.0.iter().cloned());
        self.health.set_queue_len(self.queue.len());
        self.flush(ctx);
    }
}

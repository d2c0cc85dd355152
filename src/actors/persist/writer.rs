//! The primary-store writer: a supervised actor that accepts every `StateChange`
//! into an ordered queue first and removes entries only once the store committed
//! them, one transaction per batch. While one batch commits the next accumulates,
//! so write rate adapts to load (group commit). A failed batch stops the actor;
//! the supervisor restarts it and the queue, kept in the struct, is flushed again.
//! Commits start at most every `commit_interval`: under load each commit carries
//! more changes (a commit rewrites every page it touches and syncs; at ~1,300
//! commits/s that was a third of the server's CPU), and when idle a change is
//! written at once.
//!
//! A flush runs once the mailbox is drained, so everything that arrived while
//! the last commit ran goes into the next one. SQLite commits on this actor's own
//! thread (`Store::write_batch_here`): the actor has an arbiter to itself, and
//! each commit then crosses two threads fewer (no trip to the blocking pool and
//! back).
//!
//! Step answers (`CommitStep`) do not wait behind the queue: every pending one
//! rides in the next transaction, and the sender hears back once it committed.
//! That keeps the window in which an answered LLM call can be lost to a crash
//! (and so called again) to about one commit, whatever the queue's backlog.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use tokio::sync::oneshot;

use super::PersistHealth;
use crate::actors::Publish;
use crate::domain::{ChangeKind, StateChange, StepRecord};
use crate::exec::{CommitStep, StepNotCommitted};
use crate::metric_names::PERSISTER_BATCH;
use crate::store::{Store, StoreError};

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
    /// A flush is queued behind the messages in the mailbox.
    scheduled: bool,
    /// Step answers waiting for the next transaction, and those in the current one.
    steps: Vec<PendingStep>,
    steps_in_flight: Vec<PendingStep>,
    /// Tests only (`config::test_commit_delay`): each batch waits this long.
    commit_delay: Duration,
}

/// A step answer, the lease epoch its run held (several instances), the waiter.
type PendingStep = (Arc<StepRecord>, Option<i64>, oneshot::Sender<()>);

/// Queued changes a transaction carrying step answers takes at most: a step
/// waits for the transaction in flight and its own, so both stay short. (With the
/// full `batch_max` of 2,000 the crash test measured a window of ~350 ms.)
const MAX_WITH_STEPS: usize = 200;

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
            scheduled: false,
            steps: Vec::new(),
            steps_in_flight: Vec::new(),
            commit_delay: Duration::ZERO,
        }
    }

    /// Holds every batch back by `delay` before it is written (tests only).
    pub fn with_commit_delay(mut self, delay: Duration) -> Self {
        self.commit_delay = delay;
        self
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.delayed || (self.queue.is_empty() && self.steps.is_empty()) {
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
        let cap = if self.steps.is_empty() {
            self.batch_max
        } else {
            self.batch_max.min(MAX_WITH_STEPS)
        };
        let n = self.queue.len().min(cap);
        let mut batch: Vec<_> = self.queue.iter().take(n).cloned().collect();
        let last_seq = batch.last().map(|c| c.seq).unwrap_or(0);
        // Step rows sit outside the seq watermark: seq 0.
        self.steps_in_flight = std::mem::take(&mut self.steps);
        for (s, epoch, _) in &self.steps_in_flight {
            batch.push(Arc::new(StateChange {
                seq: 0,
                epoch: *epoch,
                kind: ChangeKind::Step(Arc::clone(s)),
            }));
        }
        self.in_flight = true;
        if self.commit_delay.is_zero() {
            if let Some(res) = self.store.write_batch_here(&batch) {
                self.written(res, n, last_seq, ctx);
                return;
            }
        }
        let store = Arc::clone(&self.store);
        let delay = self.commit_delay;
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            store.write_batch(batch).await
        }
        .into_actor(self)
        .map(move |res, act, ctx| act.written(res, n, last_seq, ctx))
        .spawn(ctx);
    }

    /// Flushes once the messages now in the mailbox are handled (group commit).
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.scheduled {
            return;
        }
        self.scheduled = true;
        ctx.spawn(fut::wrap_future(async {}).map(|_, act: &mut Self, ctx| {
            act.scheduled = false;
            act.flush(ctx);
        }));
    }

    /// A batch of the first `n` queued changes (up to `last_seq`) and the steps
    /// in flight was written, or not.
    fn written(
        &mut self,
        res: Result<(), StoreError>,
        n: usize,
        last_seq: u64,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight = false;
        match res {
            Ok(()) => {
                if let Some(t) = self.last_start {
                    metrics::histogram!(PERSISTER_BATCH, "persister" => "primary")
                        .record(t.elapsed().as_secs_f64());
                }
                for (_, _, done) in self.steps_in_flight.drain(..) {
                    let _ = done.send(());
                }
                self.queue.drain(..n);
                self.health.set_queue_len(self.queue.len());
                self.health.record_batch(n, last_seq);
                self.backoff = Duration::from_millis(50);
                self.schedule(ctx);
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(store = self.store.kind(), error = %msg, queued = self.queue.len(),
                    retry_in = ?self.backoff, "batch write failed; writer restarts");
                self.health.record_failure(&msg);
                self.requeue_steps();
                // No further flush until the restart: keep the backoff.
                self.in_flight = true;
                let wait = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                ctx.run_later(wait, |_, ctx| ctx.stop());
            }
        }
    }
}

impl StoreWriter {
    /// Steps of a batch that did not commit go first into the next one.
    fn requeue_steps(&mut self) {
        let mut back = std::mem::take(&mut self.steps_in_flight);
        back.append(&mut self.steps);
        self.steps = back;
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
        self.requeue_steps();
        // Timers and futures of the stopped context are gone with it.
        self.delayed = false;
        self.scheduled = false;
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
        self.schedule(ctx);
    }
}

impl Handler<CommitStep> for StoreWriter {
    type Result = ResponseFuture<Result<(), StepNotCommitted>>;

    fn handle(
        &mut self,
        CommitStep(step, epoch): CommitStep,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.steps.push((step, epoch, tx));
        self.schedule(ctx);
        Box::pin(async move {
            rx.await
                .map_err(|_| StepNotCommitted("the store writer dropped the step".into()))
        })
    }
}

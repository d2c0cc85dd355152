//! The WorkflowRegistry: the only writer of workflow state. It holds the bounded
//! active set and the retained (finished, in-memory) set. What an input means for
//! a workflow is decided by the pure core (`domain::machine::apply`); this actor
//! routes messages to it, owns the maps and carries out the effects it returns,
//! each of which leaves as a `StateChange` to all subscribers, in order.
//!
//! Messages live beside their handlers: `create.rs` (Create), `report.rs` (steps
//! from executors), `supervision.rs` (runs that end without finishing, the
//! workflow deadline), `control.rs` (cancel, shutdown, eviction), `query.rs`
//! (reads, event streams, stats), `webhooks.rs` (subscriptions and deliveries),
//! `cluster.rs` (workflows claimed from, or lost to, other instances).

mod cluster;
mod control;
mod create;
mod outbox;
mod query;
mod recent;
mod refusal;
mod report;
mod supervision;
mod webhook_index;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::AbortHandle;

pub use cluster::{Adopt, Disown, SyncGlobalWebhooks};
pub use control::{BeginShutdown, Cancel, CancelOutcome, InterruptAll};
pub use create::{new_workflow_id, Create, Created, NewWorkflow, WebhookSpec};
pub use outbox::{EpochOf, FlushOutbox};
pub use query::{EventFeed, Get, RegistryStats, Stats, SubscribeEvents};
pub use refusal::Refusal;
pub use webhooks::{AddWebhook, ListWebhooks, RemoveWebhook, ResumeDeliveries};

use super::persist::PersistHealth;
use super::Publish;
use crate::auth::Ledger;
use crate::clock::now;
use crate::domain::machine::{apply, Effect, Input, Lost, Policy, Rejection, WorkflowState};
use crate::domain::{ChangeKind, FailureCode, Subscription, Workflow};
use crate::events::webhooks::Deliver;
use crate::events::EventBus;
use crate::exec::provider::Providers;
use crate::exec::CommitStep;
use crate::exec::{Executor, Resume, Run};
use crate::store::StoredActive;
use outbox::Outbox;
use recent::RecentLogs;
use webhook_index::WebhookIndex;

pub struct RegistryConfig {
    pub max_active: usize,
    pub retry_after_secs: u64,
    pub default_provider: String,
    /// 0 = unlimited.
    pub default_budget_usd: f64,
    /// 0 = unlimited.
    pub default_max_tokens_total: u64,
    /// See `execution.max_resumes`; 0 = unlimited.
    pub max_resumes: u32,
    /// See `limits.max_workflow_duration`.
    pub max_workflow_duration: Duration,
    /// `webhooks.max_subscriptions`.
    pub max_webhooks: usize,
    /// `webhooks.max_subscriptions_per_workflow`.
    pub max_webhooks_per_workflow: usize,
    /// `documents.default_formats`: filled into a workflow that names none.
    pub default_document_formats: Vec<String>,
    /// `documents.max_bytes`, for the runs.
    pub documents_max_bytes: u64,
}

/// A pending, running or interrupted workflow: its core state and its run.
struct Active {
    st: WorkflowState,
    abort: Option<AbortHandle>,
    /// The current run's number (0: none yet) and when it was started.
    run_no: u64,
    run_started: Option<Instant>,
    /// The HTTP request that created it (this process only), for its log lines.
    request_id: Option<String>,
}

/// Everything the registry starts with.
pub struct RegistryParts {
    pub cfg: RegistryConfig,
    /// Receive every StateChange, in order.
    pub subscribers: Vec<Recipient<Publish>>,
    pub primary: Arc<PersistHealth>,
    /// The Redis mirror's writer, when configured: its queue gates admission too.
    pub mirror: Option<Arc<PersistHealth>>,
    pub executor: Arc<Executor>,
    pub providers: Providers,
    /// The primary store's writer, which commits step answers for the runs.
    pub steps: Recipient<CommitStep>,
    pub dispatcher: Option<Recipient<Deliver>>,
    /// Unfinished workflows to resume.
    pub restored_active: Vec<StoredActive>,
    /// Finished workflows to keep in memory.
    pub retained: Vec<Workflow>,
    pub webhooks: Vec<Subscription>,
    /// Per-key quotas: sees every record emitted, synchronously.
    pub ledger: Arc<Ledger>,
    /// MCP tool servers, for the runs' agents.
    pub tools: Arc<crate::tools::ToolHub>,
    /// Per-key shares of the webhook subscription cap.
    pub shares: crate::auth::Shares,
    /// Several instances: lease epochs held here, stamped on every change.
    pub epochs: Option<EpochOf>,
}

pub struct WorkflowRegistry {
    cfg: RegistryConfig,
    policy: Policy,
    active: HashMap<String, Active>,
    retained: HashMap<String, Arc<Workflow>>,
    out: Outbox,
    executor: Arc<Executor>,
    providers: Providers,
    steps: Recipient<CommitStep>,
    shutting_down: bool,
    restored: Vec<StoredActive>,
    mirror: Option<Arc<PersistHealth>>,
    recent: RecentLogs,
    ledger: Arc<Ledger>,
    tools: Arc<crate::tools::ToolHub>,
    /// Runs started so far: numbers each run.
    runs: u64,
}

/// What carrying out one input did.
#[derive(Default)]
struct Carried {
    /// Seq of the last change emitted (0: none).
    seq: u64,
    /// The last record snapshot emitted.
    record: Option<Arc<Workflow>>,
    /// Set when the workflow became terminal and moved to the retained set.
    retired: Option<Arc<Workflow>>,
}

impl WorkflowRegistry {
    pub fn new(p: RegistryParts) -> WorkflowRegistry {
        let mut webhooks = WebhookIndex::new(
            p.cfg.max_webhooks,
            p.cfg.max_webhooks_per_workflow,
            p.shares,
        );
        for s in p.webhooks {
            webhooks.insert(Arc::new(s));
        }
        WorkflowRegistry {
            policy: Policy {
                default_budget_usd: p.cfg.default_budget_usd,
                default_max_tokens_total: p.cfg.default_max_tokens_total,
                max_resumes: p.cfg.max_resumes,
            },
            cfg: p.cfg,
            active: HashMap::new(),
            retained: p
                .retained
                .into_iter()
                .map(|w| (w.id.clone(), Arc::new(w)))
                .collect(),
            out: Outbox {
                seq: 0,
                subscribers: p.subscribers,
                primary: p.primary,
                bus: EventBus::default(),
                webhooks,
                dispatcher: p.dispatcher,
                events_emitted: 0,
                pending: Vec::new(),
                uncommitted: Default::default(),
                undispatched: Default::default(),
                me: None,
                epochs: p.epochs,
            },
            executor: p.executor,
            providers: p.providers,
            steps: p.steps,
            shutting_down: false,
            restored: p.restored_active,
            recent: RecentLogs::default(),
            mirror: p.mirror,
            ledger: p.ledger,
            tools: p.tools,
            runs: 0,
        }
    }

    /// Feeds one input to an active workflow's core and carries out the effects.
    /// `None`: the workflow is not active here.
    fn feed(
        &mut self,
        id: &str,
        input: Input,
        ctx: &mut Context<Self>,
    ) -> Option<Result<Carried, Rejection>> {
        let a = self.active.get_mut(id)?;
        let effects = match apply(&mut a.st, input, now()) {
            Ok(fx) => fx,
            Err(r) => return Some(Err(r)),
        };
        let mut done = Carried::default();
        let (mut start, mut retire, mut forget) = (false, false, false);
        for effect in effects {
            match effect {
                Effect::Record(wf) => {
                    self.ledger.observe(&wf);
                    done.seq = self.out.emit(ChangeKind::Workflow(Arc::clone(&wf)));
                    done.record = Some(wf);
                }
                Effect::Result(r) => done.seq = self.out.emit(ChangeKind::Result(r)),
                Effect::Event(ev) => done.seq = self.out.event(ev, a.st.wf.owner.as_deref()),
                Effect::StartRun => start = true,
                Effect::Abort => {
                    if let Some(h) = a.abort.take() {
                        h.abort();
                    }
                }
                Effect::Retire => retire = true,
                Effect::Forget => forget = true,
                // Only a retained workflow is evicted (`control.rs`).
                Effect::Evict => {}
            }
        }
        if forget {
            self.forget(id);
            return Some(Ok(done));
        }
        if retire {
            let wf = &a.st.wf;
            let request_id = a.request_id.as_deref().unwrap_or("-");
            match &wf.error {
                Some(e) if e.code == FailureCode::BudgetExceeded => {
                    tracing::warn!(workflow_id = id, %request_id, message = %e.message, "budget exceeded; cancelling outstanding calls")
                }
                _ => {}
            }
            tracing::info!(workflow_id = id, %request_id, status = %wf.status, "workflow finished");
            done.retired = self.retire(id);
        } else if start {
            self.start_run(id, ctx);
        }
        Some(Ok(done))
    }

    fn start_run(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(a) = self.active.get_mut(id) else {
            return;
        };
        let Some(provider) = self.providers.get(&a.st.wf.provider).cloned() else {
            let provider = a.st.wf.provider.clone();
            self.feed(id, Input::NoProvider { provider }, ctx);
            return;
        };
        let answers = a.st.resume_point();
        self.runs += 1;
        a.run_no = self.runs;
        a.run_started = Some(Instant::now());
        let run = Run {
            id: a.st.wf.id.clone(),
            task: a.st.wf.task.clone(),
            title: a.st.wf.title.clone(),
            config: a.st.wf.config.clone(),
            provider,
            resume: Resume { answers },
            registry: ctx.address().recipient(),
            answers: ctx.address().recipient(),
            committed: self.out.primary.watch_committed(),
            supervisor: ctx.address().recipient(),
            run_no: a.run_no,
            steps: self.steps.clone(),
            request_id: a.request_id.clone(),
            tools: Arc::clone(&self.tools),
            documents_max_bytes: self.cfg.documents_max_bytes,
            epoch: self.out.epochs.as_ref().and_then(|f| f(&a.st.wf.id)),
        };
        a.abort = self.executor.spawn(run);
        if a.abort.is_none() {
            self.feed(id, Input::RunLost(Lost::NotStarted), ctx);
        }
    }

    /// Moves a workflow that just became terminal from the active to the retained set.
    fn retire(&mut self, id: &str) -> Option<Arc<Workflow>> {
        let a = self.active.remove(id)?;
        if let Some(h) = a.abort {
            h.abort();
        }
        // Its streams end once its terminal event, just emitted, is committed
        // and published (`Outbox::committed`).
        self.close_webhooks(id);
        self.recent.insert(id, a.st.events);
        let wf = Arc::new(a.st.wf);
        self.retained.insert(id.to_string(), Arc::clone(&wf));
        Some(wf)
    }

    /// Drops an active workflow without writing anything (another instance owns
    /// it now; its run was aborted).
    fn forget(&mut self, id: &str) {
        if self.active.remove(id).is_none() {
            return;
        }
        self.out.webhooks.forget_workflow(id);
        self.ledger.untrack(id);
        // Its streams here end; a client reconnects with Last-Event-ID and
        // reads on from the store, where the new owner writes.
        self.out.bus.close(id);
    }

    /// Rebuilds a stored unfinished workflow (one that was running when the
    /// process died is marked interrupted) and resumes it.
    fn restore(&mut self, stored: StoredActive, ctx: &mut Context<Self>) {
        let events = stored.events.into_iter().map(Arc::new).collect();
        let st = WorkflowState::restored(stored.workflow, events, &self.policy)
            .with_committed(stored.steps);
        let id = st.wf.id.clone();
        let a = Active {
            st,
            abort: None,
            run_no: 0,
            run_started: None,
            request_id: None,
        };
        self.active.insert(id.clone(), a);
        self.feed(&id, Input::Restore, ctx);
        self.feed(&id, Input::Resume, ctx);
    }
}

/// The primary store's committed watermark moved.
struct Committed(u64);

impl StreamHandler<Committed> for WorkflowRegistry {
    fn handle(&mut self, Committed(upto): Committed, _: &mut Context<Self>) {
        self.out.committed(upto);
    }

    /// The watermark outlives the registry; should it end, the registry goes on.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Actor for WorkflowRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.out.me = Some(ctx.address().recipient());
        let watermark = self.out.primary.watch_committed();
        ctx.add_stream(futures::stream::unfold(watermark, |mut rx| async move {
            rx.changed().await.ok()?;
            let upto = *rx.borrow_and_update();
            Some((Committed(upto), rx))
        }));
        let restored = std::mem::take(&mut self.restored);
        if !restored.is_empty() {
            tracing::info!(count = restored.len(), "resuming unfinished workflows");
        }
        for stored in restored {
            self.restore(stored, ctx);
        }
        self.out.flush();
        self.watch_deadlines(ctx);
    }
}

impl Handler<FlushOutbox> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, _: FlushOutbox, _: &mut Context<Self>) {
        self.out.flush();
    }
}

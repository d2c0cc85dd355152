//! The WorkflowRegistry: the only writer of workflow state. It holds the bounded
//! active set and the retained (finished, in-memory) set; every change happens in
//! one of its handlers and leaves as a `StateChange` to all subscribers, in order.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use futures::future::AbortHandle;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::evictor::Evict;
use super::persist::PersistHealth;
use super::Publish;
use crate::domain::{
    now, AgentResult, ChangeKind, Delivery, DeliveryStatus, Event, EventType, Pattern,
    PatternConfig, Stage, StateChange, Status, Subscription, SynthesisResult, Workflow,
    WorkflowError, WorkflowResult,
};
use crate::error::ApiError;
use crate::events::webhooks::{Deliver, RecordDelivery};
use crate::events::EventBus;
use crate::exec::provider::Providers;
use crate::exec::{Executor, Halted, Report, Resume, Run, Step};
use crate::store::StoredActive;

pub struct RegistryConfig {
    pub max_active: usize,
    pub retry_after_secs: u64,
    pub default_provider: String,
    /// 0 = unlimited.
    pub default_budget_usd: f64,
    /// 0 = unlimited.
    pub default_max_tokens_total: u64,
}

/// A pending, running or interrupted workflow, with what it has produced so far.
struct Active {
    wf: Workflow,
    result: WorkflowResult,
    events: Vec<Arc<Event>>,
    abort: Option<AbortHandle>,
    /// The HTTP request that created it (this process only), for its log lines.
    request_id: Option<String>,
}

/// Numbering and fan-out of changes; kept apart from the maps so a handler can
/// hold an entry and emit at once.
struct Outbox {
    seq: u64,
    subscribers: Vec<Recipient<Publish>>,
    primary: Arc<PersistHealth>,
    bus: EventBus,
    webhooks: WebhookIndex,
    dispatcher: Option<Recipient<Deliver>>,
    events_emitted: u64,
    /// Changes not yet sent to the subscribers, in order.
    pending: Vec<Arc<StateChange>>,
    /// The registry itself: a `FlushOutbox` queued behind the messages already in
    /// the mailbox sends everything they emit as one `Publish`.
    me: Option<Recipient<FlushOutbox>>,
}

/// Webhook subscriptions by workflow, and the global ones.
#[derive(Default)]
struct WebhookIndex {
    subs: HashMap<String, Arc<Subscription>>,
    by_workflow: HashMap<String, Vec<String>>,
    global: Vec<String>,
}

impl WebhookIndex {
    fn insert(&mut self, s: Arc<Subscription>) {
        match &s.workflow_id {
            Some(w) => self
                .by_workflow
                .entry(w.clone())
                .or_default()
                .push(s.id.clone()),
            None => self.global.push(s.id.clone()),
        }
        self.subs.insert(s.id.clone(), s);
    }

    fn remove(&mut self, id: &str) -> Option<Arc<Subscription>> {
        let s = self.subs.remove(id)?;
        match &s.workflow_id {
            Some(w) => {
                if let Some(v) = self.by_workflow.get_mut(w) {
                    v.retain(|x| x != id);
                    if v.is_empty() {
                        self.by_workflow.remove(w);
                    }
                }
            }
            None => self.global.retain(|x| x != id),
        }
        Some(s)
    }

    fn matching(&self, ev: &Event) -> Vec<Arc<Subscription>> {
        let own = self.by_workflow.get(&ev.workflow_id).into_iter().flatten();
        own.chain(self.global.iter())
            .filter_map(|id| self.subs.get(id))
            .filter(|s| s.wants(ev.kind))
            .cloned()
            .collect()
    }
}

impl Outbox {
    fn emit(&mut self, kind: ChangeKind) -> u64 {
        self.seq += 1;
        let change = Arc::new(StateChange {
            seq: self.seq,
            kind,
        });
        self.primary.set_emitted(self.seq);
        self.pending.push(change);
        if self.pending.len() == 1 {
            if let Some(me) = &self.me {
                me.do_send(FlushOutbox);
            }
        }
        self.seq
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch: Arc<[Arc<StateChange>]> = std::mem::take(&mut self.pending).into();
        for s in &self.subscribers {
            s.do_send(Publish(Arc::clone(&batch)));
        }
    }

    fn event(&mut self, a: &mut Active, kind: EventType, data: Value) -> u64 {
        let ev = Arc::new(Event {
            workflow_id: a.wf.id.clone(),
            seq: a.events.last().map_or(1, |e| e.seq + 1),
            kind,
            timestamp: now(),
            data,
        });
        a.events.push(Arc::clone(&ev));
        self.bus.publish(&ev);
        self.events_emitted += 1;
        let seq = self.emit(ChangeKind::Event(Arc::clone(&ev)));
        self.deliveries(&ev);
        seq
    }

    /// One delivery per matching webhook subscription, persisted with the event.
    fn deliveries(&mut self, ev: &Event) {
        for s in self.webhooks.matching(ev) {
            let d = Delivery {
                id: format!("dl_{}", uuid::Uuid::now_v7().simple()),
                subscription_id: s.id.clone(),
                workflow_id: ev.workflow_id.clone(),
                url: s.url.clone(),
                event: ev.kind,
                event_seq: ev.seq,
                payload: json!({"event": ev.kind, "task_id": ev.workflow_id, "timestamp": ev.timestamp, "data": ev.data}),
                status: DeliveryStatus::Pending,
                attempts: Vec::new(),
                next_attempt_at: None,
                created_at: now(),
                completed_at: None,
            };
            self.emit(ChangeKind::Delivery(Arc::new(d.clone())));
            if let Some(dispatcher) = &self.dispatcher {
                dispatcher.do_send(Deliver {
                    delivery: d,
                    secret: Some(s.secret.clone()),
                });
            }
        }
    }

    fn record(&mut self, a: &Active) -> u64 {
        self.emit(ChangeKind::Workflow(Arc::new(a.wf.clone())))
    }
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
    pub dispatcher: Option<Recipient<Deliver>>,
    /// Unfinished workflows to resume.
    pub restored_active: Vec<StoredActive>,
    /// Finished workflows to keep in memory.
    pub retained: Vec<Workflow>,
    pub webhooks: Vec<Subscription>,
}

pub struct WorkflowRegistry {
    cfg: RegistryConfig,
    active: HashMap<String, Active>,
    retained: HashMap<String, Arc<Workflow>>,
    out: Outbox,
    executor: Arc<Executor>,
    providers: Providers,
    shutting_down: bool,
    restored: Vec<StoredActive>,
    mirror: Option<Arc<PersistHealth>>,
    recent: RecentLogs,
}

/// The event logs of the last `RECENT_LOGS` workflows to finish. A client that
/// opens the event stream just after a fast workflow ended is served from here,
/// instead of waiting for the store to commit and reading it back; profiling the
/// end-to-end benchmark showed that wait on every short workflow. Bounded, so
/// memory per retained workflow stays the record alone.
#[derive(Default)]
struct RecentLogs {
    logs: HashMap<String, Vec<Arc<Event>>>,
    order: std::collections::VecDeque<String>,
}

const RECENT_LOGS: usize = 1024;

impl RecentLogs {
    fn insert(&mut self, id: &str, events: Vec<Arc<Event>>) {
        if self.order.len() == RECENT_LOGS {
            if let Some(old) = self.order.pop_front() {
                self.logs.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.logs.insert(id.to_string(), events);
    }
}

impl WorkflowRegistry {
    pub fn new(p: RegistryParts) -> WorkflowRegistry {
        let mut webhooks = WebhookIndex::default();
        for s in p.webhooks {
            webhooks.insert(Arc::new(s));
        }
        WorkflowRegistry {
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
                me: None,
            },
            executor: p.executor,
            providers: p.providers,
            shutting_down: false,
            restored: p.restored_active,
            recent: RecentLogs::default(),
            mirror: p.mirror,
        }
    }

    fn start_run(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(a) = self.active.get_mut(id) else {
            return;
        };
        let Some(provider) = self.providers.get(&a.wf.provider).cloned() else {
            let msg = format!("provider '{}' is not configured", a.wf.provider);
            self.finish_failed(
                id,
                WorkflowError {
                    code: "provider_unavailable".into(),
                    message: msg,
                },
            );
            return;
        };
        let resume = Resume {
            subtasks: (!a.result.subtasks.is_empty()).then(|| a.result.subtasks.clone()),
            done_agents: a
                .result
                .agent_results
                .iter()
                .filter(|r| r.status == "completed")
                .map(|r| (r.agent_id.clone(), r.clone()))
                .collect(),
        };
        let run = Run {
            id: a.wf.id.clone(),
            task: a.wf.task.clone(),
            title: a.wf.title.clone(),
            config: a.wf.config.clone(),
            provider,
            resume,
            registry: ctx.address().recipient(),
            request_id: a.request_id.clone(),
        };
        a.abort = Some(self.executor.spawn(run));
    }

    /// Moves a workflow that just became terminal from the active to the retained set.
    fn retire(&mut self, id: &str) -> Option<Arc<Workflow>> {
        let a = self.active.remove(id)?;
        if let Some(h) = a.abort {
            h.abort();
        }
        self.out.bus.close(id);
        self.recent.insert(id, a.events);
        let wf = Arc::new(a.wf);
        self.retained.insert(id.to_string(), Arc::clone(&wf));
        Some(wf)
    }

    /// Enters a terminal status: result, terminal event and record, then retire.
    fn finish(
        &mut self,
        id: &str,
        to: Status,
        error: Option<WorkflowError>,
        data: Value,
    ) -> Option<(Arc<Workflow>, u64)> {
        let a = self.active.get_mut(id)?;
        let at = now();
        if let Err(e) = a.wf.transition(to, at) {
            tracing::error!(workflow_id = id, error = %e, "refused transition");
            return None;
        }
        a.wf.error = error;
        let r = &mut a.result;
        r.status = to;
        r.execution_time = a.wf.execution_time.unwrap_or(0.0);
        r.total_cost = a.wf.total_cost_usd;
        r.tokens = a.wf.tokens;
        self.out
            .emit(ChangeKind::Result(Arc::new(a.result.clone())));
        let kind = match to {
            Status::Completed => EventType::WorkflowCompleted,
            Status::Cancelled => EventType::WorkflowCancelled,
            _ => EventType::WorkflowFailed,
        };
        let mut data = data;
        if let Value::Object(m) = &mut data {
            m.insert("status".into(), json!(to));
            m.insert("execution_time".into(), json!(a.wf.execution_time));
            m.insert("total_cost".into(), json!(a.wf.total_cost_usd));
            m.insert(
                "completed_agents".into(),
                json!(a.wf.progress.completed_agents),
            );
            if let Some(e) = &a.wf.error {
                m.insert("error".into(), json!(e));
            }
        }
        self.out.event(a, kind, data);
        let seq = self.out.record(a);
        tracing::info!(workflow_id = id, request_id = %a.request_id.as_deref().unwrap_or("-"), status = %to, "workflow finished");
        self.retire(id).map(|wf| (wf, seq))
    }

    fn finish_failed(&mut self, id: &str, error: WorkflowError) {
        self.finish(id, Status::Failed, Some(error), json!({}));
    }

    fn apply(&mut self, id: &str, step: Step) -> Result<(), Halted> {
        let shutting_down = self.shutting_down;
        let Some(a) = self.active.get_mut(id) else {
            return Err(Halted);
        };
        let out = &mut self.out;
        match step {
            Step::Begin => {
                if shutting_down || !matches!(a.wf.status, Status::Pending | Status::Interrupted) {
                    return Err(Halted);
                }
                let resumed = a.wf.status == Status::Interrupted;
                a.wf.transition(Status::Running, now())
                    .map_err(|_| Halted)?;
                a.wf.progress.stage =
                    if a.result.subtasks.is_empty() && a.wf.pattern == Pattern::Research {
                        Stage::Decomposing
                    } else {
                        Stage::Agents
                    };
                a.wf.progress.recompute();
                if resumed {
                    let data = json!({"resumes": a.wf.resumes, "completed_agents": a.wf.progress.completed_agents});
                    out.event(a, EventType::WorkflowResumed, data);
                } else {
                    let data = json!({"pattern": a.wf.pattern, "task": a.wf.task, "title": a.wf.title,
                        "total_agents": a.wf.progress.total_agents, "provider": a.wf.provider, "simulated": a.wf.simulated});
                    out.event(a, EventType::WorkflowStarted, data);
                }
                out.record(a);
                return Ok(());
            }
            _ if a.wf.status != Status::Running => return Err(Halted),
            Step::Decomposed {
                subtasks,
                tokens,
                cost,
            } => {
                a.wf.total_cost_usd += cost;
                a.wf.tokens.add(tokens);
                a.wf.progress.stage = Stage::Agents;
                a.wf.progress.recompute();
                a.result.subtasks = subtasks.clone();
                out.event(a, EventType::TaskDecomposed, json!({"count": subtasks.len(), "subtasks": subtasks, "tokens": tokens, "cost": cost}));
                out.record(a);
            }
            Step::AgentStarted {
                agent_id,
                agent_type,
                subtask,
            } => {
                out.event(
                    a,
                    EventType::AgentStarted,
                    json!({"agent_id": agent_id, "agent_type": agent_type, "subtask": subtask}),
                );
            }
            Step::AgentCompleted(r) => {
                add_agent(a, &r);
                let data = serde_json::to_value(&r).unwrap_or(Value::Null);
                out.event(a, EventType::AgentCompleted, data);
                out.record(a);
            }
            Step::SynthesisStarted { level, group } => {
                a.wf.progress.stage = Stage::Synthesis;
                a.wf.progress.recompute();
                out.event(
                    a,
                    EventType::SynthesisStarted,
                    json!({"level": level, "group": group}),
                );
                out.record(a);
            }
            Step::SynthesisCompleted(s) => {
                add_synthesis(a, &s);
                let data = serde_json::to_value(&s).unwrap_or(Value::Null);
                out.event(a, EventType::SynthesisCompleted, data);
                out.record(a);
            }
            Step::Documents {
                documents,
                final_synthesis,
            } => {
                a.wf.progress.stage = Stage::Documents;
                a.wf.progress.recompute();
                let names: Vec<&str> = documents.iter().map(|d| d.name.as_str()).collect();
                let data = json!({"count": documents.len(), "documents": names});
                a.result.documents = documents;
                a.result.final_synthesis = final_synthesis;
                out.event(a, EventType::DocumentsGenerated, data);
                out.record(a);
            }
            Step::Finished(Ok(())) => {
                self.finish(id, Status::Completed, None, json!({}));
            }
            Step::Finished(Err(e)) => {
                self.finish_failed(id, e);
            }
        }
        let over = self.active.get(id).and_then(|a| self.over_budget(a));
        if let Some(message) = over {
            let code = "budget_exceeded".to_string();
            tracing::warn!(workflow_id = id, %message, "budget exceeded; cancelling outstanding calls");
            self.finish_failed(id, WorkflowError { code, message });
            return Err(Halted);
        }
        Ok(())
    }

    /// The reason a workflow must stop for spending, if it must.
    fn over_budget(&self, a: &Active) -> Option<String> {
        let opts = a.wf.config.exec();
        let usd = opts
            .budget_usd
            .or((self.cfg.default_budget_usd > 0.0).then_some(self.cfg.default_budget_usd));
        let tokens = opts
            .max_tokens_total
            .or((self.cfg.default_max_tokens_total > 0)
                .then_some(self.cfg.default_max_tokens_total));
        if let Some(b) = usd.filter(|b| a.wf.total_cost_usd >= *b) {
            return Some(format!(
                "spent ${:.6} of a ${b} budget (config.budget_usd)",
                a.wf.total_cost_usd
            ));
        }
        if let Some(t) = tokens.filter(|t| a.wf.tokens.total >= *t) {
            return Some(format!(
                "used {} of {t} tokens (config.max_tokens_total)",
                a.wf.tokens.total
            ));
        }
        None
    }

    /// Rebuilds a stored unfinished workflow; one that was running when the process
    /// died is marked interrupted first.
    fn restore(&mut self, stored: StoredActive) -> String {
        let wf = stored.workflow;
        let mut result = WorkflowResult::empty(&wf.id, wf.pattern, wf.simulated);
        for ev in &stored.events {
            match ev.kind {
                EventType::TaskDecomposed => {
                    if let Some(s) = ev
                        .data
                        .get("subtasks")
                        .and_then(|s| serde_json::from_value(s.clone()).ok())
                    {
                        result.subtasks = s;
                    }
                }
                EventType::AgentCompleted => {
                    if let Ok(r) = serde_json::from_value::<AgentResult>(ev.data.clone()) {
                        replace_agent(&mut result.agent_results, r);
                    }
                }
                _ => {}
            }
        }
        let id = wf.id.clone();
        let mut a = Active {
            wf,
            result,
            events: stored.events.into_iter().map(Arc::new).collect(),
            abort: None,
            request_id: None,
        };
        if a.wf.status == Status::Running && a.wf.transition(Status::Interrupted, now()).is_ok() {
            self.out.event(
                &mut a,
                EventType::WorkflowInterrupted,
                json!({"reason": "the process stopped while the workflow ran"}),
            );
            self.out.record(&a);
        }
        self.active.insert(id.clone(), a);
        id
    }
}

fn replace_agent(list: &mut Vec<AgentResult>, r: AgentResult) {
    match list.iter_mut().find(|x| x.agent_id == r.agent_id) {
        Some(x) => *x = r,
        None => list.push(r),
    }
}

fn add_agent(a: &mut Active, r: &AgentResult) {
    a.wf.total_cost_usd += r.cost;
    a.wf.tokens.add(r.tokens);
    replace_agent(&mut a.result.agent_results, r.clone());
    a.wf.progress.completed_agents = a.result.agent_results.len() as u32;
    a.wf.progress.recompute();
}

fn add_synthesis(a: &mut Active, s: &SynthesisResult) {
    a.wf.total_cost_usd += s.cost;
    a.wf.tokens.add(s.tokens);
    a.result.synthesis_results.push(s.clone());
}

impl Actor for WorkflowRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.out.me = Some(ctx.address().recipient());
        let restored = std::mem::take(&mut self.restored);
        if !restored.is_empty() {
            tracing::info!(count = restored.len(), "resuming unfinished workflows");
        }
        for stored in restored {
            let id = self.restore(stored);
            self.start_run(&id, ctx);
        }
        self.out.flush();
    }
}

/// Sends the changes emitted so far to the subscribers (see `Outbox::me`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushOutbox;

impl Handler<FlushOutbox> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, _: FlushOutbox, _: &mut Context<Self>) {
        self.out.flush();
    }
}

// ---- messages ----

/// A validated request to create a workflow.
pub struct NewWorkflow {
    pub pattern: Pattern,
    pub task: String,
    pub title: String,
    pub config: PatternConfig,
    /// A webhook for this workflow's events (URL already checked by the guard).
    pub webhook: Option<WebhookSpec>,
    /// The creating HTTP request's id, carried into the workflow's log lines.
    pub request_id: Option<String>,
}

pub struct WebhookSpec {
    pub url: String,
    pub secret: String,
    pub events: Vec<EventType>,
}

impl WebhookSpec {
    pub fn into_subscription(self, workflow_id: Option<String>) -> Subscription {
        Subscription {
            id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
            workflow_id,
            url: self.url,
            secret: self.secret,
            events: self.events,
            created_at: now(),
        }
    }
}

pub struct Created {
    pub workflow: Arc<Workflow>,
    /// The change to wait for before acknowledging (sync durability).
    pub seq: u64,
}

#[derive(Message)]
#[rtype(result = "Result<Created, ApiError>")]
pub struct Create(pub NewWorkflow);

impl Handler<Create> for WorkflowRegistry {
    type Result = Result<Created, ApiError>;

    fn handle(&mut self, Create(req): Create, ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Err(ApiError::ShuttingDown);
        }
        if self.out.primary.is_full() {
            return Err(ApiError::StoreUnavailable(format!(
                "the {} write queue is full (storage.max_queue = {}); retry shortly",
                self.out.primary.name, self.out.primary.max_queue
            )));
        }
        if let Some(m) = self.mirror.as_ref().filter(|m| m.is_full()) {
            return Err(ApiError::StoreUnavailable(format!(
                "the {} write queue is full (redis.max_queue = {}); retry shortly",
                m.name, m.max_queue
            )));
        }
        if self.active.len() >= self.cfg.max_active {
            return Err(ApiError::ActiveLimitReached {
                active: self.active.len(),
                limit: self.cfg.max_active,
                retry_after_secs: self.cfg.retry_after_secs,
            });
        }
        let provider_name = req
            .config
            .provider()
            .unwrap_or(&self.cfg.default_provider)
            .to_string();
        let Some(provider) = self.providers.get(&provider_name) else {
            return Err(ApiError::validation(
                "config.provider",
                format!("provider '{provider_name}' is not configured"),
            ));
        };
        provider
            .check_available()
            .map_err(ApiError::ProviderUnavailable)?;
        let id = format!("wf_{}", uuid::Uuid::now_v7().simple());
        let wf = Workflow::new(
            id.clone(),
            req.pattern,
            req.task,
            req.title,
            req.config,
            provider_name,
            provider.simulated(),
        );
        let snapshot = Arc::new(wf.clone());
        let a = Active {
            result: WorkflowResult::empty(&id, wf.pattern, wf.simulated),
            wf,
            events: Vec::new(),
            abort: None,
            request_id: req.request_id,
        };
        let mut seq = self.out.record(&a);
        if let Some(spec) = req.webhook {
            let s = Arc::new(spec.into_subscription(Some(id.clone())));
            seq = self.out.emit(ChangeKind::Webhook(Arc::clone(&s)));
            self.out.webhooks.insert(s);
        }
        self.active.insert(id.clone(), a);
        self.start_run(&id, ctx);
        Ok(Created {
            workflow: snapshot,
            seq,
        })
    }
}

impl Handler<Report> for WorkflowRegistry {
    type Result = Result<(), Halted>;

    fn handle(&mut self, msg: Report, _: &mut Context<Self>) -> Self::Result {
        self.apply(&msg.id, msg.step)
    }
}

#[derive(Message)]
#[rtype(result = "Option<Arc<Workflow>>")]
pub struct Get(pub String);

impl Handler<Get> for WorkflowRegistry {
    type Result = Option<Arc<Workflow>>;

    fn handle(&mut self, Get(id): Get, _: &mut Context<Self>) -> Self::Result {
        match self.active.get(&id) {
            Some(a) => Some(Arc::new(a.wf.clone())),
            None => self.retained.get(&id).cloned(),
        }
    }
}

pub enum CancelOutcome {
    Cancelled {
        workflow: Arc<Workflow>,
        seq: u64,
    },
    AlreadyFinished(Arc<Workflow>),
    /// Not in memory: the caller asks the store.
    Unknown,
}

#[derive(Message)]
#[rtype(result = "CancelOutcome")]
pub struct Cancel(pub String);

impl Handler<Cancel> for WorkflowRegistry {
    type Result = MessageResult<Cancel>;

    fn handle(&mut self, Cancel(id): Cancel, _: &mut Context<Self>) -> Self::Result {
        if self.active.contains_key(&id) {
            let data = json!({"reason": "cancelled by request"});
            if let Some((workflow, seq)) = self.finish(&id, Status::Cancelled, None, data) {
                return MessageResult(CancelOutcome::Cancelled { workflow, seq });
            }
        }
        MessageResult(match self.retained.get(&id) {
            Some(wf) => CancelOutcome::AlreadyFinished(Arc::clone(wf)),
            None => CancelOutcome::Unknown,
        })
    }
}

impl Handler<Evict> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, Evict(ids): Evict, _: &mut Context<Self>) {
        for id in ids {
            if self.retained.remove(&id).is_some() {
                self.out.emit(ChangeKind::Evicted(id));
            }
        }
    }
}

pub enum EventFeed {
    /// Events after the requested seq so far, then live ones until the end.
    Live {
        backlog: Vec<Arc<Event>>,
        rx: mpsc::Receiver<Arc<Event>>,
    },
    /// Finished moments ago: its whole log, from memory.
    Finished { backlog: Vec<Arc<Event>> },
    /// Not running here: read the (complete) log from the store.
    NotActive,
}

#[derive(Message)]
#[rtype(result = "EventFeed")]
pub struct SubscribeEvents {
    pub id: String,
    pub after: u64,
}

impl Handler<SubscribeEvents> for WorkflowRegistry {
    type Result = MessageResult<SubscribeEvents>;

    fn handle(&mut self, msg: SubscribeEvents, _: &mut Context<Self>) -> Self::Result {
        // Interrupted workflows have no live stream in this process until resumed.
        match self
            .active
            .get(&msg.id)
            .filter(|a| a.wf.status != Status::Interrupted)
        {
            Some(a) => {
                let backlog = a
                    .events
                    .iter()
                    .filter(|e| e.seq > msg.after)
                    .cloned()
                    .collect();
                let rx = self.out.bus.subscribe(&msg.id);
                MessageResult(EventFeed::Live { backlog, rx })
            }
            None => MessageResult(match self.recent.logs.get(&msg.id) {
                Some(log) => EventFeed::Finished {
                    backlog: log.iter().filter(|e| e.seq > msg.after).cloned().collect(),
                },
                None => EventFeed::NotActive,
            }),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RegistryStats {
    pub events_emitted: u64,
    pub webhooks_registered: usize,
    pub active: usize,
    pub running: usize,
    pub retained: usize,
    pub sse_clients: usize,
    pub shutting_down: bool,
    pub max_active: usize,
}

#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct Stats;

impl Handler<Stats> for WorkflowRegistry {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RegistryStats {
            events_emitted: self.out.events_emitted,
            webhooks_registered: self.out.webhooks.subs.len(),
            active: self.active.len(),
            running: self
                .active
                .values()
                .filter(|a| a.wf.status == Status::Running)
                .count(),
            retained: self.retained.len(),
            sse_clients: self.out.bus.clients(),
            shutting_down: self.shutting_down,
            max_active: self.cfg.max_active,
        })
    }
}

/// Stop admitting: creates get 503 from now on; running workflows go on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BeginShutdown;

impl Handler<BeginShutdown> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, _: BeginShutdown, _: &mut Context<Self>) {
        self.shutting_down = true;
    }
}

/// Stops every executor; running workflows become `interrupted` (resumed at the
/// next start). Returns the last change seq, to flush up to.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct InterruptAll;

impl Handler<InterruptAll> for WorkflowRegistry {
    type Result = u64;

    fn handle(&mut self, _: InterruptAll, _: &mut Context<Self>) -> u64 {
        self.shutting_down = true;
        let ids: Vec<String> = self.active.keys().cloned().collect();
        for id in ids {
            let Some(a) = self.active.get_mut(&id) else {
                continue;
            };
            if let Some(h) = a.abort.take() {
                h.abort();
            }
            if a.wf.status == Status::Running && a.wf.transition(Status::Interrupted, now()).is_ok()
            {
                self.out.event(
                    a,
                    EventType::WorkflowInterrupted,
                    json!({"reason": "server shutdown"}),
                );
                self.out.record(a);
            }
            self.out.bus.close(&id);
        }
        self.out.seq
    }
}

/// Registers a subscription; returns it with the change seq to acknowledge.
#[derive(Message)]
#[rtype(result = "(Arc<Subscription>, u64)")]
pub struct AddWebhook(pub Subscription);

impl Handler<AddWebhook> for WorkflowRegistry {
    type Result = MessageResult<AddWebhook>;

    fn handle(&mut self, AddWebhook(s): AddWebhook, _: &mut Context<Self>) -> Self::Result {
        let s = Arc::new(s);
        let seq = self.out.emit(ChangeKind::Webhook(Arc::clone(&s)));
        self.out.webhooks.insert(Arc::clone(&s));
        MessageResult((s, seq))
    }
}

/// Removes a subscription by id, or a workflow's subscriptions to a URL.
#[derive(Message)]
#[rtype(result = "Option<(Vec<Arc<Subscription>>, u64)>")]
pub enum RemoveWebhook {
    Id(String),
    WorkflowUrl { workflow_id: String, url: String },
}

impl Handler<RemoveWebhook> for WorkflowRegistry {
    type Result = Option<(Vec<Arc<Subscription>>, u64)>;

    fn handle(&mut self, msg: RemoveWebhook, _: &mut Context<Self>) -> Self::Result {
        let ids: Vec<String> = match msg {
            RemoveWebhook::Id(id) => vec![id],
            RemoveWebhook::WorkflowUrl { workflow_id, url } => self
                .out
                .webhooks
                .by_workflow
                .get(&workflow_id)
                .into_iter()
                .flatten()
                .filter(|id| {
                    self.out
                        .webhooks
                        .subs
                        .get(*id)
                        .is_some_and(|s| s.url == url)
                })
                .cloned()
                .collect(),
        };
        let mut removed = Vec::new();
        let mut seq = 0;
        for id in ids {
            if let Some(s) = self.out.webhooks.remove(&id) {
                seq = self.out.emit(ChangeKind::WebhookRemoved(id));
                removed.push(s);
            }
        }
        (!removed.is_empty()).then_some((removed, seq))
    }
}

#[derive(Message)]
#[rtype(result = "Vec<Arc<Subscription>>")]
pub struct ListWebhooks;

impl Handler<ListWebhooks> for WorkflowRegistry {
    type Result = MessageResult<ListWebhooks>;

    fn handle(&mut self, _: ListWebhooks, _: &mut Context<Self>) -> Self::Result {
        let mut all: Vec<Arc<Subscription>> = self.out.webhooks.subs.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        MessageResult(all)
    }
}

impl Handler<RecordDelivery> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, RecordDelivery(d): RecordDelivery, _: &mut Context<Self>) {
        self.out.emit(ChangeKind::Delivery(Arc::new(d)));
    }
}

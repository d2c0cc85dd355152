//! `Create`: admission (shutdown, store queues, active limit, provider) and a new
//! workflow handed to the core.

use std::sync::Arc;

use actix::prelude::*;

use super::{Active, Refusal, WorkflowRegistry};
use crate::clock::now;
use crate::domain::machine::{Input, WorkflowState};
use crate::domain::{
    ChangeKind, EventType, IdempotencyRecord, Pattern, PatternConfig, Subscription, Workflow,
};

/// A validated request to create a workflow.
pub struct NewWorkflow {
    /// Set when admission across instances already leased this id; None: a
    /// new one is made here.
    pub id: Option<String>,
    pub pattern: Pattern,
    pub task: String,
    pub title: String,
    pub config: PatternConfig,
    /// A webhook for this workflow's events (URL already checked by the guard).
    pub webhook: Option<WebhookSpec>,
    /// The creating HTTP request's id, carried into the workflow's log lines.
    pub request_id: Option<String>,
    /// The creating key's name (None when auth is off).
    pub owner: Option<String>,
    /// The request's `Idempotency-Key`, stored with the workflow.
    pub idempotency: Option<IdempotencyRecord>,
}

impl NewWorkflow {
    /// A request with nothing yet from the caller's context (request id, owner,
    /// idempotency key) or the cluster (id).
    pub fn new(
        task: String,
        title: String,
        config: PatternConfig,
        webhook: Option<WebhookSpec>,
    ) -> NewWorkflow {
        NewWorkflow {
            id: None,
            pattern: config.pattern(),
            task,
            title,
            config,
            webhook,
            request_id: None,
            owner: None,
            idempotency: None,
        }
    }
}

/// A new workflow id: time-ordered (UUIDv7), so listing by id is by creation.
pub fn new_workflow_id() -> String {
    format!("wf_{}", uuid::Uuid::now_v7().simple())
}

pub struct WebhookSpec {
    pub url: String,
    pub secret: String,
    pub events: Vec<EventType>,
}

impl WebhookSpec {
    /// `owner`: the key registering it.
    pub fn into_subscription(
        self,
        workflow_id: Option<String>,
        owner: Option<String>,
    ) -> Subscription {
        Subscription {
            id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
            workflow_id,
            url: self.url,
            secret: self.secret,
            events: self.events,
            created_at: now(),
            owner,
        }
    }
}

pub struct Created {
    pub workflow: Arc<Workflow>,
    /// The change to wait for before acknowledging (sync durability).
    pub seq: u64,
}

#[derive(Message)]
#[rtype(result = "Result<Created, Refusal>")]
pub struct Create(pub NewWorkflow);

impl WorkflowRegistry {
    /// Why a create must be refused now, if it must.
    fn refuse_admission(&self) -> Result<(), Refusal> {
        if self.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        if self.out.primary.is_full() {
            return Err(Refusal::QueueFull {
                store: self.out.primary.name,
                setting: "storage.max_queue",
                max_queue: self.out.primary.max_queue,
            });
        }
        if let Some(m) = self.mirror.as_ref().filter(|m| m.is_full()) {
            return Err(Refusal::QueueFull {
                store: m.name,
                setting: "redis.max_queue",
                max_queue: m.max_queue,
            });
        }
        if self.active.len() >= self.cfg.max_active {
            return Err(Refusal::ActiveLimit {
                active: self.active.len(),
                limit: self.cfg.max_active,
                retry_after_secs: self.cfg.retry_after_secs,
            });
        }
        Ok(())
    }
}

impl Handler<Create> for WorkflowRegistry {
    type Result = Result<Created, Refusal>;

    fn handle(&mut self, Create(req): Create, ctx: &mut Context<Self>) -> Self::Result {
        self.refuse_admission()?;
        self.ledger
            .admit(req.owner.as_deref(), self.cfg.retry_after_secs)?;
        let provider_name = req
            .config
            .provider()
            .unwrap_or(&self.cfg.default_provider)
            .to_string();
        let Some(provider) = self.providers.get(&provider_name) else {
            return Err(Refusal::UnknownProvider(provider_name));
        };
        provider
            .check_available()
            .map_err(|e| Refusal::ProviderUnavailable(e.to_string()))?;
        if req.webhook.is_some() {
            // A new workflow owns none yet: only the total and the key's share
            // can refuse it.
            self.out.webhooks.admit(None, req.owner.as_deref())?;
        }
        let id = req.id.unwrap_or_else(new_workflow_id);
        let mut config = req.config;
        config.default_document_formats(&self.cfg.default_document_formats);
        let mut wf = Workflow::new(
            id.clone(),
            req.pattern,
            req.task,
            req.title,
            config,
            provider_name,
            provider.simulated(),
        );
        wf.owner = req.owner.clone();
        let a = Active {
            st: WorkflowState::new(wf, &self.policy),
            abort: None,
            run_no: 0,
            run_started: None,
            request_id: req.request_id,
        };
        self.active.insert(id.clone(), a);
        // The key before the record: a committed workflow always has its key
        // committed too (a key without its workflow is ignored when read).
        if let Some(mut k) = req.idempotency {
            k.workflow_id = id.clone();
            self.out.emit(ChangeKind::Idempotency(Arc::new(k)));
        }
        let done = match self.feed(&id, Input::Create, ctx) {
            Some(Ok(done)) => done,
            _ => return Err(Refusal::Internal("a new workflow was refused")),
        };
        let mut seq = done.seq;
        if let Some(spec) = req.webhook {
            let s = Arc::new(spec.into_subscription(Some(id.clone()), req.owner));
            seq = self.out.emit(ChangeKind::Webhook(Arc::clone(&s)));
            self.out.webhooks.insert(s);
        }
        let workflow = done
            .record
            .ok_or(Refusal::Internal("a new workflow has no record"))?;
        Ok(Created { workflow, seq })
    }
}

//! A `StateChange` is the unit the registry emits and every subscriber consumes:
//! stores persist it, the evictor indexes it, metrics count it. `seq` is a
//! process-wide, gap-free counter, so "committed up to seq N" is a watermark.
//! With several instances a change also carries the lease epoch its workflow was
//! held under when the change was made: the store's fence writes it only while
//! the lease is still at that epoch.

use std::sync::Arc;

use super::{
    Delivery, Event, IdempotencyRecord, StepRecord, StoredDocument, Subscription, Workflow,
    WorkflowResult,
};

#[derive(Debug, Clone)]
pub struct StateChange {
    pub seq: u64,
    /// The lease epoch this instance held the change's workflow under when it
    /// made the change (several instances); None with a single instance, and for
    /// changes that are not a run's writes (see `ChangeKind::run_workflow`).
    pub epoch: Option<i64>,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone)]
pub enum ChangeKind {
    /// Insert or replace the workflow record.
    Workflow(Arc<Workflow>),
    /// Append one event (idempotent on `(workflow_id, seq)`).
    Event(Arc<Event>),
    /// Insert or replace the (possibly partial) result of a finished workflow.
    Result(Arc<WorkflowResult>),
    /// The in-memory copy was dropped; stores keep theirs.
    Evicted(String),
    /// Insert or replace a webhook subscription.
    Webhook(Arc<Subscription>),
    /// Delete a webhook subscription (its deliveries stay).
    WebhookRemoved(String),
    /// Insert or replace a delivery with its attempts so far.
    Delivery(Arc<Delivery>),
    /// Insert a create request's idempotency key (replacing an expired one).
    Idempotency(Arc<IdempotencyRecord>),
    /// Insert a step's committed answer; the first answer under a key stays.
    /// Sent to the primary store's writer only, ahead of its queue (seq 0).
    Step(Arc<StepRecord>),
    /// Insert or replace a generated document's bytes; rides with the
    /// documents step's answer (seq 0), primary store only.
    Document(Arc<StoredDocument>),
}

impl ChangeKind {
    /// The workflow whose run this change writes, when it is fenced by the
    /// workflow's lease. Deliveries have their own claims; subscriptions and
    /// evictions are not a run's writes.
    pub fn run_workflow(&self) -> Option<&str> {
        match self {
            ChangeKind::Workflow(w) => Some(&w.id),
            ChangeKind::Event(e) => Some(&e.workflow_id),
            ChangeKind::Result(r) => Some(&r.workflow_id),
            ChangeKind::Step(s) => Some(&s.workflow_id),
            ChangeKind::Document(d) => Some(&d.workflow_id),
            ChangeKind::Idempotency(k) => Some(&k.workflow_id),
            ChangeKind::Delivery(_)
            | ChangeKind::Webhook(_)
            | ChangeKind::WebhookRemoved(_)
            | ChangeKind::Evicted(_) => None,
        }
    }
}

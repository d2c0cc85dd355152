//! A `StateChange` is the unit the registry emits and every subscriber consumes:
//! stores persist it, the evictor indexes it, metrics count it. `seq` is a
//! process-wide, gap-free counter, so "committed up to seq N" is a watermark.

use std::sync::Arc;

use super::{
    Delivery, Event, IdempotencyRecord, StepRecord, StoredDocument, Subscription, Workflow,
    WorkflowResult,
};

#[derive(Debug, Clone)]
pub struct StateChange {
    pub seq: u64,
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

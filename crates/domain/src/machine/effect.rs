//! What the registry must do after an input: the effects `apply` returns, in order.

use std::sync::Arc;

use crate::{Event, Status, Workflow, WorkflowResult};

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Persist this snapshot of the workflow record.
    Record(Arc<Workflow>),
    /// Persist the (possibly partial) result of a workflow that just finished.
    Result(Arc<WorkflowResult>),
    /// Persist the event, send it to the workflow's SSE clients and schedule one
    /// webhook delivery per matching subscription.
    Event(Arc<Event>),
    /// Start a run (fresh, or resuming from the state's result).
    StartRun,
    /// Abort the run and its in-flight provider calls.
    Abort,
    /// Terminal: end the workflow's streams and move it to the retained set.
    Retire,
    /// Drop the workflow here without writing anything (another instance owns
    /// it now): forget its webhooks and quota tracking, end its streams.
    Forget,
    /// Drop the finished workflow from memory; it stays readable from the store.
    Evict,
}

/// Why an input was refused; the state is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The workflow already finished; nothing may follow.
    #[error("workflow is {0}: nothing may follow a terminal status")]
    Terminal(Status),
    /// The input needs another status (e.g. a step of a workflow not running).
    #[error("workflow is {status}: {input} is refused")]
    WrongStatus { status: Status, input: &'static str },
}

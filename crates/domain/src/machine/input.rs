//! What can happen to a workflow: the inputs `apply` takes.

use crate::{
    AgentResult, Decomposition, DocumentsAnswer, SynthesisResult, ToolCallInfo, WorkflowError,
};

// An input is built once per step and moved into `apply`: its size is no cost
// worth a box per step (the agent result with its tools and sources is the big one).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Input {
    /// A new workflow was admitted: persist it and start its run.
    Create,
    /// A step its run reports.
    Step(Step),
    /// A client cancelled it.
    Cancel,
    /// The process is stopping: a running workflow becomes `interrupted`.
    Interrupt { reason: &'static str },
    /// Its run passed `limits.max_workflow_duration` (`limit`, as the operator
    /// reads it): a pending or running workflow fails (`deadline_exceeded`).
    DeadlinePassed { limit: String },
    /// Its run is gone: it fails (`internal_error`).
    RunLost(Lost),
    /// Its provider is not configured here: it fails (`provider_unavailable`).
    NoProvider { provider: String },
    /// Its key's daily budget is reached (`message` says by how much, from the
    /// key ledger): a running workflow fails (`spend_limit_reached`).
    OverDailySpend { message: String },
    /// Several instances: another instance holds its lease now. It is dropped
    /// here without a write (the store's fence would refuse one): its run stops.
    Disowned,
    /// A finished workflow leaves memory (it stays in the store).
    Evicted,
    /// Rebuilt from the store at start-up (`WorkflowState::restored`): its result
    /// is recovered from the event log and the committed step answers; one that
    /// was running is marked interrupted.
    Restore,
    /// Start a run for a restored workflow, unless its resumes keep dying.
    Resume,
}

/// How a run was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Its future ended without finishing: a panic it did not report, or its
    /// executor thread stopped. Only a pending or running workflow fails (an
    /// interrupted one's run was stopped on purpose).
    Ended,
    /// No executor thread could take it up.
    NotStarted,
}

/// One step of a running workflow, as its executor reports it.
#[derive(Debug, Clone)]
pub enum Step {
    /// The executor took the workflow up (pending/interrupted → running).
    Begin,
    /// The decomposition's answer (already committed as a durable step).
    Decomposed(Decomposition),
    AgentStarted {
        agent_id: String,
        agent_type: String,
        subtask: String,
        step_key: String,
    },
    /// An agent's result (a completed one already committed as a durable step).
    AgentCompleted(AgentResult),
    /// An agent called a tool.
    ToolCallStarted(ToolCallInfo),
    /// The tool call ended (its answer already committed as a durable step).
    ToolCallCompleted(ToolCallInfo),
    SynthesisStarted {
        level: String,
        group: Option<u32>,
        step_key: String,
    },
    /// A synthesis's answer (already committed as a durable step).
    SynthesisCompleted(SynthesisResult),
    /// The documents step's answer (already committed with the documents'
    /// bytes), and the final synthesis the report was made of.
    Documents {
        answer: DocumentsAnswer,
        final_synthesis: Option<String>,
    },
    Finished(Result<(), WorkflowError>),
}

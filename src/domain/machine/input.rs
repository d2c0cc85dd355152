//! What can happen to a workflow: the inputs `apply` takes.

use crate::domain::{AgentResult, Document, SynthesisResult, TokenUsage, WorkflowError};

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
    /// Its run could not go on (no provider, a panic, a lost executor, the
    /// deadline): it fails with this error.
    Fail(WorkflowError),
    /// Rebuilt from the store at start-up (`WorkflowState::restored`): its result
    /// is recovered from the event log; one that was running is marked interrupted.
    Restore,
    /// Start a run for a restored workflow, unless its resumes keep dying.
    Resume,
}

/// One step of a running workflow, as its executor reports it.
#[derive(Debug, Clone)]
pub enum Step {
    /// The executor took the workflow up (pending/interrupted → running).
    Begin,
    Decomposed {
        subtasks: Vec<String>,
        tokens: TokenUsage,
        cost: f64,
    },
    AgentStarted {
        agent_id: String,
        agent_type: String,
        subtask: String,
    },
    AgentCompleted(AgentResult),
    SynthesisStarted {
        level: String,
        group: Option<u32>,
    },
    SynthesisCompleted(SynthesisResult),
    Documents {
        documents: Vec<Document>,
        final_synthesis: Option<String>,
    },
    Finished(Result<(), WorkflowError>),
}

//! Pure data types and the workflow state machine: no I/O, no actors, no clock
//! (every time comes in as an argument; the process's clock is the orchestrator's
//! `clock` module). Its own crate, depending on nothing of ours: the compiler keeps
//! it pure.

pub mod bounds;
pub mod change;
pub mod document;
pub mod event;
pub mod failure;
pub mod idempotency;
pub mod machine;
pub mod pattern;
pub mod result;
pub mod status;
pub mod step;
pub mod tools;
pub mod ts;
pub mod webhook;
pub mod workflow;

pub use bounds::{Bounds, AGENT_TYPES};
pub use change::{ChangeKind, StateChange};
pub use document::{documents_key, DocFormat, DocumentsAnswer, StoredDocument};
pub use event::{Event, EventData, EventType};
pub use failure::FailureCode;
pub use idempotency::IdempotencyRecord;
pub use pattern::{
    call_timeout, ExecOptions, Pattern, PatternConfig, ResearchConfig, SearchConfig,
};
pub use result::{AgentResult, AgentStatus, Document, SynthesisResult, TokenUsage, WorkflowResult};
pub use status::{Status, TransitionError};
pub use step::{Decomposition, StepAnswer, StepRecord};
pub use tools::{
    number_sources, AgentSource, FoundSource, Source, ToolCallAnswer, ToolCallInfo, ToolRequest,
    ToolUsage, TurnAnswer,
};
pub use webhook::{Attempt, Delivery, DeliveryStatus, Subscription};
pub use workflow::{Progress, Stage, Workflow, WorkflowError};

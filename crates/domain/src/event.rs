//! Workflow events: numbered 1, 2, 3… per workflow, with the old server's types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    WorkflowStarted,
    TaskDecomposed,
    AgentStarted,
    AgentProgress,
    AgentCompleted,
    /// An agent called a tool (server, tool, step key; never the arguments).
    ToolCallStarted,
    /// The call ended: duration, ok, size.
    ToolCallCompleted,
    SynthesisStarted,
    SynthesisCompleted,
    DocumentsGenerated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowCancelled,
    WorkflowInterrupted,
    WorkflowResumed,
    Error,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::WorkflowStarted => "workflow_started",
            EventType::TaskDecomposed => "task_decomposed",
            EventType::AgentStarted => "agent_started",
            EventType::AgentProgress => "agent_progress",
            EventType::AgentCompleted => "agent_completed",
            EventType::ToolCallStarted => "tool_call_started",
            EventType::ToolCallCompleted => "tool_call_completed",
            EventType::SynthesisStarted => "synthesis_started",
            EventType::SynthesisCompleted => "synthesis_completed",
            EventType::DocumentsGenerated => "documents_generated",
            EventType::WorkflowCompleted => "workflow_completed",
            EventType::WorkflowFailed => "workflow_failed",
            EventType::WorkflowCancelled => "workflow_cancelled",
            EventType::WorkflowInterrupted => "workflow_interrupted",
            EventType::WorkflowResumed => "workflow_resumed",
            EventType::Error => "error",
        }
    }

    /// The last event a workflow emits: SSE streams close after it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventType::WorkflowCompleted | EventType::WorkflowFailed | EventType::WorkflowCancelled
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub workflow_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
}

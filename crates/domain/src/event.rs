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
    #[serde(serialize_with = "crate::ts::rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
    /// `data` as JSON text, made once (see `DataText`).
    #[serde(skip)]
    pub data_text: DataText,
}

impl Event {
    /// `data` as JSON text: serialised the first time it is asked for, then
    /// reused (the store writer, every SSE frame and the packing all use it).
    pub fn data_json(&self) -> &str {
        self.data_text
            .0
            // `serde_json::to_string` writes straight into a buffer; `Value`'s
            // `Display` goes through `fmt::Write` piece by piece (~2x the work).
            .get_or_init(|| {
                serde_json::to_string(&self.data)
                    .unwrap_or_else(|_| "null".into())
                    .into_boxed_str()
            })
    }

    /// The event as JSON text, exactly as `serde_json::to_string` writes it,
    /// with `data` taken from `data_json`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Head<'a> {
            workflow_id: &'a str,
            seq: u64,
            #[serde(rename = "type")]
            kind: EventType,
            #[serde(serialize_with = "crate::ts::rfc3339")]
            timestamp: &'a DateTime<Utc>,
        }
        let head = Head {
            workflow_id: &self.workflow_id,
            seq: self.seq,
            kind: self.kind,
            timestamp: &self.timestamp,
        };
        let data = self.data_json();
        let mut out = Vec::with_capacity(128 + data.len());
        // Writing plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &head);
        out.pop(); // the head's closing brace
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data.as_bytes());
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

/// An event's data as JSON text, made once, the first time it is needed: an
/// answer's event data is the largest JSON the service writes, and the store
/// writer, each SSE frame and the packing of a finished workflow would each
/// serialise it again. Not part of the event's value: equality and `Debug`
/// ignore it, serde skips it.
#[derive(Clone, Default)]
pub struct DataText(std::sync::OnceLock<Box<str>>);

impl DataText {
    /// Text already at hand (read from a store), which `data` was parsed from.
    pub fn known(text: String) -> DataText {
        DataText(std::sync::OnceLock::from(text.into_boxed_str()))
    }
}

impl PartialEq for DataText {
    fn eq(&self, _: &DataText) -> bool {
        true
    }
}

impl std::fmt::Debug for DataText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataText")
    }
}

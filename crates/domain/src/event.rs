//! Workflow events: numbered 1, 2, 3… per workflow, with the old server's types.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    pub data: EventData,
}

impl Event {
    /// `data` as JSON text (see `EventData::json`).
    pub fn data_json(&self) -> &str {
        self.data.json()
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

/// An event's data: a JSON value held as a `Value`, as JSON text, or both, each
/// made from the other once, the first time it is needed. An answer's event
/// carries the answer in full, the largest JSON the service writes: it is
/// serialised once from the typed answer (`from_text`) for the store writer,
/// every SSE frame and the packing, and only parsed into a `Value` if something
/// reads a field (a restore, a webhook payload). Rows read back from a store
/// keep the text they were read as. Equality compares values.
#[derive(Clone)]
pub struct EventData {
    value: OnceLock<Value>,
    text: OnceLock<Box<str>>,
}

impl EventData {
    /// Data as JSON text written by `serde_json` (a typed answer, a stored row):
    /// trusted to parse; text that does not reads as `null`.
    pub fn from_text(text: String) -> EventData {
        EventData {
            value: OnceLock::new(),
            text: OnceLock::from(text.into_boxed_str()),
        }
    }

    /// A value serialised to JSON text at once (`serde_json::to_string`).
    pub fn serialised<T: Serialize>(v: &T) -> EventData {
        EventData::from_text(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
    }

    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            self.text
                .get()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null)
        })
    }

    /// The data read as a `T`: from the text when there is one (no `Value` is
    /// built on the way).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        match self.text.get() {
            Some(t) => serde_json::from_str(t),
            None => T::deserialize(self.value()),
        }
    }

    /// The data as JSON text: the text it was made from (a typed answer as
    /// `serde_json` wrote it, a stored row as the store returned it), else what
    /// `serde_json::to_string` writes for `value()`.
    pub fn json(&self) -> &str {
        // `serde_json::to_string` writes straight into a buffer; `Value`'s
        // `Display` goes through `fmt::Write` piece by piece (~2x the work).
        self.text.get_or_init(|| {
            serde_json::to_string(self.value())
                .unwrap_or_else(|_| "null".into())
                .into_boxed_str()
        })
    }
}

impl From<Value> for EventData {
    fn from(v: Value) -> EventData {
        EventData {
            value: OnceLock::from(v),
            text: OnceLock::new(),
        }
    }
}

impl Default for EventData {
    fn default() -> EventData {
        EventData::from(Value::Null)
    }
}

/// Read access as a `Value` (`ev.data["agent_id"]`, `ev.data.get(…)`).
impl std::ops::Deref for EventData {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for EventData {
    fn eq(&self, other: &EventData) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for EventData {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl std::fmt::Debug for EventData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl Serialize for EventData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EventData, D::Error> {
        Value::deserialize(d).map(EventData::from)
    }
}

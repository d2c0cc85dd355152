//! What a workflow produces: agent results, syntheses, documents, cost.

use serde::{Deserialize, Serialize};

pub use super::document::Document;
use super::{Pattern, Status};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub total: u64,
}

impl TokenUsage {
    pub fn new(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            total: input + output,
        }
    }

    pub fn add(&mut self, other: TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.total += other.total;
    }
}

/// How one agent call ended; serialised as `completed` / `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Completed,
    Failed,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Completed => "completed",
            AgentStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResult {
    pub agent_id: String,
    pub agent_type: String,
    pub subtask: String,
    pub content: String,
    pub status: AgentStatus,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost: f64,
    pub execution_time: f64,
    /// Provider attempts beyond the first.
    #[serde(default)]
    pub retries: u32,
    /// Seconds spent waiting for the provider's quota.
    #[serde(default)]
    pub queued_time: f64,
    pub error: Option<String>,
    /// The durable step this answer belongs to (`wf_…/agent/3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_key: Option<String>,
    /// Tools the agent called (`server.tool`), each once, in first-use order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_used: Vec<String>,
    /// Sources its tool results named, in the order found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<super::AgentSource>,
    /// Tool calls per server and their `cost_per_call` total (part of `cost`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_usage: Vec<super::ToolUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesisResult {
    /// `group` or `final`.
    pub level: String,
    pub group: Option<u32>,
    /// agent_ids (group) or group numbers (final) this synthesis drew on.
    pub sources: Vec<String>,
    pub content: String,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost: f64,
    pub execution_time: f64,
    #[serde(default)]
    pub retries: u32,
    /// The durable step this answer belongs to (`wf_…/synthesis/1`, `wf_…/final`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowResult {
    pub workflow_id: String,
    pub pattern: Pattern,
    pub status: Status,
    pub simulated: bool,
    pub subtasks: Vec<String>,
    /// The decomposition call's answer (research), for its cost and tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decomposition: Option<super::Decomposition>,
    pub agent_results: Vec<AgentResult>,
    pub synthesis_results: Vec<SynthesisResult>,
    pub final_synthesis: Option<String>,
    pub documents: Vec<Document>,
    pub execution_time: f64,
    pub total_cost: f64,
    pub tokens: TokenUsage,
    /// The sources the agents' tools found, numbered as syntheses cite them (`[n]`).
    #[serde(default)]
    pub sources: Vec<super::Source>,
}

impl WorkflowResult {
    pub fn empty(workflow_id: &str, pattern: Pattern, simulated: bool) -> WorkflowResult {
        WorkflowResult {
            workflow_id: workflow_id.to_string(),
            pattern,
            status: Status::Pending,
            simulated,
            subtasks: Vec::new(),
            decomposition: None,
            agent_results: Vec::new(),
            synthesis_results: Vec::new(),
            final_synthesis: None,
            documents: Vec::new(),
            execution_time: 0.0,
            total_cost: 0.0,
            tokens: TokenUsage::default(),
            sources: Vec::new(),
        }
    }
}

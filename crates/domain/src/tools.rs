//! Agents with tools, as data: the durable steps of an agent's tool loop (each
//! model turn `wf_…/agent/3/turn/1` and each tool call `wf_…/agent/3/tool/1/0`
//! is committed under its own key before the next turn uses it; a decomposer
//! with tools uses the same keys under `wf_…/decompose`), the tool-call events,
//! and the workflow's numbered sources.

use serde::{Deserialize, Serialize};

use super::{AgentResult, Decomposition, TokenUsage};

/// Model turn `turn` (from 1) of the agent whose step key is `agent_key`.
pub fn turn_key(agent_key: &str, turn: u32) -> String {
    format!("{agent_key}/turn/{turn}")
}

/// Tool call `index` (from 0) that model turn `turn` asked for.
pub fn tool_key(agent_key: &str, turn: u32, index: usize) -> String {
    format!("{agent_key}/tool/{turn}/{index}")
}

/// A tool the model asked for in a turn: OpenAI's `tool_calls[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRequest {
    /// The model's id for the call; the tool message answers it.
    pub id: String,
    /// The function name the model used (`server__tool`).
    pub name: String,
    /// The arguments as the JSON text the model wrote.
    pub arguments: String,
}

/// One model turn of a tool loop, as committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnAnswer {
    pub step_key: String,
    /// The answer's text (empty when it only asks for tools).
    pub content: String,
    pub tool_calls: Vec<ToolRequest>,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost: f64,
    pub execution_time: f64,
    #[serde(default)]
    pub retries: u32,
}

/// A source a tool result named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundSource {
    pub url: String,
    /// The title the result gave, else the URL.
    pub title: String,
}

/// One tool call, as committed: what the model will be shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallAnswer {
    pub step_key: String,
    pub server: String,
    pub tool: String,
    /// False when the call failed or the tool reported an error; `content` then
    /// says why, and the model is told so.
    pub ok: bool,
    /// The result's text, cut to `tools.max_result_bytes`.
    pub content: String,
    /// Bytes of the whole result before it was cut.
    pub size: usize,
    pub truncated: bool,
    pub sources: Vec<FoundSource>,
    pub duration: f64,
    /// `tools.servers.<name>.cost_per_call`.
    pub cost: f64,
}

/// What `tool_call_started` / `tool_call_completed` events carry: never the
/// arguments (they may hold anything the model wrote, secrets included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallInfo {
    pub agent_id: String,
    pub server: String,
    pub tool: String,
    pub step_key: String,
    /// Completed only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
}

/// An agent's calls to one tool server and what they cost (`cost_per_call`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUsage {
    pub server: String,
    pub calls: u32,
    pub cost: f64,
}

/// A source an agent used: the tool that found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSource {
    pub url: String,
    pub title: String,
    /// `server.tool`.
    pub tool: String,
}

/// A numbered source of the workflow's result: `[n]` in syntheses and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub n: u32,
    pub url: String,
    /// The title the tool result gave, else the URL.
    pub title: String,
    /// The agent that found it first (`agent_id`).
    pub agent: String,
    /// The tool that found it (`server.tool`).
    pub tool: String,
}

/// Agent `i` of `wf_…/agent/i`; agents without a key sort last, in their order.
fn agent_index(a: &AgentResult) -> usize {
    a.step_key
        .as_deref()
        .and_then(|k| k.rsplit('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// The `agent` a source the decomposer found is credited to.
pub const DECOMPOSER: &str = "decomposer";

/// Numbers the sources 1, 2, 3…: the decomposer's first (it ran first), then the
/// agents' in agent order (`wf_…/agent/1` first, whatever order they finished
/// in), each URL once: the same list whether it is computed by the run for the
/// synthesis prompt or by the core for the result.
pub fn number_sources<'a>(
    decomposition: Option<&Decomposition>,
    agents: impl IntoIterator<Item = &'a AgentResult>,
) -> Vec<Source> {
    let mut agents: Vec<&AgentResult> = agents.into_iter().collect();
    agents.sort_by_key(|a| agent_index(a));
    let found = decomposition
        .map(|d| (DECOMPOSER, &d.sources))
        .into_iter()
        .chain(agents.iter().map(|a| (a.agent_id.as_str(), &a.sources)));
    let mut out: Vec<Source> = Vec::new();
    for (agent, sources) in found {
        for s in sources {
            if out.iter().any(|o| o.url == s.url) {
                continue;
            }
            out.push(Source {
                n: out.len() as u32 + 1,
                url: s.url.clone(),
                title: s.title.clone(),
                agent: agent.to_string(),
                tool: s.tool.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AgentStatus;

    fn agent(i: usize, urls: &[&str]) -> AgentResult {
        AgentResult {
            agent_id: format!("news_agent_{i:02}"),
            agent_type: "news".into(),
            subtask: String::new(),
            content: String::new(),
            status: AgentStatus::Completed,
            model: String::new(),
            tokens: TokenUsage::default(),
            cost: 0.0,
            execution_time: 0.0,
            retries: 0,
            queued_time: 0.0,
            error: None,
            step_key: Some(format!("wf_1/agent/{i}")),
            tools_used: Vec::new(),
            tool_usage: Vec::new(),
            sources: urls
                .iter()
                .map(|u| AgentSource {
                    url: u.to_string(),
                    title: format!("T {u}"),
                    tool: "web.fetch".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_decomposers_sources_come_first() {
        let d = Decomposition {
            sources: vec![AgentSource {
                url: "http://b".into(),
                title: "B".into(),
                tool: "kb.search".into(),
            }],
            ..Decomposition::default()
        };
        let a1 = agent(1, &["http://a", "http://b"]);
        let s = number_sources(Some(&d), [&a1]);
        let got: Vec<(u32, &str, &str)> = s
            .iter()
            .map(|s| (s.n, s.url.as_str(), s.agent.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "http://b", DECOMPOSER),
                (2, "http://a", "news_agent_01")
            ]
        );
    }

    #[test]
    fn keys_have_the_documented_shape() {
        assert_eq!(turn_key("wf_1/agent/3", 1), "wf_1/agent/3/turn/1");
        assert_eq!(tool_key("wf_1/agent/3", 1, 0), "wf_1/agent/3/tool/1/0");
    }

    #[test]
    fn sources_are_numbered_in_agent_order_once_each() {
        let (a1, a2, a10) = (
            agent(1, &["http://a", "http://b"]),
            agent(2, &["http://b", "http://c"]),
            agent(10, &["http://d"]),
        );
        let s = number_sources(None, [&a10, &a2, &a1]);
        let got: Vec<(u32, &str, &str)> = s
            .iter()
            .map(|s| (s.n, s.url.as_str(), s.agent.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "http://a", "news_agent_01"),
                (2, "http://b", "news_agent_01"),
                (3, "http://c", "news_agent_02"),
                (4, "http://d", "news_agent_10"),
            ]
        );
    }
}

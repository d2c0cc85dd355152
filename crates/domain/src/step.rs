//! Durable steps: every LLM call of a workflow has a stable key
//! (`wf_…/decompose`, `wf_…/agent/3`, `wf_…/synthesis/1`, `wf_…/final`; the
//! report documents are `wf_…/documents`, committed with their bytes) and its
//! answer is committed under that key before anything that depends on it starts.
//! A resumed run reuses every committed answer and calls only the missing steps;
//! totals are recomputed from the answers, one per key, so nothing counts twice.
//! An agent with tools also commits each model turn and each tool call
//! (`wf_…/agent/3/turn/1`, `wf_…/agent/3/tool/1/0`, see `domain::tools`): those
//! are not part of the result, only of what a resumed run reuses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use super::{
    AgentResult, AgentStatus, DocumentsAnswer, EventData, EventType, SynthesisResult, TokenUsage,
    ToolCallAnswer, TurnAnswer, WorkflowResult,
};

pub fn decompose_key(workflow_id: &str) -> String {
    format!("{workflow_id}/decompose")
}

/// `index` counts from 1, like the agent ids.
pub fn agent_key(workflow_id: &str, index: usize) -> String {
    format!("{workflow_id}/agent/{index}")
}

/// Group syntheses count from 1.
pub fn synthesis_key(workflow_id: &str, group: u32) -> String {
    format!("{workflow_id}/synthesis/{group}")
}

pub fn final_key(workflow_id: &str) -> String {
    format!("{workflow_id}/final")
}

/// The decomposition call's answer. A decomposer with tools (`[tools.agents]
/// decomposer = …`) runs a tool loop like an agent's, under its own key
/// (`wf_…/decompose/turn/1`, `wf_…/decompose/tool/1/0`); its tokens and cost
/// are the sums over its turns and calls, and it records what an agent's result
/// records about tools (absent in records from before decomposers had tools).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decomposition {
    pub step_key: String,
    pub subtasks: Vec<String>,
    pub model: String,
    pub tokens: TokenUsage,
    pub cost: f64,
    pub execution_time: f64,
    #[serde(default)]
    pub retries: u32,
    /// Tools the decomposer called (`server.tool`), each once, in first-use order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_used: Vec<String>,
    /// Sources its tool results named, in the order found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<super::AgentSource>,
    /// Tool calls per server and their `cost_per_call` total (part of `cost`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_usage: Vec<super::ToolUsage>,
}

/// One step's answer, as committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepAnswer {
    Decomposition(Decomposition),
    Agent(AgentResult),
    Synthesis(SynthesisResult),
    /// One model turn of an agent's tool loop.
    Turn(TurnAnswer),
    /// One tool call of an agent's tool loop.
    ToolCall(ToolCallAnswer),
    /// The report documents generated after the final synthesis (their bytes
    /// are committed beside it, in the `documents` table).
    Documents(DocumentsAnswer),
}

impl StepAnswer {
    pub fn step_key(&self) -> Option<&str> {
        match self {
            StepAnswer::Decomposition(d) => Some(&d.step_key),
            StepAnswer::Agent(a) => a.step_key.as_deref(),
            StepAnswer::Synthesis(s) => s.step_key.as_deref(),
            StepAnswer::Turn(t) => Some(&t.step_key),
            StepAnswer::ToolCall(t) => Some(&t.step_key),
            StepAnswer::Documents(d) => Some(&d.step_key),
        }
    }

    /// A turn or a tool call of a tool loop: part of an agent's step, not of the
    /// result.
    pub fn is_partial(&self) -> bool {
        matches!(self, StepAnswer::Turn(_) | StepAnswer::ToolCall(_))
    }

    /// Whether this answer's event carries all of it (decomposition, agent,
    /// synthesis): the event, committed in the same transaction, is then its one
    /// stored copy, and a restore reads the answer back from the event log
    /// (`machine::restore`). Turns, tool calls and documents (whose event leaves
    /// the text out) are stored as step rows.
    pub fn logged_in_full(&self) -> bool {
        matches!(
            self,
            StepAnswer::Decomposition(_) | StepAnswer::Agent(_) | StepAnswer::Synthesis(_)
        )
    }

    /// The event that reports this answer, and its data (none for a turn or a
    /// tool call: their agent's result reports them).
    pub fn event(&self) -> Option<(EventType, EventData)> {
        /// The decomposition with its subtask count (old server's field).
        #[derive(Serialize)]
        struct Decomposed<'a> {
            #[serde(flatten)]
            d: &'a Decomposition,
            count: usize,
        }
        // Serialised from the typed answer straight to text: no `Value` built.
        Some(match self {
            StepAnswer::Decomposition(d) => (
                EventType::TaskDecomposed,
                EventData::serialised(&Decomposed {
                    d,
                    count: d.subtasks.len(),
                }),
            ),
            StepAnswer::Agent(a) => (EventType::AgentCompleted, EventData::serialised(a)),
            StepAnswer::Synthesis(s) => (EventType::SynthesisCompleted, EventData::serialised(s)),
            StepAnswer::Documents(d) => (EventType::DocumentsGenerated, documents_event(d).into()),
            StepAnswer::Turn(_) | StepAnswer::ToolCall(_) => return None,
        })
    }

    pub fn cost(&self) -> f64 {
        match self {
            StepAnswer::Decomposition(d) => d.cost,
            StepAnswer::Agent(a) => a.cost,
            StepAnswer::Synthesis(s) => s.cost,
            StepAnswer::Turn(t) => t.cost,
            StepAnswer::ToolCall(t) => t.cost,
            StepAnswer::Documents(_) => 0.0,
        }
    }

    pub fn tokens(&self) -> TokenUsage {
        match self {
            StepAnswer::Decomposition(d) => d.tokens,
            StepAnswer::Agent(a) => a.tokens,
            StepAnswer::Synthesis(s) => s.tokens,
            StepAnswer::Turn(t) => t.tokens,
            StepAnswer::ToolCall(_) => TokenUsage::default(),
            StepAnswer::Documents(_) => TokenUsage::default(),
        }
    }
}

/// The `documents_generated` event's data: the names generated (as before
/// documents had bytes), the failures, and the whole answer (`details`, which a
/// restore reads back).
pub fn documents_event(d: &DocumentsAnswer) -> serde_json::Value {
    let ok: Vec<&str> = d
        .documents
        .iter()
        .filter(|x| x.is_ok())
        .map(|x| x.name.as_str())
        .collect();
    let failed: Vec<serde_json::Value> = d
        .documents
        .iter()
        .filter_map(|x| {
            let e = x.error.as_ref()?;
            Some(serde_json::json!({"name": x.name, "format": x.format, "error": e}))
        })
        .collect();
    // The Markdown text stays out of the event (it is in the result): events are
    // logged, streamed and delivered to webhooks, and a restore reads the
    // documents' text from the committed step answer.
    let details: Vec<super::Document> = d
        .documents
        .iter()
        .map(|x| super::Document {
            content: String::new(),
            ..x.clone()
        })
        .collect();
    serde_json::json!({
        "count": ok.len(),
        "documents": ok,
        "failed": failed,
        "step_key": d.step_key,
        "details": details,
    })
}

/// A committed answer: the row of the `steps` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub workflow_id: String,
    pub step_key: String,
    pub answer: StepAnswer,
    pub answered_at: DateTime<Utc>,
}

/// Cost and tokens of a set of answers, summed in one fixed order (decomposition,
/// agents by key, syntheses by key) so that the floating-point total is the same
/// whatever order the answers arrived in, with or without a crash in between.
pub fn totals<'a>(
    answers: impl IntoIterator<Item = (&'a str, f64, TokenUsage)>,
) -> (f64, TokenUsage) {
    let mut all: Vec<(&str, f64, TokenUsage)> = answers.into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all.dedup_by(|a, b| a.0 == b.0);
    let mut cost = 0.0;
    let mut tokens = TokenUsage::default();
    for (_, c, t) in all {
        cost += c;
        tokens.add(t);
    }
    (cost, tokens)
}

/// The identity of an agent result: its step key, or (results stored before step
/// keys existed) its agent id.
fn agent_id_key(a: &AgentResult) -> &str {
    a.step_key.as_deref().unwrap_or(&a.agent_id)
}

/// The identity of a synthesis: its step key, or its level and group.
fn synthesis_id_key(s: &SynthesisResult) -> String {
    match &s.step_key {
        Some(k) => k.clone(),
        None => format!("{}/{}", s.level, s.group.unwrap_or(0)),
    }
}

/// Puts one answer into a result: a step is in a result at most once, however
/// often it was reported. The first answer stays, as in the store's `steps`
/// table; only a failed agent (which has no answer) is replaced by a later try.
pub fn merge(result: &mut WorkflowResult, answer: StepAnswer) {
    match answer {
        StepAnswer::Decomposition(d) => {
            if result.decomposition.is_none() {
                result.subtasks = d.subtasks.clone();
                result.decomposition = Some(d);
            }
        }
        StepAnswer::Agent(a) => {
            let list = &mut result.agent_results;
            match list
                .iter_mut()
                .find(|x| agent_id_key(x) == agent_id_key(&a))
            {
                Some(x) if x.status == AgentStatus::Failed => *x = a,
                Some(_) => {}
                None => list.push(a),
            }
        }
        StepAnswer::Synthesis(s) => {
            let list = &mut result.synthesis_results;
            let k = synthesis_id_key(&s);
            if !list.iter().any(|x| synthesis_id_key(x) == k) {
                list.push(s);
            }
        }
        // Counted through the agent result that sums them.
        StepAnswer::Turn(_) | StepAnswer::ToolCall(_) => {}
        StepAnswer::Documents(d) => result.documents = d.documents,
    }
}

/// Cost and tokens of everything in a result, each step once (see `totals`).
pub fn result_totals(r: &WorkflowResult) -> (f64, TokenUsage) {
    let synth_keys: Vec<String> = r.synthesis_results.iter().map(synthesis_id_key).collect();
    let decomposition = r
        .decomposition
        .iter()
        .map(|d| (d.step_key.as_str(), d.cost, d.tokens));
    let agents = r
        .agent_results
        .iter()
        .map(|a| (agent_id_key(a), a.cost, a.tokens));
    let syntheses = r
        .synthesis_results
        .iter()
        .zip(&synth_keys)
        .map(|(s, k)| (k.as_str(), s.cost, s.tokens));
    totals(decomposition.chain(agents).chain(syntheses))
}

/// The answers a resumed run may reuse, by step key: the decomposition, agents
/// that completed and syntheses. Results from before step keys existed get the
/// key of their position (agent `agent_03` / `text_agent_03` → `…/agent/3`).
pub fn reusable(workflow_id: &str, r: &WorkflowResult) -> HashMap<String, StepAnswer> {
    let mut out = HashMap::new();
    if let Some(d) = &r.decomposition {
        out.insert(d.step_key.clone(), StepAnswer::Decomposition(d.clone()));
    } else if !r.subtasks.is_empty() {
        let key = decompose_key(workflow_id);
        let d = Decomposition {
            step_key: key.clone(),
            subtasks: r.subtasks.clone(),
            model: String::new(),
            tokens: TokenUsage::default(),
            cost: 0.0,
            ..Decomposition::default()
        };
        out.insert(key, StepAnswer::Decomposition(d));
    }
    for a in r
        .agent_results
        .iter()
        .filter(|a| a.status == AgentStatus::Completed)
    {
        let key = a.step_key.clone().or_else(|| {
            let n: usize = a.agent_id.rsplit('_').next()?.parse().ok()?;
            Some(agent_key(workflow_id, n))
        });
        if let Some(k) = key {
            out.insert(k, StepAnswer::Agent(a.clone()));
        }
    }
    for s in &r.synthesis_results {
        let key = s.step_key.clone().unwrap_or_else(|| match s.group {
            Some(g) if s.level == "group" => synthesis_key(workflow_id, g),
            _ => final_key(workflow_id),
        });
        out.insert(key, StepAnswer::Synthesis(s.clone()));
    }
    // Documents with bytes (a sha256) were committed by a documents step; older
    // results' inline reports were not, and are generated again.
    if !r.documents.is_empty()
        && r.documents
            .iter()
            .all(|d| !d.sha256.is_empty() || d.error.is_some())
    {
        let key = super::documents_key(workflow_id);
        let answer = DocumentsAnswer {
            step_key: key.clone(),
            documents: r.documents.clone(),
        };
        out.insert(key, StepAnswer::Documents(answer));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        assert_eq!(decompose_key("wf_1"), "wf_1/decompose");
        assert_eq!(agent_key("wf_1", 3), "wf_1/agent/3");
        assert_eq!(synthesis_key("wf_1", 1), "wf_1/synthesis/1");
        assert_eq!(final_key("wf_1"), "wf_1/final");
    }

    #[test]
    fn totals_count_each_key_once_in_any_order() {
        let t = TokenUsage::new(100, 50);
        let a = [
            ("k/agent/1", 0.1, t),
            ("k/agent/2", 0.2, t),
            ("k/final", 0.7, t),
        ];
        let b = [a[2], a[0], a[1], a[0]];
        assert_eq!(totals(a), totals(b));
        assert_eq!(totals(b).1.total, 450);
    }

    /// An answer's event data is written from the typed answer, not through a
    /// `Value`: the text must be what the `Value` route wrote, byte for byte
    /// (the old server's field order, `count` last), and parse back to it.
    #[test]
    fn answer_event_text_is_what_the_value_route_wrote() {
        let d = Decomposition {
            step_key: decompose_key("wf_1"),
            subtasks: vec!["a \"quoted\"\n".into(), "b".into()],
            model: "m".into(),
            tokens: TokenUsage::new(3, 4),
            cost: 0.1,
            execution_time: 1.5,
            tools_used: vec!["fs.read".into()],
            ..Default::default()
        };
        let a: AgentResult = serde_json::from_value(serde_json::json!({"agent_id": "agent_1",
            "agent_type": "research", "subtask": "s", "content": "é\u{1F600}\t", "status": "completed",
            "model": "m1", "tokens": {"input": 1, "output": 2, "total": 3}, "cost": 0.25,
            "execution_time": 1.0, "error": null}))
        .unwrap();
        let mut old_decomposed = serde_json::to_value(&d).unwrap();
        old_decomposed["count"] = 2.into();
        for (answer, old) in [
            (StepAnswer::Decomposition(d.clone()), old_decomposed),
            (
                StepAnswer::Agent(a.clone()),
                serde_json::to_value(&a).unwrap(),
            ),
        ] {
            let (_, data) = answer.event().unwrap();
            assert_eq!(data.json(), serde_json::to_string(&old).unwrap());
            assert_eq!(*data.value(), old);
        }
    }
}

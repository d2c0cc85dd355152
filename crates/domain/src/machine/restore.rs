//! Resume bookkeeping: what a restored workflow already has, recovered from its
//! event log and its committed step answers (the `steps` table), so a resumed run
//! calls only the steps without an answer, and totals count each step once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::WorkflowState;
use crate::{
    step, AgentResult, Decomposition, DocumentsAnswer, Event, EventType, StepAnswer,
    SynthesisResult,
};

/// Rebuilds the result from the log and the committed answers and recomputes the
/// totals from it; returns the committed answers the log does not show.
pub(super) fn rebuild_result(s: &mut WorkflowState) -> Vec<StepAnswer> {
    let mut logged = HashSet::new();
    for ev in &s.events {
        if let Some(answer) = answer_of(&s.wf.id, ev) {
            logged.extend(answer.step_key().map(str::to_string));
            step::merge(&mut s.result, answer);
        }
    }
    let mut unlogged = Vec::new();
    for st in std::mem::take(&mut s.committed) {
        if st.answer.is_partial() {
            s.partial.insert(st.step_key, st.answer);
            continue;
        }
        if !logged.contains(&st.step_key) {
            unlogged.push(st.answer.clone());
        }
        step::merge(&mut s.result, st.answer);
    }
    s.settle();
    unlogged
}

/// The step answer an event carries, if any (events written before step keys
/// existed included: their decomposition has no `step_key`).
fn answer_of(workflow_id: &str, ev: &Event) -> Option<StepAnswer> {
    match ev.kind {
        EventType::TaskDecomposed => {
            if let Ok(d) = ev.data.parse::<Decomposition>() {
                return Some(StepAnswer::Decomposition(d));
            }
            let field = |k: &str| ev.data.get(k).cloned().unwrap_or(Value::Null);
            Some(StepAnswer::Decomposition(Decomposition {
                step_key: step::decompose_key(workflow_id),
                subtasks: serde_json::from_value(field("subtasks")).ok()?,
                model: String::new(),
                tokens: serde_json::from_value(field("tokens")).unwrap_or_default(),
                cost: field("cost").as_f64().unwrap_or(0.0),
                execution_time: 0.0,
                retries: 0,
                ..Default::default()
            }))
        }
        EventType::AgentCompleted => ev.data.parse::<AgentResult>().ok().map(StepAnswer::Agent),
        EventType::SynthesisCompleted => ev
            .data
            .parse::<SynthesisResult>()
            .ok()
            .map(StepAnswer::Synthesis),
        // Events from before the documents step carry names only: not an answer.
        EventType::DocumentsGenerated => Some(StepAnswer::Documents(DocumentsAnswer {
            step_key: ev.data.get("step_key")?.as_str()?.to_string(),
            documents: serde_json::from_value(ev.data.get("details")?.clone()).ok()?,
        })),
        _ => None,
    }
}

impl WorkflowState {
    /// What a new run of this workflow can skip: every committed answer, by step
    /// key (agents only when they completed).
    pub fn resume_point(&self) -> HashMap<String, StepAnswer> {
        let mut out = step::reusable(&self.wf.id, &self.result);
        out.extend(self.partial.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }
}

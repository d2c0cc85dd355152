//! Resume bookkeeping: what a restored workflow already has, recovered from its
//! event log (subtasks, finished agents), so a resumed run only calls what is
//! missing.

use std::collections::HashMap;

use super::apply::replace_agent;
use super::WorkflowState;
use crate::domain::{AgentResult, AgentStatus, EventType};

pub(super) fn rebuild_result(s: &mut WorkflowState) {
    let result = &mut s.result;
    for ev in &s.events {
        match ev.kind {
            EventType::TaskDecomposed => {
                if let Some(sub) = ev
                    .data
                    .get("subtasks")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                {
                    result.subtasks = sub;
                }
            }
            EventType::AgentCompleted => {
                if let Ok(r) = serde_json::from_value::<AgentResult>(ev.data.clone()) {
                    replace_agent(&mut result.agent_results, r);
                }
            }
            _ => {}
        }
    }
}

impl WorkflowState {
    /// What a new run of this workflow can skip: its subtasks, and the agents
    /// that already completed.
    pub fn resume_point(&self) -> (Option<Vec<String>>, HashMap<String, AgentResult>) {
        let r = &self.result;
        let subtasks = (!r.subtasks.is_empty()).then(|| r.subtasks.clone());
        let done = r
            .agent_results
            .iter()
            .filter(|a| a.status == AgentStatus::Completed)
            .map(|a| (a.agent_id.clone(), a.clone()))
            .collect();
        (subtasks, done)
    }
}

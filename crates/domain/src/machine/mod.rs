//! The pure workflow core: `apply(state, input, now)` decides what an input means
//! for one workflow and returns the effects to carry out. No actors, no I/O, no
//! clock: time comes in as `now`, so every event is stamped exactly once, here.
//!
//! The registry actor owns the maps and carries out the effects (persist, publish,
//! schedule webhook deliveries, start or abort runs); everything a transition
//! decides — statuses, events and their data, budgets, quorum, resume bookkeeping —
//! is in this module and unit-tested without a runtime (`tests.rs`).

mod apply;
mod budget;
#[cfg(test)]
mod durable_tests;
mod effect;
mod input;
mod quorum;
mod restore;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use apply::apply;
pub use budget::Budget;
pub use effect::{Effect, Rejection};
pub use input::{Input, Lost, Step};
pub use quorum::check as check_quorum;

use super::{Event, StepRecord, Workflow, WorkflowResult};

/// Service-wide defaults the core needs to decide (from `limits` / `execution`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Budget when the workflow sets none; 0 = unlimited.
    pub default_budget_usd: f64,
    /// Token budget when the workflow sets none; 0 = unlimited.
    pub default_max_tokens_total: u64,
    /// A workflow whose resumed runs died this many times fails with
    /// `resume_limit_reached` instead of being resumed again; 0 = unlimited.
    pub max_resumes: u32,
}

/// One workflow as the core sees it: the record, the (partial) result and the
/// event log so far. The registry keeps one per active workflow.
#[derive(Debug, Clone)]
pub struct WorkflowState {
    pub wf: Workflow,
    pub result: WorkflowResult,
    pub events: Vec<Arc<Event>>,
    /// Spending limits resolved once (workflow config, else service default).
    pub budget: Budget,
    max_resumes: u32,
    /// Step answers the store committed, for `Input::Restore` (then empty).
    committed: Vec<StepRecord>,
    /// Committed turns and tool calls of tool loops (restored), by step key: a
    /// resumed run reuses them.
    partial: std::collections::HashMap<String, super::StepAnswer>,
}

impl WorkflowState {
    /// Totals and progress from the result's answers.
    pub(super) fn settle(&mut self) {
        (self.wf.total_cost_usd, self.wf.tokens) = super::step::result_totals(&self.result);
        self.result.sources = super::number_sources(
            self.result.decomposition.as_ref(),
            &self.result.agent_results,
        );
        self.wf.progress.completed_agents = self.result.agent_results.len() as u32;
        self.wf.progress.recompute();
    }

    /// A new workflow (status pending); feed it `Input::Create`.
    pub fn new(wf: Workflow, policy: &Policy) -> WorkflowState {
        WorkflowState::restored(wf, Vec::new(), policy)
    }

    /// A stored unfinished workflow with its event log; feed it `Input::Restore`.
    pub fn restored(wf: Workflow, events: Vec<Arc<Event>>, policy: &Policy) -> WorkflowState {
        WorkflowState {
            result: WorkflowResult::empty(&wf.id, wf.pattern, wf.simulated),
            budget: Budget::resolve(&wf, policy),
            max_resumes: policy.max_resumes,
            committed: Vec::new(),
            partial: Default::default(),
            wf,
            events,
        }
    }

    /// The step answers the store committed for this restored workflow.
    pub fn with_committed(mut self, steps: Vec<StepRecord>) -> WorkflowState {
        self.committed = steps;
        self
    }

    /// The seq the next event gets: one more than the last, from 1.
    pub fn next_seq(&self) -> u64 {
        self.events.last().map_or(1, |e| e.seq + 1)
    }
}

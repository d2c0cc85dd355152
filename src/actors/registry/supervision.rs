//! Run supervision: no workflow stays pending or running without a live run.
//! A run whose future ended (a panic the run did not report, a lost executor
//! thread) is `Input::RunLost`; a run past `limits.max_workflow_duration` is
//! `Input::DeadlinePassed`. The core decides what they mean (it fails a pending or
//! running workflow, which also aborts its calls).

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::domain::machine::{Input, Lost};
use crate::exec::RunEnded;

impl Handler<RunEnded> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, RunEnded { id, run_no }: RunEnded, ctx: &mut Context<Self>) {
        // At shutdown runs are stopped on purpose; their workflows resume later.
        if self.shutting_down {
            return;
        }
        // Only the workflow's current run: an older one's end means nothing.
        let current = self.active.get(&id).is_some_and(|a| a.run_no == run_no);
        if current {
            if let Some(Ok(_)) = self.feed(&id, Input::RunLost(Lost::Ended), ctx) {
                tracing::error!(workflow_id = %id, "workflow run ended without finishing; failing it");
            }
        }
    }
}

impl WorkflowRegistry {
    /// Checks run ages every `max/10` (between 100 ms and 1 s); the core refuses
    /// the deadline of a workflow whose run was interrupted.
    pub(super) fn watch_deadlines(&mut self, ctx: &mut Context<Self>) {
        let max = self.cfg.max_workflow_duration;
        let tick = (max / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        ctx.run_interval(tick, move |act, ctx| {
            let now = Instant::now();
            let late: Vec<String> = act
                .active
                .iter()
                .filter(|(_, a)| {
                    a.run_started
                        .is_some_and(|t| now.saturating_duration_since(t) >= max)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in late {
                let limit = humantime::format_duration(max).to_string();
                if let Some(Ok(_)) = act.feed(&id, Input::DeadlinePassed { limit }, ctx) {
                    tracing::warn!(workflow_id = %id, "workflow deadline exceeded; aborting its calls");
                }
            }
        });
    }
}

//! Run supervision: no workflow stays pending or running without a live run.
//! A run whose future ended while its workflow was still pending or running (a
//! panic the run did not report, a lost executor thread) fails it with
//! `internal_error`; a run past `limits.max_workflow_duration` fails it with
//! `deadline_exceeded`, which also aborts its calls.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::domain::machine::Input;
use crate::domain::{Status, WorkflowError};
use crate::exec::RunEnded;

impl Handler<RunEnded> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, RunEnded { id, run_no }: RunEnded, ctx: &mut Context<Self>) {
        // At shutdown runs are stopped on purpose; their workflows resume later.
        if self.shutting_down {
            return;
        }
        let orphaned = self.active.get(&id).is_some_and(|a| {
            a.run_no == run_no && matches!(a.st.wf.status, Status::Pending | Status::Running)
        });
        if orphaned {
            tracing::error!(workflow_id = %id, "workflow run ended without finishing; failing it");
            let error = WorkflowError {
                code: "internal_error".into(),
                message: "the workflow's run ended without finishing (its executor thread stopped or it panicked)".into(),
            };
            self.feed(&id, Input::Fail(error), ctx);
        }
    }
}

impl WorkflowRegistry {
    /// Checks run ages every `max/10` (between 100 ms and 1 s).
    pub(super) fn watch_deadlines(&mut self, ctx: &mut Context<Self>) {
        let max = self.cfg.max_workflow_duration;
        let tick = (max / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        ctx.run_interval(tick, move |act, ctx| {
            let now = Instant::now();
            let late: Vec<String> = act
                .active
                .iter()
                .filter(|(_, a)| a.st.wf.status != Status::Interrupted)
                .filter(|(_, a)| {
                    a.run_started
                        .is_some_and(|t| now.saturating_duration_since(t) >= max)
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in late {
                let error = WorkflowError {
                    code: "deadline_exceeded".into(),
                    message: format!(
                        "the run took longer than limits.max_workflow_duration ({})",
                        humantime::format_duration(max)
                    ),
                };
                tracing::warn!(workflow_id = %id, "workflow deadline exceeded; aborting its calls");
                act.feed(&id, Input::Fail(error), ctx);
            }
        });
    }
}

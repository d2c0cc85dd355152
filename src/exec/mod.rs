//! Execution: one future per running workflow drives its pattern and reports every
//! step to the registry as a message. The registry decides what a step means for
//! state; the executor never touches state itself.

pub mod decompose;
pub mod executor;
pub mod patterns;
pub mod provider;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use tracing::Instrument;

pub use crate::domain::machine::Step;
use crate::domain::{AgentResult, PatternConfig, WorkflowError};
pub use executor::Executor;
use provider::Provider;

/// The registry's answer to a step: `Err(Halted)` means stop now (the workflow was
/// cancelled, or the process is shutting down).
#[derive(Debug, Clone, Copy)]
pub struct Halted;

#[derive(Message)]
#[rtype(result = "Result<(), Halted>")]
pub struct Report {
    pub id: String,
    pub step: Step,
}

/// What a resumed workflow already has: its subtasks and the agents that finished.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub subtasks: Option<Vec<String>>,
    pub done_agents: HashMap<String, AgentResult>,
}

/// Everything one workflow run needs.
pub struct Run {
    pub id: String,
    pub task: String,
    pub title: String,
    pub config: PatternConfig,
    pub provider: Arc<dyn Provider>,
    pub resume: Resume,
    pub registry: Recipient<Report>,
    /// The creating HTTP request's id: every log line of the run carries it.
    pub request_id: Option<String>,
}

/// Why a pattern stopped before finishing normally.
pub enum Stop {
    Halted,
    Failed(WorkflowError),
}

impl From<Halted> for Stop {
    fn from(_: Halted) -> Stop {
        Stop::Halted
    }
}

impl Run {
    /// Reports a step without waiting for the answer: for steps that only record
    /// progress. Each awaited step is a round trip through the registry on the
    /// workflow's critical path; a halt is still seen at the next awaited step
    /// (and a cancelled run is aborted by the registry anyway). Same mailbox, so
    /// the order of steps is kept.
    pub fn notify(&self, step: Step) {
        self.registry.do_send(Report {
            id: self.id.clone(),
            step,
        });
    }

    pub async fn step(&self, step: Step) -> Result<(), Halted> {
        match self
            .registry
            .send(Report {
                id: self.id.clone(),
                step,
            })
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Halted),
        }
    }
}

pub fn fail(code: &str, message: impl Into<String>) -> Stop {
    Stop::Failed(WorkflowError {
        code: code.to_string(),
        message: message.into(),
    })
}

/// Drives one workflow from start to its terminal step, inside a span that names
/// the workflow and the request that created it.
pub async fn drive(run: Run) {
    let span = tracing::info_span!(
        "workflow",
        workflow_id = %run.id,
        request_id = %run.request_id.as_deref().unwrap_or("-"),
    );
    drive_run(run).instrument(span).await;
}

async fn drive_run(run: Run) {
    if run.step(Step::Begin).await.is_err() {
        return;
    }
    tracing::info!(
        task_chars = run.task.chars().count(),
        "workflow run started"
    );
    let outcome = match &run.config {
        PatternConfig::Research(c) => patterns::research::run(&run, c).await,
        PatternConfig::Search(c) => patterns::search::run(&run, c).await,
    };
    let finished = match outcome {
        Ok(()) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::Halted) => {
            tracing::info!("workflow run halted");
            return;
        }
    };
    match &finished {
        Ok(()) => tracing::info!("workflow run finished"),
        Err(e) => tracing::warn!(code = %e.code, error = %e.message, "workflow run failed"),
    }
    let _ = run.step(Step::Finished(finished)).await;
}

//! Execution: one future per running workflow drives its pattern and reports every
//! step to the registry as a message. The registry decides what a step means for
//! state; the executor never touches state itself.

pub mod decompose;
pub mod executor;
pub mod patterns;
pub mod provider;

use std::collections::HashMap;
use std::sync::Arc;

use std::panic::AssertUnwindSafe;

use actix::prelude::*;
use futures::FutureExt;
use tokio::sync::watch;
use tracing::Instrument;

use crate::clock::now;
pub use crate::domain::machine::Step;
use crate::domain::{
    AgentResult, AgentStatus, Decomposition, DocumentsAnswer, FailureCode, PatternConfig,
    StepAnswer, StepRecord, StoredDocument, SynthesisResult, WorkflowError,
};
use crate::metric_names::STEP_COMMIT;
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

/// Commits a step's answer ahead of the store writer's queue (answers that are
/// no step of the core: a tool loop's turns and tool calls); the reply comes once
/// it is committed. Handled by the primary store's writer
/// (`actors::persist::StoreWriter`). The epoch is the lease epoch the run was
/// started under (several instances): the fence drops the answer of a run whose
/// lease moved on.
#[derive(Message)]
#[rtype(result = "Result<(), StepNotCommitted>")]
pub struct CommitStep(pub Arc<StepRecord>, pub Option<i64>);

/// Why a step answer was not committed (the writer gave it up).
#[derive(Debug)]
pub struct StepNotCommitted(pub String);

/// A step that carries an LLM answer: the registry emits the answer as a step
/// record ahead of the step's own changes, so the answer, its event and the
/// record it changes go to the store in one commit. The reply is the seq of the
/// last change emitted; the run goes on once the primary store committed it.
#[derive(Message)]
#[rtype(result = "Result<u64, Halted>")]
pub struct Answered {
    pub id: String,
    pub step: Step,
    pub record: Arc<StepRecord>,
    /// Documents the step made (the documents step), stored with its answer.
    pub documents: Vec<Arc<StoredDocument>>,
    /// The lease epoch the run started under (several instances).
    pub epoch: Option<i64>,
}

/// What a resumed workflow already has: the committed answer of each step, by
/// step key. Those steps are not called again.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub answers: HashMap<String, StepAnswer>,
}

impl Resume {
    pub fn decomposition(&self, key: &str) -> Option<&Decomposition> {
        match self.answers.get(key) {
            Some(StepAnswer::Decomposition(d)) => Some(d),
            _ => None,
        }
    }

    pub fn agent(&self, key: &str) -> Option<&AgentResult> {
        match self.answers.get(key) {
            Some(StepAnswer::Agent(a)) if a.status == AgentStatus::Completed => Some(a),
            _ => None,
        }
    }

    pub fn synthesis(&self, key: &str) -> Option<&SynthesisResult> {
        match self.answers.get(key) {
            Some(StepAnswer::Synthesis(s)) => Some(s),
            _ => None,
        }
    }

    pub fn documents(&self, key: &str) -> Option<&DocumentsAnswer> {
        match self.answers.get(key) {
            Some(StepAnswer::Documents(d)) => Some(d),
            _ => None,
        }
    }
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
    /// The registry again, for steps that carry an answer.
    pub answers: Recipient<Answered>,
    /// The primary store's committed watermark (change seq).
    pub committed: watch::Receiver<u64>,
    /// Told when the run's future is gone, however it ended (see `RunEnded`).
    pub supervisor: Recipient<RunEnded>,
    /// Which run of the workflow this is (the registry numbers them).
    pub run_no: u64,
    /// The primary store's writer: step answers are committed through it.
    pub steps: Recipient<CommitStep>,
    /// The creating HTTP request's id: every log line of the run carries it.
    pub request_id: Option<String>,
    /// The lease epoch the workflow was held under when this run started
    /// (several instances): its step answers carry it to the store's fence.
    pub epoch: Option<i64>,
    /// MCP tool servers the agents may call.
    pub tools: Arc<crate::tools::ToolHub>,
    /// `documents.max_bytes`: a larger generated document fails.
    pub documents_max_bytes: u64,
}

/// A run's future ended: normally, by a panic, by an abort, or because its
/// executor thread stopped and dropped it. Sent from the future's drop, so it
/// arrives in every case; the registry fails a workflow still pending or running
/// under this run, so none is left without a live run behind it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunEnded {
    pub id: String,
    pub run_no: u64,
}

/// Sends `RunEnded` when dropped.
struct RunGuard {
    to: Recipient<RunEnded>,
    id: String,
    run_no: u64,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.to.do_send(RunEnded {
            id: std::mem::take(&mut self.id),
            run_no: self.run_no,
        });
    }
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

    /// Commits a step's answer to the primary store and waits until it is: only
    /// then may the step be reported and anything that depends on it start.
    /// `answered` is when the provider's answer arrived.
    pub async fn commit(
        &self,
        step_key: &str,
        answer: StepAnswer,
        answered: std::time::Instant,
    ) -> Result<(), Halted> {
        let record = StepRecord {
            workflow_id: self.id.clone(),
            step_key: step_key.to_string(),
            answer,
            answered_at: now(),
        };
        match self
            .steps
            .send(CommitStep(Arc::new(record), self.epoch))
            .await
        {
            Ok(Ok(())) => {
                metrics::histogram!(STEP_COMMIT).record(answered.elapsed().as_secs_f64());
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(step_key, error = %e.0, "step answer not committed; run stops");
                Err(Halted)
            }
            Err(_) => Err(Halted),
        }
    }

    /// Reports a step that carries the answer of step `step_key` (and the
    /// documents it made) and, with `wait`, waits until the primary store
    /// committed them (one commit): only then may anything that depends on the
    /// answer start. Without `wait` the run goes on at once; what it reports next
    /// is committed after it, in order. `answered` is when the answer arrived.
    pub async fn answered(
        &self,
        step: Step,
        step_key: &str,
        answer: StepAnswer,
        documents: Vec<Arc<StoredDocument>>,
        answered: std::time::Instant,
        wait: bool,
    ) -> Result<(), Halted> {
        let record = Arc::new(StepRecord {
            workflow_id: self.id.clone(),
            step_key: step_key.to_string(),
            answer,
            answered_at: now(),
        });
        let msg = Answered {
            id: self.id.clone(),
            step,
            record,
            documents,
            epoch: self.epoch,
        };
        let seq = match self.answers.send(msg).await {
            Ok(r) => r?,
            Err(_) => return Err(Halted),
        };
        if !wait {
            return Ok(());
        }
        let mut committed = self.committed.clone();
        if committed.wait_for(|c| *c >= seq).await.is_err() {
            tracing::error!(
                step_key,
                "the store writer is gone; step answer not committed; run stops"
            );
            return Err(Halted);
        }
        metrics::histogram!(STEP_COMMIT).record(answered.elapsed().as_secs_f64());
        Ok(())
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

pub fn fail(code: FailureCode, message: impl Into<String>) -> Stop {
    Stop::Failed(WorkflowError::new(code, message))
}

/// The run as a future that reports `RunEnded` when dropped, even if it is
/// dropped before its first poll (an executor thread that stops with it queued).
pub fn supervised(run: Run) -> impl std::future::Future<Output = ()> {
    let guard = RunGuard {
        to: run.supervisor.clone(),
        id: run.id.clone(),
        run_no: run.run_no,
    };
    async move {
        let _guard = guard;
        drive(run).await
    }
}

/// Drives one workflow from start to its terminal step, inside a span that names
/// the workflow and the request that created it. A panic anywhere in the run
/// fails the workflow with `internal_error` instead of silently ending the task.
async fn drive(run: Run) {
    let span = tracing::info_span!(
        "workflow",
        workflow_id = %run.id,
        request_id = %run.request_id.as_deref().unwrap_or("-"),
    );
    let (registry, id) = (run.registry.clone(), run.id.clone());
    let outcome = AssertUnwindSafe(drive_run(run))
        .catch_unwind()
        .instrument(span)
        .await;
    if let Err(panic) = outcome {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        tracing::error!(workflow_id = %id, panic = %what, "workflow run panicked");
        let error = WorkflowError::new(
            FailureCode::InternalError,
            format!("the workflow's run panicked: {what}"),
        );
        registry.do_send(Report {
            id,
            step: Step::Finished(Err(error)),
        });
    }
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

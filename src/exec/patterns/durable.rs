//! One durable step, the same way for every call a pattern makes (decompose,
//! agent, synthesis, documents): a resumed run reuses the step's committed
//! answer without calling; otherwise the step is announced, the call made, and
//! its answer committed together with the step's report before anything that
//! depends on it may start.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{StepAnswer, StoredDocument};
use crate::exec::{Halted, Run, Step};
use crate::metric_names::STEPS_REUSED;

/// A step whose committed answer a resumed run reuses: counted, not called.
pub fn reused(key: &str) {
    tracing::debug!(step_key = key, "step answer reused");
    metrics::counter!(STEPS_REUSED).increment(1);
}

/// What a call produced.
pub struct Outcome<T> {
    pub value: T,
    /// The step it reports (its event).
    pub report: Step,
    /// The answer to commit with the report. `None` for an outcome that is not
    /// durable (a failed agent is tried again on resume): reported only.
    pub answer: Option<StepAnswer>,
    /// Documents the step made: committed in the same transaction.
    pub documents: Vec<Arc<StoredDocument>>,
    /// When the provider's answer arrived.
    pub at: Instant,
    /// Whether the run waits for the commit before going on (see
    /// `Run::answered`). Only a step nothing waits on may say no.
    pub wait_for_commit: bool,
}

impl<T> Outcome<T> {
    pub fn new(value: T, report: Step, answer: Option<StepAnswer>, at: Instant) -> Outcome<T> {
        Outcome {
            value,
            report,
            answer,
            documents: Vec::new(),
            at,
            wait_for_commit: true,
        }
    }
}

/// Runs step `key`: `committed` is its answer from before a crash, if any;
/// `started` is reported (without waiting) before the call.
pub async fn durable_call<T, E, F>(
    run: &Run,
    key: &str,
    committed: Option<&T>,
    started: Option<Step>,
    call: F,
) -> Result<T, E>
where
    T: Clone,
    E: From<Halted>,
    F: Future<Output = Result<Outcome<T>, E>>,
{
    if let Some(done) = committed {
        reused(key);
        return Ok(done.clone());
    }
    if let Some(step) = started {
        run.notify(step);
    }
    let out = call.await?;
    match out.answer {
        Some(answer) => {
            let wait = out.wait_for_commit;
            run.answered(out.report, key, answer, out.documents, out.at, wait)
                .await?
        }
        None => run.step(out.report).await?,
    }
    Ok(out.value)
}

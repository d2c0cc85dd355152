//! The documents step (`wf_…/documents`), after the final synthesis: the report
//! model rendered in each requested format off the executor thread, the
//! documents' bytes committed with the step's answer in one transaction, then
//! reported. A resumed run whose documents step committed reuses it; one that
//! crashed before the commit generates them again. A format that fails fails
//! only its document.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::durable::{durable_call, Outcome};
use crate::clock::now;
use crate::config::TEST_FAULTS_ENV;
use crate::documents::{self, Report, ReportInput};
use crate::domain::{
    documents_key, AgentResult, Decomposition, DocFormat, DocumentsAnswer, FailureCode, StepAnswer,
    SynthesisResult,
};
use crate::exec::{fail, Run, Step, Stop};
use crate::metric_names::{DOCUMENTS_GENERATED, DOCUMENT_BYTES, DOCUMENT_DURATION};

/// For crash tests only (with `MCPO_TEST_FAULTS=1`): milliseconds to wait
/// before generating, so a test can kill the process mid-step.
pub const TEST_DELAY_ENV: &str = "MCPO_TEST_DOCUMENTS_DELAY_MS";

pub struct Material<'a> {
    pub decomposition: Option<&'a Decomposition>,
    pub agents: &'a [AgentResult],
    pub syntheses: &'a [SynthesisResult],
    pub final_synthesis: Option<String>,
}

/// The formats the workflow asked for (its record has them since admission;
/// records from before `document_formats` get the Markdown report).
fn formats(run: &Run) -> Vec<DocFormat> {
    match run.config.document_formats() {
        Some(list) => list.iter().filter_map(|f| DocFormat::parse(f)).collect(),
        None => vec![DocFormat::Markdown],
    }
}

pub async fn generate(run: &Run, m: Material<'_>) -> Result<(), Stop> {
    let key = documents_key(&run.id);
    let committed = run.resume.documents(&key);
    let final_synthesis = m.final_synthesis.clone();
    let call = async {
        test_delay().await;
        let report = Report::build(&ReportInput {
            title: &run.title,
            task: &run.task,
            simulated: run.provider.simulated(),
            generated_at: now(),
            decomposition: m.decomposition,
            agents: m.agents,
            syntheses: m.syntheses,
            final_synthesis: m.final_synthesis.as_deref(),
        });
        let (id, max, list) = (run.id.clone(), run.documents_max_bytes, formats(run));
        let generated = if list.iter().all(|f| *f == DocFormat::Markdown) {
            // Text only, tens of microseconds: a trip to the blocking pool and
            // back costs about as much, and two thread wake-ups.
            documents::generate(&id, &report, &list, max)
        } else {
            // CPU work (layout, font subsetting, zip): off the executor thread.
            tokio::task::spawn_blocking(move || documents::generate(&id, &report, &list, max))
                .await
                .map_err(|e| {
                    fail(
                        FailureCode::InternalError,
                        format!("document generation stopped: {e}"),
                    )
                })?
        };
        let mut docs = Vec::with_capacity(generated.len());
        let mut stored = Vec::new();
        for g in generated {
            let format = g.format.as_str();
            let outcome = if g.document.is_ok() { "ok" } else { "error" };
            metrics::counter!(DOCUMENTS_GENERATED, "format" => format, "outcome" => outcome)
                .increment(1);
            metrics::histogram!(DOCUMENT_DURATION, "format" => format).record(g.seconds);
            if let Some(e) = &g.document.error {
                tracing::warn!(format, error = %e, "a report document failed; the others stand");
            } else {
                metrics::histogram!(DOCUMENT_BYTES, "format" => format)
                    .record(g.document.bytes as f64);
            }
            docs.push(g.document);
            stored.extend(g.stored.map(Arc::new));
        }
        let answer = DocumentsAnswer {
            step_key: key.clone(),
            documents: docs,
        };
        let report = Step::Documents {
            answer: answer.clone(),
            final_synthesis: m.final_synthesis.clone(),
        };
        let step = StepAnswer::Documents(answer.clone());
        let mut out = Outcome::new(answer, report, Some(step), Instant::now());
        out.documents = stored;
        // Nothing waits on this commit: the workflow's finish, reported next, is
        // committed after it (in order), and no client sees either before then.
        // A crash before the commit makes the documents again, which costs no
        // model call. One commit fewer on every workflow's path.
        out.wait_for_commit = false;
        Ok(out)
    };
    let answer = durable_call::<_, Stop, _>(run, &key, committed, None, call).await?;
    if committed.is_some() {
        // The core counts `documents_generated` once per step key; a resumed run
        // reports the reused answer so the result carries it.
        run.notify(Step::Documents {
            answer,
            final_synthesis,
        });
    }
    Ok(())
}

async fn test_delay() {
    if std::env::var(TEST_FAULTS_ENV).as_deref() != Ok("1") {
        return;
    }
    if let Some(ms) = std::env::var(TEST_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
}

//! Building blocks shared by the patterns: running agents with bounded
//! concurrency, synthesis calls, and the Markdown report.

pub mod report;
pub mod research;
pub mod search;

use std::time::{Duration, Instant};

use futures::{stream, StreamExt, TryStreamExt};

use super::provider::{CallRole, ChatRequest};
use super::{fail, Halted, Run, Step, Stop};
use crate::actors::metrics::STEPS_REUSED;
use crate::domain::machine::check_quorum;
use crate::domain::{
    call_timeout, step, AgentResult, AgentStatus, ExecOptions, StepAnswer, SynthesisResult,
    TokenUsage,
};

pub struct AgentSpec {
    pub agent_id: String,
    pub agent_type: String,
    pub subtask: String,
}

const AGENT_SYSTEM: &str = "You are a focused research agent. Answer the subtask thoroughly and concisely, citing what your findings rest on.";

/// Model and timeout per role, from the workflow's options.
pub struct Roles {
    pub primary_model: Option<String>,
    pub agent_model: Option<String>,
    pub agent_timeout: Option<Duration>,
    pub synthesis_timeout: Option<Duration>,
    pub final_timeout: Option<Duration>,
}

impl Roles {
    pub fn from(o: &ExecOptions) -> Roles {
        Roles {
            primary_model: o.primary_model.clone(),
            agent_model: o.agent_model.clone(),
            agent_timeout: call_timeout(o.agent_timeout_secs),
            synthesis_timeout: call_timeout(o.synthesis_timeout_secs),
            final_timeout: call_timeout(o.final_timeout_secs),
        }
    }
}

const SYNTHESIS_SYSTEM: &str = "You synthesise findings from several agents into one coherent, well-structured answer. Keep what the sources agree on, flag what they dispute.";

/// Runs the agents, at most `concurrency` at once, results in spec order. Agent
/// `i` (from 1) is step `wf_…/agent/i`; agents whose answer a resumed workflow
/// already committed are not run again.
pub async fn run_agents(
    run: &Run,
    specs: Vec<AgentSpec>,
    concurrency: u32,
) -> Result<Vec<AgentResult>, Halted> {
    // Collected first: a lazy map closure in the stream trips Send inference.
    let roles = Roles::from(&run.config.exec());
    let agents: Vec<_> = specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| run_agent(run, &roles, step::agent_key(&run.id, i + 1), spec))
        .collect();
    stream::iter(agents)
        .buffered(concurrency.max(1) as usize)
        .try_collect()
        .await
}

/// A step whose committed answer a resumed run reuses: counted, not called.
pub fn reused(key: &str) {
    tracing::debug!(step_key = key, "step answer reused");
    metrics::counter!(STEPS_REUSED).increment(1);
}

async fn run_agent(
    run: &Run,
    roles: &Roles,
    key: String,
    spec: AgentSpec,
) -> Result<AgentResult, Halted> {
    if let Some(done) = run.resume.agent(&key) {
        reused(&key);
        return Ok(done.clone());
    }
    run.notify(Step::AgentStarted {
        agent_id: spec.agent_id.clone(),
        agent_type: spec.agent_type.clone(),
        subtask: spec.subtask.clone(),
        step_key: key.clone(),
    });
    let started = Instant::now();
    let answer = run
        .provider
        .chat(ChatRequest {
            role: CallRole::Agent,
            model: roles.agent_model.clone(),
            system: AGENT_SYSTEM.into(),
            prompt: format!(
                "Overall task: {}\nYour role: {} agent.\nSubtask:\n{}",
                run.task, spec.agent_type, spec.subtask
            ),
            expected_items: None,
            timeout: roles.agent_timeout,
            step_key: Some(key.clone()),
        })
        .await;
    let answered = Instant::now();
    let execution_time = started.elapsed().as_secs_f64();
    let result = match answer {
        Ok(a) => AgentResult {
            agent_id: spec.agent_id,
            agent_type: spec.agent_type,
            subtask: spec.subtask,
            content: a.text,
            status: AgentStatus::Completed,
            model: a.model,
            tokens: a.tokens,
            cost: a.cost_usd,
            execution_time,
            retries: a.retries,
            queued_time: a.queued.as_secs_f64(),
            error: None,
            step_key: Some(key.clone()),
        },
        Err(e) => AgentResult {
            agent_id: spec.agent_id,
            agent_type: spec.agent_type,
            subtask: spec.subtask,
            content: String::new(),
            status: AgentStatus::Failed,
            model: String::new(),
            tokens: TokenUsage::default(),
            cost: 0.0,
            execution_time,
            retries: 0,
            queued_time: 0.0,
            error: Some(e.to_string()),
            step_key: Some(key.clone()),
        },
    };
    // Only answers are durable steps; a failed call is tried again on resume.
    if result.error.is_none() {
        run.commit(&key, StepAnswer::Agent(result.clone()), answered)
            .await?;
    }
    run.step(Step::AgentCompleted(result.clone())).await?;
    Ok(result)
}

/// Agents that succeeded; failing the workflow when fewer than the quorum
/// (`min_successful_agents`, default half rounded up) did. The core checks the
/// same rule when the last agent reports; this catches a resumed run whose
/// agents had all finished before it.
pub fn successful<'a>(run: &Run, results: &'a [AgentResult]) -> Result<Vec<&'a AgentResult>, Stop> {
    check_quorum(results, run.config.min_successful()).map_err(Stop::Failed)?;
    Ok(results
        .iter()
        .filter(|r| r.status == AgentStatus::Completed)
        .collect())
}

/// One synthesis call (step `wf_…/synthesis/g` for group g, `wf_…/final`) with
/// its started/completed steps; a committed answer of a resumed run is reused.
pub async fn synthesize(
    run: &Run,
    roles: &Roles,
    level: &str,
    group: Option<u32>,
    sources: Vec<String>,
    material: String,
) -> Result<SynthesisResult, Stop> {
    let key = match group {
        Some(g) if level == "group" => step::synthesis_key(&run.id, g),
        _ => step::final_key(&run.id),
    };
    if let Some(done) = run.resume.synthesis(&key) {
        reused(&key);
        return Ok(done.clone());
    }
    run.notify(Step::SynthesisStarted {
        level: level.into(),
        group,
        step_key: key.clone(),
    });
    let started = Instant::now();
    let answer = run
        .provider
        .chat(ChatRequest {
            role: CallRole::Synthesis,
            model: roles.primary_model.clone(),
            system: SYNTHESIS_SYSTEM.into(),
            prompt: format!("Task: {}\n\nFindings to synthesise:\n{material}", run.task),
            expected_items: None,
            timeout: if level == "final" {
                roles.final_timeout
            } else {
                roles.synthesis_timeout
            },
            step_key: Some(key.clone()),
        })
        .await
        .map_err(|e| fail("synthesis_failed", format!("{level} synthesis failed: {e}")))?;
    let answered = Instant::now();
    let result = SynthesisResult {
        level: level.into(),
        group,
        sources,
        content: answer.text,
        model: answer.model,
        tokens: answer.tokens,
        cost: answer.cost_usd,
        execution_time: started.elapsed().as_secs_f64(),
        retries: answer.retries,
        step_key: Some(key.clone()),
    };
    run.commit(&key, StepAnswer::Synthesis(result.clone()), answered)
        .await?;
    run.step(Step::SynthesisCompleted(result.clone())).await?;
    Ok(result)
}

/// Agent findings as synthesis material.
pub fn material(results: &[&AgentResult]) -> String {
    results
        .iter()
        .map(|r| format!("## {} ({})\n{}\n", r.agent_id, r.subtask, r.content))
        .collect()
}

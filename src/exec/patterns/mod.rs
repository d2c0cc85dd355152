//! Building blocks shared by the patterns: running agents with bounded
//! concurrency, synthesis calls, and the Markdown report.

pub mod report;
pub mod research;
pub mod search;

use std::time::Instant;

use futures::{stream, StreamExt, TryStreamExt};

use super::provider::{CallRole, ChatRequest};
use super::{fail, Halted, Run, Step, Stop};
use crate::domain::{AgentResult, SynthesisResult, TokenUsage};

pub struct AgentSpec {
    pub agent_id: String,
    pub agent_type: String,
    pub subtask: String,
}

const AGENT_SYSTEM: &str = "You are a focused research agent. Answer the subtask thoroughly and concisely, citing what your findings rest on.";
const SYNTHESIS_SYSTEM: &str = "You synthesise findings from several agents into one coherent, well-structured answer. Keep what the sources agree on, flag what they dispute.";

/// Runs the agents, at most `concurrency` at once, results in spec order. Agents a
/// resumed workflow already finished are not run again.
pub async fn run_agents(
    run: &Run,
    specs: Vec<AgentSpec>,
    concurrency: u32,
) -> Result<Vec<AgentResult>, Halted> {
    // Collected first: a lazy map closure in the stream trips Send inference.
    let agents: Vec<_> = specs.into_iter().map(|spec| run_agent(run, spec)).collect();
    stream::iter(agents)
        .buffered(concurrency.max(1) as usize)
        .try_collect()
        .await
}

async fn run_agent(run: &Run, spec: AgentSpec) -> Result<AgentResult, Halted> {
    if let Some(done) = run.resume.done_agents.get(&spec.agent_id) {
        return Ok(done.clone());
    }
    run.step(Step::AgentStarted {
        agent_id: spec.agent_id.clone(),
        agent_type: spec.agent_type.clone(),
        subtask: spec.subtask.clone(),
    })
    .await?;
    let started = Instant::now();
    let answer = run
        .provider
        .chat(ChatRequest {
            role: CallRole::Agent,
            model: None,
            system: AGENT_SYSTEM.into(),
            prompt: format!(
                "Overall task: {}\nYour role: {} agent.\nSubtask:\n{}",
                run.task, spec.agent_type, spec.subtask
            ),
            expected_items: None,
        })
        .await;
    let execution_time = started.elapsed().as_secs_f64();
    let result = match answer {
        Ok(a) => AgentResult {
            agent_id: spec.agent_id,
            agent_type: spec.agent_type,
            subtask: spec.subtask,
            content: a.text,
            status: "completed".into(),
            model: a.model,
            tokens: a.tokens,
            cost: a.cost_usd,
            execution_time,
            error: None,
        },
        Err(e) => AgentResult {
            agent_id: spec.agent_id,
            agent_type: spec.agent_type,
            subtask: spec.subtask,
            content: String::new(),
            status: "failed".into(),
            model: String::new(),
            tokens: TokenUsage::default(),
            cost: 0.0,
            execution_time,
            error: Some(e.to_string()),
        },
    };
    run.step(Step::AgentCompleted(result.clone())).await?;
    Ok(result)
}

/// Agents that succeeded; failing the workflow when none did.
pub fn successful(results: &[AgentResult]) -> Result<Vec<&AgentResult>, Stop> {
    let ok: Vec<&AgentResult> = results.iter().filter(|r| r.status == "completed").collect();
    if ok.is_empty() {
        let first = results
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_else(|| "no agents ran".into());
        return Err(fail(
            "all_agents_failed",
            format!("all {} agents failed; first error: {first}", results.len()),
        ));
    }
    Ok(ok)
}

/// One synthesis call with its started/completed steps.
pub async fn synthesize(
    run: &Run,
    level: &str,
    group: Option<u32>,
    sources: Vec<String>,
    material: String,
) -> Result<SynthesisResult, Stop> {
    run.step(Step::SynthesisStarted {
        level: level.into(),
        group,
    })
    .await?;
    let started = Instant::now();
    let answer = run
        .provider
        .chat(ChatRequest {
            role: CallRole::Synthesis,
            model: None,
            system: SYNTHESIS_SYSTEM.into(),
            prompt: format!("Task: {}\n\nFindings to synthesise:\n{material}", run.task),
            expected_items: None,
        })
        .await
        .map_err(|e| fail("synthesis_failed", format!("{level} synthesis failed: {e}")))?;
    let result = SynthesisResult {
        level: level.into(),
        group,
        sources,
        content: answer.text,
        model: answer.model,
        tokens: answer.tokens,
        cost: answer.cost_usd,
        execution_time: started.elapsed().as_secs_f64(),
    };
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

//! Building blocks shared by the patterns: running agents with bounded
//! concurrency, synthesis calls, and the report documents (`documents.rs`).

pub mod documents;
mod durable;
pub mod research;
pub mod search;
mod tool_loop;

use std::time::{Duration, Instant};

use futures::{stream, StreamExt, TryStreamExt};

use super::provider::{CallRole, ChatRequest};
use super::{fail, Halted, Run, Step, Stop};
use crate::domain::machine::check_quorum;
use crate::domain::{
    call_timeout, number_sources, step, AgentResult, AgentStatus, Decomposition, ExecOptions,
    FailureCode, Source, StepAnswer, SynthesisResult,
};
use durable::{durable_call, Outcome};

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

/// The user message of an agent's call.
fn agent_prompt(run: &Run, spec: &AgentSpec) -> String {
    format!(
        "Overall task: {}\nYour role: {} agent.\nSubtask:\n{}",
        run.task, spec.agent_type, spec.subtask
    )
}

async fn run_agent(
    run: &Run,
    roles: &Roles,
    key: String,
    spec: AgentSpec,
) -> Result<AgentResult, Halted> {
    let started = Step::AgentStarted {
        agent_id: spec.agent_id.clone(),
        agent_type: spec.agent_type.clone(),
        subtask: spec.subtask.clone(),
        step_key: key.clone(),
    };
    let call = async {
        let t0 = Instant::now();
        let answer = agent_call(run, roles, &key, &spec).await?;
        let at = Instant::now();
        let result = agent_result(spec, &key, answer, t0.elapsed().as_secs_f64());
        // Only answers are durable steps; a failed call is tried again on resume.
        let answer = result
            .error
            .is_none()
            .then(|| StepAnswer::Agent(result.clone()));
        let report = Step::AgentCompleted(result.clone());
        Ok(Outcome::new(result, report, answer, at))
    };
    durable_call(run, &key, run.resume.agent(&key), Some(started), call).await
}

/// The agent's model call, or its tool loop when it has tools.
async fn agent_call(
    run: &Run,
    roles: &Roles,
    key: &str,
    spec: &AgentSpec,
) -> Result<Result<tool_loop::Looped, tool_loop::AgentFailure>, Halted> {
    let offered = run
        .tools
        .catalog(&spec.agent_type, run.config.exec().tools.as_deref());
    if looping(run, key, &offered) {
        let caller = tool_loop::Caller {
            id: spec.agent_id.clone(),
            role: CallRole::Agent,
            system: tool_loop::TOOL_SYSTEM.into(),
            prompt: agent_prompt(run, spec),
            model: roles.agent_model.clone(),
            timeout: roles.agent_timeout,
            expected_items: None,
        };
        return match tool_loop::run_loop(run, key, &caller, &offered, tool_rounds(run)).await {
            Ok(l) => Ok(Ok(l)),
            Err(tool_loop::LoopError::Halted) => Err(Halted),
            Err(tool_loop::LoopError::Failed(e)) => Ok(Err(e)),
        };
    }
    Ok(run
        .provider
        .chat(ChatRequest {
            role: CallRole::Agent,
            model: roles.agent_model.clone(),
            system: AGENT_SYSTEM.into(),
            prompt: agent_prompt(run, spec),
            expected_items: None,
            timeout: roles.agent_timeout,
            step_key: Some(key.to_string()),
            tools: Vec::new(),
            history: Vec::new(),
        })
        .await
        .map(|a| tool_loop::Looped {
            content: a.text,
            model: a.model,
            tokens: a.tokens,
            cost: a.cost_usd,
            retries: a.retries,
            queued: a.queued.as_secs_f64(),
            tools_used: Vec::new(),
            sources: Vec::new(),
            tool_usage: Vec::new(),
        })
        .map_err(tool_loop::AgentFailure::Provider))
}

/// Whether step `key` runs a tool loop: it is offered tools, or a resumed run
/// had begun its loop (which it finishes, tools or not).
fn looping(run: &Run, key: &str, offered: &[crate::tools::Offered]) -> bool {
    !offered.is_empty()
        || run
            .resume
            .answers
            .contains_key(&crate::domain::tools::turn_key(key, 1))
}

/// The workflow's tool rounds: the request's `config.max_tool_rounds`, else
/// `tools.rounds.<pattern>`, else `tools.max_tool_rounds`.
fn tool_rounds(run: &Run) -> u32 {
    run.config
        .exec()
        .max_tool_rounds
        .unwrap_or_else(|| run.tools.config().rounds_for(run.config.pattern()))
}

fn agent_result(
    spec: AgentSpec,
    key: &str,
    answer: Result<tool_loop::Looped, tool_loop::AgentFailure>,
    execution_time: f64,
) -> AgentResult {
    let (status, a, error) = match answer {
        Ok(a) => (AgentStatus::Completed, a, None),
        Err(e) => (
            AgentStatus::Failed,
            tool_loop::Looped::default(),
            Some(e.to_string()),
        ),
    };
    AgentResult {
        agent_id: spec.agent_id,
        agent_type: spec.agent_type,
        subtask: spec.subtask,
        content: a.content,
        status,
        model: a.model,
        tokens: a.tokens,
        cost: a.cost,
        execution_time,
        retries: a.retries,
        queued_time: a.queued,
        error,
        step_key: Some(key.to_string()),
        tools_used: a.tools_used,
        sources: a.sources,
        tool_usage: a.tool_usage,
    }
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
    let started = Step::SynthesisStarted {
        level: level.into(),
        group,
        step_key: key.clone(),
    };
    let call = async {
        let t0 = Instant::now();
        let answer = run
            .provider
            .chat(ChatRequest {
                role: CallRole::Synthesis,
                model: roles.primary_model.clone(),
                system: SYNTHESIS_SYSTEM.into(),
                prompt: format!("Task: {}\n\nFindings to synthesise:\n{material}", run.task),
                // (`material` ends with the numbered sources, when there are any.)
                expected_items: None,
                timeout: if level == "final" {
                    roles.final_timeout
                } else {
                    roles.synthesis_timeout
                },
                step_key: Some(key.clone()),
                tools: Vec::new(),
                history: Vec::new(),
            })
            .await
            .map_err(|e| {
                fail(
                    FailureCode::SynthesisFailed,
                    format!("{level} synthesis failed: {e}"),
                )
            })?;
        let at = Instant::now();
        let result = SynthesisResult {
            level: level.into(),
            group,
            sources,
            content: answer.text,
            model: answer.model,
            tokens: answer.tokens,
            cost: answer.cost_usd,
            execution_time: t0.elapsed().as_secs_f64(),
            retries: answer.retries,
            step_key: Some(key.clone()),
        };
        let answer = StepAnswer::Synthesis(result.clone());
        let report = Step::SynthesisCompleted(result.clone());
        Ok(Outcome::new(result, report, Some(answer), at))
    };
    durable_call(run, &key, run.resume.synthesis(&key), Some(started), call).await
}

/// Agent findings as synthesis material, each with the numbers of the sources
/// it used, then the numbered sources.
pub fn material(results: &[&AgentResult], sources: &[Source]) -> String {
    let mut out: String = results
        .iter()
        .map(|r| {
            let used: Vec<String> = sources
                .iter()
                .filter(|s| r.sources.iter().any(|x| x.url == s.url))
                .map(|s| format!("[{}]", s.n))
                .collect();
            let used = if used.is_empty() {
                String::new()
            } else {
                format!("Sources: {}\n", used.join(", "))
            };
            format!("## {} ({})\n{}\n{used}", r.agent_id, r.subtask, r.content)
        })
        .collect();
    out.push_str(&sources_block(sources));
    out
}

/// The numbered sources and the request to cite them, for a synthesis prompt.
pub fn sources_block(sources: &[Source]) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nSources (cite them by number, as [n], after each claim that rests on one):\n",
    );
    for s in sources {
        out.push_str(&format!("[{}] {} <{}>\n", s.n, s.title, s.url));
    }
    out
}

/// The workflow's numbered sources: the same numbering the result carries.
pub fn numbered(decomposition: Option<&Decomposition>, results: &[&AgentResult]) -> Vec<Source> {
    number_sources(decomposition, results.iter().copied())
}

//! Durable steps in the core: each step counts once, and a restored workflow
//! recovers every committed answer (from its log and from the steps table).

use std::sync::Arc;

use serde_json::json;

use super::{apply, Effect, Input, Policy, Step, WorkflowState};
use crate::step::{agent_key, decompose_key, final_key, synthesis_key};
use crate::{
    AgentResult, AgentStatus, Decomposition, EventType, Pattern, PatternConfig, Status, StepAnswer,
    StepRecord, SynthesisResult, TokenUsage, Workflow,
};

const ID: &str = "wf_test";

/// A fixed instant: the domain's tests, like the domain, read no clock.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::days(20_000)
}

fn state() -> WorkflowState {
    let wf = Workflow::new(
        ID.into(),
        Pattern::Research,
        "task".into(),
        "title".into(),
        PatternConfig::default_for(Pattern::Research),
        "fake".into(),
        false,
    );
    WorkflowState::new(wf, &Policy::default())
}

fn usage() -> TokenUsage {
    TokenUsage::new(100, 50)
}

fn agent(i: usize, cost: f64) -> AgentResult {
    AgentResult {
        agent_id: format!("agent_{i:02}"),
        agent_type: "research".into(),
        subtask: format!("s{i}"),
        content: format!("answer {i}"),
        status: AgentStatus::Completed,
        model: "m".into(),
        tokens: usage(),
        cost,
        execution_time: 0.05,
        retries: 0,
        queued_time: 0.0,
        error: None,
        step_key: Some(agent_key(ID, i)),
        tools_used: Vec::new(),
        sources: Vec::new(),
        tool_usage: Vec::new(),
    }
}

fn synthesis(group: Option<u32>, cost: f64) -> SynthesisResult {
    SynthesisResult {
        level: if group.is_some() { "group" } else { "final" }.into(),
        group,
        sources: vec![],
        content: "s".into(),
        model: "m".into(),
        tokens: usage(),
        cost,
        execution_time: 0.05,
        retries: 0,
        step_key: Some(match group {
            Some(g) => synthesis_key(ID, g),
            None => final_key(ID),
        }),
    }
}

fn decomposition() -> Decomposition {
    Decomposition {
        step_key: decompose_key(ID),
        subtasks: (1..=5).map(|i| format!("s{i}")).collect(),
        model: "m".into(),
        tokens: usage(),
        cost: 0.3,
        execution_time: 0.05,
        retries: 0,
        ..Default::default()
    }
}

fn steps() -> Vec<Step> {
    vec![
        Step::Decomposed(decomposition()),
        Step::AgentCompleted(agent(1, 0.1)),
        Step::AgentCompleted(agent(2, 0.2)),
        Step::SynthesisCompleted(synthesis(Some(1), 0.7)),
    ]
}

fn run(s: &mut WorkflowState, steps: Vec<Step>) {
    apply(s, Input::Create, now()).unwrap();
    apply(s, Input::Step(Step::Begin), now()).unwrap();
    for st in steps {
        apply(s, Input::Step(st), now()).unwrap();
    }
}

#[test]
fn a_step_reported_twice_counts_once() {
    let mut once = state();
    run(&mut once, steps());
    let mut twice = state();
    let mut doubled = steps();
    doubled.push(Step::AgentCompleted(agent(2, 0.2)));
    doubled.push(Step::SynthesisCompleted(synthesis(Some(1), 0.7)));
    run(&mut twice, doubled);
    assert_eq!(twice.wf.total_cost_usd, once.wf.total_cost_usd);
    assert_eq!(twice.wf.tokens, once.wf.tokens);
    assert_eq!(once.wf.tokens.total, 4 * 150);
    assert_eq!(twice.result.synthesis_results.len(), 1);
    assert_eq!(twice.result.agent_results.len(), 2);
}

#[test]
fn restore_recovers_logged_and_committed_answers_and_counts_each_once() {
    let mut before = state();
    run(&mut before, steps());
    // The crash: agent 3's answer was committed, its event was not.
    let committed: Vec<StepRecord> = steps()
        .into_iter()
        .filter_map(|s| match s {
            Step::Decomposed(d) => Some(StepAnswer::Decomposition(d)),
            Step::AgentCompleted(a) => Some(StepAnswer::Agent(a)),
            Step::SynthesisCompleted(s) => Some(StepAnswer::Synthesis(s)),
            _ => None,
        })
        .chain([StepAnswer::Agent(agent(3, 0.4))])
        .map(|answer| StepRecord {
            workflow_id: ID.into(),
            step_key: answer.step_key().unwrap_or_default().to_string(),
            answer,
            answered_at: now(),
        })
        .collect();
    let mut wf = before.wf.clone();
    // The stored record may lag (or lead) the answers; restore recomputes.
    wf.total_cost_usd = 99.0;
    let mut restored = WorkflowState::restored(wf, before.events.clone(), &Policy::default())
        .with_committed(committed);
    let fx = apply(&mut restored, Input::Restore, now()).unwrap();
    assert_eq!(restored.wf.status, Status::Interrupted);
    let events: Vec<&Arc<crate::Event>> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Event(ev) => Some(ev),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventType::WorkflowInterrupted);
    assert_eq!(events[1].kind, EventType::AgentCompleted);
    assert_eq!(events[1].data["step_key"], json!(agent_key(ID, 3)));
    assert_eq!(events[1].data["restored"], json!(true));

    let mut clean = state();
    let mut all = steps();
    all.push(Step::AgentCompleted(agent(3, 0.4)));
    run(&mut clean, all);
    assert_eq!(restored.wf.total_cost_usd, clean.wf.total_cost_usd);
    assert_eq!(restored.wf.tokens, clean.wf.tokens);

    let mut keys: Vec<String> = restored.resume_point().into_keys().collect();
    keys.sort();
    let mut want = vec![
        decompose_key(ID),
        agent_key(ID, 1),
        agent_key(ID, 2),
        agent_key(ID, 3),
        synthesis_key(ID, 1),
    ];
    want.sort();
    assert_eq!(keys, want);
}

#[test]
fn failed_agents_are_not_reused() {
    let mut s = state();
    let mut failed = agent(1, 0.0);
    failed.status = AgentStatus::Failed;
    failed.error = Some("boom".into());
    run(&mut s, vec![Step::AgentCompleted(failed)]);
    assert!(s.resume_point().is_empty());
}

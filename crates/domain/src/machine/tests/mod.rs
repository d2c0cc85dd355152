//! Unit tests of the core: no runtime, no clock, each asserting the exact effects
//! an input has. `E` is a compact, comparable view of an effect; the payloads that
//! matter (event data, timestamps, records) are checked beside it.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::{
    AgentResult, AgentStatus, Document, DocumentsAnswer, EventType, FailureCode, Pattern,
    PatternConfig, Stage, Status, SynthesisResult, TokenUsage, Workflow, WorkflowError,
};

fn t(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_767_000_000_000 + ms).unwrap()
}

#[derive(Debug, PartialEq)]
enum E {
    Record(Status),
    Result(Status),
    Event(u64, EventType),
    StartRun,
    Abort,
    Retire,
    Forget,
    Evict,
}

fn view(fx: &[Effect]) -> Vec<E> {
    fx.iter()
        .map(|e| match e {
            Effect::Record(w) => E::Record(w.status),
            Effect::Result(r) => E::Result(r.status),
            Effect::Event(ev) => E::Event(ev.seq, ev.kind),
            Effect::StartRun => E::StartRun,
            Effect::Abort => E::Abort,
            Effect::Retire => E::Retire,
            Effect::Forget => E::Forget,
            Effect::Evict => E::Evict,
        })
        .collect()
}

fn events(fx: &[Effect]) -> Vec<Arc<crate::Event>> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event(ev) => Some(Arc::clone(ev)),
            _ => None,
        })
        .collect()
}

fn last_event(fx: &[Effect]) -> Arc<crate::Event> {
    events(fx).pop().expect("an event")
}

fn config(pattern: Pattern, cfg: serde_json::Value) -> PatternConfig {
    let mut base = serde_json::to_value(PatternConfig::default_for(pattern)).unwrap();
    if let (Some(b), Some(c)) = (base.as_object_mut(), cfg.as_object()) {
        for (k, v) in c {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap()
}

fn state_with(pattern: Pattern, cfg: serde_json::Value, policy: &Policy) -> WorkflowState {
    let wf = Workflow::new(
        "wf_1".into(),
        pattern,
        "task".into(),
        "title".into(),
        config(pattern, cfg),
        "sim".into(),
        true,
    );
    WorkflowState::new(wf, policy)
}

/// A research workflow of `n` agents, created.
fn created(n: u32) -> WorkflowState {
    let mut s = state_with(
        Pattern::Research,
        json!({"num_agents": n}),
        &Policy::default(),
    );
    apply(&mut s, Input::Create, t(0)).unwrap();
    s
}

fn step(s: &mut WorkflowState, step: Step, at: i64) -> Vec<Effect> {
    apply(s, Input::Step(step), t(at)).unwrap()
}

/// Created, begun and decomposed into `n` subtasks (cost 0.01, 100 tokens).
fn running(n: u32) -> WorkflowState {
    let mut s = created(n);
    step(&mut s, Step::Begin, 1);
    step(&mut s, decomposed(n), 2);
    s
}

fn decomposed(n: u32) -> Step {
    Step::Decomposed(crate::Decomposition {
        step_key: "wf/decompose".into(),
        subtasks: (1..=n).map(|i| format!("sub {i}")).collect(),
        model: "m".into(),
        tokens: TokenUsage::new(60, 40),
        cost: 0.01,
        execution_time: 0.5,
        retries: 0,
        ..Default::default()
    })
}

fn agent(i: u32, ok: bool, cost: f64) -> AgentResult {
    AgentResult {
        agent_id: format!("agent_{i:02}"),
        agent_type: "research".into(),
        subtask: format!("sub {i}"),
        content: if ok {
            format!("found {i}")
        } else {
            String::new()
        },
        status: if ok {
            AgentStatus::Completed
        } else {
            AgentStatus::Failed
        },
        model: "m".into(),
        tokens: TokenUsage::new(100, 50),
        cost,
        execution_time: 0.5,
        retries: 0,
        queued_time: 0.0,
        error: (!ok).then(|| format!("agent {i} broke")),
        step_key: None,
        tools_used: Vec::new(),
        sources: Vec::new(),
        tool_usage: Vec::new(),
    }
}

fn synthesis(level: &str, cost: f64) -> SynthesisResult {
    SynthesisResult {
        level: level.into(),
        group: (level == "group").then_some(1),
        sources: vec!["agent_01".into()],
        content: "synthesis".into(),
        model: "m".into(),
        tokens: TokenUsage::new(10, 10),
        cost,
        execution_time: 0.1,
        retries: 0,
        step_key: None,
    }
}

/// Running with every agent done and the final synthesis started.
fn in_synthesis(n: u32) -> WorkflowState {
    let mut s = running(n);
    for i in 1..=n {
        step(
            &mut s,
            Step::AgentCompleted(agent(i, true, 0.001)),
            10 + i64::from(i),
        );
    }
    let level = "final".to_string();
    let step_key = "wf/final".to_string();
    let st = Step::SynthesisStarted {
        level,
        group: None,
        step_key,
    };
    step(&mut s, st, 50);
    s
}

fn terminal_fx(to: Status, seq: u64) -> Vec<E> {
    let kind = match to {
        Status::Completed => EventType::WorkflowCompleted,
        Status::Cancelled => EventType::WorkflowCancelled,
        _ => EventType::WorkflowFailed,
    };
    vec![
        E::Result(to),
        E::Record(to),
        E::Event(seq, kind),
        E::Abort,
        E::Retire,
    ]
}

/// Restarts a workflow from what a store would hold: its record and event log.
fn restart(s: &WorkflowState, policy: &Policy) -> WorkflowState {
    WorkflowState::restored(s.wf.clone(), s.events.clone(), policy)
}

mod control;
mod limits;
mod properties;
mod restore;
mod steps;

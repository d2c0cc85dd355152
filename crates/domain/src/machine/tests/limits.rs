//! Budgets and quorum.

use super::*;

// ---- budgets ----

#[test]
fn budget_exceeded_by_an_agent_fails_and_aborts() {
    let mut s = state_with(
        Pattern::Research,
        json!({"num_agents": 5, "budget_usd": 0.05}),
        &Policy::default(),
    );
    apply(&mut s, Input::Create, t(0)).unwrap();
    step(&mut s, Step::Begin, 1);
    step(&mut s, decomposed(5), 2);
    let fx = step(&mut s, Step::AgentCompleted(agent(1, true, 0.02)), 3);
    assert_eq!(view(&fx).len(), 2, "under budget: goes on");
    let fx = step(&mut s, Step::AgentCompleted(agent(2, true, 0.02)), 4);
    let mut want = vec![
        E::Record(Status::Running),
        E::Event(4, EventType::AgentCompleted),
    ];
    want.extend(terminal_fx(Status::Failed, 5));
    assert_eq!(view(&fx), want);
    let e = s.wf.error.clone().unwrap();
    assert_eq!(e.code, FailureCode::BudgetExceeded);
    assert_eq!(
        e.message,
        "spent $0.050000 of a $0.05 budget (config.budget_usd)"
    );
    let Effect::Result(r) = &fx[2] else { panic!() };
    assert_eq!(r.agent_results.len(), 2, "partial results kept");
}

#[test]
fn token_budget_exceeded_fails() {
    let mut s = state_with(
        Pattern::Research,
        json!({"num_agents": 5, "max_tokens_total": 200}),
        &Policy::default(),
    );
    apply(&mut s, Input::Create, t(0)).unwrap();
    step(&mut s, Step::Begin, 1);
    step(&mut s, decomposed(5), 2);
    let fx = step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    let mut want = vec![
        E::Record(Status::Running),
        E::Event(3, EventType::AgentCompleted),
    ];
    want.extend(terminal_fx(Status::Failed, 4));
    assert_eq!(view(&fx), want);
    assert_eq!(
        s.wf.error.unwrap().message,
        "used 250 of 200 tokens (config.max_tokens_total)"
    );
}

#[test]
fn budget_exceeded_by_decomposition_fails() {
    let policy = Policy {
        default_budget_usd: 0.01,
        ..Policy::default()
    };
    let mut s = state_with(Pattern::Research, json!({"num_agents": 3}), &policy);
    apply(&mut s, Input::Create, t(0)).unwrap();
    step(&mut s, Step::Begin, 1);
    let fx = step(&mut s, decomposed(3), 2);
    let mut want = vec![
        E::Record(Status::Running),
        E::Event(2, EventType::TaskDecomposed),
    ];
    want.extend(terminal_fx(Status::Failed, 3));
    assert_eq!(view(&fx), want);
}

#[test]
fn budget_exceeded_during_synthesis_fails() {
    let policy = Policy {
        default_budget_usd: 0.1,
        ..Policy::default()
    };
    let mut s = state_with(Pattern::Research, json!({"num_agents": 1}), &policy);
    apply(&mut s, Input::Create, t(0)).unwrap();
    step(&mut s, Step::Begin, 1);
    step(&mut s, decomposed(1), 2);
    step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    let fx = step(&mut s, Step::SynthesisCompleted(synthesis("final", 0.2)), 4);
    let mut want = vec![
        E::Record(Status::Running),
        E::Event(4, EventType::SynthesisCompleted),
    ];
    want.extend(terminal_fx(Status::Failed, 5));
    assert_eq!(view(&fx), want);
    assert_eq!(s.result.synthesis_results.len(), 1);
}

#[test]
fn service_default_budget_applies_when_the_workflow_sets_none() {
    let policy = Policy {
        default_budget_usd: 2.0,
        default_max_tokens_total: 9,
        ..Policy::default()
    };
    let s = state_with(Pattern::Research, json!({}), &policy);
    assert_eq!(
        s.budget,
        Budget {
            usd: Some(2.0),
            tokens: Some(9)
        }
    );
}

#[test]
fn the_workflow_budget_overrides_the_default() {
    let policy = Policy {
        default_budget_usd: 2.0,
        ..Policy::default()
    };
    let s = state_with(
        Pattern::Research,
        json!({"budget_usd": 0.5, "max_tokens_total": 1000}),
        &policy,
    );
    assert_eq!(
        s.budget,
        Budget {
            usd: Some(0.5),
            tokens: Some(1000)
        }
    );
    let unlimited = state_with(Pattern::Research, json!({}), &Policy::default());
    assert_eq!(
        unlimited.budget,
        Budget {
            usd: None,
            tokens: None
        }
    );
}

#[test]
fn finishing_is_never_turned_into_a_budget_failure() {
    let mut s = state_with(
        Pattern::Research,
        json!({"num_agents": 1, "budget_usd": 100.0}),
        &Policy::default(),
    );
    apply(&mut s, Input::Create, t(0)).unwrap();
    step(&mut s, Step::Begin, 1);
    step(&mut s, decomposed(1), 2);
    step(&mut s, Step::AgentCompleted(agent(1, true, 1.0)), 3);
    s.budget.usd = Some(0.5);
    let fx = step(&mut s, Step::Finished(Ok(())), 4);
    assert_eq!(view(&fx), terminal_fx(Status::Completed, 4));
}

// ---- quorum ----

#[test]
fn quorum_failure_when_the_last_agent_reports() {
    let mut s = running(3);
    step(&mut s, Step::AgentCompleted(agent(1, false, 0.0)), 3);
    step(&mut s, Step::AgentCompleted(agent(2, true, 0.0)), 4);
    let fx = step(&mut s, Step::AgentCompleted(agent(3, false, 0.0)), 5);
    let mut want = vec![
        E::Record(Status::Running),
        E::Event(5, EventType::AgentCompleted),
    ];
    want.extend(terminal_fx(Status::Failed, 6));
    assert_eq!(view(&fx), want);
    let e = s.wf.error.unwrap();
    assert_eq!(e.code, FailureCode::InsufficientAgents);
    assert_eq!(
        e.message,
        "only 1 of 3 agents succeeded, 2 needed (config.min_successful_agents); first error: agent 1 broke"
    );
}

#[test]
fn quorum_met_goes_on_to_synthesis() {
    let mut s = running(3);
    step(&mut s, Step::AgentCompleted(agent(1, false, 0.0)), 3);
    step(&mut s, Step::AgentCompleted(agent(2, true, 0.0)), 4);
    let fx = step(&mut s, Step::AgentCompleted(agent(3, true, 0.0)), 5);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(5, EventType::AgentCompleted)
        ]
    );
    assert_eq!(s.wf.status, Status::Running);
}

#[test]
fn configured_quorum_is_used() {
    let mut s = state_with(
        Pattern::Research,
        json!({"num_agents": 2, "min_successful_agents": 2}),
        &Policy::default(),
    );
    apply(&mut s, Input::Create, t(0)).unwrap();
    step(&mut s, Step::Begin, 1);
    step(&mut s, decomposed(2), 2);
    step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    let fx = step(&mut s, Step::AgentCompleted(agent(2, false, 0.0)), 4);
    let mut want = vec![
        E::Record(Status::Running),
        E::Event(4, EventType::AgentCompleted),
    ];
    want.extend(terminal_fx(Status::Failed, 5));
    assert_eq!(view(&fx), want);
}

#[test]
fn quorum_is_not_judged_before_every_agent_reported() {
    let mut s = running(3);
    step(&mut s, Step::AgentCompleted(agent(1, false, 0.0)), 3);
    let fx = step(&mut s, Step::AgentCompleted(agent(2, false, 0.0)), 4);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(4, EventType::AgentCompleted)
        ]
    );
}

#[test]
fn quorum_rule_needs_at_least_one_success() {
    assert!(check_quorum(&[agent(1, true, 0.0)], 0).is_ok());
    let e = check_quorum(&[agent(1, false, 0.0)], 0).unwrap_err();
    assert_eq!(e.code, FailureCode::InsufficientAgents);
    let e = check_quorum(&[], 0).unwrap_err();
    assert!(
        e.message.ends_with("first error: no agents ran"),
        "{}",
        e.message
    );
}

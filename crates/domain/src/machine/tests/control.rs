//! Cancel, interrupt, the failures the core decides, disown and evict.

use super::*;

// ---- cancel ----

#[test]
fn cancel_a_pending_workflow() {
    let mut s = created(3);
    let fx = apply(&mut s, Input::Cancel, t(3)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Cancelled, 1));
    assert_eq!(
        last_event(&fx).data,
        json!({"reason": "cancelled by request", "status": "cancelled", "execution_time": 0.003,
               "total_cost": 0.0, "completed_agents": 0})
    );
}

#[test]
fn cancel_a_running_workflow_keeps_partial_results() {
    let mut s = running(3);
    step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    let fx = apply(&mut s, Input::Cancel, t(4)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Cancelled, 4));
    let Effect::Result(r) = &fx[0] else { panic!() };
    assert_eq!((r.status, r.agent_results.len()), (Status::Cancelled, 1));
    assert_eq!(r.subtasks.len(), 3);
}

#[test]
fn cancel_during_synthesis() {
    let mut s = in_synthesis(2);
    assert_eq!(s.wf.progress.stage, Stage::Synthesis);
    let fx = apply(&mut s, Input::Cancel, t(55)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Cancelled, 6));
    assert_eq!(s.wf.status, Status::Cancelled);
    // A synthesis answer that arrives afterwards changes nothing.
    let late = apply(
        &mut s,
        Input::Step(Step::SynthesisCompleted(synthesis("final", 1.0))),
        t(56),
    );
    assert_eq!(late, Err(Rejection::Terminal(Status::Cancelled)));
    assert!(s.result.synthesis_results.is_empty());
}

#[test]
fn cancel_an_interrupted_workflow() {
    let mut s = running(2);
    apply(
        &mut s,
        Input::Interrupt {
            reason: "server shutdown",
        },
        t(3),
    )
    .unwrap();
    let fx = apply(&mut s, Input::Cancel, t(4)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Cancelled, 4));
}

// ---- interrupt ----

#[test]
fn interrupt_a_running_workflow() {
    let mut s = running(2);
    let fx = apply(
        &mut s,
        Input::Interrupt {
            reason: "server shutdown",
        },
        t(3),
    )
    .unwrap();
    assert_eq!(
        view(&fx),
        vec![
            E::Abort,
            E::Record(Status::Interrupted),
            E::Event(3, EventType::WorkflowInterrupted)
        ]
    );
    assert_eq!(last_event(&fx).data, json!({"reason": "server shutdown"}));
    assert_eq!(s.wf.status, Status::Interrupted);
}

#[test]
fn interrupt_a_pending_workflow_only_stops_its_run() {
    let mut s = created(2);
    let fx = apply(
        &mut s,
        Input::Interrupt {
            reason: "server shutdown",
        },
        t(3),
    )
    .unwrap();
    assert_eq!(view(&fx), vec![E::Abort]);
    assert_eq!(s.wf.status, Status::Pending);
}

#[test]
fn resume_after_interrupt_continues_the_log() {
    let mut s = running(2);
    step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    apply(
        &mut s,
        Input::Interrupt {
            reason: "server shutdown",
        },
        t(4),
    )
    .unwrap();
    let fx = step(&mut s, Step::Begin, 5);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(5, EventType::WorkflowResumed)
        ]
    );
    assert_eq!(
        last_event(&fx).data,
        json!({"resumes": 1, "completed_agents": 1})
    );
    assert_eq!(s.wf.started_at, Some(t(1)));
    assert_eq!(s.wf.progress.stage, Stage::Agents);
}

// ---- failures the core decides (supervision, provider, deadline, daily spend) ----

/// The error the workflow failed with, as its record and its terminal event hold it.
fn failed_with(s: &WorkflowState, fx: &[Effect], code: FailureCode, message: &str) {
    let e = WorkflowError::new(code, message);
    assert_eq!(s.wf.error.as_ref(), Some(&e));
    assert_eq!(last_event(fx).data["error"], json!(e));
    let Effect::Record(wf) = &fx[1] else { panic!() };
    assert_eq!(wf.error.as_ref(), Some(&e));
}

fn interrupted(n: u32) -> WorkflowState {
    let mut s = running(n);
    let reason = "server shutdown";
    apply(&mut s, Input::Interrupt { reason }, t(3)).unwrap();
    s
}

#[test]
fn deadline_passed_fails_a_running_workflow() {
    let mut s = running(2);
    let limit = "2s".to_string();
    let fx = apply(&mut s, Input::DeadlinePassed { limit }, t(3)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 3));
    failed_with(
        &s,
        &fx,
        FailureCode::DeadlineExceeded,
        "the run took longer than limits.max_workflow_duration (2s)",
    );
    assert_eq!(last_event(&fx).data["error"]["code"], "deadline_exceeded");
}

#[test]
fn deadline_passed_fails_a_workflow_whose_run_never_began() {
    let mut s = created(2);
    let limit = "2s".to_string();
    let fx = apply(&mut s, Input::DeadlinePassed { limit }, t(3)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 1));
    assert_eq!(s.wf.error.unwrap().code, FailureCode::DeadlineExceeded);
}

#[test]
fn deadline_passed_leaves_an_interrupted_workflow_alone() {
    let mut s = interrupted(2);
    let (wf, n) = (s.wf.clone(), s.events.len());
    let limit = "2s".to_string();
    let out = apply(&mut s, Input::DeadlinePassed { limit }, t(4));
    let status = Status::Interrupted;
    assert_eq!(
        out,
        Err(Rejection::WrongStatus {
            status,
            input: "deadline"
        })
    );
    assert_eq!((s.wf, s.events.len()), (wf, n));
}

#[test]
fn a_run_that_ended_without_finishing_fails_its_workflow() {
    let mut s = running(2);
    let fx = apply(&mut s, Input::RunLost(Lost::Ended), t(3)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 3));
    failed_with(
        &s,
        &fx,
        FailureCode::InternalError,
        "the workflow's run ended without finishing (its executor thread stopped or it panicked)",
    );
    assert_eq!(last_event(&fx).data["error"]["code"], "internal_error");
}

#[test]
fn a_run_stopped_at_an_interrupt_is_not_lost() {
    let mut s = interrupted(2);
    let (wf, n) = (s.wf.clone(), s.events.len());
    let out = apply(&mut s, Input::RunLost(Lost::Ended), t(4));
    let status = Status::Interrupted;
    assert_eq!(
        out,
        Err(Rejection::WrongStatus {
            status,
            input: "run lost"
        })
    );
    assert_eq!((s.wf, s.events.len()), (wf, n));
}

#[test]
fn a_run_no_executor_took_fails_even_an_interrupted_workflow() {
    let mut s = interrupted(2);
    let fx = apply(&mut s, Input::RunLost(Lost::NotStarted), t(4)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 4));
    failed_with(
        &s,
        &fx,
        FailureCode::InternalError,
        "no executor thread could take the workflow's run",
    );
}

#[test]
fn no_provider_fails_a_pending_workflow() {
    let mut s = created(2);
    let provider = "sim".to_string();
    let fx = apply(&mut s, Input::NoProvider { provider }, t(1)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 1));
    assert_eq!(s.wf.started_at, None);
    failed_with(
        &s,
        &fx,
        FailureCode::ProviderUnavailable,
        "provider 'sim' is not configured",
    );
    assert_eq!(
        last_event(&fx).data["error"]["code"],
        "provider_unavailable"
    );
}

#[test]
fn over_the_daily_spend_fails_a_running_workflow() {
    let mut s = running(2);
    let message = "key 'k' spent $1.000000 today".to_string();
    let fx = apply(&mut s, Input::OverDailySpend { message }, t(3)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 3));
    failed_with(
        &s,
        &fx,
        FailureCode::SpendLimitReached,
        "key 'k' spent $1.000000 today",
    );
    assert_eq!(last_event(&fx).data["error"]["code"], "spend_limit_reached");
}

#[test]
fn over_the_daily_spend_is_refused_before_the_run_begins() {
    let mut s = created(2);
    let message = "m".to_string();
    let out = apply(&mut s, Input::OverDailySpend { message }, t(1));
    let status = Status::Pending;
    assert_eq!(
        out,
        Err(Rejection::WrongStatus {
            status,
            input: "daily spend"
        })
    );
    assert_eq!(s.wf.status, Status::Pending);
}

// ---- leaving this process's memory ----

#[test]
fn disowned_stops_the_run_and_writes_nothing() {
    for mut s in [created(2), running(2), interrupted(2)] {
        let (wf, n) = (s.wf.clone(), s.events.len());
        let fx = apply(&mut s, Input::Disowned, t(4)).unwrap();
        assert_eq!(view(&fx), vec![E::Abort, E::Forget]);
        assert_eq!((s.wf, s.events.len()), (wf, n));
    }
}

#[test]
fn evicted_only_once_finished_and_changes_nothing() {
    let mut s = running(2);
    let out = apply(&mut s, Input::Evicted, t(3));
    let status = Status::Running;
    assert_eq!(
        out,
        Err(Rejection::WrongStatus {
            status,
            input: "evict"
        })
    );
    for end in [Input::Cancel, Input::RunLost(Lost::Ended)] {
        let mut s = running(2);
        apply(&mut s, end, t(3)).unwrap();
        let (wf, n) = (s.wf.clone(), s.events.len());
        let fx = apply(&mut s, Input::Evicted, t(4)).unwrap();
        assert_eq!(view(&fx), vec![E::Evict]);
        assert_eq!((s.wf, s.events.len()), (wf, n));
    }
}

//! Cancel, interrupt and fail.

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

// ---- fail (supervision, provider, deadline) ----

#[test]
fn fail_a_running_workflow() {
    let mut s = running(2);
    let e = WorkflowError {
        code: "internal_error".into(),
        message: "the run panicked".into(),
    };
    let fx = apply(&mut s, Input::Fail(e.clone()), t(3)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 3));
    assert_eq!(last_event(&fx).data["error"], json!(e));
}

#[test]
fn fail_a_pending_workflow() {
    let mut s = created(2);
    let e = WorkflowError {
        code: "provider_unavailable".into(),
        message: "no".into(),
    };
    let fx = apply(&mut s, Input::Fail(e), t(1)).unwrap();
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 1));
    assert_eq!(s.wf.started_at, None);
}

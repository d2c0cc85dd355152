//! Restore at each stage, resume bookkeeping and the resume limit.

use super::*;

// ---- restore and resume, at each stage ----

#[test]
fn restore_a_pending_workflow_resumes_it_unchanged() {
    let s0 = created(3);
    let mut s = restart(&s0, &Policy::default());
    assert_eq!(apply(&mut s, Input::Restore, t(100)).unwrap(), vec![]);
    assert_eq!(
        view(&apply(&mut s, Input::Resume, t(100)).unwrap()),
        vec![E::StartRun]
    );
    let fx = step(&mut s, Step::Begin, 101);
    assert_eq!(view(&fx)[1], E::Event(1, EventType::WorkflowStarted));
}

#[test]
fn restore_while_decomposing_marks_it_interrupted() {
    let mut s0 = created(3);
    step(&mut s0, Step::Begin, 1);
    let mut s = restart(&s0, &Policy::default());
    let fx = apply(&mut s, Input::Restore, t(100)).unwrap();
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Interrupted),
            E::Event(2, EventType::WorkflowInterrupted)
        ]
    );
    assert_eq!(
        last_event(&fx).data,
        json!({"reason": "the process stopped while the workflow ran"})
    );
    assert_eq!(
        view(&apply(&mut s, Input::Resume, t(100)).unwrap()),
        vec![E::StartRun]
    );
    step(&mut s, Step::Begin, 101);
    assert_eq!(s.wf.progress.stage, Stage::Decomposing, "decomposes again");
    assert!(s.resume_point().is_empty());
}

#[test]
fn restore_mid_agents_keeps_subtasks_and_finished_agents() {
    let mut s0 = running(3);
    step(&mut s0, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    step(&mut s0, Step::AgentCompleted(agent(2, false, 0.0)), 4);
    let mut s = restart(&s0, &Policy::default());
    let fx = apply(&mut s, Input::Restore, t(100)).unwrap();
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Interrupted),
            E::Event(5, EventType::WorkflowInterrupted)
        ]
    );
    assert_eq!(s.result.subtasks.len(), 3);
    assert_eq!(
        s.result.agent_results,
        vec![agent(1, true, 0.0), agent(2, false, 0.0)]
    );
    let mut reusable: Vec<String> = s.resume_point().into_keys().collect();
    reusable.sort();
    let id = &s.wf.id;
    assert_eq!(
        reusable,
        vec!["wf/decompose".to_string(), format!("{id}/agent/1")],
        "the subtasks and agent 1; failed agents run again"
    );
    step(&mut s, Step::Begin, 101);
    assert_eq!(s.wf.progress.stage, Stage::Agents);
    assert_eq!(s.wf.resumes, 1);
}

#[test]
fn restore_during_synthesis_resumes_with_every_agent_done() {
    let s0 = in_synthesis(2);
    let mut s = restart(&s0, &Policy::default());
    let fx = apply(&mut s, Input::Restore, t(100)).unwrap();
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Interrupted),
            E::Event(6, EventType::WorkflowInterrupted)
        ]
    );
    let agents = s
        .resume_point()
        .into_values()
        .filter(|a| matches!(a, crate::StepAnswer::Agent(_)))
        .count();
    assert_eq!(agents, 2);
    step(&mut s, Step::Begin, 101);
    let fx = step(
        &mut s,
        Step::SynthesisCompleted(synthesis("final", 0.0)),
        102,
    );
    assert_eq!(view(&fx)[1], E::Event(8, EventType::SynthesisCompleted));
}

#[test]
fn restore_after_a_clean_shutdown_changes_nothing() {
    let mut s0 = running(2);
    apply(
        &mut s0,
        Input::Interrupt {
            reason: "server shutdown",
        },
        t(3),
    )
    .unwrap();
    let mut s = restart(&s0, &Policy::default());
    assert_eq!(apply(&mut s, Input::Restore, t(100)).unwrap(), vec![]);
    assert_eq!(s.wf.failed_resumes, 0);
    assert_eq!(
        view(&apply(&mut s, Input::Resume, t(100)).unwrap()),
        vec![E::StartRun]
    );
}

#[test]
fn restore_counts_a_resumed_run_that_died() {
    let policy = Policy {
        max_resumes: 3,
        ..Policy::default()
    };
    let mut s0 = running(2);
    apply(
        &mut s0,
        Input::Interrupt {
            reason: "server shutdown",
        },
        t(3),
    )
    .unwrap();
    step(&mut s0, Step::Begin, 4);
    let mut s = restart(&s0, &policy);
    let fx = apply(&mut s, Input::Restore, t(100)).unwrap();
    let Effect::Record(w) = &fx[0] else { panic!() };
    assert_eq!(w.failed_resumes, 1, "counted in the stored record");
    // A first run that died is not a failed resume.
    let mut s1 = restart(&running(2), &policy);
    apply(&mut s1, Input::Restore, t(100)).unwrap();
    assert_eq!(s1.wf.failed_resumes, 0);
}

#[test]
fn resume_limit_reached_fails_instead_of_resuming() {
    let policy = Policy {
        max_resumes: 2,
        ..Policy::default()
    };
    let mut s = running(2);
    for round in 0..2 {
        s = restart(&s, &policy);
        apply(&mut s, Input::Restore, t(100 + round)).unwrap();
        assert_eq!(
            view(&apply(&mut s, Input::Resume, t(100 + round)).unwrap()),
            vec![E::StartRun]
        );
        step(&mut s, Step::Begin, 100 + round);
    }
    s = restart(&s, &policy);
    apply(&mut s, Input::Restore, t(200)).unwrap();
    assert_eq!(s.wf.failed_resumes, 2);
    let fx = apply(&mut s, Input::Resume, t(200)).unwrap();
    let n = s.events.len() as u64;
    assert_eq!(view(&fx), terminal_fx(Status::Failed, n));
    let e = s.wf.error.unwrap();
    assert_eq!(e.code, FailureCode::ResumeLimitReached);
    assert!(
        e.message.contains("execution.max_resumes = 2"),
        "{}",
        e.message
    );
}

#[test]
fn resume_limit_zero_means_unlimited() {
    let mut s = running(1);
    for round in 0..5 {
        s = restart(&s, &Policy::default());
        apply(&mut s, Input::Restore, t(100 + round)).unwrap();
        assert_eq!(
            view(&apply(&mut s, Input::Resume, t(100 + round)).unwrap()),
            vec![E::StartRun]
        );
        step(&mut s, Step::Begin, 100 + round);
    }
    assert_eq!(s.wf.failed_resumes, 4);
}

#[test]
fn resume_of_a_running_workflow_is_refused() {
    let mut s = running(1);
    let input = "resume";
    assert_eq!(
        apply(&mut s, Input::Resume, t(5)),
        Err(Rejection::WrongStatus {
            status: Status::Running,
            input
        })
    );
}

// ---- one event, one timestamp ----

#[test]
fn every_event_carries_the_now_it_was_given_and_the_next_seq() {
    let mut s = running(1);
    let fx = step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 42);
    let ev = last_event(&fx);
    assert_eq!((ev.seq, ev.timestamp), (3, t(42)));
    assert!(
        Arc::ptr_eq(&ev, s.events.last().unwrap()),
        "the log holds the very event published"
    );
    let seqs: Vec<u64> = s.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

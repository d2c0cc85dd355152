//! Create, begin and every step of a run.

use super::*;

// ---- create and begin ----

#[test]
fn create_persists_the_record_and_starts_a_run() {
    let mut s = state_with(Pattern::Research, json!({}), &Policy::default());
    let fx = apply(&mut s, Input::Create, t(7)).unwrap();
    assert_eq!(view(&fx), vec![E::Record(Status::Pending), E::StartRun]);
    let Effect::Record(w) = &fx[0] else { panic!() };
    assert_eq!(w.created_at, t(7));
    assert!(s.events.is_empty());
}

#[test]
fn create_of_a_begun_workflow_is_refused() {
    let mut s = created(3);
    step(&mut s, Step::Begin, 1);
    let r = apply(&mut s, Input::Create, t(2));
    let input = "create";
    assert_eq!(
        r,
        Err(Rejection::WrongStatus {
            status: Status::Running,
            input
        })
    );
}

#[test]
fn begin_starts_research_at_decomposition() {
    let mut s = created(3);
    let fx = step(&mut s, Step::Begin, 5);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(1, EventType::WorkflowStarted)
        ]
    );
    let ev = last_event(&fx);
    assert_eq!(ev.timestamp, t(5));
    assert_eq!(
        ev.data,
        json!({"pattern": "research", "task": "task", "title": "title", "total_agents": 3,
               "provider": "sim", "simulated": true})
    );
    assert_eq!(s.wf.started_at, Some(t(5)));
    assert_eq!(s.wf.progress.stage, Stage::Decomposing);
    assert_eq!(s.wf.progress.percent, 5.0);
}

#[test]
fn begin_starts_search_at_agents() {
    let mut s = state_with(
        Pattern::Search,
        json!({"agent_types": ["text", "news"]}),
        &Policy::default(),
    );
    apply(&mut s, Input::Create, t(0)).unwrap();
    let fx = step(&mut s, Step::Begin, 1);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(1, EventType::WorkflowStarted)
        ]
    );
    assert_eq!(s.wf.progress.stage, Stage::Agents);
    assert_eq!(s.wf.progress.total_agents, 2);
}

#[test]
fn begin_twice_is_refused() {
    let mut s = created(3);
    step(&mut s, Step::Begin, 1);
    let before = s.wf.clone();
    let r = apply(&mut s, Input::Step(Step::Begin), t(2));
    let input = "begin";
    assert_eq!(
        r,
        Err(Rejection::WrongStatus {
            status: Status::Running,
            input
        })
    );
    assert_eq!(s.wf, before);
}

#[test]
fn a_step_before_begin_is_refused() {
    let mut s = created(3);
    let r = apply(&mut s, Input::Step(decomposed(3)), t(1));
    let input = "step";
    assert_eq!(
        r,
        Err(Rejection::WrongStatus {
            status: Status::Pending,
            input
        })
    );
    assert!(s.events.is_empty());
}

// ---- steps ----

#[test]
fn decomposition_records_subtasks_cost_and_tokens() {
    let mut s = created(2);
    step(&mut s, Step::Begin, 1);
    let fx = step(&mut s, decomposed(2), 3);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(2, EventType::TaskDecomposed)
        ]
    );
    assert_eq!(
        last_event(&fx).data,
        json!({"count": 2, "subtasks": ["sub 1", "sub 2"], "step_key": "wf/decompose",
               "model": "m", "execution_time": 0.5, "retries": 0,
               "tokens": {"input": 60, "output": 40, "total": 100}, "cost": 0.01})
    );
    assert_eq!(s.result.subtasks, vec!["sub 1", "sub 2"]);
    assert_eq!(s.wf.total_cost_usd, 0.01);
    assert_eq!(s.wf.tokens.total, 100);
    assert_eq!(s.wf.progress.stage, Stage::Agents);
}

#[test]
fn agent_started_is_an_event_only() {
    let mut s = running(2);
    let st = Step::AgentStarted {
        agent_id: "agent_01".into(),
        agent_type: "research".into(),
        subtask: "sub 1".into(),
        step_key: "wf/agent/1".into(),
    };
    let fx = step(&mut s, st, 4);
    assert_eq!(view(&fx), vec![E::Event(3, EventType::AgentStarted)]);
    assert_eq!(
        last_event(&fx).data,
        json!({"agent_id": "agent_01", "agent_type": "research", "subtask": "sub 1",
               "step_key": "wf/agent/1"})
    );
}

#[test]
fn agent_completed_adds_its_result_cost_and_progress() {
    let mut s = running(4);
    let fx = step(&mut s, Step::AgentCompleted(agent(1, true, 0.02)), 5);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(3, EventType::AgentCompleted)
        ]
    );
    assert_eq!(
        last_event(&fx).data,
        serde_json::to_value(agent(1, true, 0.02)).unwrap()
    );
    assert_eq!(s.result.agent_results, vec![agent(1, true, 0.02)]);
    assert!((s.wf.total_cost_usd - 0.03).abs() < 1e-12);
    assert_eq!(s.wf.tokens.total, 250);
    assert_eq!(s.wf.progress.completed_agents, 1);
    assert_eq!(s.wf.progress.percent, 27.5);
}

#[test]
fn an_agent_reported_twice_is_kept_once() {
    let mut s = running(4);
    step(&mut s, Step::AgentCompleted(agent(1, false, 0.0)), 5);
    let fx = step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 6);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(4, EventType::AgentCompleted)
        ]
    );
    assert_eq!(s.result.agent_results, vec![agent(1, true, 0.0)]);
    assert_eq!(s.wf.progress.completed_agents, 1);
}

#[test]
fn synthesis_started_moves_the_stage() {
    let mut s = running(1);
    step(&mut s, Step::AgentCompleted(agent(1, true, 0.0)), 3);
    let st = Step::SynthesisStarted {
        level: "group".into(),
        group: Some(1),
        step_key: "wf/synthesis/1".into(),
    };
    let fx = step(&mut s, st, 4);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(4, EventType::SynthesisStarted)
        ]
    );
    assert_eq!(
        last_event(&fx).data,
        json!({"level": "group", "group": 1, "step_key": "wf/synthesis/1"})
    );
    assert_eq!(s.wf.progress.stage, Stage::Synthesis);
    assert_eq!(s.wf.progress.percent, 85.0);
}

#[test]
fn synthesis_completed_adds_its_result_and_cost() {
    let mut s = in_synthesis(2);
    let cost = s.wf.total_cost_usd;
    let fx = step(
        &mut s,
        Step::SynthesisCompleted(synthesis("final", 0.5)),
        60,
    );
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(6, EventType::SynthesisCompleted)
        ]
    );
    assert_eq!(s.result.synthesis_results, vec![synthesis("final", 0.5)]);
    assert!((s.wf.total_cost_usd - cost - 0.5).abs() < 1e-12);
}

#[test]
fn documents_are_kept_with_the_final_synthesis() {
    let mut s = in_synthesis(1);
    let doc = Document {
        name: "report.md".into(),
        format: "markdown".into(),
        content: "# r".into(),
        bytes: 3,
        sha256: "ab".into(),
        error: None,
    };
    let answer = DocumentsAnswer {
        step_key: "wf/documents".into(),
        documents: vec![doc.clone()],
    };
    let st = Step::Documents {
        answer: answer.clone(),
        final_synthesis: Some("fin".into()),
    };
    let fx = step(&mut s, st, 70);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(5, EventType::DocumentsGenerated)
        ]
    );
    let data = &last_event(&fx).data;
    assert_eq!(data["count"], 1);
    assert_eq!(data["documents"], json!(["report.md"]));
    assert_eq!(data["step_key"], "wf/documents");
    assert_eq!(s.result.documents, vec![doc]);
    assert_eq!(s.result.final_synthesis.as_deref(), Some("fin"));
    assert_eq!(s.wf.progress.stage, Stage::Documents);
    // A resumed run reports the committed answer again: no second event.
    let again = Step::Documents {
        answer,
        final_synthesis: Some("fin".into()),
    };
    let fx = step(&mut s, again, 71);
    assert_eq!(view(&fx), vec![E::Record(Status::Running)]);
}

#[test]
fn a_failed_document_is_an_error_event_and_fails_only_itself() {
    let mut s = in_synthesis(1);
    let ok = Document {
        name: "report.md".into(),
        format: "markdown".into(),
        content: "# r".into(),
        bytes: 3,
        sha256: "ab".into(),
        error: None,
    };
    let bad = Document {
        name: "report.pdf".into(),
        format: "pdf".into(),
        content: String::new(),
        bytes: 0,
        sha256: String::new(),
        error: Some("too large".into()),
    };
    let st = Step::Documents {
        answer: DocumentsAnswer {
            step_key: "wf/documents".into(),
            documents: vec![ok, bad],
        },
        final_synthesis: None,
    };
    let fx = step(&mut s, st, 70);
    assert_eq!(
        view(&fx),
        vec![
            E::Record(Status::Running),
            E::Event(5, EventType::DocumentsGenerated),
            E::Event(6, EventType::Error)
        ]
    );
    assert_eq!(last_event(&fx).data["document"], "report.pdf");
    assert_eq!(s.wf.status, Status::Running);
    assert_eq!(s.result.documents.len(), 2);
}

#[test]
fn finishing_completes_with_result_event_and_record() {
    let mut s = in_synthesis(2);
    let fx = step(&mut s, Step::Finished(Ok(())), 1_000);
    assert_eq!(view(&fx), terminal_fx(Status::Completed, 6));
    let Effect::Result(r) = &fx[0] else { panic!() };
    assert_eq!(r.status, Status::Completed);
    assert_eq!(r.agent_results.len(), 2);
    assert_eq!(r.execution_time, 0.999);
    assert_eq!(
        last_event(&fx).data,
        json!({"status": "completed", "execution_time": 0.999, "total_cost": s.wf.total_cost_usd,
               "completed_agents": 2})
    );
    assert_eq!(s.wf.completed_at, Some(t(1_000)));
    assert_eq!(s.wf.progress.percent, 100.0);
}

#[test]
fn a_run_error_fails_the_workflow_with_it() {
    let mut s = running(2);
    let e = WorkflowError::new(FailureCode::SynthesisFailed, "final synthesis failed");
    let fx = step(&mut s, Step::Finished(Err(e.clone())), 9);
    assert_eq!(view(&fx), terminal_fx(Status::Failed, 3));
    assert_eq!(last_event(&fx).data["error"], json!(e));
    assert_eq!(s.wf.error, Some(e));
}

#[test]
fn nothing_follows_a_terminal_status() {
    let inputs = || {
        vec![
            Input::Create,
            Input::Step(Step::Begin),
            Input::Step(Step::AgentCompleted(agent(1, true, 1.0))),
            Input::Step(Step::Finished(Ok(()))),
            Input::Cancel,
            Input::Interrupt { reason: "x" },
            Input::DeadlinePassed { limit: "1s".into() },
            Input::RunLost(Lost::Ended),
            Input::RunLost(Lost::NotStarted),
            Input::NoProvider {
                provider: "p".into(),
            },
            Input::OverDailySpend {
                message: "m".into(),
            },
            Input::Disowned,
            Input::Restore,
            Input::Resume,
        ]
    };
    for to in [Status::Completed, Status::Failed, Status::Cancelled] {
        let mut s = running(2);
        match to {
            Status::Completed => step(&mut s, Step::Finished(Ok(())), 5),
            Status::Cancelled => apply(&mut s, Input::Cancel, t(5)).unwrap(),
            _ => apply(&mut s, Input::RunLost(Lost::Ended), t(5)).unwrap(),
        };
        let (wf, n) = (s.wf.clone(), s.events.len());
        for input in inputs() {
            assert_eq!(apply(&mut s, input, t(6)), Err(Rejection::Terminal(to)));
        }
        assert_eq!((s.wf, s.events.len()), (wf, n));
    }
}

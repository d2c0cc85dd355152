//! Any sequence of inputs keeps the invariants: a terminal status is final,
//! event seqs strictly increase, cost never decreases, nothing but eviction
//! follows a terminal status.

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Begin,
    Decompose(u32),
    AgentStarted(u32),
    Agent(u32, bool, u32),
    SynthesisStarted,
    Synthesis(u32),
    Documents,
    FinishOk,
    FinishErr,
    Cancel,
    Interrupt,
    DeadlinePassed,
    RunLost(bool),
    NoProvider,
    OverDailySpend,
    Disowned,
    Evicted,
    Restart,
    Resume,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Begin),
        1 => (0..500u32).prop_map(Op::Decompose),
        2 => (1..6u32).prop_map(Op::AgentStarted),
        6 => (1..6u32, any::<bool>(), 0..500u32).prop_map(|(i, ok, c)| Op::Agent(i, ok, c)),
        1 => Just(Op::SynthesisStarted),
        1 => (0..500u32).prop_map(Op::Synthesis),
        1 => Just(Op::Documents),
        1 => Just(Op::FinishOk),
        1 => Just(Op::FinishErr),
        1 => Just(Op::Cancel),
        1 => Just(Op::Interrupt),
        1 => Just(Op::DeadlinePassed),
        1 => any::<bool>().prop_map(Op::RunLost),
        1 => Just(Op::NoProvider),
        1 => Just(Op::OverDailySpend),
        1 => Just(Op::Disowned),
        1 => Just(Op::Evicted),
        1 => Just(Op::Restart),
        1 => Just(Op::Resume),
    ]
}

fn input(op: &Op) -> Input {
    let err = || WorkflowError::new(FailureCode::SynthesisFailed, "y");
    match op.clone() {
        Op::Begin => Input::Step(Step::Begin),
        Op::Decompose(c) => Input::Step(Step::Decomposed(crate::Decomposition {
            step_key: "wf/decompose".into(),
            subtasks: vec!["a".into(); 5],
            model: "m".into(),
            tokens: TokenUsage::new(u64::from(c), 1),
            cost: f64::from(c) / 1000.0,
            execution_time: 0.0,
            retries: 0,
            ..Default::default()
        })),
        Op::AgentStarted(i) => Input::Step(Step::AgentStarted {
            agent_id: format!("agent_{i:02}"),
            agent_type: "research".into(),
            subtask: "s".into(),
            step_key: format!("wf/agent/{i}"),
        }),
        // A failed call has no answer and so no usage: it costs nothing.
        Op::Agent(i, ok, c) => {
            let cost = if ok { f64::from(c) / 1000.0 } else { 0.0 };
            Input::Step(Step::AgentCompleted(agent(i, ok, cost)))
        }
        Op::SynthesisStarted => Input::Step(Step::SynthesisStarted {
            level: "final".into(),
            group: None,
            step_key: "wf/final".into(),
        }),
        Op::Synthesis(c) => Input::Step(Step::SynthesisCompleted(synthesis(
            "final",
            f64::from(c) / 1000.0,
        ))),
        Op::Documents => Input::Step(Step::Documents {
            answer: crate::DocumentsAnswer {
                step_key: "wf/documents".into(),
                documents: vec![],
            },
            final_synthesis: None,
        }),
        Op::FinishOk => Input::Step(Step::Finished(Ok(()))),
        Op::FinishErr => Input::Step(Step::Finished(Err(err()))),
        Op::Cancel => Input::Cancel,
        Op::Interrupt => Input::Interrupt {
            reason: "server shutdown",
        },
        Op::DeadlinePassed => Input::DeadlinePassed { limit: "1s".into() },
        Op::RunLost(ended) => Input::RunLost(if ended { Lost::Ended } else { Lost::NotStarted }),
        Op::NoProvider => Input::NoProvider {
            provider: "p".into(),
        },
        Op::OverDailySpend => Input::OverDailySpend {
            message: "m".into(),
        },
        Op::Disowned => Input::Disowned,
        Op::Evicted => Input::Evicted,
        Op::Restart => Input::Restore,
        Op::Resume => Input::Resume,
    }
}

proptest! {
    #[test]
    fn any_sequence_keeps_the_invariants(
        ops in proptest::collection::vec((op(), 0..50i64), 1..60),
        budget in proptest::option::of(0..3000u32),
        max_resumes in 0..3u32,
    ) {
        let policy = Policy {
            default_budget_usd: budget.map_or(0.0, |b| f64::from(b) / 1000.0),
            max_resumes,
            ..Policy::default()
        };
        let mut s = state_with(Pattern::Research, json!({"num_agents": 5}), &policy);
        let mut now = 0i64;
        apply(&mut s, Input::Create, t(now)).unwrap();
        let mut last_seq = 0u64;
        let mut last_cost = 0.0f64;
        let mut terminal: Option<Status> = None;
        for (op, dt) in ops {
            now += dt;
            if let Op::Restart = op {
                s = restart(&s, &policy);
            }
            let before = (s.wf.clone(), s.events.len());
            let out = apply(&mut s, input(&op), t(now));
            if let Some(st) = terminal {
                let want = match op {
                    Op::Evicted => Ok(vec![Effect::Evict]),
                    _ => Err(Rejection::Terminal(st)),
                };
                prop_assert_eq!(out, want, "nothing but eviction after a terminal status");
                prop_assert_eq!((s.wf.clone(), s.events.len()), before);
                continue;
            }
            let fx = match out {
                Ok(fx) => fx,
                Err(_) => {
                    prop_assert_eq!((s.wf.clone(), s.events.len()), before, "a rejection changes nothing");
                    continue;
                }
            };
            for ev in events(&fx) {
                prop_assert!(ev.seq > last_seq, "seq {} after {}", ev.seq, last_seq);
                prop_assert_eq!(ev.timestamp, t(now));
                last_seq = ev.seq;
            }
            prop_assert!(s.wf.total_cost_usd >= last_cost, "cost went down");
            last_cost = s.wf.total_cost_usd;
            if s.wf.status.is_terminal() {
                terminal = Some(s.wf.status);
                prop_assert_eq!(fx.last(), Some(&Effect::Retire));
                prop_assert!(s.events.last().unwrap().kind.is_terminal());
            }
        }
    }
}

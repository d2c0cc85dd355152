//! `apply`: one input, one workflow, the effects in the order they must happen.
//! A record is emitted before the event that reports it: stores commit changes
//! in order, so a committed event implies its record is committed too (an event
//! is shown to clients only once committed).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{restore, Effect, Input, Lost, Rejection, Step, WorkflowState};
use crate::{
    step, Event, EventData, EventType, FailureCode, Pattern, Stage, Status, StepAnswer,
    WorkflowError,
};

/// Applies `input` to the workflow at time `now`. On `Err` the state is unchanged
/// and there is nothing to do; after a terminal status nothing is accepted but
/// `Evicted` (which changes nothing in the state either).
pub fn apply(
    s: &mut WorkflowState,
    input: Input,
    now: DateTime<Utc>,
) -> Result<Vec<Effect>, Rejection> {
    let status = s.wf.status;
    if status.is_terminal() {
        return match input {
            Input::Evicted => Ok(vec![Effect::Evict]),
            _ => Err(Rejection::Terminal(status)),
        };
    }
    let mut fx = Vec::with_capacity(3);
    match input {
        Input::Create => {
            if status != Status::Pending || !s.events.is_empty() {
                return Err(wrong(status, "create"));
            }
            s.wf.created_at = now;
            record(s, &mut fx);
            fx.push(Effect::StartRun);
        }
        Input::Step(step) => self::step(s, step, now, &mut fx)?,
        Input::Cancel => {
            let data = json!({"reason": "cancelled by request"});
            finish(s, Status::Cancelled, None, data, now, &mut fx);
        }
        Input::Interrupt { reason } => {
            fx.push(Effect::Abort);
            if status == Status::Running {
                transition(s, Status::Interrupted, now);
                record(s, &mut fx);
                event(
                    s,
                    EventType::WorkflowInterrupted,
                    json!({ "reason": reason }),
                    now,
                    &mut fx,
                );
            }
        }
        Input::DeadlinePassed { limit } => {
            if !matches!(status, Status::Pending | Status::Running) {
                return Err(wrong(status, "deadline"));
            }
            let message =
                format!("the run took longer than limits.max_workflow_duration ({limit})");
            fail(s, FailureCode::DeadlineExceeded, message, now, &mut fx);
        }
        Input::RunLost(lost) => {
            let message = match lost {
                Lost::Ended if !matches!(status, Status::Pending | Status::Running) => {
                    return Err(wrong(status, "run lost"));
                }
                Lost::Ended => "the workflow's run ended without finishing (its executor thread stopped or it panicked)",
                Lost::NotStarted => "no executor thread could take the workflow's run",
            };
            fail(s, FailureCode::InternalError, message.into(), now, &mut fx);
        }
        Input::NoProvider { provider } => {
            let message = format!("provider '{provider}' is not configured");
            fail(s, FailureCode::ProviderUnavailable, message, now, &mut fx);
        }
        Input::OverDailySpend { message } => {
            if status != Status::Running {
                return Err(wrong(status, "daily spend"));
            }
            fail(s, FailureCode::SpendLimitReached, message, now, &mut fx);
        }
        Input::Disowned => {
            fx.push(Effect::Abort);
            fx.push(Effect::Forget);
        }
        // Only a finished workflow leaves memory (see above).
        Input::Evicted => return Err(wrong(status, "evict")),
        Input::Restore => {
            let unlogged = restore::rebuild_result(s);
            let mut interrupted = None;
            if status == Status::Running {
                // The process died while this ran. A resumed run dying counts
                // towards `execution.max_resumes`, durably (it is in the record).
                if s.wf.resumes > 0 {
                    s.wf.failed_resumes += 1;
                }
                transition(s, Status::Interrupted, now);
                interrupted = Some(json!({"reason": "the process stopped while the workflow ran"}));
            }
            if interrupted.is_some() || !unlogged.is_empty() {
                record(s, &mut fx);
            }
            if let Some(data) = interrupted {
                event(s, EventType::WorkflowInterrupted, data, now, &mut fx);
            }
            // Answers committed whose event was not (the process died between
            // the two): the step is done all the same; its event is logged now.
            for answer in unlogged {
                if let Some((kind, data)) = answer.event() {
                    let mut data = data.value().clone();
                    data["restored"] = json!(true);
                    event(s, kind, data, now, &mut fx);
                }
            }
        }
        Input::Resume => {
            if !matches!(status, Status::Pending | Status::Interrupted) {
                return Err(wrong(status, "resume"));
            }
            if s.max_resumes > 0 && s.wf.failed_resumes >= s.max_resumes {
                let message = format!(
                    "the workflow's resumed run died {} times (execution.max_resumes = {}); it is not resumed again",
                    s.wf.failed_resumes, s.max_resumes
                );
                fail(s, FailureCode::ResumeLimitReached, message, now, &mut fx);
            } else {
                fx.push(Effect::StartRun);
            }
        }
    }
    Ok(fx)
}

fn step(
    s: &mut WorkflowState,
    step: Step,
    now: DateTime<Utc>,
    fx: &mut Vec<Effect>,
) -> Result<(), Rejection> {
    let status = s.wf.status;
    if let Step::Begin = step {
        if !matches!(status, Status::Pending | Status::Interrupted) {
            return Err(wrong(status, "begin"));
        }
        transition(s, Status::Running, now);
        let p = &mut s.wf.progress;
        p.stage = if s.result.subtasks.is_empty() && s.wf.pattern == Pattern::Research {
            Stage::Decomposing
        } else {
            Stage::Agents
        };
        p.recompute();
        record(s, fx);
        if status == Status::Interrupted {
            let data = json!({"resumes": s.wf.resumes, "completed_agents": s.wf.progress.completed_agents});
            event(s, EventType::WorkflowResumed, data, now, fx);
        } else {
            let w = &s.wf;
            let data = json!({"pattern": w.pattern, "task": w.task, "title": w.title,
                "total_agents": w.progress.total_agents, "provider": w.provider, "simulated": w.simulated});
            event(s, EventType::WorkflowStarted, data, now, fx);
        }
        return Ok(());
    }
    if status != Status::Running {
        return Err(wrong(status, "step"));
    }
    match step {
        Step::Begin => {}
        Step::Decomposed(d) => {
            s.wf.progress.stage = Stage::Agents;
            let data = add_answer(s, StepAnswer::Decomposition(d));
            record(s, fx);
            event(s, EventType::TaskDecomposed, data, now, fx);
        }
        Step::AgentStarted {
            agent_id,
            agent_type,
            subtask,
            step_key,
        } => {
            let data = json!({"agent_id": agent_id, "agent_type": agent_type, "subtask": subtask, "step_key": step_key});
            event(s, EventType::AgentStarted, data, now, fx);
        }
        Step::AgentCompleted(r) => {
            let data = add_answer(s, StepAnswer::Agent(r));
            record(s, fx);
            event(s, EventType::AgentCompleted, data, now, fx);
            // Every agent has reported: below the quorum, synthesis is pointless.
            let total = s.wf.progress.total_agents;
            if total > 0 && s.wf.progress.completed_agents >= total {
                if let Err(e) =
                    super::check_quorum(&s.result.agent_results, s.wf.config.min_successful())
                {
                    finish(s, Status::Failed, Some(e), json!({}), now, fx);
                }
            }
        }
        Step::ToolCallStarted(info) => {
            let data = serde_json::to_value(info).unwrap_or_default();
            event(s, EventType::ToolCallStarted, data, now, fx);
        }
        Step::ToolCallCompleted(info) => {
            let data = serde_json::to_value(info).unwrap_or_default();
            event(s, EventType::ToolCallCompleted, data, now, fx);
        }
        Step::SynthesisStarted {
            level,
            group,
            step_key,
        } => {
            s.wf.progress.stage = Stage::Synthesis;
            s.wf.progress.recompute();
            let data = json!({"level": level, "group": group, "step_key": step_key});
            record(s, fx);
            event(s, EventType::SynthesisStarted, data, now, fx);
        }
        Step::SynthesisCompleted(r) => {
            let data = add_answer(s, StepAnswer::Synthesis(r));
            record(s, fx);
            event(s, EventType::SynthesisCompleted, data, now, fx);
        }
        Step::Documents {
            answer,
            final_synthesis,
        } => {
            s.wf.progress.stage = Stage::Documents;
            s.wf.progress.recompute();
            s.result.final_synthesis = final_synthesis;
            // A resumed run reports a committed answer again: logged once.
            let logged = s.events.iter().any(|e| {
                e.kind == EventType::DocumentsGenerated
                    && e.data.get("step_key").and_then(Value::as_str) == Some(&answer.step_key)
            });
            let failed: Vec<Value> = answer
                .documents
                .iter()
                .filter_map(|d| {
                    let e = d.error.as_ref()?;
                    Some(json!({"stage": "documents", "document": d.name, "format": d.format, "error": e}))
                })
                .collect();
            let data = add_answer(s, StepAnswer::Documents(answer));
            record(s, fx);
            if !logged {
                event(s, EventType::DocumentsGenerated, data, now, fx);
                // A document that failed fails only itself: said as an error event.
                for f in failed {
                    event(s, EventType::Error, f, now, fx);
                }
            }
        }
        Step::Finished(Ok(())) => {
            finish(s, Status::Completed, None, json!({}), now, fx);
            return Ok(());
        }
        Step::Finished(Err(e)) => {
            finish(s, Status::Failed, Some(e), json!({}), now, fx);
            return Ok(());
        }
    }
    if !s.wf.status.is_terminal() {
        if let Some(message) = s.budget.exceeded(&s.wf) {
            fail(s, FailureCode::BudgetExceeded, message, now, fx);
        }
    }
    Ok(())
}

/// Fails the workflow with the core's verdict.
fn fail(
    s: &mut WorkflowState,
    code: FailureCode,
    message: String,
    now: DateTime<Utc>,
    fx: &mut Vec<Effect>,
) {
    let e = WorkflowError::new(code, message);
    finish(s, Status::Failed, Some(e), json!({}), now, fx);
}

/// Enters a terminal status: result, record, terminal event; then the run is
/// aborted and the workflow retired.
fn finish(
    s: &mut WorkflowState,
    to: Status,
    error: Option<WorkflowError>,
    mut data: Value,
    now: DateTime<Utc>,
    fx: &mut Vec<Effect>,
) {
    transition(s, to, now);
    s.wf.error = error;
    let r = &mut s.result;
    r.status = to;
    r.execution_time = s.wf.execution_time.unwrap_or(0.0);
    r.total_cost = s.wf.total_cost_usd;
    r.tokens = s.wf.tokens;
    fx.push(Effect::Result(Arc::new(s.result.clone())));
    let kind = match to {
        Status::Completed => EventType::WorkflowCompleted,
        Status::Cancelled => EventType::WorkflowCancelled,
        _ => EventType::WorkflowFailed,
    };
    if let Value::Object(m) = &mut data {
        m.insert("status".into(), json!(to));
        m.insert("execution_time".into(), json!(s.wf.execution_time));
        m.insert("total_cost".into(), json!(s.wf.total_cost_usd));
        m.insert(
            "completed_agents".into(),
            json!(s.wf.progress.completed_agents),
        );
        if let Some(e) = &s.wf.error {
            m.insert("error".into(), json!(e));
        }
    }
    record(s, fx);
    event(s, kind, data, now, fx);
    fx.push(Effect::Abort);
    fx.push(Effect::Retire);
}

/// Only called for moves `apply` has checked; an illegal one would be a bug here,
/// and is left undone rather than half-applied.
fn transition(s: &mut WorkflowState, to: Status, now: DateTime<Utc>) {
    let _ = s.wf.transition(to, now);
}

fn event(
    s: &mut WorkflowState,
    kind: EventType,
    data: impl Into<EventData>,
    now: DateTime<Utc>,
    fx: &mut Vec<Effect>,
) {
    let ev = Arc::new(Event {
        workflow_id: s.wf.id.clone(),
        seq: s.next_seq(),
        kind,
        timestamp: now,
        data: data.into(),
    });
    s.events.push(Arc::clone(&ev));
    fx.push(Effect::Event(ev));
}

fn record(s: &WorkflowState, fx: &mut Vec<Effect>) {
    fx.push(Effect::Record(Arc::new(s.wf.clone())));
}

fn wrong(status: Status, input: &'static str) -> Rejection {
    Rejection::WrongStatus { status, input }
}

/// Records a step's answer in the result (replacing an earlier answer of the
/// same step) and recomputes the totals from all answers, so each step counts
/// exactly once; returns the answer's event data.
pub(super) fn add_answer(s: &mut WorkflowState, answer: StepAnswer) -> EventData {
    let data = answer.event().map(|(_, d)| d).unwrap_or_default();
    step::merge(&mut s.result, answer);
    s.settle();
    data
}

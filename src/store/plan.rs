//! What one batch of `StateChange`s asks a store to write, worked out once for
//! both store writers: only the last record and result of each workflow count
//! (one statement may not upsert a row twice, and earlier versions are
//! superseded), which workflows finish in the batch, and the rest by kind, in
//! batch order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::domain::{ChangeKind, Event, StateChange, StepRecord, Workflow, WorkflowResult};

pub struct BatchPlan<'a> {
    /// The last record of each workflow in the batch.
    pub records: HashMap<&'a str, &'a Workflow>,
    /// The last result of each workflow in the batch.
    pub results: HashMap<&'a str, &'a WorkflowResult>,
    /// Workflows whose record or result in the batch is terminal.
    pub finishing: HashSet<&'a str>,
    pub events: Vec<&'a Arc<Event>>,
    /// Step answers of workflows that do not finish in the batch.
    pub steps: Vec<&'a StepRecord>,
    /// Webhooks, their removals, deliveries, idempotency keys and documents, in
    /// batch order (a removal after a registration in the same batch wins).
    pub others: Vec<&'a ChangeKind>,
}

impl<'a> BatchPlan<'a> {
    pub fn of(batch: &'a [Arc<StateChange>]) -> BatchPlan<'a> {
        let mut plan = BatchPlan {
            records: HashMap::new(),
            results: HashMap::new(),
            finishing: HashSet::new(),
            events: Vec::new(),
            steps: Vec::new(),
            others: Vec::new(),
        };
        for change in batch {
            match &change.kind {
                ChangeKind::Workflow(wf) => {
                    plan.records.insert(&wf.id, wf);
                }
                ChangeKind::Result(r) => {
                    plan.results.insert(&r.workflow_id, r);
                }
                ChangeKind::Event(ev) => plan.events.push(ev),
                ChangeKind::Step(st) => plan.steps.push(st),
                // Evictions drop the in-memory copy only; the store keeps its own.
                ChangeKind::Evicted(_) => {}
                other => plan.others.push(other),
            }
        }
        let finishing = plan
            .records
            .values()
            .filter(|w| w.status.is_terminal())
            .map(|w| w.id.as_str())
            .chain(
                plan.results
                    .values()
                    .filter(|r| r.status.is_terminal())
                    .map(|r| r.workflow_id.as_str()),
            )
            .collect();
        plan.finishing = finishing;
        // A finishing workflow's step answers are in the result packed in the
        // same transaction, and its step rows are deleted there: not written.
        let finishing = &plan.finishing;
        plan.steps
            .retain(|s| !finishing.contains(s.workflow_id.as_str()));
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DocumentsAnswer, Pattern, PatternConfig, Status, StepAnswer};

    fn change(seq: u64, kind: ChangeKind) -> Arc<StateChange> {
        Arc::new(StateChange {
            seq,
            epoch: None,
            kind,
        })
    }

    fn wf(id: &str, status: Status) -> ChangeKind {
        let mut w = Workflow::new(
            id.into(),
            Pattern::Research,
            "t".into(),
            "t".into(),
            PatternConfig::default_for(Pattern::Research),
            "simulated".into(),
            true,
        );
        w.status = status;
        ChangeKind::Workflow(Arc::new(w))
    }

    #[test]
    fn the_last_record_of_each_workflow_counts_and_a_terminal_one_finishes_it() {
        let batch = vec![
            change(1, wf("wf_a", Status::Pending)),
            change(2, wf("wf_b", Status::Running)),
            change(3, wf("wf_a", Status::Completed)),
            change(4, ChangeKind::WebhookRemoved("wh_1".into())),
            change(5, ChangeKind::Evicted("wf_c".into())),
        ];
        let plan = BatchPlan::of(&batch);
        assert_eq!(plan.records.len(), 2);
        assert_eq!(plan.records["wf_a"].status, Status::Completed);
        assert_eq!(plan.records["wf_b"].status, Status::Running);
        assert_eq!(plan.finishing, HashSet::from(["wf_a"]));
        assert_eq!(plan.others.len(), 1, "evictions are not written");
    }

    fn step(workflow: &str) -> ChangeKind {
        ChangeKind::Step(Arc::new(StepRecord {
            workflow_id: workflow.into(),
            step_key: format!("{workflow}/documents"),
            answer: StepAnswer::Documents(DocumentsAnswer {
                step_key: format!("{workflow}/documents"),
                documents: Vec::new(),
            }),
            answered_at: crate::clock::now(),
        }))
    }

    #[test]
    fn a_finishing_workflows_step_answers_are_not_written() {
        let batch = vec![
            change(1, step("wf_a")),
            change(2, step("wf_b")),
            change(3, wf("wf_a", Status::Completed)),
            change(4, wf("wf_b", Status::Running)),
        ];
        let plan = BatchPlan::of(&batch);
        let written: Vec<&str> = plan.steps.iter().map(|s| s.workflow_id.as_str()).collect();
        assert_eq!(
            written,
            ["wf_b"],
            "wf_a's answer is in the result packed with it"
        );
    }
}

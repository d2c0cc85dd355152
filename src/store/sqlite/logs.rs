//! The event logs the writer committed, per unfinished workflow it saw from its
//! first event: when such a workflow finishes, its packed value is built from
//! here and its rows are deleted without being read back (`DELETE … RETURNING`
//! was ~8 % of the server's instructions). A workflow whose log is not known
//! from seq 1 (restored at start-up, or a gap) is packed from its rows as before,
//! so a missing entry only costs speed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::Event;
use crate::store::plan::BatchPlan;

/// Logs held at most: past this, new workflows are packed from their rows.
/// (The registry's active set bounds it in practice; this is the backstop.)
const MAX_LOGS: usize = 100_000;

#[derive(Default)]
pub struct CommittedLogs {
    logs: HashMap<String, Vec<Arc<Event>>>,
}

impl CommittedLogs {
    /// Every committed event of `id`, in seq order from 1, if this writer has them.
    pub fn get(&self, id: &str) -> Option<&[Arc<Event>]> {
        self.logs.get(id).map(Vec::as_slice)
    }

    /// The batch `plan` committed: its finishing workflows' logs go (they are
    /// packed now); the others' events are appended.
    pub fn committed(&mut self, plan: &BatchPlan<'_>) {
        for ev in &plan.events {
            let id = ev.workflow_id.as_str();
            if plan.finishing.contains(id) {
                continue;
            }
            let full = self.logs.len() >= MAX_LOGS;
            match self.logs.get_mut(id) {
                Some(log) => {
                    let last = log.last().map_or(0, |e| e.seq);
                    if ev.seq == last + 1 {
                        log.push(Arc::clone(ev));
                    } else if ev.seq > last + 1 {
                        // A gap: this log is no longer the whole story.
                        self.logs.remove(id);
                    }
                }
                None if ev.seq == 1 && !full => {
                    self.logs.insert(id.to_string(), vec![Arc::clone(ev)]);
                }
                None => {}
            }
        }
        for id in &plan.finishing {
            self.logs.remove(*id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChangeKind, EventType, Pattern, StateChange, Status, WorkflowResult};

    fn ev(id: &str, seq: u64) -> Arc<StateChange> {
        Arc::new(StateChange {
            seq,
            epoch: None,
            kind: ChangeKind::Event(Arc::new(Event {
                workflow_id: id.into(),
                seq,
                kind: EventType::AgentCompleted,
                timestamp: crate::clock::now(),
                data: serde_json::json!({}).into(),
            })),
        })
    }

    fn seqs(logs: &CommittedLogs, id: &str) -> Option<Vec<u64>> {
        logs.get(id).map(|l| l.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn a_log_is_kept_only_while_it_is_whole_from_seq_1() {
        let mut logs = CommittedLogs::default();
        let batch = vec![ev("a", 1), ev("a", 2), ev("b", 5)];
        logs.committed(&BatchPlan::of(&batch));
        assert_eq!(seqs(&logs, "a"), Some(vec![1, 2]));
        assert_eq!(seqs(&logs, "b"), None, "first seen after its start");
        // A replayed event is kept once; the next one appends.
        let batch = vec![ev("a", 2), ev("a", 3)];
        logs.committed(&BatchPlan::of(&batch));
        assert_eq!(seqs(&logs, "a"), Some(vec![1, 2, 3]));
        // A gap: the log is no longer whole.
        let batch = vec![ev("a", 5)];
        logs.committed(&BatchPlan::of(&batch));
        assert_eq!(seqs(&logs, "a"), None);
        // A finishing workflow's log goes with the batch that packs it.
        let mut done = WorkflowResult::empty("c", Pattern::Research, true);
        done.status = Status::Completed;
        let batch = vec![ev("c", 1)];
        logs.committed(&BatchPlan::of(&batch));
        assert_eq!(seqs(&logs, "c"), Some(vec![1]));
        let batch = vec![
            ev("c", 2),
            Arc::new(StateChange {
                seq: 9,
                epoch: None,
                kind: ChangeKind::Result(Arc::new(done)),
            }),
        ];
        logs.committed(&BatchPlan::of(&batch));
        assert_eq!(seqs(&logs, "c"), None);
    }
}

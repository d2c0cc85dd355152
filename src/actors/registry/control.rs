//! Cancel, shutdown and eviction.

use std::sync::Arc;

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::actors::evictor::Evict;
use crate::clock::now;
use crate::domain::machine::{apply, Effect, Input, WorkflowState};
use crate::domain::{ChangeKind, Workflow};

pub enum CancelOutcome {
    Cancelled {
        workflow: Arc<Workflow>,
        seq: u64,
    },
    AlreadyFinished(Arc<Workflow>),
    /// Not in memory: the caller asks the store.
    Unknown,
}

#[derive(Message)]
#[rtype(result = "CancelOutcome")]
pub struct Cancel(pub String);

impl Handler<Cancel> for WorkflowRegistry {
    type Result = MessageResult<Cancel>;

    fn handle(&mut self, Cancel(id): Cancel, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(Ok(done)) = self.feed(&id, Input::Cancel, ctx) {
            if let Some(workflow) = done.retired {
                let seq = done.seq;
                return MessageResult(CancelOutcome::Cancelled { workflow, seq });
            }
        }
        MessageResult(match self.retained.get(&id) {
            Some(wf) => CancelOutcome::AlreadyFinished(Arc::clone(wf)),
            None => CancelOutcome::Unknown,
        })
    }
}

impl Handler<Evict> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, Evict(ids): Evict, _: &mut Context<Self>) {
        for id in ids {
            // Only a finished (retained) workflow: the core says what eviction does.
            let Some(wf) = self.retained.get(&id) else {
                continue;
            };
            let mut st = WorkflowState::new(Workflow::clone(wf), &self.policy);
            let Ok(effects) = apply(&mut st, Input::Evicted, now()) else {
                continue;
            };
            if effects.contains(&Effect::Evict) {
                self.retained.remove(&id);
                self.out.emit(ChangeKind::Evicted(id));
            }
        }
    }
}

/// Stop admitting: creates get 503 from now on; running workflows go on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BeginShutdown;

impl Handler<BeginShutdown> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, _: BeginShutdown, _: &mut Context<Self>) {
        self.shutting_down = true;
    }
}

/// Stops every executor; running workflows become `interrupted` (resumed at the
/// next start). Returns the last change seq, to flush up to.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct InterruptAll;

impl Handler<InterruptAll> for WorkflowRegistry {
    type Result = u64;

    fn handle(&mut self, _: InterruptAll, ctx: &mut Context<Self>) -> u64 {
        self.shutting_down = true;
        let ids: Vec<String> = self.active.keys().cloned().collect();
        for id in ids {
            let reason = "server shutdown";
            self.feed(&id, Input::Interrupt { reason }, ctx);
            self.out.bus.close(&id);
        }
        self.out.seq
    }
}

//! Steps reported by executors. The answer tells the run whether to go on:
//! `Err(Halted)` when the step was refused or ended the workflow early (cancel,
//! budget, quorum), or when the process is shutting down.

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::domain::machine::{Input, Step};
use crate::domain::ChangeKind;
use crate::exec::{Answered, Halted, Report};

impl Handler<Report> for WorkflowRegistry {
    type Result = Result<(), Halted>;

    fn handle(&mut self, Report { id, step }: Report, ctx: &mut Context<Self>) -> Self::Result {
        // A run that has not begun stays pending through a shutdown, to be
        // resumed at the next start.
        if self.shutting_down && matches!(step, Step::Begin) {
            return Err(Halted);
        }
        let finishing = matches!(step, Step::Finished(_));
        match self.feed(&id, Input::Step(step), ctx) {
            Some(Ok(done)) if done.retired.is_some() && finishing => Ok(()),
            Some(Ok(done)) if done.retired.is_none() => self.within_daily_spend(&id, ctx),
            _ => Err(Halted),
        }
    }
}

impl Handler<Answered> for WorkflowRegistry {
    type Result = Result<u64, Halted>;

    fn handle(&mut self, msg: Answered, ctx: &mut Context<Self>) -> Self::Result {
        let Answered {
            id,
            step,
            record,
            documents,
            epoch,
        } = msg;
        // The answer goes first: an event never reaches the store without the
        // answer it reports, so a resume after a crash reuses what was announced.
        // An answer its event carries in full is written once, as that event.
        let live = self
            .active
            .get(&id)
            .is_some_and(|a| !a.st.wf.status.is_terminal());
        // A run from before the lease moved on (several instances) writes nothing.
        let current = self.out.epochs.as_ref().and_then(|f| f(&id));
        if !live || current != epoch {
            return Err(Halted);
        }
        for d in documents {
            self.out.emit(ChangeKind::Document(d));
        }
        if !record.answer.logged_in_full() {
            self.out.emit(ChangeKind::Step(record));
        }
        <Self as Handler<Report>>::handle(self, Report { id, step }, ctx)?;
        Ok(self.out.seq)
    }
}

impl WorkflowRegistry {
    /// A running workflow stops once its key's daily budget is reached, like it
    /// does at its own budget (the spend is the ledger's, outside the core).
    fn within_daily_spend(&mut self, id: &str, ctx: &mut Context<Self>) -> Result<(), Halted> {
        let owner = self.active.get(id).and_then(|a| a.st.wf.owner.as_deref());
        let Some(message) = self.ledger.over_daily_budget(owner) else {
            return Ok(());
        };
        tracing::warn!(workflow_id = id, %message, "key's daily budget reached; cancelling outstanding calls");
        self.feed(id, Input::OverDailySpend { message }, ctx);
        Err(Halted)
    }
}

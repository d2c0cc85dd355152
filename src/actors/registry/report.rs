//! Steps reported by executors. The answer tells the run whether to go on:
//! `Err(Halted)` when the step was refused or ended the workflow early (cancel,
//! budget, quorum), or when the process is shutting down.

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::domain::machine::{Input, Step};
use crate::exec::{Halted, Report};

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
            Some(Ok(done)) if done.retired.is_none() || finishing => Ok(()),
            _ => Err(Halted),
        }
    }
}

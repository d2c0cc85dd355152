//! Reads: one workflow, a workflow's event stream, the registry's counters.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::mpsc;

use super::WorkflowRegistry;
use crate::domain::{Event, Status, Workflow};

#[derive(Message)]
#[rtype(result = "Option<Arc<Workflow>>")]
pub struct Get(pub String);

impl Handler<Get> for WorkflowRegistry {
    type Result = Option<Arc<Workflow>>;

    fn handle(&mut self, Get(id): Get, _: &mut Context<Self>) -> Self::Result {
        match self.active.get(&id) {
            Some(a) => Some(Arc::new(a.st.wf.clone())),
            None => self.retained.get(&id).cloned(),
        }
    }
}

pub enum EventFeed {
    /// Events after the requested seq so far, then live ones until the end.
    Live {
        backlog: Vec<Arc<Event>>,
        rx: mpsc::Receiver<Arc<Event>>,
    },
    /// Finished moments ago: its whole log, from memory.
    Finished { backlog: Vec<Arc<Event>> },
    /// Not running here: read the (complete) log from the store.
    NotActive,
}

#[derive(Message)]
#[rtype(result = "EventFeed")]
pub struct SubscribeEvents {
    pub id: String,
    pub after: u64,
}

impl Handler<SubscribeEvents> for WorkflowRegistry {
    type Result = MessageResult<SubscribeEvents>;

    fn handle(&mut self, msg: SubscribeEvents, _: &mut Context<Self>) -> Self::Result {
        // Interrupted workflows have no live stream in this process until resumed.
        let active = self
            .active
            .get(&msg.id)
            .filter(|a| a.st.wf.status != Status::Interrupted);
        let log = match active {
            Some(a) => &a.st.events,
            None => match self.recent.get(&msg.id) {
                Some(log) => log,
                None => return MessageResult(EventFeed::NotActive),
            },
        };
        // Only committed events are shown; the rest follow on the live channel.
        let uncommitted = self.out.uncommitted_of(&msg.id);
        let backlog = log[..log.len() - uncommitted.min(log.len())]
            .iter()
            .filter(|e| e.seq > msg.after)
            .cloned()
            .collect();
        if active.is_none() && uncommitted == 0 {
            return MessageResult(EventFeed::Finished { backlog });
        }
        let rx = self.out.bus.subscribe(&msg.id);
        MessageResult(EventFeed::Live { backlog, rx })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RegistryStats {
    pub events_emitted: u64,
    pub webhooks_registered: usize,
    /// Subscriptions refused by the caps since start.
    pub webhooks_refused: u64,
    pub active: usize,
    pub running: usize,
    pub retained: usize,
    pub sse_clients: usize,
    pub shutting_down: bool,
    pub max_active: usize,
}

#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct Stats;

impl Handler<Stats> for WorkflowRegistry {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RegistryStats {
            events_emitted: self.out.events_emitted,
            webhooks_registered: self.out.webhooks.len(),
            webhooks_refused: self.out.webhooks.refused,
            active: self.active.len(),
            running: self
                .active
                .values()
                .filter(|a| a.st.wf.status == Status::Running)
                .count(),
            retained: self.retained.len(),
            sse_clients: self.out.bus.clients(),
            shutting_down: self.shutting_down,
            max_active: self.cfg.max_active,
        })
    }
}

//! The event logs of the last `RECENT_LOGS` workflows to finish. A client that
//! opens the event stream just after a fast workflow ended is served from here,
//! instead of waiting for the store to commit and reading it back; profiling the
//! end-to-end benchmark showed that wait on every short workflow. Bounded, so
//! memory per retained workflow stays the record alone.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::domain::Event;

const RECENT_LOGS: usize = 1024;

#[derive(Default)]
pub struct RecentLogs {
    logs: HashMap<String, Vec<Arc<Event>>>,
    order: VecDeque<String>,
}

impl RecentLogs {
    pub fn insert(&mut self, id: &str, events: Vec<Arc<Event>>) {
        if self.order.len() == RECENT_LOGS {
            if let Some(old) = self.order.pop_front() {
                self.logs.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.logs.insert(id.to_string(), events);
    }

    pub fn get(&self, id: &str) -> Option<&Vec<Arc<Event>>> {
        self.logs.get(id)
    }
}

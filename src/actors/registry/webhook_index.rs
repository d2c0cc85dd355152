//! Webhook subscriptions by workflow, and the global ones: which subscriptions
//! an event goes to.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::{Event, Subscription};

#[derive(Default)]
pub struct WebhookIndex {
    pub(super) subs: HashMap<String, Arc<Subscription>>,
    pub(super) by_workflow: HashMap<String, Vec<String>>,
    global: Vec<String>,
}

impl WebhookIndex {
    pub fn insert(&mut self, s: Arc<Subscription>) {
        match &s.workflow_id {
            Some(w) => self
                .by_workflow
                .entry(w.clone())
                .or_default()
                .push(s.id.clone()),
            None => self.global.push(s.id.clone()),
        }
        self.subs.insert(s.id.clone(), s);
    }

    pub fn remove(&mut self, id: &str) -> Option<Arc<Subscription>> {
        let s = self.subs.remove(id)?;
        match &s.workflow_id {
            Some(w) => {
                if let Some(v) = self.by_workflow.get_mut(w) {
                    v.retain(|x| x != id);
                    if v.is_empty() {
                        self.by_workflow.remove(w);
                    }
                }
            }
            None => self.global.retain(|x| x != id),
        }
        Some(s)
    }

    /// The ids of a workflow's own subscriptions to `url`.
    pub fn of_workflow_to(&self, workflow_id: &str, url: &str) -> Vec<String> {
        self.by_workflow
            .get(workflow_id)
            .into_iter()
            .flatten()
            .filter(|id| self.subs.get(*id).is_some_and(|s| s.url == url))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Subscription>> {
        self.subs.values()
    }

    pub fn matching(&self, ev: &Event) -> Vec<Arc<Subscription>> {
        let own = self.by_workflow.get(&ev.workflow_id).into_iter().flatten();
        own.chain(self.global.iter())
            .filter_map(|id| self.subs.get(id))
            .filter(|s| s.wants(ev.kind))
            .cloned()
            .collect()
    }
}

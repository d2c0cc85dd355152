//! Webhook subscriptions by workflow, and the global ones: which subscriptions
//! an event goes to, and their caps. At most `webhooks.max_subscriptions` in total,
//! each key's share of it (`auth.max_share`) per key, and
//! `webhooks.max_subscriptions_per_workflow` per workflow; a workflow's own
//! subscriptions close when it finishes and leave once every delivery made for
//! them is final, so the index never outgrows the caps.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::refusal::Refusal;
use crate::auth::Shares;
use crate::domain::{Event, Subscription};

pub struct WebhookIndex {
    pub(super) subs: HashMap<String, Arc<Subscription>>,
    pub(super) by_workflow: HashMap<String, Vec<String>>,
    global: Vec<String>,
    max_total: usize,
    max_per_workflow: usize,
    shares: Shares,
    /// Deliveries not yet final, per subscription.
    unfinished: HashMap<String, usize>,
    /// Subscriptions of finished workflows, waiting for their last delivery.
    closing: HashSet<String>,
    /// Subscriptions refused by the caps since start.
    pub refused: u64,
}

impl WebhookIndex {
    pub fn new(max_total: usize, max_per_workflow: usize, shares: Shares) -> WebhookIndex {
        WebhookIndex {
            shares,
            subs: HashMap::new(),
            by_workflow: HashMap::new(),
            global: Vec::new(),
            max_total,
            max_per_workflow,
            unfinished: HashMap::new(),
            closing: HashSet::new(),
            refused: 0,
        }
    }

    /// Room for one more subscription (of `workflow_id`, when given) registered
    /// by `owner`, or `Refusal::TooManyWebhooks` naming the cap reached.
    pub fn admit(&mut self, workflow_id: Option<&str>, owner: Option<&str>) -> Result<(), Refusal> {
        let own = workflow_id.map_or(0, |w| self.by_workflow.get(w).map_or(0, Vec::len));
        // A scan, at most max_total entries, only when one is registered.
        let by_owner = self
            .subs
            .values()
            .filter(|s| s.owner.as_deref() == owner)
            .count();
        let share = self.shares.limit(owner, self.max_total);
        let refusal = if self.subs.len() >= self.max_total {
            Some(Refusal::TooManyWebhooks {
                count: self.subs.len(),
                limit: self.max_total,
                setting: "webhooks.max_subscriptions",
                scope: "in total".into(),
            })
        } else if own >= self.max_per_workflow {
            Some(Refusal::TooManyWebhooks {
                count: own,
                limit: self.max_per_workflow,
                setting: "webhooks.max_subscriptions_per_workflow",
                scope: format!("for workflow '{}'", workflow_id.unwrap_or_default()),
            })
        } else if by_owner >= share {
            self.shares.refused(owner, "webhook_subscriptions");
            Some(Refusal::TooManyWebhooks {
                count: by_owner,
                limit: share,
                setting: "auth.max_share of webhooks.max_subscriptions",
                scope: Shares::scope(owner),
            })
        } else {
            None
        };
        match refusal {
            Some(e) => {
                self.refused += 1;
                Err(e)
            }
            None => Ok(()),
        }
    }

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

    /// Inserts the subscriptions not yet here (several instances: a claimed
    /// workflow's, read back from the store).
    pub fn insert_missing(&mut self, subs: Vec<Subscription>) {
        for s in subs {
            if !self.subs.contains_key(&s.id) {
                self.insert(Arc::new(s));
            }
        }
    }

    /// Makes the global subscriptions exactly `subs` (several instances: another
    /// instance added or removed one). The store already holds the change.
    pub fn sync_global(&mut self, subs: Vec<Subscription>) {
        let keep: HashSet<String> = subs.iter().map(|s| s.id.clone()).collect();
        // One added here moments ago may not be committed yet: it stays.
        let recent = crate::clock::now() - chrono::Duration::seconds(30);
        let gone: Vec<String> = self
            .global
            .iter()
            .filter(|id| !keep.contains(*id))
            .filter(|id| self.subs.get(*id).is_some_and(|s| s.created_at < recent))
            .cloned()
            .collect();
        for id in gone {
            self.remove(&id);
        }
        self.insert_missing(subs);
    }

    /// Forgets a workflow's subscriptions here without closing them (another
    /// instance runs it now).
    pub fn forget_workflow(&mut self, workflow_id: &str) {
        for id in self.by_workflow.remove(workflow_id).unwrap_or_default() {
            self.subs.remove(&id);
            self.closing.remove(&id);
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<Arc<Subscription>> {
        let s = self.subs.remove(id)?;
        self.closing.remove(id);
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

    /// A delivery was made for subscription `id`.
    pub fn delivery_made(&mut self, id: &str) {
        *self.unfinished.entry(id.to_string()).or_insert(0) += 1;
    }

    /// A delivery for subscription `id` became final; true when that was the
    /// last one of a closing subscription, which may now go.
    pub fn delivery_final(&mut self, id: &str) -> bool {
        if let Some(n) = self.unfinished.get_mut(id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unfinished.remove(id);
            }
        }
        self.closing.contains(id) && !self.unfinished.contains_key(id)
    }

    /// The workflow finished: its subscriptions close. Returns those that may go
    /// now (no delivery of theirs is pending); the rest go with their last one.
    pub fn close_workflow(&mut self, workflow_id: &str) -> Vec<String> {
        let ids = self
            .by_workflow
            .get(workflow_id)
            .cloned()
            .unwrap_or_default();
        self.closing.extend(ids.iter().cloned());
        ids.into_iter()
            .filter(|id| !self.unfinished.contains_key(id))
            .collect()
    }

    /// Workflows that own subscriptions.
    pub fn workflows(&self) -> Vec<String> {
        self.by_workflow.keys().cloned().collect()
    }

    pub fn secret(&self, id: &str) -> Option<String> {
        self.subs.get(id).map(|s| s.secret.clone())
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
            .filter(|id| !self.closing.contains(*id))
            .filter_map(|id| self.subs.get(id))
            .filter(|s| s.wants(ev.kind))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, wf: Option<&str>) -> Arc<Subscription> {
        Arc::new(Subscription {
            id: id.into(),
            workflow_id: wf.map(str::to_string),
            url: "https://example.com/h".into(),
            secret: "s3cret-xx".into(),
            events: Vec::new(),
            created_at: crate::clock::now(),
            owner: None,
        })
    }

    fn two_keys() -> Shares {
        let key = |name: &str| crate::config::KeyConfig {
            name: name.into(),
            sha256: "ab".repeat(32),
            scopes: vec![crate::config::Scope::Write],
            max_active: None,
            requests_per_second: None,
            burst: None,
            budget_usd_per_day: None,
            max_share: None,
        };
        Shares::new(&crate::config::AuthConfig {
            keys: vec![key("a"), key("b")],
            ..Default::default()
        })
    }

    #[test]
    fn a_key_registers_at_most_its_share() {
        let mut ix = WebhookIndex::new(4, 10, two_keys());
        for id in ["a1", "a2"] {
            ix.admit(Some("wf"), Some("a")).unwrap();
            let mut s = (*sub(id, Some("wf"))).clone();
            s.owner = Some("a".into());
            ix.insert(Arc::new(s));
        }
        let e = ix.admit(None, Some("a")).unwrap_err();
        assert!(
            matches!(e, Refusal::TooManyWebhooks { setting, .. }
                if setting.starts_with("auth.max_share")),
            "{e:?}"
        );
        ix.admit(None, Some("b")).unwrap();
    }

    #[test]
    fn caps_in_total_and_per_workflow() {
        let mut ix = WebhookIndex::new(3, 2, Shares::new(&Default::default()));
        for id in ["a", "b"] {
            ix.admit(Some("wf"), None).unwrap();
            ix.insert(sub(id, Some("wf")));
        }
        let e = ix.admit(Some("wf"), None).unwrap_err();
        assert!(
            matches!(
                e,
                Refusal::TooManyWebhooks {
                    setting: "webhooks.max_subscriptions_per_workflow",
                    ..
                }
            ),
            "{e:?}"
        );
        ix.admit(None, None).unwrap();
        ix.insert(sub("g", None));
        let e = ix.admit(Some("other"), None).unwrap_err();
        assert!(
            matches!(
                e,
                Refusal::TooManyWebhooks {
                    setting: "webhooks.max_subscriptions",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(ix.refused, 2);
    }

    #[test]
    fn a_finished_workflows_subscriptions_go_after_their_last_delivery() {
        let mut ix = WebhookIndex::new(10, 10, Shares::new(&Default::default()));
        ix.insert(sub("a", Some("wf")));
        ix.insert(sub("b", Some("wf")));
        ix.insert(sub("g", None));
        ix.delivery_made("a");
        ix.delivery_made("a");
        ix.delivery_made("g");
        assert_eq!(ix.close_workflow("wf"), vec!["b".to_string()]);
        assert!(
            !ix.delivery_final("a"),
            "one delivery of a is still pending"
        );
        assert!(ix.delivery_final("a"));
        assert!(!ix.delivery_final("g"), "global subscriptions never close");
    }
}

//! The Evictor keeps the retained (finished, in-memory) set within
//! `retention.max_completed` and `retention.max_age`, always retiring the smallest
//! `completed_at` first, never the shortest run (the old server's bug). The index
//! is ordered by `(completed_at, id)`: each eviction is O(log n).

use std::collections::BTreeSet;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use crate::actors::Publish;
use crate::domain::{ChangeKind, Workflow};

/// Ask the registry to drop these in-memory copies.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evict(pub Vec<String>);

/// Finished workflows ordered by completion time.
#[derive(Debug, Default)]
pub struct EvictionIndex {
    entries: BTreeSet<(i64, String)>,
}

impl EvictionIndex {
    pub fn insert(&mut self, completed_at: DateTime<Utc>, id: &str) {
        self.entries
            .insert((completed_at.timestamp_micros(), id.to_string()));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes earliest-completed entries until at most `max` remain.
    pub fn over_capacity(&mut self, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        while self.entries.len() > max {
            match self.entries.pop_first() {
                Some((_, id)) => out.push(id),
                None => break,
            }
        }
        out
    }

    /// Removes entries completed before `cutoff`.
    pub fn older_than(&mut self, cutoff: DateTime<Utc>) -> Vec<String> {
        let cutoff = cutoff.timestamp_micros();
        let mut out = Vec::new();
        while let Some((at, _)) = self.entries.first() {
            if *at >= cutoff {
                break;
            }
            if let Some((_, id)) = self.entries.pop_first() {
                out.push(id);
            }
        }
        out
    }
}

pub struct Evictor {
    index: EvictionIndex,
    max_completed: usize,
    max_age: Duration,
    registry: Recipient<Evict>,
}

impl Evictor {
    pub fn new(
        registry: Recipient<Evict>,
        max_completed: usize,
        max_age: Duration,
        restored: &[Workflow],
    ) -> Evictor {
        let mut index = EvictionIndex::default();
        for wf in restored {
            if let Some(at) = wf.completed_at {
                index.insert(at, &wf.id);
            }
        }
        Evictor {
            index,
            max_completed,
            max_age,
            registry,
        }
    }

    fn enforce(&mut self) {
        let age = chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::MAX);
        let mut ids = self.index.older_than(Utc::now() - age);
        ids.extend(self.index.over_capacity(self.max_completed));
        if !ids.is_empty() {
            tracing::debug!(count = ids.len(), "evicting finished workflows from memory");
            self.registry.do_send(Evict(ids));
        }
    }
}

impl Actor for Evictor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick = (self.max_age / 10).clamp(Duration::from_millis(100), Duration::from_secs(10));
        ctx.run_interval(tick, |act, _| act.enforce());
        self.enforce();
    }
}

impl Handler<Publish> for Evictor {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        let mut finished = false;
        for change in msg.0.iter() {
            if let ChangeKind::Workflow(wf) = &change.kind {
                if let (true, Some(at)) = (wf.status.is_terminal(), wf.completed_at) {
                    self.index.insert(at, &wf.id);
                    finished = true;
                }
            }
        }
        if finished {
            self.enforce();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    #[test]
    fn evicts_earliest_completed_first() {
        let mut idx = EvictionIndex::default();
        // Inserted out of order; completion time alone decides.
        idx.insert(t(30), "c");
        idx.insert(t(10), "a");
        idx.insert(t(20), "b");
        idx.insert(t(40), "d");
        assert_eq!(idx.over_capacity(2), vec!["a", "b"]);
        assert_eq!(idx.len(), 2);
        assert!(idx.over_capacity(2).is_empty());
    }

    #[test]
    fn same_completion_time_orders_by_id_and_dedups() {
        let mut idx = EvictionIndex::default();
        idx.insert(t(5), "y");
        idx.insert(t(5), "x");
        idx.insert(t(5), "x");
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.over_capacity(1), vec!["x"]);
    }

    #[test]
    fn age_cutoff_is_exclusive() {
        let mut idx = EvictionIndex::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            idx.insert(t(i as i64 * 10), id);
        }
        assert_eq!(idx.older_than(t(10)), vec!["a"]);
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn many_entries_evict_in_order() {
        let mut idx = EvictionIndex::default();
        for i in (0..200_000i64).rev() {
            idx.insert(t(i), &format!("wf{i:07}"));
        }
        let out = idx.over_capacity(199_990);
        let want: Vec<String> = (0..10).map(|i| format!("wf{i:07}")).collect();
        assert_eq!(out, want);
    }
}

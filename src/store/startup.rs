//! What start-up restores into memory, and the part of reading it that is the
//! same on every backend: the completion cutoff from `max_age`, grouping events
//! under their active workflow, and the manifest built from raw rows.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Event, Status, StepRecord, Workflow};

/// An unfinished workflow and its event log, for resuming after a restart.
#[derive(Debug, Clone)]
pub struct StoredActive {
    pub workflow: Workflow,
    pub events: Vec<Event>,
    /// Its committed step answers (from the primary store, whatever the source
    /// of the rest).
    pub steps: Vec<StepRecord>,
}

/// What start-up restores into memory.
#[derive(Debug, Default)]
pub struct Startup {
    pub active: Vec<StoredActive>,
    /// Newest-completed first, at most `retention.max_completed`.
    pub retained: Vec<Workflow>,
}

impl Startup {
    /// The active workflows, each with its events (`events` holds every active
    /// workflow's, each one's in seq order), and the retained ones.
    pub fn assemble(active: Vec<Workflow>, events: Vec<Event>, retained: Vec<Workflow>) -> Startup {
        let mut by_id: HashMap<String, Vec<Event>> = HashMap::new();
        for ev in events {
            by_id.entry(ev.workflow_id.clone()).or_default().push(ev);
        }
        let active = active
            .into_iter()
            .map(|workflow| StoredActive {
                events: by_id.remove(&workflow.id).unwrap_or_default(),
                workflow,
                steps: Vec::new(),
            })
            .collect();
        Startup { active, retained }
    }
}

/// The oldest completion start-up retains: `max_age` ago (no bound in practice
/// when `max_age` is too large to subtract).
pub fn retained_since(max_age: Duration) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(36500))
}

/// The identity of what `load_startup` returns, cheap to compute: start-up
/// compares it with what Redis holds to decide whether Redis can be the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// (id, status, number of events, last event seq), sorted by id.
    pub active: Vec<(String, Status, usize, u64)>,
    /// (id, status), sorted by id.
    pub retained: Vec<(String, Status)>,
}

impl Manifest {
    pub fn of(s: &Startup) -> Manifest {
        let active = s
            .active
            .iter()
            .map(|a| {
                let last = a.events.last().map_or(0, |e| e.seq);
                (
                    a.workflow.id.clone(),
                    a.workflow.status,
                    a.events.len(),
                    last,
                )
            })
            .collect();
        let retained = s
            .retained
            .iter()
            .map(|w| (w.id.clone(), w.status))
            .collect();
        Manifest::sorted(active, retained)
    }

    /// From the rows of a store's manifest queries: active (id, status, number
    /// of events, last seq) and retained (id, status), with the status as stored.
    pub fn from_rows(
        active: Vec<(String, String, i64, i64)>,
        retained: Vec<(String, String)>,
    ) -> Result<Manifest, StoreError> {
        let active = active
            .into_iter()
            .map(|(id, s, n, last)| Ok((id, stored_status(s)?, n as usize, last as u64)))
            .collect::<Result<_, StoreError>>()?;
        let retained = retained
            .into_iter()
            .map(|(id, s)| Ok((id, stored_status(s)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Manifest::sorted(active, retained))
    }

    /// Both lists in byte order of the id (database collations may differ).
    fn sorted(
        mut active: Vec<(String, Status, usize, u64)>,
        mut retained: Vec<(String, Status)>,
    ) -> Manifest {
        active.sort_by(|a, b| a.0.cmp(&b.0));
        retained.sort_by(|a, b| a.0.cmp(&b.0));
        Manifest { active, retained }
    }
}

fn stored_status(s: String) -> Result<Status, StoreError> {
    Status::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("status '{s}'")))
}

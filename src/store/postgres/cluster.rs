//! Reads the cluster needs from the store: the unfinished workflows it just
//! claimed (to resume them), and the webhook subscriptions that go with them.

use std::collections::HashMap;

use super::PgStore;
use crate::domain::{Event, Subscription, Workflow};
use crate::store::{Store, StoreError, StoredActive};

impl PgStore {
    /// The claimed workflows that are still unfinished, with their event logs and
    /// committed steps; and the ids of those that are finished or were never
    /// stored (their leases are stale).
    pub async fn load_active(
        &self,
        ids: &[String],
    ) -> Result<(Vec<StoredActive>, Vec<String>), StoreError> {
        let found: Vec<Workflow> = self
            .records(
                "SELECT record::text FROM workflows WHERE id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await?;
        let mut gone: Vec<String> = ids
            .iter()
            .filter(|id| found.iter().all(|w| &w.id != *id))
            .cloned()
            .collect();
        let (active, finished): (Vec<Workflow>, Vec<Workflow>) =
            found.into_iter().partition(|w| !w.status.is_terminal());
        gone.extend(finished.into_iter().map(|w| w.id));
        let live: Vec<String> = active.iter().map(|w| w.id.clone()).collect();
        let mut events: HashMap<String, Vec<Event>> = HashMap::new();
        for ev in self.events_of(&live, 0).await? {
            events.entry(ev.workflow_id.clone()).or_default().push(ev);
        }
        let mut steps: HashMap<String, Vec<_>> = HashMap::new();
        for s in self.steps_of(&live).await? {
            steps.entry(s.workflow_id.clone()).or_default().push(s);
        }
        let active = active
            .into_iter()
            .map(|workflow| StoredActive {
                events: events.remove(&workflow.id).unwrap_or_default(),
                steps: steps.remove(&workflow.id).unwrap_or_default(),
                workflow,
            })
            .collect();
        Ok((active, gone))
    }

    /// Subscriptions of these workflows, and those with these ids.
    pub async fn subscriptions(
        &self,
        workflow_ids: &[String],
        ids: &[String],
    ) -> Result<Vec<Subscription>, StoreError> {
        self.records(
            "SELECT record::text FROM webhooks WHERE workflow_id = ANY($1) OR id = ANY($2)
             ORDER BY created_at",
            &[&workflow_ids, &ids],
        )
        .await
    }

    /// The global subscriptions (no workflow).
    pub async fn global_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.records(
            "SELECT record::text FROM webhooks WHERE workflow_id IS NULL ORDER BY created_at",
            &[],
        )
        .await
    }
}

//! One archive pass: batches of candidates, each workflow written and verified,
//! then one store transaction per batch keeps summary rows and drops the rest.
//!
//! Crash-safe by order: nothing leaves the store before its object is verified,
//! and the object's key is fixed by the workflow, so a pass killed anywhere leaves
//! either an unreferenced object (rewritten by the next pass) or a committed
//! batch. A workflow is never half archived.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::object::{ArchivedDocument, ObjectError};
use super::{Archive, ArchiveError, ArchivedWorkflow};
use crate::store::{Space, Store};

/// Objects written at once.
const PARALLEL: usize = 8;

#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    pub dry_run: bool,
    /// Eligible workflows found (for a dry run: all of them).
    pub candidates: u64,
    pub archived: u64,
    /// Compressed bytes written to the archive.
    pub bytes: u64,
    pub seconds: f64,
    pub space_before: Space,
    pub space_after: Space,
    /// Why the pass stopped early; the next pass retries.
    pub error: Option<String>,
    /// The workflows this pass archived: a running server drops its in-memory
    /// copies, so every read of them goes through the archive.
    #[serde(skip)]
    pub archived_ids: Vec<String>,
}

impl PassReport {
    pub fn workflows_per_second(&self) -> f64 {
        self.archived as f64 / self.seconds.max(1e-9)
    }
}

/// Runs one pass over workflows finished more than `older_than` ago.
pub async fn run(
    store: &Arc<dyn Store>,
    archive: &Archive,
    older_than: Duration,
    batch: usize,
    dry_run: bool,
) -> PassReport {
    let t0 = Instant::now();
    let before = chrono::Duration::from_std(older_than)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let mut report = PassReport {
        dry_run,
        ..Default::default()
    };
    match store.space().await {
        Ok(s) => report.space_before = s,
        Err(e) => report.error = Some(format!("store: {e}")),
    }
    if dry_run {
        match store.count_archive_candidates(before).await {
            Ok(n) => report.candidates = n,
            Err(e) => report.error = Some(format!("store: {e}")),
        }
        report.space_after = report.space_before.clone();
        report.seconds = t0.elapsed().as_secs_f64();
        return report;
    }
    while report.error.is_none() {
        let ids = match store.archive_candidates(before, batch).await {
            Ok(ids) if ids.is_empty() => break,
            Ok(ids) => ids,
            Err(e) => {
                report.error = Some(format!("store: {e}"));
                break;
            }
        };
        report.candidates += ids.len() as u64;
        let results: Vec<Result<(String, String, u64), PassError>> = stream::iter(ids)
            .map(|id| archive_one(store, archive, id))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut done = Vec::new();
        for r in results {
            match r {
                Ok((id, key, n)) => {
                    report.bytes += n;
                    done.push((id, key));
                }
                Err(e) => {
                    report.error.get_or_insert(e.to_string());
                }
            }
        }
        if done.is_empty() {
            report
                .error
                .get_or_insert("no workflow could be archived".into());
            break;
        }
        // Verified objects only: their rows go now, even if others failed.
        let ids: Vec<String> = done.iter().map(|(id, _)| id.clone()).collect();
        match store.mark_archived(done).await {
            Ok(0) => report.error = Some("store: no workflow was marked archived".into()),
            Ok(n) => {
                report.archived += n as u64;
                report.archived_ids.extend(ids);
            }
            Err(e) => report.error = Some(format!("store: {e}")),
        }
    }
    if report.archived > 0 {
        match store.reclaim().await {
            Ok(s) => report.space_after = s,
            Err(e) => {
                report.error.get_or_insert(format!("store: {e}"));
            }
        }
    } else {
        report.space_after = report.space_before.clone();
    }
    report.seconds = t0.elapsed().as_secs_f64();
    report
}

/// Why one workflow could not be archived (the pass reports the first).
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("encoding '{key}': {source}")]
    Encode { key: String, source: ObjectError },
    #[error("{0}")]
    Put(#[from] ArchiveError),
}

/// Writes and verifies one workflow's object: (id, key, compressed bytes).
async fn archive_one(
    store: &Arc<dyn Store>,
    archive: &Archive,
    id: String,
) -> Result<(String, String, u64), PassError> {
    let read = async {
        let workflow = store.get_workflow(&id).await?.ok_or_else(|| {
            crate::store::StoreError::Corrupt(format!("workflow '{id}' vanished"))
        })?;
        let result = store.get_result(&id).await?;
        let events = store.events_after(&id, 0).await?;
        let deliveries = store.deliveries_for(&id).await?;
        let documents = store.documents(&id, None).await?;
        Ok::<_, crate::store::StoreError>(ArchivedWorkflow {
            format: super::object::FORMAT,
            workflow,
            result,
            events,
            deliveries,
            documents: documents.iter().map(ArchivedDocument::of).collect(),
        })
    };
    let doc = read.await?;
    let key = Archive::key_for(&doc.workflow);
    let bytes = tokio::task::spawn_blocking(move || doc.encode())
        .await?
        .map_err(|source| PassError::Encode {
            key: key.clone(),
            source,
        })?;
    let n = bytes.len() as u64;
    archive.put_verified(&key, &id, bytes).await?;
    Ok((id, key, n))
}

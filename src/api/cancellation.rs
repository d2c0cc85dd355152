//! Cancelling a workflow, shared by `POST /v1/workflows/{id}/cancel`, MCP and the
//! old routes: here through the registry, or, when another instance runs it, by
//! a durable request to that instance.

use std::sync::Arc;

use super::shared::{check_visible, find};
use crate::actors::registry::{Cancel, CancelOutcome};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::{Status, Workflow};
use crate::error::ApiError;
use crate::AppState;

/// Cancels a pending or running workflow this caller may act on (`write` scope);
/// `already_finished` otherwise. Shared by `POST /v1/workflows/{id}/cancel` and MCP.
pub async fn cancel_workflow(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Arc<Workflow>, ApiError> {
    caller.require(Scope::Write)?;
    check_visible(state, caller, id).await?;
    match state.registry.send(Cancel(id.to_string())).await? {
        CancelOutcome::Cancelled { workflow, seq } => {
            state.acknowledge(seq).await?;
            Ok(workflow)
        }
        CancelOutcome::AlreadyFinished(wf) => Err(already_finished(&wf)),
        CancelOutcome::Unknown => {
            let (wf, _) = find(state, id).await?;
            match &state.cluster {
                Some(c) if !wf.status.is_terminal() => cancel_elsewhere(state, c, wf).await,
                _ => Err(already_finished(&wf)),
            }
        }
    }
}

/// The workflow runs on another instance: ask its owner (a durable request and
/// a NOTIFY) and wait, at most the ack timeout, until the store shows it
/// finished. Still unfinished then: the request stands and the workflow is
/// returned as it is (the v1 route answers 202).
async fn cancel_elsewhere(
    state: &AppState,
    c: &crate::ClusterHandle,
    wf: Arc<Workflow>,
) -> Result<Arc<Workflow>, ApiError> {
    let unavailable = |e: crate::store::StoreError| ApiError::StoreUnavailable(e.to_string());
    c.cluster
        .request_cancel(&wf.id)
        .await
        .map_err(unavailable)?;
    let deadline = std::time::Instant::now() + state.config.ack_timeout();
    let mut last = wf;
    while std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        if let Some(now) = state
            .store
            .get_workflow(&last.id)
            .await
            .map_err(unavailable)?
        {
            last = Arc::new(now);
        }
        match last.status {
            Status::Cancelled => return Ok(last),
            s if s.is_terminal() => return Err(already_finished(&last)),
            _ => {}
        }
    }
    Ok(last)
}

fn already_finished(wf: &Workflow) -> ApiError {
    ApiError::AlreadyFinished {
        id: wf.id.clone(),
        status: wf.status.to_string(),
    }
}

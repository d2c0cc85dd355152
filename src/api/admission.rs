//! Admission of a validated workflow, shared by `POST /v1/workflows`, the old
//! `/tools/orchestrate_*` routes and MCP: the caller's scope and ownership, the
//! `Idempotency-Key`, admission across instances (with PostgreSQL), the registry's
//! `Create`, and the acknowledgement once the store committed it.

use std::sync::Arc;

use actix_web::HttpRequest;

use crate::actors::registry::{new_workflow_id, Create, Created, NewWorkflow};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::Workflow;
use crate::error::ApiError;
use crate::idempotency::{self, Begin};
use crate::AppState;

use super::shared::find;

pub enum Admitted {
    New(Arc<Workflow>),
    /// An earlier request with the same `Idempotency-Key` created it.
    Replayed(Arc<Workflow>),
}

impl Admitted {
    /// The workflow, and whether it is a replay.
    pub fn into_parts(self) -> (Arc<Workflow>, bool) {
        match self {
            Admitted::New(wf) => (wf, false),
            Admitted::Replayed(wf) => (wf, true),
        }
    }
}

/// Creates the (validated) workflow and acknowledges it (sync durability), or, for a retry
/// with the same `Idempotency-Key`, finds the one the first request created.
/// Shared by `/v1` and the old `/tools/orchestrate_*` routes.
pub async fn admit_keyed(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    route: &str,
    raw: &[u8],
    mut new: NewWorkflow,
) -> Result<Admitted, ApiError> {
    caller.require(Scope::Write)?;
    new.request_id = super::middleware::current_request_id();
    new.owner = caller.owner();
    let scope = new.owner.as_deref().unwrap_or("");
    let claim = match idempotency::begin_for(state, req, scope, route, raw).await? {
        None => None,
        Some(Begin::Create(claim)) => Some(claim),
        Some(Begin::Replay { workflow_id, seq }) => {
            // A replay answers like the original would have: only once durable.
            if let Some(seq) = seq {
                state.acknowledge(seq).await?;
            }
            let (wf, _) = find(state, &workflow_id).await?;
            return Ok(Admitted::Replayed(wf));
        }
    };
    new.idempotency = claim.as_ref().map(|c| c.record());
    let created = hand_to_registry(state, new).await?;
    if let Some(c) = claim {
        // From here a retry finds this workflow, even if the ack below fails.
        c.finish(created.workflow.id.clone(), created.seq);
    }
    state.acknowledge(created.seq).await?;
    let wf = created.workflow;
    tracing::info!(workflow_id = %wf.id, pattern = wf.pattern.as_str(), "workflow created");
    Ok(Admitted::New(wf))
}

/// Admits a validated workflow owned by the caller (`write` scope) and, with sync
/// durability, waits for the store. Shared by `POST /v1/workflows` and MCP.
pub async fn admit(
    state: &AppState,
    caller: &Caller,
    mut new: NewWorkflow,
) -> Result<Arc<Workflow>, ApiError> {
    caller.require(Scope::Write)?;
    new.owner = caller.owner();
    let created = hand_to_registry(state, new).await?;
    state.acknowledge(created.seq).await?;
    let wf = created.workflow;
    tracing::info!(workflow_id = %wf.id, pattern = wf.pattern.as_str(), "workflow created");
    Ok(wf)
}

/// Hands the workflow to the registry. With several instances it is first
/// admitted across all of them (one PostgreSQL transaction that also leases it
/// to this instance); the lease is given back if the registry refuses it.
async fn hand_to_registry(state: &AppState, mut new: NewWorkflow) -> Result<Created, ApiError> {
    let Some(c) = &state.cluster else {
        return state.registry.send(Create(new)).await?;
    };
    let id = new_workflow_id();
    let owner = new.owner.clone();
    let key_limit = owner.as_deref().and_then(|o| state.ledger.max_active(o));
    let limits = &state.config.limits;
    c.cluster
        .admit(
            &id,
            owner.as_deref(),
            limits.max_active,
            key_limit,
            limits.retry_after.as_secs().max(1),
        )
        .await?;
    new.id = Some(id.clone());
    let created = state.registry.send(Create(new)).await;
    if !matches!(created, Ok(Ok(_))) {
        c.cluster.release(&id).await;
    }
    created?
}

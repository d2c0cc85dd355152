//! Admission of a validated workflow, shared by `POST /v1/workflows`, the old
//! `/tools/orchestrate_*` routes and MCP: the caller's scope and ownership, the
//! `Idempotency-Key`, admission across instances (with PostgreSQL), the registry's
//! `Create`, and the acknowledgement once the store committed it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;

use crate::actors::registry::{new_workflow_id, Create, Created, NewWorkflow};
use crate::auth::Caller;
use crate::cluster::keys::KeyClaim;
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
    let created = match hand_to_registry(state, new).await? {
        Handed::Created(created) => created,
        // Another instance's request with this key won: its workflow answers.
        Handed::Replay(workflow_id) => {
            let (wf, _) = find(state, &workflow_id).await?;
            return Ok(Admitted::Replayed(wf));
        }
    };
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
    new.idempotency = None;
    let Handed::Created(created) = hand_to_registry(state, new).await? else {
        return Err(ApiError::Internal(
            "a create without a key was replayed".into(),
        ));
    };
    state.acknowledge(created.seq).await?;
    let wf = created.workflow;
    tracing::info!(workflow_id = %wf.id, pattern = wf.pattern.as_str(), "workflow created");
    Ok(wf)
}

/// What `hand_to_registry` did.
enum Handed {
    Created(Created),
    /// Several instances: another request with the same `Idempotency-Key` (and
    /// the same body) created this workflow.
    Replay(String),
}

/// Hands the workflow to the registry. With several instances it is first
/// admitted across all of them (one PostgreSQL transaction that also leases it
/// to this instance), and its `Idempotency-Key`, if any, is claimed in the
/// database, so one key creates one workflow whichever instances its requests
/// reach (`cluster/keys.rs`); the lease and the key are given back if the
/// registry refuses it.
async fn hand_to_registry(state: &AppState, mut new: NewWorkflow) -> Result<Handed, ApiError> {
    let Some(c) = &state.cluster else {
        return Ok(Handed::Created(state.registry.send(Create(new)).await??));
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
    if let Some(rec) = new.idempotency.as_mut() {
        rec.workflow_id = id.clone();
        let ttl = chrono::Duration::from_std(state.config.idempotency.ttl)
            .unwrap_or(chrono::Duration::days(1));
        match c.cluster.claim_key(rec, rec.created_at - ttl).await {
            Ok(KeyClaim::Mine) => {}
            Ok(KeyClaim::Taken {
                request_hash,
                workflow_id,
            }) => {
                c.cluster.release(&id).await;
                if request_hash != rec.request_hash {
                    return Err(ApiError::IdempotencyConflict(rec.key.clone()));
                }
                wait_stored(state, &rec.key, &workflow_id).await?;
                return Ok(Handed::Replay(workflow_id));
            }
            Err(e) => {
                c.cluster.release(&id).await;
                return Err(ApiError::StoreUnavailable(e.to_string()));
            }
        }
    }
    new.id = Some(id.clone());
    let key = new.idempotency.clone();
    let created = state.registry.send(Create(new)).await;
    if !matches!(created, Ok(Ok(_))) {
        c.cluster.release(&id).await;
        if let Some(k) = &key {
            c.cluster.release_key(k).await;
        }
    }
    Ok(Handed::Created(created??))
}

/// Waits (at most the acknowledgement timeout) until the workflow another
/// request's key names is stored; 409 `idempotency_in_progress` if it is not yet.
async fn wait_stored(state: &AppState, key: &str, workflow_id: &str) -> Result<(), ApiError> {
    let deadline = Instant::now() + state.config.ack_timeout();
    loop {
        if state.store.get_workflow(workflow_id).await?.is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ApiError::IdempotencyInProgress(key.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

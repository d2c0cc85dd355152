//! Reading a workflow and its result as a caller may see them (`read` scope,
//! another key's is "not found"), from memory, the store or the archive: shared
//! by the `/v1/workflows` routes, the documents routes and MCP.

use std::sync::Arc;

use super::shared::{find_content_for, Found, ServedFrom};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::{Workflow, WorkflowResult};
use crate::error::ApiError;
use crate::AppState;

/// A workflow as this caller may read it (`read` scope). Shared by
/// `GET /v1/workflows/{id}` and MCP.
pub async fn read_workflow(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Arc<Workflow>, ServedFrom), ApiError> {
    caller.require(Scope::Read)?;
    let found = find_content_for(state, caller, id).await?;
    Ok((found.wf, found.from))
}

/// A finished workflow's result as this caller may see it (`read` scope);
/// `not_finished` while it runs. Shared by `GET /v1/workflows/{id}/result` and MCP.
pub async fn load_result(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<WorkflowResult, ApiError> {
    load_result_found(state, caller, id).await.map(|(r, _)| r)
}

/// `load_result`, with the workflow as found (its archive object, if archived).
pub async fn load_result_found(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(WorkflowResult, Found), ApiError> {
    caller.require(Scope::Read)?;
    let found = find_content_for(state, caller, id).await?;
    let wf = &found.wf;
    if !wf.status.is_terminal() {
        return Err(ApiError::NotFinished(wf.id.clone()));
    }
    let stored = match &found.archived {
        Some(a) => a.result.clone(),
        None => {
            state.read_barrier().await;
            state.store.get_result(&wf.id).await?
        }
    };
    match stored {
        Some(r) => Ok((r, found)),
        None => Err(ApiError::Internal(format!(
            "the result of '{}' is missing from the store",
            wf.id
        ))),
    }
}

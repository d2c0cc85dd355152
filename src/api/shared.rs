//! What the route modules share, in one place: the 405/404 answers, finding a
//! workflow as a caller may see it, and the helpers of the event stream and of the
//! old API's error shape (defined beside their routes, re-exported here) so route
//! modules import each other only through this module.

use std::sync::Arc;

use actix_web::{web, HttpRequest};

pub use super::compat::CompatError;
pub use super::events::{last_event_id, open, sse_response};
use crate::actors::registry::Get;
use crate::auth::Caller;
use crate::domain::Workflow;
use crate::error::ApiError;
use crate::AppState;

/// The default of a resource: a known path with a method it does not take → 405.
pub fn allow_only(allowed: &'static str) -> actix_web::Route {
    web::route().to(move |req: HttpRequest| async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allowed: allowed.to_string(),
        })
    })
}

/// JSON 404 for every path no route matches.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound(format!(
        "{} {}",
        req.method(),
        req.path()
    )))
}

/// Finds a workflow in memory, else in the store. Says where it came from.
pub async fn find(state: &AppState, id: &str) -> Result<(Arc<Workflow>, &'static str), ApiError> {
    if let Some(wf) = state.registry.send(Get(id.to_string())).await? {
        return Ok((wf, "memory"));
    }
    state.read_barrier().await;
    match state.store.get_workflow(id).await? {
        Some(wf) => Ok((Arc::new(wf), "store")),
        None => Err(ApiError::WorkflowNotFound(id.to_string())),
    }
}

/// `find`, as this caller may see it: another key's workflow is "not found", so
/// its existence does not leak.
pub async fn find_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Arc<Workflow>, &'static str), ApiError> {
    let (wf, from) = find(state, id).await?;
    if caller.may_see(wf.owner.as_deref()) {
        Ok((wf, from))
    } else {
        Err(ApiError::WorkflowNotFound(id.to_string()))
    }
}

/// For actions by id (cancel, stream): admin may act on anything; any other key
/// only on a workflow it can see.
pub async fn check_visible(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    if !caller.is_admin() {
        find_for(state, caller, id).await?;
    }
    Ok(())
}

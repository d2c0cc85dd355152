//! What the route modules share, in one place: the 405/404 answers, finding a
//! workflow as a caller may see it (an archived one with its archive object), and
//! the helpers of the event stream and of the old API's error shape (defined beside their routes, re-exported here) so route
//! modules import each other only through this module.

use std::sync::Arc;

use actix_web::http::header::{HeaderValue, InvalidHeaderValue, TryIntoHeaderValue};
use actix_web::{web, HttpRequest};

pub use super::compat::CompatError;
pub use super::events::{last_event_id, open, sse_response};
use crate::actors::registry::Get;
use crate::archive::ArchivedWorkflow;
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

/// Where a read was served from: the `X-Served-From` header of the content routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedFrom {
    /// The registry's memory (a workflow still held there).
    Memory,
    /// The primary store (evicted from memory).
    Store,
    /// The workflow's archive object.
    Archive,
}

impl ServedFrom {
    /// The header's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ServedFrom::Memory => "memory",
            ServedFrom::Store => "store",
            ServedFrom::Archive => "archive",
        }
    }
}

impl TryIntoHeaderValue for ServedFrom {
    type Error = InvalidHeaderValue;

    fn try_into_value(self) -> Result<HeaderValue, Self::Error> {
        Ok(HeaderValue::from_static(self.as_str()))
    }
}

/// Finds a workflow in memory, else in the store. Says where it came from.
pub async fn find(state: &AppState, id: &str) -> Result<(Arc<Workflow>, ServedFrom), ApiError> {
    if let Some(wf) = state.registry.send(Get(id.to_string())).await? {
        return Ok((wf, ServedFrom::Memory));
    }
    state.read_barrier().await;
    match state.store.get_workflow(id).await? {
        Some(wf) => Ok((Arc::new(wf), ServedFrom::Store)),
        None => Err(ApiError::WorkflowNotFound(id.to_string())),
    }
}

/// `find`, as this caller may see it: another key's workflow is "not found", so
/// its existence does not leak.
pub async fn find_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Arc<Workflow>, ServedFrom), ApiError> {
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

/// A workflow as the content routes serve it: an archived one comes whole from
/// its archive object (record, result, events, deliveries).
pub struct Found {
    pub wf: Arc<Workflow>,
    pub from: ServedFrom,
    pub archived: Option<Arc<ArchivedWorkflow>>,
}

pub async fn find_content(state: &AppState, id: &str) -> Result<Found, ApiError> {
    let (wf, from) = find(state, id).await?;
    with_archive(state, wf, from).await
}

/// An archived workflow's object, read when the record came from the store.
async fn with_archive(
    state: &AppState,
    wf: Arc<Workflow>,
    from: ServedFrom,
) -> Result<Found, ApiError> {
    if from == ServedFrom::Memory {
        return Ok(Found {
            wf,
            from,
            archived: None,
        });
    }
    match state.store.archive_key(&wf.id).await? {
        None => Ok(Found {
            wf,
            from,
            archived: None,
        }),
        Some(key) => {
            let a = state
                .archive
                .read(&key)
                .await
                .map_err(|e| ApiError::ArchiveUnavailable {
                    id: wf.id.clone(),
                    key: key.clone(),
                    reason: e.reason(),
                })?;
            Ok(Found {
                wf: Arc::new(a.workflow.clone()),
                from: ServedFrom::Archive,
                archived: Some(a),
            })
        }
    }
}

/// `find_content`, as this caller may see it (see `find_for`): visibility is
/// decided on the summary record, before the archive is read.
pub async fn find_content_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Found, ApiError> {
    let (wf, from) = find_for(state, caller, id).await?;
    with_archive(state, wf, from).await
}

/// `allow_only` with a list made at start-up (from the OpenAPI annotations).
pub fn allow_only_owned(allowed: String) -> actix_web::Route {
    web::route().to(move |req: HttpRequest| {
        let allowed = allowed.clone();
        async move {
            Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allowed,
            })
        }
    })
}

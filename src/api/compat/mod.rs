//! The old Python server's API, kept working for existing clients:
//! `POST /tools/{orchestrate_research, orchestrate_search, get_orchestration_status,
//! cancel_orchestration, list_orchestrator_patterns}`, `GET /stream/{task_id}` and
//! `GET /`, with the old request fields, response shapes and status codes. Errors
//! are `{"success": false, "error": "..."}`. Unknown request fields are ignored, as
//! the old server did. Everything runs through the same registry as `/v1`.

mod request;
mod shapes;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use utoipa_actix_web::service_config::ServiceConfig;

use super::body::read_json;
use super::limits::{check_config, text_at_most, MAX_TITLE_CHARS, MAX_URL_CHARS};
use super::openapi::{AnyObject, CompatErrorBody, Doc};
use super::responses::{OldCreateRefusals, OldTaskErrors};
use super::shared::{check_visible, find_content_for};
use super::shared::{last_event_id, open, sse_response};
use crate::actors::registry::{NewWorkflow, WebhookSpec};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::bounds::{
    CONCURRENT_AGENTS, RESEARCH_AGENTS, SEARCH_AGENTS, SYNTHESIS_GROUP_SIZE, TOOL_ROUNDS,
};
use crate::domain::{PatternConfig, ResearchConfig, SearchConfig, Status, Workflow, AGENT_TYPES};
use crate::error::ApiError;
use crate::events::webhooks::new_secret;
use crate::idempotency::keyed_body;
use crate::AppState;
pub use request::detect_agent_types;
use request::{bounded, old_field, required, sent_within_limit, with_context};
use shapes::{
    __path_list_patterns, __path_root, list_patterns, old_frame, old_result, old_stage, root,
    started,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_orchestrate_research, _, _>(orchestrate_research))
        .service(Doc::new().to::<__path_orchestrate_search, _, _>(orchestrate_search))
        .service(Doc::new().to::<__path_get_status, _, _>(get_status))
        .service(Doc::new().to::<__path_cancel, _, _>(cancel))
        .service(Doc::new().to::<__path_list_patterns, _, _>(list_patterns))
        .service(Doc::new().to::<__path_stream, _, _>(stream))
        .service(Doc::new().to::<__path_root, _, _>(root));
}

pub use crate::error::CompatError;

type Reply = Result<HttpResponse, CompatError>;

async fn body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    payload: web::Payload,
) -> Result<T, CompatError> {
    Ok(read_json(payload, &state.config.server, None).await?)
}

/// Admits a workflow and acknowledges it like `/v1` does, `Idempotency-Key`
/// included; also says whether it is a replay (which shows no new secret).
async fn admit(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    raw: &[u8],
    new: NewWorkflow,
) -> Result<(std::sync::Arc<Workflow>, bool), CompatError> {
    check_config(&state.config, &new.config).map_err(|e| match e {
        ApiError::Validation { field, message } => {
            let old = old_field(new.pattern, &field);
            ApiError::validation(old, message.replace(&field, old))
        }
        other => other,
    })?;
    let admitted = super::workflows::admit_keyed(state, caller, req, req.path(), raw, new).await?;
    Ok(admitted.into_parts())
}

/// The old `webhook_url` parameter: a per-workflow webhook with a generated secret
/// (returned once as `webhook_secret`), checked by the SSRF guard.
async fn webhook(
    state: &AppState,
    url: &Option<String>,
) -> Result<Option<WebhookSpec>, CompatError> {
    let Some(url) = url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    text_at_most("webhook_url", url, MAX_URL_CHARS)?;
    state
        .guard
        .check(url)
        .await
        .map_err(|e| ApiError::validation("webhook_url", format!("Invalid webhook_url: {e}")))?;
    Ok(Some(WebhookSpec {
        url: url.to_string(),
        secret: new_secret(),
        events: Vec::new(),
    }))
}

#[derive(Deserialize)]
struct ResearchBody {
    task: Option<String>,
    title: Option<String>,
    num_agents: Option<f64>,
    enable_synthesis: Option<bool>,
    synthesis_group_size: Option<f64>,
    primary_model: Option<String>,
    agent_model: Option<String>,
    belter_timeout: Option<f64>,
    drummer_timeout: Option<f64>,
    camina_timeout: Option<f64>,
    parallel_execution: Option<bool>,
    max_concurrent_agents: Option<f64>,
    context: Option<Value>,
    webhook_url: Option<String>,
    provider: Option<String>,
    tools: Option<Vec<String>>,
    max_tool_rounds: Option<f64>,
    document_formats: Option<Vec<String>>,
}

/// `max_concurrent_agents` (default 10), or 1 when `parallel_execution` is
/// false. Checked even when unused: a bad value is an error, not ignored.
fn concurrency(parallel: Option<bool>, max: Option<f64>) -> Result<u32, CompatError> {
    let n = bounded("max_concurrent_agents", max, 10, CONCURRENT_AGENTS)?;
    Ok(if parallel.unwrap_or(true) { n } else { 1 })
}

/// Starts a research workflow (old API). Its body's schema is built from the
/// bounds table by `api::requests`.
#[utoipa::path(post, path = "/tools/orchestrate_research", tag = "old API",
    responses(
        (status = 200, description = "`{success, task_id, status, stream_url, …}`", body = AnyObject),
        OldCreateRefusals,
    ))]
async fn orchestrate_research(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Reply {
    caller.require(Scope::Write)?;
    let (raw, b): (_, ResearchBody) = keyed_body(&state, &req, payload).await?;
    sent_within_limit("task", b.task.as_deref(), b.context.as_ref())?;
    let task = required("task", b.task)?;
    let num_agents = bounded("num_agents", b.num_agents, 5, RESEARCH_AGENTS)?;
    let config = ResearchConfig {
        num_agents,
        max_concurrent_agents: concurrency(b.parallel_execution, b.max_concurrent_agents)?,
        // The old server's default group size was 5.
        synthesis_group_size: bounded(
            "synthesis_group_size",
            b.synthesis_group_size,
            5,
            SYNTHESIS_GROUP_SIZE,
        )?,
        enable_synthesis: b.enable_synthesis.unwrap_or(true),
        provider: b.provider,
        primary_model: b.primary_model,
        agent_model: b.agent_model,
        agent_timeout_secs: b.belter_timeout,
        synthesis_timeout_secs: b.drummer_timeout,
        final_timeout_secs: b.camina_timeout,
        tools: b.tools,
        max_tool_rounds: tool_rounds(b.max_tool_rounds)?,
        document_formats: b.document_formats,
        ..Default::default()
    };
    let title = match b.title.filter(|t| !t.trim().is_empty()) {
        Some(t) => {
            text_at_most("title", &t, MAX_TITLE_CHARS)?;
            t
        }
        None => task.chars().take(80).collect(),
    };
    let task = with_context(task, b.context);
    let hook = webhook(&state, &b.webhook_url).await?;
    let secret = hook.as_ref().map(|h| h.secret.clone());
    let (wf, replayed) = admit(
        &state,
        &caller,
        &req,
        &raw,
        NewWorkflow::new(task, title, PatternConfig::Research(config), hook),
    )
    .await?;
    let msg = format!("Research workflow started with {num_agents} agents");
    Ok(started((&wf, replayed), b.webhook_url, secret, msg))
}

#[derive(Deserialize)]
struct SearchBody {
    query: Option<String>,
    num_agents: Option<f64>,
    agent_types: Option<Vec<String>>,
    parallel_execution: Option<bool>,
    timeout_seconds: Option<f64>,
    enable_synthesis: Option<bool>,
    max_concurrent_agents: Option<f64>,
    context: Option<Value>,
    webhook_url: Option<String>,
    provider: Option<String>,
    tools: Option<Vec<String>>,
    max_tool_rounds: Option<f64>,
    document_formats: Option<Vec<String>>,
}

/// `max_tool_rounds` when sent: 1–16.
fn tool_rounds(v: Option<f64>) -> Result<Option<u32>, CompatError> {
    v.map(|_| bounded("max_tool_rounds", v, 0, TOOL_ROUNDS))
        .transpose()
}

/// Starts a search workflow (old API). Its body's schema is built from the
/// bounds table by `api::requests`.
#[utoipa::path(post, path = "/tools/orchestrate_search", tag = "old API",
    responses(
        (status = 200, description = "`{success, task_id, status, stream_url, …}`", body = AnyObject),
        OldCreateRefusals,
    ))]
async fn orchestrate_search(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Reply {
    caller.require(Scope::Write)?;
    let (raw, b): (_, SearchBody) = keyed_body(&state, &req, payload).await?;
    sent_within_limit("query", b.query.as_deref(), b.context.as_ref())?;
    let query = required("query", b.query)?;
    let num_agents = bounded("num_agents", b.num_agents, 5, SEARCH_AGENTS)?;
    if let Some(t) = b
        .agent_types
        .iter()
        .flatten()
        .find(|t| !AGENT_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::validation(
            "agent_types",
            format!(
                "Invalid agent type '{t}'; valid types: {}",
                AGENT_TYPES.join(", ")
            ),
        )
        .into());
    }
    let mut agent_types = b
        .agent_types
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| detect_agent_types(&query));
    agent_types.dedup();
    let title = query.chars().take(80).collect();
    let task = with_context(query, b.context);
    let hook = webhook(&state, &b.webhook_url).await?;
    let secret = hook.as_ref().map(|h| h.secret.clone());
    let config = SearchConfig {
        agent_types: agent_types.clone(),
        num_agents: Some(num_agents),
        max_concurrent_agents: concurrency(b.parallel_execution, b.max_concurrent_agents)?,
        enable_synthesis: b.enable_synthesis.unwrap_or(true),
        provider: b.provider,
        agent_timeout_secs: b.timeout_seconds,
        tools: b.tools,
        max_tool_rounds: tool_rounds(b.max_tool_rounds)?,
        document_formats: b.document_formats,
        ..Default::default()
    };
    let (wf, replayed) = admit(
        &state,
        &caller,
        &req,
        &raw,
        NewWorkflow::new(task, title, PatternConfig::Search(config), hook),
    )
    .await?;
    let msg = format!(
        "Search workflow started with {num_agents} agents ({})",
        agent_types.join(", ")
    );
    Ok(started((&wf, replayed), b.webhook_url, secret, msg))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TaskRequest)]
struct TaskBody {
    #[schema(value_type = String, pattern = r"\S")]
    task_id: Option<String>,
}

/// A workflow's status in the old shape.
#[utoipa::path(post, path = "/tools/get_orchestration_status", tag = "old API",
    request_body(content = TaskBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{success, task_id, status, …}`", body = AnyObject),
        OldTaskErrors,
    ))]
async fn get_status(state: web::Data<AppState>, caller: Caller, payload: web::Payload) -> Reply {
    caller.require(Scope::Read)?;
    let b: TaskBody = body(&state, payload).await?;
    let id = required("task_id", b.task_id)?;
    let found = find_content_for(&state, &caller, &id)
        .await
        .map_err(not_found_as_task)?;
    let wf = &found.wf;
    let p = &wf.progress;
    let mut out = json!({"success": true, "task_id": wf.id, "status": wf.status, "started_at": wf.started_at});
    match wf.status {
        Status::Completed => {
            let result = match &found.archived {
                Some(a) => a.result.clone(),
                None => {
                    state.read_barrier().await;
                    state
                        .store
                        .get_result(&wf.id)
                        .await
                        .map_err(ApiError::from)?
                }
            };
            out["result"] = result.map(|r| old_result(wf, &r)).unwrap_or(Value::Null);
            out["completed_at"] = json!(wf.completed_at);
        }
        Status::Failed => {
            out["success"] = json!(false);
            out["error"] = json!(wf.error.as_ref().map(|e| e.message.clone()));
            out["error_code"] = json!(wf.error.as_ref().map(|e| e.code));
            out["failed_at"] = json!(wf.completed_at);
        }
        Status::Cancelled => {
            out["cancelled_at"] = json!(wf.completed_at);
            out["partial_results"] =
                json!({"completed_agents": p.completed_agents, "total_agents": p.total_agents});
        }
        Status::Pending | Status::Running | Status::Interrupted => {
            out["progress"] = json!({
                "current_stage": old_stage(p.stage),
                "completed_agents": p.completed_agents,
                "total_agents": p.total_agents,
                "percent_complete": p.percent,
            });
            out["estimated_completion"] = Value::Null;
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("X-Served-From", found.from))
        .json(out))
}

fn not_found_as_task(e: ApiError) -> CompatError {
    match e {
        ApiError::WorkflowNotFound(id) => CompatError(ApiError::WorkflowNotFound(id)),
        other => CompatError(other),
    }
}

/// Cancels a workflow (old API).
#[utoipa::path(post, path = "/tools/cancel_orchestration", tag = "old API",
    request_body(content = TaskBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{success, task_id, status, message, partial_results}`", body = AnyObject),
        (status = 409, description = "already_finished", body = CompatErrorBody),
        OldTaskErrors,
    ))]
async fn cancel(state: web::Data<AppState>, caller: Caller, payload: web::Payload) -> Reply {
    caller.require(Scope::Write)?;
    let b: TaskBody = body(&state, payload).await?;
    let id = required("task_id", b.task_id)?;
    let wf = crate::api::workflows::cancel_workflow(&state, &caller, &id).await?;
    let message = match wf.status.is_terminal() {
        true => "Workflow cancelled successfully",
        false => "Cancel requested of the instance running the workflow",
    };
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "task_id": wf.id,
        "status": wf.status,
        "message": message,
        "partial_results": {
            "completed_agents": wf.progress.completed_agents,
            "total_agents": wf.progress.total_agents,
        },
    })))
}

/// A workflow's events as Server-Sent Events in the old shape.
#[utoipa::path(get, path = "/stream/{task_id}", tag = "old API",
    params(
        ("task_id" = String, Path, description = "Workflow id (wf_…)"),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "Replay the events after this seq"),
        ("last_event_id" = Option<u64>, Query, nullable = false, description = "Same, as a parameter"),
    ),
    responses(
        (status = 200, description = "text/event-stream", content_type = "text/event-stream", body = crate::api::openapi::SseEvent),
        (status = 400, description = "validation_error (Last-Event-ID)", body = CompatErrorBody),
        (status = 404, description = "workflow_not_found", body = CompatErrorBody),
        (status = 503, description = "store_unavailable", body = CompatErrorBody),
    ))]
async fn stream(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Reply {
    caller.require(Scope::Read)?;
    check_visible(&state, &caller, &id).await?;
    let after = last_event_id(&req)?;
    let events = open(&state, &id, after, caller.key_name()).await?;
    Ok(sse_response(&req, events, old_frame))
}

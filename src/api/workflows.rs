//! `/v1/workflows`: create, list, read, result, cancel (what a cancel does is in
//! `cancellation.rs`, reading as a caller may in `reads.rs`: both shared with MCP
//! and the old routes).

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::field_name;
use super::limits::{check_config, text_at_most, MAX_TASK_CHARS, MAX_TITLE_CHARS};
use utoipa_actix_web::service_config::ServiceConfig;

pub use super::admission::{admit, admit_keyed, Admitted};
pub use super::cancellation::cancel_workflow;
use super::openapi::{AnyObject, Doc, ErrorEnvelope};
pub use super::reads::{load_result, load_result_found, read_workflow};
use super::responses::{ByIdErrors, CreateRefusals};
use crate::actors::registry::NewWorkflow;
use crate::auth::Caller;
use crate::config::Config;
use crate::config::Scope;
use crate::domain::{Pattern, PatternConfig, ResearchConfig, SearchConfig, Status, Workflow};
use crate::error::ApiError;
use crate::idempotency;
use crate::store::ListQuery;
use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        Doc::new()
            .to::<__path_create, _, _>(create)
            .to::<__path_list, _, _>(list),
    )
    .service(Doc::new().to::<__path_get, _, _>(get))
    .service(Doc::new().to::<__path_result, _, _>(result))
    .service(Doc::new().to::<__path_cancel, _, _>(cancel));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub pattern: Option<String>,
    pub task: Option<String>,
    pub title: Option<String>,
    pub config: Option<Value>,
    pub webhook: Option<super::webhooks::WebhookBody>,
}

/// Checks a create request against the configured limits and providers; every
/// error names the field.
pub fn validate(body: CreateBody, cfg: &Config) -> Result<NewWorkflow, ApiError> {
    let pattern_name = body.pattern.ok_or_else(|| {
        ApiError::validation("pattern", "pattern is required: 'research' or 'search'")
    })?;
    let pattern = Pattern::parse(&pattern_name).ok_or_else(|| {
        ApiError::validation(
            "pattern",
            format!("unknown pattern '{pattern_name}'; expected 'research' or 'search' (aliases: 'beltalowda', 'swarm')"),
        )
    })?;
    let task = body
        .task
        .ok_or_else(|| ApiError::validation("task", "task is required"))?;
    // The bound applies to what was sent (as the OpenAPI maxLength says), not to
    // the trimmed text: 100,000 characters plus surrounding spaces is too long.
    text_at_most("task", &task, MAX_TASK_CHARS)?;
    let task = task.trim().to_string();
    if task.is_empty() {
        return Err(ApiError::validation("task", "task must not be empty"));
    }
    let title = match body.title {
        Some(t) if t.trim().is_empty() => {
            return Err(ApiError::validation(
                "title",
                "title must not be empty when given",
            ))
        }
        Some(t) => {
            text_at_most("title", &t, MAX_TITLE_CHARS)?;
            t.trim().to_string()
        }
        None => default_title(&task),
    };
    let config = match body.config {
        None | Some(Value::Null) => PatternConfig::default_for(pattern),
        Some(v @ Value::Object(_)) => parse_config(pattern, v)?,
        Some(_) => {
            return Err(ApiError::validation(
                "config",
                "config must be a JSON object",
            ))
        }
    };
    check_config(cfg, &config)?;
    let webhook = body.webhook.map(|w| w.into_spec("webhook.")).transpose()?;
    Ok(NewWorkflow::new(task, title, config, webhook))
}

fn parse_config(pattern: Pattern, v: Value) -> Result<PatternConfig, ApiError> {
    fn de<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let msg = e.inner().to_string();
            let field = field_name(&e.path().to_string(), &msg);
            ApiError::validation(format!("config.{field}"), format!("config: {msg}"))
        })
    }
    Ok(match pattern {
        Pattern::Research => PatternConfig::Research(de::<ResearchConfig>(v)?),
        Pattern::Search => PatternConfig::Search(de::<SearchConfig>(v)?),
    })
}

fn default_title(task: &str) -> String {
    let first = task.lines().next().unwrap_or(task);
    let mut t: String = first.chars().take(80).collect();
    if first.chars().count() > 80 {
        t.push('…');
    }
    t
}

pub fn links(id: &str) -> Value {
    json!({
        "self": format!("/v1/workflows/{id}"),
        "result": format!("/v1/workflows/{id}/result"),
        "events": format!("/v1/workflows/{id}/events"),
        "cancel": format!("/v1/workflows/{id}/cancel"),
        "documents": format!("/v1/workflows/{id}/documents"),
    })
}

/// Creates a workflow (owned by the calling key) and starts it. The body's
/// schema is built from the bounds table by `api::requests`.
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows",
    responses(
        (status = 201, description = "Created; `Location` names it", body = AnyObject),
        CreateRefusals,
    ))]
async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Write)?;
    let (raw, body): (_, CreateBody) = idempotency::keyed_body(&state, &req, payload).await?;
    let new = validate(body, &state.config)?;
    if let Some(w) = &new.webhook {
        state
            .guard
            .check(&w.url)
            .await
            .map_err(|e| ApiError::validation("webhook.url", e.to_string()))?;
    }
    let wf = match admit_keyed(&state, &caller, &req, "/v1/workflows", &raw, new).await? {
        Admitted::New(wf) => (HttpResponse::Created(), wf),
        Admitted::Replayed(wf) => {
            let mut resp = HttpResponse::Ok();
            resp.insert_header((idempotency::REPLAYED, "true"));
            (resp, wf)
        }
    };
    let (mut resp, wf) = wf;
    Ok(resp
        .insert_header((header::LOCATION, format!("/v1/workflows/{}", wf.id)))
        .json(created_body(&wf)))
}

/// The answer to a create: id, status and links.
pub fn created_body(wf: &Workflow) -> Value {
    json!({
        "id": wf.id,
        "status": wf.status,
        "pattern": wf.pattern,
        "title": wf.title,
        "created_at": wf.created_at,
        "links": links(&wf.id),
    })
}

/// One workflow (another key's is 404).
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id (wf_…)")),
    responses(
        (status = 200, description = "The workflow record", body = AnyObject),
        ByIdErrors,
    ))]
async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (wf, from) = read_workflow(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Served-From", from))
        .json(wf))
}

/// A finished workflow's result.
#[utoipa::path(get, path = "/v1/workflows/{id}/result", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id (wf_…)")),
    responses(
        (status = 200, description = "The result", body = AnyObject),
        (status = 409, description = "not_finished", body = ErrorEnvelope),
        (status = 500, description = "internal_error", body = ErrorEnvelope),
        ByIdErrors,
    ))]
async fn result(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (r, found) = load_result_found(&state, &caller, &id).await?;
    let from = found.from;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Served-From", from))
        .json(r))
}

/// Cancels a pending or running workflow (needs no body).
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id (wf_…)")),
    responses(
        (status = 200, description = "The cancelled workflow", body = AnyObject),
        (status = 202, description = "Asked of the instance running it, not yet confirmed (several instances): the workflow as it stands", body = AnyObject),
        (status = 409, description = "already_finished", body = ErrorEnvelope),
        ByIdErrors,
    ))]
async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let wf = cancel_workflow(&state, &caller, &id).await?;
    // Asked of another instance that has not confirmed yet: the request stands.
    match wf.status.is_terminal() {
        true => Ok(HttpResponse::Ok().json(wf)),
        false => Ok(HttpResponse::Accepted().json(wf)),
    }
}

#[derive(Debug, Deserialize)]
struct ListParams {
    status: Option<String>,
    pattern: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// Workflows the key may see, newest first.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    params(
        ("status" = Option<super::openapi::StatusName>, Query, description = "Only this status"),
        ("pattern" = Option<super::openapi::PatternName>, Query, description = "Only this pattern"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page", pattern = "^wf_[0-9a-f]{1,61}$"),
        ("limit" = Option<u32>, Query, description = "Page size", minimum = 1, maximum = 500),
    ),
    responses(
        (status = 200, description = "`{items, next_cursor}`", body = AnyObject),
        (status = 400, description = "validation_error", body = ErrorEnvelope),
        (status = 503, description = "store_unavailable", body = ErrorEnvelope),
    ))]
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let p = web::Query::<ListParams>::from_query(req.query_string())
        .map_err(|e| ApiError::validation("query", e.to_string()))?
        .into_inner();
    let status = p
        .status
        .map(|s| {
            Status::parse(&s).ok_or_else(|| {
                ApiError::validation(
                    "status",
                    format!("unknown status '{s}'; expected pending, running, interrupted, completed, failed or cancelled"),
                )
            })
        })
        .transpose()?;
    let pattern = p
        .pattern
        .map(|s| {
            Pattern::parse(&s).ok_or_else(|| {
                ApiError::validation(
                    "pattern",
                    format!("unknown pattern '{s}'; expected research or search"),
                )
            })
        })
        .transpose()?;
    let limit = match p.limit {
        None => DEFAULT_PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(
                    "limit",
                    format!("limit must be an integer between 1 and {MAX_PAGE}, got '{l}'"),
                ))
            }
        },
    };
    if let Some(c) = &p.cursor {
        if !c.starts_with("wf_") || c.len() > 64 {
            return Err(ApiError::validation(
                "cursor",
                "cursor is not one this server issued",
            ));
        }
    }
    let (items, next_cursor) = page(&state, &caller, status, pattern, p.cursor, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}

/// One page of the stored workflows this caller may see (`read` scope), newest
/// first, and the cursor of the next page. Shared by `GET /v1/workflows` and MCP
/// `resources/list`.
pub async fn page(
    state: &AppState,
    caller: &Caller,
    status: Option<Status>,
    pattern: Option<Pattern>,
    cursor: Option<String>,
    limit: usize,
) -> Result<(Vec<Workflow>, Option<String>), ApiError> {
    caller.require(Scope::Read)?;
    state.read_barrier().await;
    let mut items = state
        .store
        .list(ListQuery {
            status,
            pattern,
            before_id: cursor,
            limit: limit + 1,
            owner: caller.owner_filter(),
        })
        .await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|w| w.id.clone())
    } else {
        None
    };
    Ok((items, next_cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> CreateBody {
        serde_json::from_value(v).unwrap()
    }

    fn field_of(v: Value) -> String {
        match validate(body(v), &Config::default()) {
            Err(ApiError::Validation { field, .. }) => field,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(json!({"task": "x"})), "pattern");
        assert_eq!(field_of(json!({"pattern": "poem", "task": "x"})), "pattern");
        assert_eq!(field_of(json!({"pattern": "research"})), "task");
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "  "})),
            "task"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "title": ""})),
            "title"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "config": {"num_agents": 2}})),
            "config.num_agents"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "config": {"num_agents": 21}})),
            "config.num_agents"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "config": {"bogus": 1}})),
            "config.bogus"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "config": {"num_agents": "five"}})),
            "config.num_agents"
        );
        assert_eq!(
            field_of(
                json!({"pattern": "search", "task": "x", "config": {"agent_types": ["text", "x"]}})
            ),
            "config.agent_types[1]"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "config": [1]})),
            "config"
        );
        assert_eq!(
            field_of(
                json!({"pattern": "research", "task": "x", "config": {"final_timeout_secs": 1e20}})
            ),
            "config.final_timeout_secs"
        );
        assert_eq!(
            field_of(
                json!({"pattern": "research", "task": "x", "config": {"agent_model": "gpt-x"}})
            ),
            "config.agent_model"
        );
        assert_eq!(
            field_of(json!({"pattern": "research", "task": "x", "title": "t".repeat(201)})),
            "title"
        );
    }

    #[test]
    fn defaults_and_aliases() {
        let w = validate(
            body(json!({"pattern": "swarm", "task": "  find things \n more"})),
            &Config::default(),
        )
        .unwrap();
        assert_eq!(w.pattern, Pattern::Search);
        assert_eq!(w.task, "find things \n more");
        assert_eq!(w.title, "find things ");
        assert_eq!(w.config, PatternConfig::default_for(Pattern::Search));
    }
}

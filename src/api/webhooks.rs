//! Webhook routes: global subscriptions at `/v1/webhooks` (create, list, read,
//! delete), a workflow's deliveries at `/v1/workflows/{id}/deliveries`, and the old
//! server's `/webhook/register`, `/webhook/unregister` and `/stats`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use utoipa_actix_web::service_config::ServiceConfig;

use super::body::read_json;
use super::limits::{text_at_most, MAX_SECRET_CHARS, MAX_URL_CHARS};
use super::openapi::{AnyObject, Doc, ErrorEnvelope};
use super::responses::{ByIdErrors, OldTaskErrors, WebhookErrors};
use super::shared::CompatError;
use super::shared::{check_visible, find_content_for, find_for};
use crate::actors::registry::{AddWebhook, ListWebhooks, RemoveWebhook, Stats, WebhookSpec};
use crate::auth::Caller;
use crate::clock::now;
use crate::config::Scope;
use crate::domain::{Delivery, EventType, Subscription};
use crate::error::ApiError;
use crate::events::webhooks::new_secret;
use crate::AppState;
use std::sync::atomic::Ordering;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        Doc::new()
            .to::<__path_create, _, _>(create)
            .to::<__path_list, _, _>(list),
    )
    .service(
        Doc::new()
            .to::<__path_get, _, _>(get)
            .to::<__path_delete, _, _>(delete),
    )
    .service(Doc::new().to::<__path_deliveries, _, _>(deliveries))
    .service(Doc::new().to::<__path_register, _, _>(register))
    .service(Doc::new().to::<__path_unregister, _, _>(unregister))
    .service(Doc::new().to::<__path_stats, _, _>(stats));
}

/// A webhook as requests give it (in the workflow create body or `/v1/webhooks`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookRequest)]
pub struct WebhookBody {
    /// An https URL that does not resolve to a private address.
    #[schema(value_type = String)]
    pub url: Option<String>,
    /// At least 8 characters; generated (and shown once) when absent.
    #[schema(min_length = 8)]
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
}

const MIN_SECRET: usize = 8;

/// More entries than there are event types is a mistake (or an attack).
const MAX_EVENTS: usize = 32;

fn parse_events(prefix: &str, events: Option<Vec<String>>) -> Result<Vec<EventType>, ApiError> {
    if events.as_ref().is_some_and(|e| e.len() > MAX_EVENTS) {
        return Err(ApiError::validation(
            format!("{prefix}events"),
            format!("{prefix}events lists more than {MAX_EVENTS} entries"),
        ));
    }
    events
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::from_value::<EventType>(Value::String(e.clone())).map_err(|_| {
                ApiError::validation(
                    format!("{prefix}events[{i}]"),
                    format!("unknown event type '{e}'"),
                )
            })
        })
        .collect()
}

impl WebhookBody {
    /// Validates everything but the destination (the guard checks that, async).
    /// A missing secret is generated; `prefix` names fields (`webhook.` or ``).
    pub fn into_spec(self, prefix: &str) -> Result<WebhookSpec, ApiError> {
        let url = self.url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
            ApiError::validation(format!("{prefix}url"), format!("{prefix}url is required"))
        })?;
        text_at_most(&format!("{prefix}url"), &url, MAX_URL_CHARS)?;
        let secret = match self.secret {
            Some(s) if s.len() > MAX_SECRET_CHARS => {
                return Err(ApiError::validation(
                    format!("{prefix}secret"),
                    format!("{prefix}secret must be at most {MAX_SECRET_CHARS} characters"),
                ))
            }
            Some(s) if s.len() < MIN_SECRET => {
                return Err(ApiError::validation(
                    format!("{prefix}secret"),
                    format!("{prefix}secret must be at least {MIN_SECRET} characters"),
                ))
            }
            Some(s) => s,
            None => new_secret(),
        };
        Ok(WebhookSpec {
            url: url.trim().to_string(),
            secret,
            events: parse_events(prefix, self.events)?,
        })
    }
}

/// A subscription as the API shows it: never the secret.
fn view(s: &Subscription) -> Value {
    json!({
        "id": s.id,
        "workflow_id": s.workflow_id,
        "url": s.url,
        "events": s.events,
        "created_at": s.created_at,
    })
}

/// Registers a global webhook (admin): every workflow's events.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = WebhookBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The subscription (its generated secret shown once)", body = AnyObject),
        (status = 400, description = "validation_error | invalid_json", body = ErrorEnvelope),
        (status = 413, description = "payload_too_large", body = ErrorEnvelope),
        (status = 503, description = "store_unavailable", body = ErrorEnvelope),
    ))]
async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Admin before anything is read or resolved (global subscriptions have no
    // workflow to own).
    caller.require(Scope::Admin)?;
    let body: WebhookBody = read_json(payload, &state.config.server, None).await?;
    let generated = body.secret.is_none();
    let spec = body.into_spec("")?;
    state
        .guard
        .check(&spec.url)
        .await
        .map_err(|e| ApiError::validation("url", e.to_string()))?;
    let secret = spec.secret.clone();
    let (sub, seq) = state
        .registry
        .send(AddWebhook(spec.into_subscription(None, caller.owner())))
        .await??;
    state.acknowledge(seq).await?;
    let mut out = view(&sub);
    if generated {
        // Shown once: the receiver needs it to verify signatures.
        out["secret"] = json!(secret);
    }
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/webhooks/{}", sub.id)))
        .json(out))
}

/// Every webhook subscription (admin); secrets are never shown.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "`{items}`", body = AnyObject)))]
async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let all = state.registry.send(ListWebhooks).await?;
    let items: Vec<Value> = all.iter().map(|s| view(s)).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// One subscription (admin).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id (wh_…)")),
    responses(
        (status = 200, description = "The subscription", body = AnyObject),
        WebhookErrors,
    ))]
async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let all = state.registry.send(ListWebhooks).await?;
    match all.iter().find(|s| s.id == *id) {
        Some(s) => Ok(HttpResponse::Ok().json(view(s))),
        None => Err(ApiError::WebhookNotFound(id.to_string())),
    }
}

/// Removes a subscription (admin).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id (wh_…)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 503, description = "store_unavailable", body = ErrorEnvelope),
        WebhookErrors,
    ))]
async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    match state
        .registry
        .send(RemoveWebhook::Id(id.to_string()))
        .await?
    {
        Some((_, seq)) => {
            state.acknowledge(seq).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        None => Err(ApiError::WebhookNotFound(id.to_string())),
    }
}

/// A workflow's webhook deliveries with their attempts (a global subscription's
/// without its `url` and `subscription_id`, unless the caller is admin).
#[utoipa::path(get, path = "/v1/workflows/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Workflow id (wf_…)")),
    responses(
        (status = 200, description = "`{items}`", body = AnyObject),
        ByIdErrors,
    ))]
async fn deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let found = find_content_for(&state, &caller, &id).await?;
    let items = match &found.archived {
        Some(a) => a.deliveries.clone(),
        None => {
            state.read_barrier().await;
            state.store.deliveries_for(&found.wf.id).await?
        }
    };
    let items: Vec<Value> = items.iter().map(|d| delivery_view(d, &caller)).collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Served-From", found.from))
        .json(json!({ "items": items })))
}

/// A delivery as `caller` may see it: a global (admin) subscription's URL is a
/// credential of the admin's and its id names the admin's subscription, so any
/// other key sees that delivery without both (also one stored before deliveries
/// said whether they were global).
fn delivery_view(d: &Delivery, caller: &Caller) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
    if !caller.is_admin() && d.global != Some(false) {
        if let Value::Object(m) = &mut v {
            m.remove("url");
            m.remove("subscription_id");
        }
    }
    v
}

#[derive(Deserialize, ToSchema)]
#[schema(as = RegisterRequest)]
struct RegisterBody {
    #[schema(value_type = String, pattern = r"\S")]
    task_id: Option<String>,
    #[schema(value_type = String, pattern = r"\S")]
    webhook_url: Option<String>,
    #[schema(value_type = String, min_length = 8)]
    secret: Option<String>,
    events: Option<Vec<String>>,
}

fn missing(field: &str) -> CompatError {
    CompatError(ApiError::validation(
        field,
        format!("Missing required parameter: {field}"),
    ))
}

/// A required text parameter of the old API: absent and empty are both missing.
fn required(v: Option<String>, field: &str) -> Result<String, CompatError> {
    v.filter(|s| !s.is_empty()).ok_or_else(|| missing(field))
}

/// Registers a webhook for one of the key's workflows (old API).
#[utoipa::path(post, path = "/webhook/register", tag = "old API",
    request_body(content = RegisterBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{success, task_id, webhook_url, webhook_id, …}`", body = AnyObject),
        OldTaskErrors,
    ))]
async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, CompatError> {
    caller.require(Scope::Write)?;
    let b: RegisterBody = read_json(payload, &state.config.server, None).await?;
    let task_id = required(b.task_id, "task_id")?;
    let url = required(b.webhook_url, "webhook_url")?;
    text_at_most("webhook_url", &url, MAX_URL_CHARS)?;
    let secret = required(b.secret, "secret")?;
    let spec = WebhookBody {
        url: Some(url.clone()),
        secret: Some(secret),
        events: b.events,
    }
    .into_spec("")?;
    // Existence and ownership first: nothing is resolved for a workflow the
    // caller cannot see, so a made-up task_id probes no internal name.
    let (wf, _) = find_for(&state, &caller, &task_id).await?;
    state
        .guard
        .check(&url)
        .await
        .map_err(|e| ApiError::validation("webhook_url", format!("Invalid webhook_url: {e}")))?;
    let (sub, seq) = state
        .registry
        .send(AddWebhook(
            spec.into_subscription(Some(wf.id.clone()), caller.owner()),
        ))
        .await??;
    state.acknowledge(seq).await?;
    let events: Vec<EventType> = sub.events.clone();
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "task_id": wf.id,
        "webhook_url": sub.url,
        "registered_at": sub.created_at,
        "events": if events.is_empty() { json!("all") } else { json!(events) },
        "webhook_id": sub.id,
    })))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UnregisterRequest)]
struct UnregisterBody {
    #[schema(value_type = String, pattern = r"\S")]
    task_id: Option<String>,
    #[schema(value_type = String, pattern = r"\S")]
    webhook_url: Option<String>,
}

/// Removes a workflow's webhook by URL (old API).
#[utoipa::path(post, path = "/webhook/unregister", tag = "old API",
    request_body(content = UnregisterBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{success, task_id, webhook_url, unregistered_at}`", body = AnyObject),
        OldTaskErrors,
    ))]
async fn unregister(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, CompatError> {
    caller.require(Scope::Write)?;
    let b: UnregisterBody = read_json(payload, &state.config.server, None).await?;
    let task_id = required(b.task_id, "task_id")?;
    let url = required(b.webhook_url, "webhook_url")?;
    check_visible(&state, &caller, &task_id).await?;
    text_at_most("webhook_url", &url, MAX_URL_CHARS)?;
    let removed = state
        .registry
        .send(RemoveWebhook::WorkflowUrl {
            workflow_id: task_id.clone(),
            url: url.clone(),
        })
        .await?;
    match removed {
        Some((_, seq)) => {
            state.acknowledge(seq).await?;
            Ok(HttpResponse::Ok().json(json!({
                "success": true,
                "task_id": task_id,
                "webhook_url": url,
                "unregistered_at": now(),
            })))
        }
        None => Err(CompatError(ApiError::WebhookNotFound(format!(
            "{task_id} -> {url}"
        )))),
    }
}

/// The old server's streaming-bridge statistics (counters since process start).
/// The old server's streaming statistics (counters since start).
#[utoipa::path(get, path = "/stats", tag = "old API",
    responses((status = 200, description = "Counters", body = AnyObject)))]
async fn stats(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let s = state.registry.send(Stats).await?;
    let w = &state.webhook_stats;
    let delivered = w.delivered.load(Ordering::Relaxed);
    let failed = w.failed.load(Ordering::Relaxed);
    Ok(HttpResponse::Ok().json(json!({
        "active_streams": s.sse_clients,
        "total_events_emitted": s.events_emitted,
        "webhooks": {
            "registered": s.webhooks_registered,
            "total_deliveries": delivered + failed,
            "delivered": delivered,
            "failed_deliveries": failed,
            "attempts": w.attempts.load(Ordering::Relaxed),
            "pending": w.pending.load(Ordering::Relaxed),
            "retry_queue_size": w.retrying.load(Ordering::Relaxed),
        },
    })))
}

//! The one table that decides how every API error looks on the wire
//! (`ApiError::wire`): each variant has one row with its stable snake_case code,
//! its HTTP status and its extra headers, and the body is always
//! `{"error": {"code", "message", "field"?}}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The create header that makes a retry safe; named here because an error names
/// it (`idempotency` reads it).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error(
        "request body is {size} bytes, over the limit of {limit} bytes (server.max_body_bytes)"
    )]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("the request body did not arrive within {0:?} (server.client_request_timeout)")]
    RequestTimeout(std::time::Duration),
    #[error("the request head is {size} bytes, over the limit of {limit} bytes (server.max_header_bytes)")]
    HeadersTooLarge { size: usize, limit: usize },
    #[error("no workflow with id '{0}'")]
    WorkflowNotFound(String),
    #[error("no webhook subscription with id '{0}'")]
    WebhookNotFound(String),
    #[error(
        "workflow '{id}' has no document '{name}'; GET /v1/workflows/{id}/documents lists them"
    )]
    DocumentNotFound { id: String, name: String },
    #[error("document '{name}' of workflow '{id}' could not be generated: {reason}")]
    DocumentFailed {
        id: String,
        name: String,
        reason: String,
    },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method {method} is not allowed here; allowed: {allowed}")]
    MethodNotAllowed { method: String, allowed: String },
    #[error("workflow '{0}' has not finished yet; its result is available once it is completed, failed or cancelled")]
    NotFinished(String),
    #[error("workflow '{id}' already finished with status '{status}'")]
    AlreadyFinished { id: String, status: String },
    #[error("{active} workflows are pending or running, the limit (limits.max_active) is {limit}; retry after one finishes")]
    ActiveLimitReached {
        active: usize,
        limit: usize,
        retry_after_secs: u64,
    },
    #[error("{open} event streams are open {scope}, the limit ({key}) is {limit}; close one or retry later")]
    TooManyStreams {
        open: usize,
        limit: usize,
        key: &'static str,
        scope: String,
    },
    #[error("{count} webhook subscriptions exist {scope}, the limit ({key}) is {limit}; delete one first")]
    TooManyWebhooks {
        count: usize,
        limit: usize,
        key: &'static str,
        scope: String,
    },
    #[error("{0}")]
    ProviderUnavailable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("key '{key}' lacks the '{scope}' scope this request needs")]
    Forbidden { key: String, scope: &'static str },
    #[error("key '{key}' owns {active} pending or running workflows, its limit (auth.keys.max_active) is {limit}; retry after one finishes")]
    QuotaExceeded {
        key: String,
        active: usize,
        limit: usize,
        retry_after_secs: u64,
    },
    #[error("key '{key}' exceeded its request rate (auth.keys.requests_per_second); retry in {retry_after_secs}s")]
    RateLimited { key: String, retry_after_secs: u64 },
    #[error("key '{key}' spent ${spent:.6} today, its daily budget (auth.keys.budget_usd_per_day) is ${limit}; it resets at UTC midnight")]
    SpendLimitReached {
        key: String,
        spent: f64,
        limit: f64,
        retry_after_secs: u64,
    },
    #[error("this server does not answer to Host '{0}' (server.allowed_hosts)")]
    HostNotAllowed(String),
    #[error("a state-changing request from origin '{0}' is refused: only the server's own pages and server.cors_allowed_origins may send one")]
    OriginNotAllowed(String),
    #[error("Content-Type '{0}' is not accepted here; send the body as application/json")]
    UnsupportedMediaType(String),
    #[error("Idempotency-Key '{0}' was already used with a different request within idempotency.ttl; use a new key for a new request")]
    IdempotencyConflict(String),
    #[error("another request with Idempotency-Key '{0}' is still creating its workflow on another instance; retry shortly")]
    IdempotencyInProgress(String),
    #[error("the server is shutting down and admits no new work")]
    ShuttingDown,
    #[error("the store did not acknowledge the write: {0}")]
    StoreUnavailable(String),
    #[error("a core component is unavailable: {0}")]
    Unavailable(String),
    #[error("{open} MCP sessions are open {scope}, the limit ({key}) is {limit}; retry after one closes")]
    TooManySessions {
        open: usize,
        limit: usize,
        key: &'static str,
        scope: String,
    },
    #[error("archived workflow '{id}' cannot be read from the archive (key '{key}'): {reason}")]
    ArchiveUnavailable {
        id: String,
        key: String,
        reason: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// How each error looks on the wire, one row each: code, HTTP status, extra
    /// headers.
    #[rustfmt::skip]
    fn wire(&self) -> (&'static str, StatusCode, Extra<'_>) {
        use ApiError as E;
        use Extra::{Allow, Bearer, RetryAfter};
        use StatusCode as S;
        const NO: Extra<'static> = Extra::Nothing;
        match self {
            E::Validation { .. } => ("validation_error", S::BAD_REQUEST, NO),
            E::InvalidJson(_) => ("invalid_json", S::BAD_REQUEST, NO),
            E::PayloadTooLarge { .. } => ("payload_too_large", S::PAYLOAD_TOO_LARGE, NO),
            E::RequestTimeout(_) => ("request_timeout", S::REQUEST_TIMEOUT, NO),
            E::HeadersTooLarge { .. } => ("headers_too_large", S::REQUEST_HEADER_FIELDS_TOO_LARGE, NO),
            E::WorkflowNotFound(_) => ("workflow_not_found", S::NOT_FOUND, NO),
            E::WebhookNotFound(_) => ("webhook_not_found", S::NOT_FOUND, NO),
            E::DocumentNotFound { .. } => ("document_not_found", S::NOT_FOUND, NO),
            E::DocumentFailed { .. } => ("document_failed", S::NOT_FOUND, NO),
            E::RouteNotFound(_) => ("not_found", S::NOT_FOUND, NO),
            E::MethodNotAllowed { allowed, .. } => ("method_not_allowed", S::METHOD_NOT_ALLOWED, Allow(allowed)),
            E::NotFinished(_) => ("not_finished", S::CONFLICT, NO),
            E::AlreadyFinished { .. } => ("already_finished", S::CONFLICT, NO),
            E::ActiveLimitReached { retry_after_secs, .. } => ("active_limit_reached", S::TOO_MANY_REQUESTS, RetryAfter(*retry_after_secs)),
            E::TooManyStreams { .. } => ("too_many_streams", S::TOO_MANY_REQUESTS, RetryAfter(5)),
            E::TooManyWebhooks { .. } => ("too_many_webhooks", S::TOO_MANY_REQUESTS, NO),
            E::ProviderUnavailable(_) => ("provider_unavailable", S::UNPROCESSABLE_ENTITY, NO),
            E::Unauthorized(_) => ("unauthorized", S::UNAUTHORIZED, Bearer),
            E::Forbidden { .. } => ("forbidden", S::FORBIDDEN, NO),
            E::QuotaExceeded { retry_after_secs, .. } => ("quota_exceeded", S::TOO_MANY_REQUESTS, RetryAfter(*retry_after_secs)),
            E::RateLimited { retry_after_secs, .. } => ("rate_limited", S::TOO_MANY_REQUESTS, RetryAfter(*retry_after_secs)),
            E::SpendLimitReached { retry_after_secs, .. } => ("spend_limit_reached", S::TOO_MANY_REQUESTS, RetryAfter(*retry_after_secs)),
            E::HostNotAllowed(_) => ("host_not_allowed", S::MISDIRECTED_REQUEST, NO),
            E::OriginNotAllowed(_) => ("origin_not_allowed", S::FORBIDDEN, NO),
            E::UnsupportedMediaType(_) => ("unsupported_media_type", S::UNSUPPORTED_MEDIA_TYPE, NO),
            E::IdempotencyConflict(_) => ("idempotency_conflict", S::UNPROCESSABLE_ENTITY, NO),
            E::IdempotencyInProgress(_) => ("idempotency_in_progress", S::CONFLICT, NO),
            E::ShuttingDown => ("shutting_down", S::SERVICE_UNAVAILABLE, RetryAfter(5)),
            E::StoreUnavailable(_) => ("store_unavailable", S::SERVICE_UNAVAILABLE, RetryAfter(5)),
            E::Unavailable(_) => ("service_unavailable", S::SERVICE_UNAVAILABLE, NO),
            E::TooManySessions { .. } => ("too_many_sessions", S::SERVICE_UNAVAILABLE, RetryAfter(5)),
            E::ArchiveUnavailable { .. } => ("archive_unavailable", S::SERVICE_UNAVAILABLE, NO),
            E::Internal(_) => ("internal_error", S::INTERNAL_SERVER_ERROR, NO),
        }
    }

    /// The stable, machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        self.wire().0
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Validation { field, .. } => Some(field),
            ApiError::IdempotencyConflict(_) | ApiError::IdempotencyInProgress(_) => {
                Some(IDEMPOTENCY_HEADER)
            }
            _ => None,
        }
    }

    /// The body every error answer carries (also MCP tool errors):
    /// `{"error": {"code", "message", "field"?}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Envelope {
            error: Body {
                code: self.code(),
                message: self.to_string(),
                field: self.field(),
            },
        })
        .unwrap_or_default()
    }
}

/// Headers an error answer carries besides the body's.
enum Extra<'a> {
    Nothing,
    /// `Retry-After`, in seconds.
    RetryAfter(u64),
    /// `WWW-Authenticate: Bearer realm="mcp-orchestrator"`.
    Bearer,
    /// `Allow`: the methods the route takes.
    Allow(&'a str),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.wire().1
    }

    fn error_response(&self) -> HttpResponse {
        let (_, status, extra) = self.wire();
        let mut resp = HttpResponse::build(status);
        match extra {
            Extra::Nothing => {}
            Extra::RetryAfter(secs) => {
                resp.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            Extra::Bearer => {
                resp.insert_header((
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"mcp-orchestrator\"",
                ));
            }
            Extra::Allow(methods) => {
                resp.insert_header((header::ALLOW, methods));
            }
        }
        resp.json(self.body())
    }
}

/// An actor that cannot be reached is a service that cannot answer right now.
impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Unavailable(format!("internal actor: {e}"))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::StoreUnavailable(e.to_string())
    }
}

/// An `ApiError` in the old shape: same status, `{"success": false, "error"}`.
#[derive(Debug)]
pub struct CompatError(pub ApiError);

impl std::fmt::Display for CompatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The old API named fields without the `config.` prefix of /v1.
        f.write_str(&self.0.to_string().replace("config.", ""))
    }
}

impl ResponseError for CompatError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(v) = self.0.error_response().headers().get(header::RETRY_AFTER) {
            resp.insert_header((header::RETRY_AFTER, v.clone()));
        }
        resp.json(
            serde_json::json!({"success": false, "error": self.to_string(), "code": self.0.code()}),
        )
    }
}

impl From<ApiError> for CompatError {
    fn from(e: ApiError) -> Self {
        CompatError(e)
    }
}

impl From<actix::MailboxError> for CompatError {
    fn from(e: actix::MailboxError) -> Self {
        CompatError(e.into())
    }
}

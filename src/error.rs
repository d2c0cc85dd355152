//! The one table that decides how every API error looks on the wire: each variant
//! maps to an HTTP status and a stable snake_case code, and the body is always
//! `{"error": {"code", "message", "field"?}}` (DESIGN §4).

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

    /// The stable, machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation_error",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::HeadersTooLarge { .. } => "headers_too_large",
            ApiError::WorkflowNotFound(_) => "workflow_not_found",
            ApiError::WebhookNotFound(_) => "webhook_not_found",
            ApiError::DocumentNotFound { .. } => "document_not_found",
            ApiError::DocumentFailed { .. } => "document_failed",
            ApiError::RouteNotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::NotFinished(_) => "not_finished",
            ApiError::AlreadyFinished { .. } => "already_finished",
            ApiError::ActiveLimitReached { .. } => "active_limit_reached",
            ApiError::TooManyStreams { .. } => "too_many_streams",
            ApiError::TooManyWebhooks { .. } => "too_many_webhooks",
            ApiError::ProviderUnavailable(_) => "provider_unavailable",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::SpendLimitReached { .. } => "spend_limit_reached",
            ApiError::HostNotAllowed(_) => "host_not_allowed",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::IdempotencyConflict(_) => "idempotency_conflict",
            ApiError::IdempotencyInProgress(_) => "idempotency_in_progress",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::TooManySessions { .. } => "too_many_sessions",
            ApiError::ArchiveUnavailable { .. } => "archive_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
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

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::WorkflowNotFound(_)
            | ApiError::WebhookNotFound(_)
            | ApiError::DocumentNotFound { .. }
            | ApiError::DocumentFailed { .. }
            | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotFinished(_)
            | ApiError::AlreadyFinished { .. }
            | ApiError::IdempotencyInProgress(_) => StatusCode::CONFLICT,
            ApiError::ActiveLimitReached { .. }
            | ApiError::TooManyStreams { .. }
            | ApiError::TooManyWebhooks { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::RateLimited { .. }
            | ApiError::SpendLimitReached { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::HostNotAllowed(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ProviderUnavailable(_) | ApiError::IdempotencyConflict(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::ShuttingDown
            | ApiError::StoreUnavailable(_)
            | ApiError::Unavailable(_)
            | ApiError::TooManySessions { .. }
            | ApiError::ArchiveUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::ActiveLimitReached {
                retry_after_secs, ..
            }
            | ApiError::QuotaExceeded {
                retry_after_secs, ..
            }
            | ApiError::RateLimited {
                retry_after_secs, ..
            }
            | ApiError::SpendLimitReached {
                retry_after_secs, ..
            } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            ApiError::ShuttingDown
            | ApiError::StoreUnavailable(_)
            | ApiError::TooManySessions { .. }
            | ApiError::TooManyStreams { .. } => {
                resp.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::Unauthorized(_) => {
                resp.insert_header((
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"mcp-orchestrator\"",
                ));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                resp.insert_header((header::ALLOW, allowed.as_str()));
            }
            _ => {}
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

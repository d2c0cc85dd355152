//! The error answers a route family shares, each stated once for the OpenAPI
//! document: a path names its family (`responses((status = 200, …), ByIdErrors)`)
//! and keeps as tuples only the rows no other route has. `/v1` answers with
//! [`ErrorEnvelope`], the old routes with [`CompatErrorBody`]. The rows every
//! operation shares (401/403/415/421/429 of the auth middleware and
//! `auth::browser`) are added by `openapi::Standard`.

use utoipa::IntoResponses;

use super::openapi::{CompatErrorBody, ErrorEnvelope};

/// What validation and admission refuse of a create, `/v1` and old alike.
macro_rules! create_refusals {
    ($name:ident, $body:ty) => {
        #[derive(IntoResponses)]
        pub enum $name {
            #[response(
                status = 400,
                description = "validation_error (names the field) | invalid_json"
            )]
            Invalid($body),
            #[response(status = 413, description = "payload_too_large")]
            TooLarge($body),
            #[response(status = 422, description = "provider_unavailable")]
            NoProvider($body),
            #[response(
                status = 429,
                description = "active_limit_reached | quota_exceeded | spend_limit_reached | rate_limited; with Retry-After"
            )]
            Busy($body),
            #[response(status = 503, description = "shutting_down | store_unavailable")]
            Unavailable($body),
        }
    };
}

create_refusals!(CreateRefusals, ErrorEnvelope);
create_refusals!(OldCreateRefusals, CompatErrorBody);

/// A `/v1` route naming one workflow by id (another key's is not found).
#[derive(IntoResponses)]
pub enum ByIdErrors {
    #[response(status = 404, description = "workflow_not_found")]
    NotFound(ErrorEnvelope),
    #[response(status = 503, description = "store_unavailable")]
    Unavailable(ErrorEnvelope),
}

/// A finished workflow's documents (read from the archive once archived); the
/// 404 row differs per route and stays on it.
#[derive(IntoResponses)]
pub enum DocumentErrors {
    #[response(status = 409, description = "not_finished")]
    NotFinished(ErrorEnvelope),
    #[response(status = 503, description = "store_unavailable | archive_unavailable")]
    Unavailable(ErrorEnvelope),
}

/// A global webhook subscription by id (admin).
#[derive(IntoResponses)]
pub enum WebhookErrors {
    #[response(status = 404, description = "webhook_not_found")]
    NotFound(ErrorEnvelope),
}

/// The analytics routes, `/v1` and old: a bad parameter or the store.
#[derive(IntoResponses)]
pub enum AnalyticsErrors {
    #[response(status = 400, description = "validation_error (names the parameter)")]
    Invalid(ErrorEnvelope),
    #[response(status = 503, description = "store_unavailable")]
    Unavailable(ErrorEnvelope),
}

/// The old routes that take a `task_id` in a JSON body.
#[derive(IntoResponses)]
pub enum OldTaskErrors {
    #[response(status = 400, description = "validation_error | invalid_json")]
    Invalid(CompatErrorBody),
    #[response(
        status = 404,
        description = "workflow_not_found (/webhook/unregister: also webhook_not_found)"
    )]
    NotFound(CompatErrorBody),
    #[response(status = 413, description = "payload_too_large")]
    TooLarge(CompatErrorBody),
    #[response(status = 503, description = "store_unavailable")]
    Unavailable(CompatErrorBody),
}

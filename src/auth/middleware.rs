//! The `authenticate` middleware: resolves the caller once per request from
//! `Authorization: Bearer <token>` (or `X-API-Key: <token>`, as old clients send),
//! applies the key's request rate, and refuses non-JSON bodies on POST (the
//! CSRF guard: a cross-site form or a `text/plain` fetch cannot act). The
//! `Caller` it leaves in the request is what handlers extract.
//! Open without a key: `/health`, `/ready`, `/metrics` (unless it requires a key:
//! `metrics.require_auth`, by default once keys exist) and the dashboard's static files, which carry no data.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use metrics::counter;

use super::metrics::{AUTH_FAILURES, KEY_REQUESTS};
use super::Caller;
use crate::error::ApiError;
use crate::error::CompatError;
use crate::AppState;

const PUBLIC: &[&str] = &[
    "/health",
    "/ready",
    "/dashboard",
    "/dashboard/",
    "/dashboard/dashboard.js",
    "/dashboard/dashboard.css",
];

fn is_public(path: &str, metrics_open: bool) -> bool {
    PUBLIC.contains(&path) || (metrics_open && path == "/metrics")
}

/// The old server's routes: they answer errors in its shape, and the OpenAPI
/// document tags them as the old API.
pub fn is_compat(path: &str) -> bool {
    path == "/"
        || path == "/stats"
        || ["/tools/", "/stream/", "/webhook/", "/analytics/"]
            .iter()
            .any(|p| path.starts_with(p))
}

pub(crate) fn reject(path: &str, e: ApiError) -> Error {
    if is_compat(path) {
        CompatError(e).into()
    } else {
        e.into()
    }
}

/// The token from `Authorization: Bearer` or `X-API-Key`; Err when the header
/// is there but unusable. Never echoes what was sent.
fn token(req: &ServiceRequest) -> Result<Option<&str>, ApiError> {
    if let Some(v) = req.headers().get(header::AUTHORIZATION) {
        let v = v.to_str().map_err(|_| unusable())?;
        let (scheme, rest) = v.trim().split_once(' ').ok_or_else(unusable)?;
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err(unusable());
        }
        return Ok(Some(rest.trim()));
    }
    match req.headers().get("x-api-key") {
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| unusable()),
        None => Ok(None),
    }
}

fn unusable() -> ApiError {
    ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into())
}

/// POST bodies must be JSON; an empty POST without a Content-Type is allowed
/// (cancel takes no body).
fn check_json(req: &ServiceRequest) -> Result<(), ApiError> {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    match req.headers().get(header::CONTENT_TYPE) {
        Some(ct) => {
            let ct = ct.to_str().unwrap_or("");
            let essence = ct.split(';').next().unwrap_or("").trim();
            let json = essence.eq_ignore_ascii_case("application/json")
                || (essence.len() > 5
                    && essence.to_ascii_lowercase().starts_with("application/")
                    && essence.to_ascii_lowercase().ends_with("+json"));
            if json {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType(
                    essence.chars().take(100).collect(),
                ))
            }
        }
        None => {
            let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
                || req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim() != "0");
            if has_body {
                Err(ApiError::UnsupportedMediaType("none".into()))
            } else {
                Ok(())
            }
        }
    }
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()).into());
    };
    let path = req.path().to_string();
    let metrics_open = !state.config.metrics.requires_key(state.keys.enabled());
    let caller = if !state.keys.enabled() {
        Caller::anonymous()
    } else if is_public(&path, metrics_open) {
        // Public routes still know a valid key when one is sent; no failure here.
        token(&req)
            .ok()
            .flatten()
            .and_then(|t| state.keys.find(t))
            .map(|k| k.caller())
            .unwrap_or_else(Caller::anonymous_public)
    } else {
        let token = token(&req).map_err(|e| {
            counter!(AUTH_FAILURES, "reason" => "malformed").increment(1);
            reject(&path, e)
        })?;
        let Some(token) = token else {
            counter!(AUTH_FAILURES, "reason" => "missing").increment(1);
            return Err(reject(
                &path,
                ApiError::Unauthorized(
                    "an API key is required: send 'Authorization: Bearer <token>'".into(),
                ),
            ));
        };
        let Some(key) = state.keys.find(token) else {
            counter!(AUTH_FAILURES, "reason" => "invalid").increment(1);
            return Err(reject(
                &path,
                ApiError::Unauthorized("the API key is not valid".into()),
            ));
        };
        if let Err(wait) = key.admit_request() {
            counter!(KEY_REQUESTS, "key" => key.name.to_string(), "outcome" => "rate_limited")
                .increment(1);
            return Err(reject(
                &path,
                ApiError::RateLimited {
                    key: key.name.to_string(),
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                },
            ));
        }
        counter!(KEY_REQUESTS, "key" => key.name.to_string(), "outcome" => "accepted").increment(1);
        key.caller()
    };
    if !is_public(&path, metrics_open) {
        check_json(&req).map_err(|e| reject(&path, e))?;
    }
    req.extensions_mut().insert(caller);
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_compat_paths() {
        assert!(is_public("/health", false));
        assert!(is_public("/metrics", true));
        assert!(!is_public("/metrics", false));
        assert!(!is_public("/v1/workflows", true));
        assert!(!is_public("/dashboard/x", true));
        assert!(is_compat("/tools/orchestrate_search"));
        assert!(is_compat("/"));
        assert!(!is_compat("/v1/analytics/costs"));
    }
}

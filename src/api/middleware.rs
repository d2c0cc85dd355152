//! The middleware every request passes: the bound on the request head
//! (`server.max_header_bytes`, else 431); a request id (the caller's `X-Request-Id`
//! when it is sane, else a new one) that is returned in the response, put in the
//! handler's task (a create hands it to the workflow) and on a tracing span around
//! the request; and the HTTP metrics, whose labels never come from request text: the
//! method is one of the standard set or `other`, the route is the matched pattern
//! (`/v1/workflows/{id}`) or `unmatched`, so no client can grow the number of series.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};
use metrics::{counter, histogram};
use tracing::Instrument;

use crate::actors::metrics::{HTTP_DURATION, HTTP_REQUESTS};
use crate::error::ApiError;
use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID: usize = 128;

tokio::task_local! {
    /// The id of the request whose handler is running on this task.
    static REQUEST_ID: String;
}

/// The request id of the request being handled, when called from a handler.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A caller's id is kept when it is short and plain (it ends up in logs);
/// anything else is replaced by a fresh one.
fn accept(raw: Option<&HeaderValue>) -> String {
    raw.and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| {
            !s.is_empty()
                && s.len() <= MAX_REQUEST_ID
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The method as a metric label: the standard methods by name, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|s| *s == m)
        .map_or("other", |s| s.as_str())
}

/// Bytes of the request head as sent: request line and header lines.
fn head_bytes(req: &ServiceRequest) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    req.headers()
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let t0 = Instant::now();
    let id = accept(req.headers().get(REQUEST_ID_HEADER));
    let method = method_label(req.method());
    let span = tracing::info_span!("request", request_id = %id, method);
    let max_head = req
        .app_data::<web::Data<AppState>>()
        .map_or(usize::MAX, |s| s.config.server.max_header_bytes);
    let res = match head_bytes(&req) {
        n if n > max_head => {
            let err = ApiError::HeadersTooLarge {
                size: n,
                limit: max_head,
            };
            let (req, _) = req.into_parts();
            Ok(ServiceResponse::new(req, err.error_response()).map_into_right_body())
        }
        _ => REQUEST_ID
            .scope(id.clone(), next.call(req).instrument(span))
            .await
            .map(ServiceResponse::map_into_left_body),
    };
    let (route, status) = match &res {
        Ok(r) => (
            r.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
            r.status().as_u16(),
        ),
        Err(e) => (
            "unmatched".into(),
            e.as_response_error().status_code().as_u16(),
        ),
    };
    let status = status.to_string();
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(t0.elapsed().as_secs_f64());
    let mut res = res?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_are_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(b"XYZZY").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn keeps_plain_ids_and_replaces_others() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(accept(Some(&v("abc-123"))), "abc-123");
        assert_ne!(accept(Some(&v("bad id\t"))), "bad id\t");
        assert_eq!(accept(Some(&v(&"x".repeat(200)))).len(), 32);
        assert_eq!(accept(None).len(), 32);
    }
}

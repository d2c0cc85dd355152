//! Cross-origin access (`server.cors_allowed_origins`, none by default). Without
//! an allowed origin a browser page elsewhere gets no CORS headers, so it can
//! neither read answers nor send the JSON (or Authorization) that every action
//! needs. The server's own pages (the dashboard) are same-origin and always allowed.

use actix_cors::Cors;
use actix_web::http::{header, Method};

pub fn cors(allowed: &[String]) -> Cors {
    let allowed: Vec<String> = allowed.to_vec();
    Cors::default()
        .allowed_origin_fn(move |origin, req| {
            let origin = origin.to_str().unwrap_or("");
            let same = req
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| {
                    origin
                        .strip_prefix("http://")
                        .or_else(|| origin.strip_prefix("https://"))
                        == Some(host)
                });
            same || allowed.iter().any(|a| a == origin)
        })
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static("last-event-id"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            header::HeaderName::from_static("x-request-id"),
        ])
        .max_age(3600)
}

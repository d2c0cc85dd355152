//! HTTP routes, one module per route family; `configure` is the route table.

pub mod analytics;
pub mod body;
pub mod compat;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod patterns;
pub mod webhooks;
pub mod workflows;

use actix_web::{web, HttpRequest};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(workflows::configure)
        .configure(events::configure)
        .configure(health::configure)
        .configure(patterns::configure)
        .configure(compat::configure)
        .configure(webhooks::configure)
        .configure(metrics::configure)
        .configure(dashboard::configure)
        .configure(analytics::configure);
}

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

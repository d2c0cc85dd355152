//! `GET /metrics`: Prometheus text exposition of everything in `actors::metrics`.
//! Gauges that mirror other components are refreshed first, so a scrape always
//! sees the current queue depths, active count and webhook totals.

use actix_web::{http::header, web, HttpResponse};

use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::{Doc, ErrorEnvelope};
use crate::actors::metrics;
use crate::actors::registry::Stats;
use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_render, _, _>(render));
}

/// Prometheus text exposition. No key needed unless `metrics.require_auth`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "unauthorized (only with metrics.require_auth)", body = ErrorEnvelope),
    ))]
async fn render(state: web::Data<AppState>) -> HttpResponse {
    let handle = metrics::install();
    let stats = state.registry.send(Stats).await.ok();
    let mut persisters = vec![("primary", state.primary.as_ref())];
    if let Some(m) = &state.mirror {
        persisters.push(("redis", m.as_ref()));
    }
    metrics::refresh(
        stats.as_ref(),
        &persisters,
        &state.webhook_stats,
        &state.streams,
    );
    state.ledger.refresh_metrics();
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(handle.render())
}

//! `GET /metrics`: Prometheus text exposition of everything in `actors::metrics`.
//! Gauges that mirror other components are refreshed first, so a scrape always
//! sees the current queue depths, active count and webhook totals.

use actix_web::{http::header, web, HttpResponse};

use super::allow_only;
use crate::actors::metrics;
use crate::actors::registry::Stats;
use crate::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(render))
            .default_service(allow_only("GET")),
    );
}

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

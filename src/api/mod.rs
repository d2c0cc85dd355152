//! HTTP routes, one module per route family; `configure` is the route table.

pub mod admission;
pub mod analytics;
pub mod body;
pub mod cancellation;
pub mod compat;
pub mod dashboard;
pub mod documents;
pub mod events;
pub mod health;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod patterns;
pub mod reads;
pub mod refusal;
pub mod requests;
pub mod responses;
pub mod shared;
pub mod webhooks;
pub mod workflows;

pub use shared::{allow_only, allow_only_owned, not_found};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(workflows::configure)
        .configure(documents::configure)
        .configure(events::configure)
        .configure(health::configure)
        .configure(patterns::configure)
        .configure(compat::configure)
        .configure(webhooks::configure)
        .configure(metrics::configure)
        .configure(dashboard::configure)
        .configure(analytics::configure)
        .service(openapi::Doc::new().to::<openapi::__path_serve, _, _>(openapi::serve));
}

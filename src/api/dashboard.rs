//! `GET /dashboard`: a self-contained live page (HTML, JS and CSS from `static/`,
//! embedded in the binary; nothing loaded from elsewhere). It reads the public
//! API only: `/metrics`, `/health`, `/v1/workflows` and the SSE event stream.
//! These static files need no key (they hold no data); when the API does, the page
//! asks for one and sends it as a header (see `static/dashboard.js`).

use actix_web::{http::header, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::Doc;

const HTML: &str = include_str!("../../static/dashboard.html");
const JS: &str = include_str!("../../static/dashboard.js");
const CSS: &str = include_str!("../../static/dashboard.css");

/// Only this origin: the page works offline and cannot pull in anything else.
const CSP: &str = "default-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_html, _, _>(html))
        .service(Doc::new().to::<__path_html_slash, _, _>(html_slash))
        .service(Doc::new().to::<__path_js, _, _>(js))
        .service(Doc::new().to::<__path_css, _, _>(css));
}

/// The dashboard page. No key needed: it asks for one and sends it as a header.
#[utoipa::path(get, path = "/dashboard", tag = "operations",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
async fn html() -> HttpResponse {
    page(HTML, "text/html; charset=utf-8")
}

/// The dashboard page (same as `/dashboard`).
#[utoipa::path(get, path = "/dashboard/", tag = "operations",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
async fn html_slash() -> HttpResponse {
    page(HTML, "text/html; charset=utf-8")
}

/// The dashboard's script.
#[utoipa::path(get, path = "/dashboard/dashboard.js", tag = "operations",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript", body = String)))]
async fn js() -> HttpResponse {
    page(JS, "text/javascript; charset=utf-8")
}

/// The dashboard's style sheet.
#[utoipa::path(get, path = "/dashboard/dashboard.css", tag = "operations",
    responses((status = 200, description = "CSS", content_type = "text/css", body = String)))]
async fn css() -> HttpResponse {
    page(CSS, "text/css; charset=utf-8")
}

fn page(body: &'static str, mime: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

//! `GET /dashboard`: a self-contained live page (HTML, JS and CSS from `static/`,
//! embedded in the binary; nothing loaded from elsewhere). It reads the public
//! API only: `/metrics`, `/health`, `/v1/workflows` and the SSE event stream.
//! These static files need no key (they hold no data); when the API does, the page
//! asks for one and sends it as a header (see `static/dashboard.js`).

use actix_web::{http::header, web, HttpResponse};

use super::allow_only;

const HTML: &str = include_str!("../../static/dashboard.html");
const JS: &str = include_str!("../../static/dashboard.js");
const CSS: &str = include_str!("../../static/dashboard.css");

/// Only this origin: the page works offline and cannot pull in anything else.
const CSP: &str = "default-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    let asset = |path: &'static str, body: &'static str, mime: &'static str| {
        web::resource(path)
            .route(web::get().to(move || async move { page(body, mime) }))
            .default_service(allow_only("GET"))
    };
    cfg.service(asset("/dashboard", HTML, "text/html; charset=utf-8"))
        .service(asset("/dashboard/", HTML, "text/html; charset=utf-8"))
        .service(asset(
            "/dashboard/dashboard.js",
            JS,
            "text/javascript; charset=utf-8",
        ))
        .service(asset(
            "/dashboard/dashboard.css",
            CSS,
            "text/css; charset=utf-8",
        ));
}

fn page(body: &'static str, mime: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

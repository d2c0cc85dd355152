//! `/mcp`: the MCP endpoint (Streamable HTTP) for MCP clients, built on the official
//! Rust SDK (`rmcp`) through its actix-web transport (`rmcp-actix-web`), which does
//! the wire protocol: protocol-version negotiation (the current revision and the
//! older ones the SDKs still use), `initialize` with `Mcp-Session-Id`, session
//! `DELETE`, JSON or SSE answers, and the `Origin` check against
//! `mcp.allowed_origins` (the `Host` check is every route's, `auth::browser`). This module owns the tools
//! (`tools.rs`, schemas in `schemas.rs`), the resources (`resources.rs`), the
//! server handler (`server.rs`) and the capped session store whose sessions
//! belong to the key that opened them (`sessions.rs`).

mod resources;
mod schemas;
mod server;
pub mod sessions;
mod tools;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::HttpMessage;
use actix_web::{web, HttpResponse, ResponseError};
use futures::StreamExt;
use rmcp_actix_web::transport::StreamableHttpService;
use serde_json::json;

pub use sessions::Sessions;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Mounts `/mcp` (unless `mcp.enabled = false`). Called once per HTTP worker; the
/// sessions are shared through `AppState`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let mcp = &state.config.mcp;
        if !mcp.enabled {
            return;
        }
        let for_handler = state.clone();
        let http = StreamableHttpService::builder()
            .service_factory(Arc::new(move || {
                Ok(server::Orchestrator::new(for_handler.clone()))
            }))
            .session_manager(Arc::clone(&state.mcp_sessions))
            // The caller the `authenticate` middleware resolved for this HTTP
            // request: tools and resources apply its scopes and ownership.
            .on_request_fn(|req, ext| {
                if let Some(caller) = req.extensions().get::<Caller>() {
                    ext.insert(caller.clone());
                }
            })
            .stateful_mode(true)
            // Plain JSON answers where the protocol allows it (statelessly served
            // requests of the current revision); SSE when a call reports progress.
            .json_response(true)
            // Host is checked for every route, this one too, by `auth::browser`
            // (`server.allowed_hosts`); an empty list turns rmcp's own check off.
            .allowed_hosts(Vec::<String>::new())
            .allowed_origins(mcp.allowed_origins.clone())
            .max_request_body_bytes(state.config.server.max_body_bytes)
            .build();
        cfg.service(
            web::scope("/mcp")
                .app_data(state.clone())
                .wrap(from_fn(guard))
                .service(http.scope()),
        );
    }
}

/// rmcp's header naming a session.
const SESSION_HEADER: &str = "mcp-session-id";

/// What rmcp answers for an unknown session; a session of another key gets the
/// same, so its existence does not leak.
fn unknown_session() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("Not Found: Session not found")
}

/// What rmcp's transport does not do itself: refuse every `Origin` when
/// `mcp.allowed_origins` is empty (rmcp reads an empty list as "no check"); bind
/// each session to the key that initialized it (any other caller, on any method,
/// gets the 404 of an unknown session) and keep each key within its share of
/// the session cap; answer a refused `initialize` at the cap with 503
/// `too_many_sessions` instead of rmcp's plain 500, a body that is not JSON with
/// JSON-RPC's parse error (rmcp: a plain-text 415), and a session `DELETE` with 200.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if state.config.mcp.allowed_origins.is_empty() && req.headers().contains_key(header::ORIGIN) {
        let resp = HttpResponse::Forbidden().body("Forbidden: Origin header is not allowed");
        return Ok(req.into_response(resp).map_into_boxed_body());
    }
    let sessions = Arc::clone(&state.mcp_sessions);
    let key: Option<Arc<str>> = req
        .extensions()
        .get::<Caller>()
        .and_then(|c| c.key_name().map(Arc::from));
    let key = key.as_deref();
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .map(|v| v.to_str().unwrap_or("").to_string());
    if let Some(id) = &session {
        if !sessions.owned_by(id, key) {
            return Ok(req.into_response(unknown_session()).map_into_boxed_body());
        }
    }
    let mut req = req;
    if req.method() == Method::POST {
        match check_json(&mut req, state.config.server.max_body_bytes).await {
            Err(refusal) => return Ok(req.into_response(refusal).map_into_boxed_body()),
            Ok(true) if session.is_none() => {
                if let Err(e) = sessions.admit(key).await {
                    return Ok(req.into_response(e.error_response()).map_into_boxed_body());
                }
            }
            Ok(_) => {}
        }
    }
    let delete = req.method() == Method::DELETE;
    let res = next.call(req).await?;
    if session.is_none() {
        if let Some(id) = res
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            sessions.set_owner(id, key);
        }
    }
    if delete && res.status().is_success() {
        if let Some(id) = &session {
            sessions.forget(id);
        }
    }
    if delete && res.status() == StatusCode::ACCEPTED {
        // A closed session: 200, which every SDK takes as success (the Python SDK
        // logs rmcp's 202 as a failed termination).
        let (req, _) = res.into_parts();
        return Ok(ServiceResponse::new(req, HttpResponse::Ok().finish()).map_into_boxed_body());
    }
    if res.status() == StatusCode::INTERNAL_SERVER_ERROR && sessions.open().await >= sessions.max()
    {
        let err = ApiError::TooManySessions {
            open: sessions.open().await,
            limit: sessions.max(),
            key: "mcp.max_sessions",
            scope: "in total".into(),
        };
        let (req, _) = res.into_parts();
        return Ok(ServiceResponse::new(req, err.error_response()).map_into_boxed_body());
    }
    Ok(res.map_into_boxed_body())
}

/// Reads a POST body (bounded by `server.max_body_bytes`) and puts it back for
/// rmcp; a body that is not JSON is answered with JSON-RPC's parse error.
/// Ok(true) when the body is an `initialize` request (it opens a session).
async fn check_json(req: &mut ServiceRequest, limit: usize) -> Result<bool, HttpResponse> {
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(e.to_string()).error_response())?;
        if body.len() + chunk.len() > limit {
            let size = body.len() + chunk.len();
            return Err(ApiError::PayloadTooLarge { size, limit }.error_response());
        }
        body.extend_from_slice(&chunk);
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Err(HttpResponse::BadRequest().json(json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32700, "message": format!("Parse error: {e}")},
        })));
    }
    /// Only the method matters here; the rest is rmcp's.
    #[derive(serde::Deserialize)]
    struct Named {
        method: Option<serde_json::Value>,
    }
    let initialize = serde_json::from_slice::<Named>(&body)
        .is_ok_and(|m| m.method.is_some_and(|m| m == "initialize"));
    req.set_payload(Payload::from(body.freeze()));
    Ok(initialize)
}

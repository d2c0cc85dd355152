//! The OpenAPI 3.1 document at `GET /openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations and the types they name, collected by
//! utoipa-actix-web as the routes are registered. `Doc` registers one resource
//! from its annotated handlers, so the path, the methods and the 405 `Allow` list
//! come from the annotations themselves and cannot drift from the document.
//! `Standard` adds what every operation shares: the bearer scheme and the
//! 401/403/415/429 answers of the auth middleware and the 421 (Host) and 403
//! (Origin) answers of `auth::browser`.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, Operation, Paths};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_actix_web::OpenApiFactory;

use super::allow_only_owned;

/// Every error: `{"error": {"code", "message", "field"?}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable (`unauthorized`, `workflow_not_found`, …).
    pub code: String,
    pub message: String,
    /// The request field at fault, for validation errors.
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// The old API's errors: `{"success": false, "error", "code"}`.
#[derive(Serialize, ToSchema)]
pub struct CompatErrorBody {
    pub success: bool,
    pub error: String,
    pub code: String,
}

/// One Server-Sent Event: `id` is the per-workflow seq, `event` its type, `data`
/// the event as JSON.
#[derive(Serialize, ToSchema)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: String,
}

/// The document as served: collected from the annotations, with the create
/// requests' bodies added by `api::requests::document`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct OpenApiJson(pub serde_json::Value);

/// `research` (alias `beltalowda`) or `search` (alias `swarm`): what the
/// `pattern` parameters take.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatternName {
    Research,
    Search,
    Beltalowda,
    Swarm,
}

/// What the `status` parameter takes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    Pending,
    Running,
    Interrupted,
    Completed,
    Failed,
    Cancelled,
}

/// Any JSON object (shapes documented in the README).
#[derive(Serialize, ToSchema)]
#[schema(as = Object)]
pub struct AnyObject(serde_json::Map<String, serde_json::Value>);

type Schemas = Vec<(String, RefOr<Schema>)>;

/// One resource built from its annotated handlers.
pub struct Doc {
    path: Option<String>,
    resource: Option<actix_web::Resource>,
    methods: Vec<&'static str>,
    paths: Paths,
    schemas: Schemas,
}

fn actix_method(m: &HttpMethod) -> (actix_web::http::Method, &'static str) {
    use actix_web::http::Method;
    match m {
        HttpMethod::Get => (Method::GET, "GET"),
        HttpMethod::Post => (Method::POST, "POST"),
        HttpMethod::Put => (Method::PUT, "PUT"),
        HttpMethod::Delete => (Method::DELETE, "DELETE"),
        HttpMethod::Options => (Method::OPTIONS, "OPTIONS"),
        HttpMethod::Head => (Method::HEAD, "HEAD"),
        HttpMethod::Patch => (Method::PATCH, "PATCH"),
        HttpMethod::Trace => (Method::TRACE, "TRACE"),
    }
}

impl Doc {
    pub fn new() -> Doc {
        Doc {
            path: None,
            resource: None,
            methods: Vec::new(),
            paths: Paths::new(),
            schemas: Vec::new(),
        }
    }

    /// Adds handler `h`, documented by `P` (the `__path_h` its annotation made).
    pub fn to<P, F, Args>(mut self, h: F) -> Doc
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let path = P::path();
        if let Some(p) = &self.path {
            assert_eq!(p, &path, "one Doc serves one path");
        }
        let mut resource = self
            .resource
            .take()
            .unwrap_or_else(|| web::resource(path.as_str()));
        for m in P::methods() {
            let (method, name) = actix_method(&m);
            resource = resource.route(web::method(method).to(h.clone()));
            self.methods.push(name);
        }
        self.resource = Some(resource);
        self.path = Some(path);
        // What utoipa-actix-web's own factory does for a `#[get]`-style handler.
        let mut builder = Paths::builder();
        for m in P::methods() {
            let mut op = P::operation();
            let tags = <P as utoipa::__dev::Tags>::tags();
            if !tags.is_empty() {
                op.tags
                    .get_or_insert_with(Vec::new)
                    .extend(tags.into_iter().map(String::from));
            }
            builder = builder.path(P::path(), utoipa::openapi::PathItem::new(m, op));
        }
        self.paths.merge(builder.build());
        <P as utoipa::__dev::SchemaReferences>::schemas(&mut self.schemas);
        self
    }
}

impl Default for Doc {
    fn default() -> Self {
        Doc::new()
    }
}

impl HttpServiceFactory for Doc {
    fn register(self, config: &mut AppService) {
        let mut methods = self.methods;
        // GET first, as the Allow lists always read.
        methods.sort_by_key(|m| *m != "GET");
        if let Some(r) = self.resource {
            r.default_service(allow_only_owned(methods.join(", ")))
                .register(config);
        }
    }
}

impl OpenApiFactory for Doc {
    fn paths(&self) -> Paths {
        self.paths.clone()
    }

    fn schemas(&self, schemas: &mut Schemas) {
        schemas.extend(self.schemas.iter().cloned());
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mcp-orchestrator",
        description = "Long-lived multi-agent LLM workflows behind an HTTP API, with durable state. \
                       Send `Authorization: Bearer <token>` (old clients: `X-API-Key`) on every route \
                       but /health, /ready and /metrics."
    ),
    components(schemas(
        ErrorEnvelope,
        ErrorBody,
        CompatErrorBody,
        SseEvent,
        StatusName,
        PatternName
    )),
    modifiers(&Standard)
)]
pub struct ApiDoc;

/// Operations open without a key.
const PUBLIC: &[&str] = &["/health", "/ready", "/metrics", "/dashboard"];

pub struct Standard;

fn error(desc: &str, compat: bool) -> RefOr<Response> {
    let schema = if compat {
        "CompatErrorBody"
    } else {
        "ErrorEnvelope"
    };
    ResponseBuilder::new()
        .description(desc)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
        .into()
}

fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    let mut out = Vec::new();
    for (name, op) in [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
    ] {
        if let Some(op) = op {
            out.push((name, op));
        }
    }
    out
}

impl Modify for Standard {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key made with `mcp-orchestrator keys new`"))
                    .build(),
            ),
        );
        for (path, item) in api.paths.paths.iter_mut() {
            let public = PUBLIC
                .iter()
                .any(|p| path == p || path.starts_with("/dashboard"));
            let compat = crate::auth::middleware::is_compat(path);
            for (method, op) in operations(item) {
                let r = &mut op.responses.responses;
                if method == "post" {
                    r.entry("415".into()).or_insert_with(|| {
                        error(
                            "unsupported_media_type: the body is not application/json",
                            compat,
                        )
                    });
                }
                r.entry("421".into()).or_insert_with(|| {
                    error(
                        "host_not_allowed: the Host header is not in server.allowed_hosts",
                        compat,
                    )
                });
                if method != "get" {
                    r.entry("403".into()).or_insert_with(|| {
                        error(
                            "forbidden: the key lacks the scope this needs | origin_not_allowed: a state change from a foreign Origin",
                            compat,
                        )
                    });
                }
                if public {
                    continue;
                }
                op.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                r.entry("401".into()).or_insert_with(|| {
                    error(
                        "unauthorized: no key, or not a valid one (WWW-Authenticate: Bearer)",
                        compat,
                    )
                });
                r.entry("403".into()).or_insert_with(|| {
                    error("forbidden: the key lacks the scope this needs", compat)
                });
                r.entry("429".into()).or_insert_with(|| {
                    error(
                        "rate_limited (the key's requests_per_second); Retry-After says when",
                        compat,
                    )
                });
            }
        }
    }
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = AnyObject)))]
pub async fn serve(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}

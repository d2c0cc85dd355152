//! `GET /v1/workflows/{id}/documents` (the list) and
//! `GET /v1/workflows/{id}/documents/{name}` (the bytes, as an attachment with
//! `Content-Type`, `Content-Disposition`, `ETag` and `Content-Length`). Same
//! ownership and scope as the result; the bytes come from the store, or from the
//! archive object of an archived workflow. Shared with MCP (`load`) and the old
//! routes (`entry`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::{AnyObject, Doc, ErrorEnvelope};
use super::reads::load_result_found;
use super::responses::DocumentErrors;
use super::shared::ServedFrom;
use crate::auth::Caller;
use crate::domain::{DocFormat, Document};
use crate::error::ApiError;
use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_list, _, _>(list))
        .service(Doc::new().to::<__path_download, _, _>(download));
}

pub fn url(id: &str, name: &str) -> String {
    format!("/v1/workflows/{id}/documents/{name}")
}

/// A document as the list shows it: `{name, format, bytes, sha256, url,
/// content_type}`, or with `error` (and no url) when it failed.
pub fn entry(id: &str, d: &Document) -> Value {
    let content_type = d.doc_format().map(DocFormat::content_type);
    let mut v = json!({
        "name": d.name, "format": d.format, "bytes": d.bytes, "sha256": d.sha256,
        "url": d.is_ok().then(|| url(id, &d.name)), "content_type": content_type,
    });
    if let Some(e) = &d.error {
        v["error"] = json!(e);
    }
    v
}

/// A workflow's documents.
#[utoipa::path(get, path = "/v1/workflows/{id}/documents", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id (wf_…)")),
    responses(
        (status = 200, description = "`{workflow_id, documents: [{name, format, bytes, sha256, url, content_type, error?}]}`", body = AnyObject),
        (status = 404, description = "workflow_not_found", body = ErrorEnvelope),
        DocumentErrors,
    ))]
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (r, found) = load_result_found(&state, &caller, &id).await?;
    let docs: Vec<Value> = r
        .documents
        .iter()
        .map(|d| entry(&r.workflow_id, d))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Served-From", found.from))
        .json(json!({"workflow_id": r.workflow_id, "documents": docs})))
}

/// One document's bytes, and what they are.
pub struct Loaded {
    pub format: DocFormat,
    pub name: String,
    pub sha256: String,
    pub body: Vec<u8>,
    /// `Store` or `Archive`.
    pub from: ServedFrom,
}

/// A document of a finished workflow this caller may read (`read` scope).
pub async fn load(
    state: &AppState,
    caller: &Caller,
    id: &str,
    name: &str,
) -> Result<Loaded, ApiError> {
    let not_found = || ApiError::DocumentNotFound {
        id: id.to_string(),
        name: name.chars().take(64).collect(),
    };
    if name.len() > 64 {
        return Err(not_found());
    }
    let (r, found) = load_result_found(state, caller, id).await?;
    let meta = r
        .documents
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(not_found)?;
    if let Some(reason) = &meta.error {
        return Err(ApiError::DocumentFailed {
            id: id.to_string(),
            name: name.to_string(),
            reason: reason.clone(),
        });
    }
    let format = meta.doc_format().ok_or_else(not_found)?;
    let (sha256, body, from) = match &found.archived {
        Some(a) => {
            let d = a.documents.iter().find(|d| d.name == name);
            match d {
                Some(d) => (
                    d.sha256.clone(),
                    d.bytes().map_err(|e| ApiError::Internal(e.to_string()))?,
                    ServedFrom::Archive,
                ),
                None if format.is_text() => legacy(meta, ServedFrom::Archive),
                None => return Err(missing(id, name)),
            }
        }
        None => {
            let mut stored = state.store.documents(id, Some(name)).await?;
            match stored.pop() {
                Some(d) => (d.sha256, d.body, ServedFrom::Store),
                // Reports from before documents had bytes: the inline text.
                None if format.is_text() => legacy(meta, ServedFrom::Store),
                None => return Err(missing(id, name)),
            }
        }
    };
    Ok(Loaded {
        format,
        name: name.to_string(),
        sha256,
        body,
        from,
    })
}

fn legacy(meta: &Document, from: ServedFrom) -> (String, Vec<u8>, ServedFrom) {
    use sha2::{Digest, Sha256};
    let body = meta.content.clone().into_bytes();
    (hex::encode(Sha256::digest(&body)), body, from)
}

fn missing(id: &str, name: &str) -> ApiError {
    ApiError::Internal(format!(
        "document '{name}' of '{id}' is listed in its result but missing from the store"
    ))
}

/// One document, as an attachment.
#[utoipa::path(get, path = "/v1/workflows/{id}/documents/{name}", tag = "workflows",
    params(
        ("id" = String, Path, description = "Workflow id (wf_…)"),
        ("name" = String, Path, description = "report.md, report.pdf or report.docx"),
    ),
    responses(
        (status = 200, description = "The document's bytes (`Content-Type` per format, `Content-Disposition: attachment`, `ETag` = its SHA-256)"),
        (status = 304, description = "Not modified (`If-None-Match` matched the ETag)"),
        (status = 404, description = "workflow_not_found | document_not_found | document_failed", body = ErrorEnvelope),
        DocumentErrors,
    ))]
async fn download(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let d = load(&state, &caller, &id, &name).await?;
    let etag = format!("\"{}\"", d.sha256);
    let matched = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matched {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, d.format.content_type()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", d.name),
        ))
        .insert_header((header::ETAG, etag))
        .insert_header(("X-Served-From", d.from))
        .body(d.body))
}

//! The MCP resources: a workflow's status, result, Markdown report and generated
//! documents (`…/documents/{name}`, binary ones as base64 blobs), and the
//! patterns. Reads go through the same shared functions as the HTTP API; a failed
//! read is a JSON-RPC error whose `data.code` is the HTTP API's error code.

use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use rmcp::ErrorData as McpError;
use serde_json::{json, Value};

use super::tools::report;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::api::{documents, patterns, workflows};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

const SCHEME: &str = "orchestrator://";
const PATTERNS: &str = "orchestrator://patterns";
const JSON: &str = "application/json";
const MARKDOWN: &str = "text/markdown";
/// Workflows listed per `resources/list` page (newest first).
const PAGE: usize = 50;

pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new("orchestrator://workflows/{id}", "workflow status")
            .with_description("A workflow's record: status, timestamps, progress, cost, tokens")
            .with_mime_type(JSON),
        ResourceTemplate::new("orchestrator://workflows/{id}/result", "workflow result")
            .with_description(
                "A finished workflow's result: agent results, syntheses, documents, cost",
            )
            .with_mime_type(JSON),
        ResourceTemplate::new("orchestrator://workflows/{id}/report.md", "workflow report")
            .with_description("A finished workflow's Markdown report")
            .with_mime_type(MARKDOWN),
        ResourceTemplate::new(
            "orchestrator://workflows/{id}/documents/{name}",
            "workflow document",
        )
        .with_description(
            "A generated report document (report.md as text; report.pdf, report.docx as a base64 blob)",
        ),
    ])
}

/// The patterns, then the stored workflows newest first, a page at a time (the
/// cursor is the HTTP API's `next_cursor`).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    cursor: Option<String>,
) -> Result<ListResourcesResult, McpError> {
    if let Some(c) = &cursor {
        if !c.starts_with("wf_") || c.len() > 64 {
            return Err(McpError::invalid_params(
                "cursor is not one this server issued",
                Some(json!({"code": "validation_error", "field": "cursor"})),
            ));
        }
    }
    let first = cursor.is_none();
    let (items, next) = workflows::page(state, caller, None, None, cursor, PAGE)
        .await
        .map_err(|e| to_mcp(&e))?;
    let mut resources = Vec::with_capacity(items.len() + 1);
    if first {
        resources.push(
            Resource::new(PATTERNS, "patterns")
                .with_description("Workflow patterns with their defaults and limits")
                .with_mime_type(JSON),
        );
    }
    for wf in items {
        resources.push(
            Resource::new(format!("{SCHEME}workflows/{}", wf.id), wf.id.clone())
                .with_title(wf.title.clone())
                .with_description(format!("{} workflow, {}", wf.pattern.as_str(), wf.status))
                .with_mime_type(JSON),
        );
    }
    let mut out = ListResourcesResult::with_all_items(resources);
    out.next_cursor = next;
    Ok(out)
}

enum Target<'a> {
    Patterns,
    Status(&'a str),
    Result(&'a str),
    Report(&'a str),
    Document(&'a str, &'a str),
}

fn parse(uri: &str) -> Option<Target<'_>> {
    if uri == PATTERNS {
        return Some(Target::Patterns);
    }
    let rest = uri.strip_prefix(SCHEME)?.strip_prefix("workflows/")?;
    let (id, what) = match rest.split_once('/') {
        Some((id, what)) => (id, Some(what)),
        None => (rest, None),
    };
    if id.is_empty() || id.len() > 64 {
        return None;
    }
    match what {
        None => Some(Target::Status(id)),
        Some("result") => Some(Target::Result(id)),
        Some("report.md") => Some(Target::Report(id)),
        Some(w) => w
            .strip_prefix("documents/")
            .filter(|n| !n.is_empty() && n.len() <= 64 && !n.contains('/'))
            .map(|n| Target::Document(id, n)),
    }
}

pub async fn read(
    state: &AppState,
    caller: &Caller,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    let target = parse(uri).ok_or_else(|| {
        McpError::resource_not_found(
            format!("no resource '{uri}'; see resources/templates/list"),
            Some(json!({"code": "not_found", "uri": uri})),
        )
    })?;
    let contents = match target {
        Target::Patterns => json_contents(
            uri,
            &patterns::describe(state, caller).map_err(|e| to_mcp(&e))?,
        ),
        Target::Status(id) => {
            let (wf, _) = workflows::read_workflow(state, caller, id)
                .await
                .map_err(|e| to_mcp(&e))?;
            json_contents(uri, &json!(wf))
        }
        Target::Result(id) => {
            let r = workflows::load_result(state, caller, id)
                .await
                .map_err(|e| to_mcp(&e))?;
            json_contents(uri, &json!(r))
        }
        Target::Report(id) => {
            let (wf, _) = workflows::read_workflow(state, caller, id)
                .await
                .map_err(|e| to_mcp(&e))?;
            let r = workflows::load_result(state, caller, id)
                .await
                .map_err(|e| to_mcp(&e))?;
            ResourceContents::text(report(&wf, &r), uri).with_mime_type(MARKDOWN)
        }
        Target::Document(id, name) => {
            let d = documents::load(state, caller, id, name)
                .await
                .map_err(|e| to_mcp(&e))?;
            let mime = d.format.content_type();
            if d.format.is_text() {
                let text = String::from_utf8_lossy(&d.body).into_owned();
                ResourceContents::text(text, uri).with_mime_type(mime)
            } else {
                ResourceContents::blob(BASE64.encode(&d.body), uri).with_mime_type(mime)
            }
        }
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

fn json_contents(uri: &str, v: &Value) -> ResourceContents {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    ResourceContents::text(text, uri).with_mime_type(JSON)
}

/// An API error as a JSON-RPC error: not found → -32002 (resource not found), the
/// caller's mistakes → -32602, a key without the scope → -32600, the service's →
/// -32603; `data` is the HTTP API's
/// error body's inner object (`code`, `message`, `field`).
pub fn to_mcp(e: &ApiError) -> McpError {
    let data = e.body().get("error").cloned();
    match e {
        ApiError::WorkflowNotFound(_)
        | ApiError::DocumentNotFound { .. }
        | ApiError::DocumentFailed { .. } => McpError::resource_not_found(e.to_string(), data),
        ApiError::Validation { .. }
        | ApiError::NotFinished(_)
        | ApiError::AlreadyFinished { .. } => McpError::invalid_params(e.to_string(), data),
        ApiError::Unauthorized(_) | ApiError::Forbidden { .. } => {
            McpError::invalid_request(e.to_string(), data)
        }
        _ => McpError::internal_error(e.to_string(), data),
    }
}

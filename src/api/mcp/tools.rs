//! The MCP tools, named as in the old server. Each maps onto the same shared
//! functions as the HTTP API (`workflows::validate`/`admit`/`find`/`load_result`/
//! `cancel_workflow`, `patterns::describe`): one code path, one validation, one
//! error table, the same scopes and ownership for the request's API key. A failure is a tool result with `isError: true` whose
//! `structuredContent` is the HTTP API's error body (`{"error": {code, message, field?}}`).

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, ProgressNotificationParam, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::schemas;
use crate::api::body::field_name;
use crate::api::workflows::{self, CreateBody};
use crate::api::{events, patterns};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::{Event, Pattern, Workflow, WorkflowResult};
use crate::error::ApiError;
use crate::AppState;

pub const NAMES: [&str; 6] = [
    "orchestrate_research",
    "orchestrate_search",
    "get_orchestration_status",
    "get_orchestration_result",
    "cancel_orchestration",
    "list_orchestrator_patterns",
];

/// Every tool with its input and output schema.
pub fn all() -> Vec<Tool> {
    let reads = || ToolAnnotations::new().read_only(true).open_world(false);
    let starts = || {
        ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(true)
    };
    vec![
        Tool::new(
            "orchestrate_research",
            "Start a research workflow: decompose the task into N subtasks, run N agents in parallel, synthesise their results and write a Markdown report. Returns the workflow id at once; with wait=true reports each workflow event as progress and returns the result when the workflow ends.",
            schemas::research_input(),
        )
        .with_raw_output_schema(schemas::orchestrate_output())
        .with_annotations(starts()),
        Tool::new(
            "orchestrate_search",
            "Start a search workflow: one agent per agent type (text, image, video, news, academic, social, product, technical, general), then a synthesis and a Markdown report. Returns the workflow id at once; with wait=true reports each workflow event as progress and returns the result when the workflow ends.",
            schemas::search_input(),
        )
        .with_raw_output_schema(schemas::orchestrate_output())
        .with_annotations(starts()),
        Tool::new(
            "get_orchestration_status",
            "A workflow's status, timestamps, progress, cost and tokens.",
            schemas::task_id_input(),
        )
        .with_raw_output_schema(schemas::workflow_output())
        .with_annotations(reads()),
        Tool::new(
            "get_orchestration_result",
            "A finished workflow's result: agent results, syntheses, documents, cost. The text content is the Markdown report. Error not_finished while it runs.",
            schemas::task_id_input(),
        )
        .with_raw_output_schema(schemas::result_output())
        .with_annotations(reads()),
        Tool::new(
            "cancel_orchestration",
            "Cancel a pending or running workflow (partial results are kept). Error already_finished when it has ended.",
            schemas::task_id_input(),
        )
        .with_raw_output_schema(schemas::workflow_output())
        .with_annotations(
            ToolAnnotations::new()
                .read_only(false)
                .destructive(true)
                .idempotent(true)
                .open_world(false),
        ),
        Tool::new(
            "list_orchestrator_patterns",
            "The workflow patterns (research, search) with their defaults and limits, and the configured providers.",
            schemas::empty_input(),
        )
        .with_raw_output_schema(schemas::patterns_output())
        .with_annotations(reads()),
    ]
}

/// What a tool returns: structured content and its text rendering.
struct Output {
    structured: Value,
    text: String,
}

impl Output {
    fn json(structured: Value) -> Output {
        let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
        Output { structured, text }
    }
}

/// Runs a tool. Unknown tool names are protocol errors; everything else that
/// fails is a tool error carrying the HTTP API's code.
pub async fn call(
    state: &AppState,
    caller: &Caller,
    req: CallToolRequestParams,
    ctx: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let args = Value::Object(req.arguments.unwrap_or_default());
    let out = match req.name.as_ref() {
        "orchestrate_research" => orchestrate(state, caller, Pattern::Research, args, &ctx).await,
        "orchestrate_search" => orchestrate(state, caller, Pattern::Search, args, &ctx).await,
        "get_orchestration_status" => status(state, caller, args).await,
        "get_orchestration_result" => result(state, caller, args).await,
        "cancel_orchestration" => cancel(state, caller, args).await,
        "list_orchestrator_patterns" => parse::<NoArgs>(args)
            .and_then(|_| patterns::describe(state, caller))
            .map(Output::json),
        other => {
            return Err(McpError::invalid_params(
                format!("unknown tool '{other}'"),
                Some(json!({"tools": NAMES})),
            ))
        }
    };
    Ok(match out {
        Ok(o) => {
            let mut r = CallToolResult::structured(o.structured);
            r.content = vec![ContentBlock::text(o.text)];
            r
        }
        Err(e) => tool_error(&e),
    })
}

/// A tool error: the HTTP API's error body as structured content, and its message.
fn tool_error(e: &ApiError) -> CallToolResult {
    let mut r = CallToolResult::structured_error(e.body());
    r.content = vec![ContentBlock::text(format!("{}: {e}", e.code()))];
    r
}

/// Tool arguments, checked like a request body: unknown or mistyped fields are a
/// `validation_error` naming the field.
fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let msg = e.inner().to_string();
        let field = field_name(&e.path().to_string(), &msg);
        ApiError::validation(field, format!("arguments: {msg}"))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResearchArgs {
    task: Option<String>,
    title: Option<String>,
    config: Option<Value>,
    #[serde(default)]
    wait: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: Option<String>,
    title: Option<String>,
    config: Option<Value>,
    #[serde(default)]
    wait: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskArgs {
    task_id: String,
}

async fn orchestrate(
    state: &AppState,
    caller: &Caller,
    pattern: Pattern,
    args: Value,
    ctx: &RequestContext<RoleServer>,
) -> Result<Output, ApiError> {
    let (task, title, config, wait) = match pattern {
        Pattern::Research => {
            let a: ResearchArgs = parse(args)?;
            (a.task, a.title, a.config, a.wait)
        }
        Pattern::Search => {
            let a: SearchArgs = parse(args)?;
            (a.query, a.title, a.config, a.wait)
        }
    };
    let body = CreateBody {
        pattern: Some(pattern.as_str().to_string()),
        task,
        title,
        config,
        webhook: None,
    };
    let new = workflows::validate(body, &state.config).map_err(|e| match (pattern, e) {
        // The search tool calls its task `query`, as the old server did.
        (Pattern::Search, ApiError::Validation { field, message }) if field == "task" => {
            ApiError::validation("query", message.replace("task", "query"))
        }
        (_, e) => e,
    })?;
    if wait {
        // Waiting ends in reading the result: refuse up front rather than after the run.
        caller.require(Scope::Read)?;
    }
    let wf = workflows::admit(state, caller, new).await?;
    if !wait {
        return Ok(Output {
            text: format!(
                "Started {} workflow {} ({}). Follow it with get_orchestration_status or the resource orchestrator://workflows/{}.",
                wf.pattern.as_str(),
                wf.id,
                wf.status,
                wf.id
            ),
            structured: workflows::created_body(&wf),
        });
    }
    wait_for(state, caller, &wf.id, ctx).await
}

/// Follows a workflow's events to its end, reporting each as progress; a cancelled
/// request cancels the workflow.
async fn wait_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
    ctx: &RequestContext<RoleServer>,
) -> Result<Output, ApiError> {
    let token = ctx.meta.get_progress_token();
    let mut after = 0;
    loop {
        let mut feed = events::open(state, id, after, caller.key_name()).await?;
        let before = after;
        loop {
            let ev = tokio::select! {
                _ = ctx.ct.cancelled() => return Err(cancelled(state, caller, id).await),
                ev = feed.next() => ev,
            };
            let Some(ev) = ev else { break };
            after = ev.seq;
            if let Some(token) = &token {
                let note = ProgressNotificationParam::new(token.clone(), ev.seq as f64)
                    .with_message(progress_message(&ev));
                // A client that went away is noticed by the cancellation token.
                let _ = ctx.peer.notify_progress(note).await;
            }
            if ev.kind.is_terminal() {
                return finished(state, caller, id).await;
            }
        }
        if after == before {
            // No live feed and nothing new stored: finished (or resumed elsewhere).
            let (wf, _) = workflows::read_workflow(state, caller, id).await?;
            if wf.status.is_terminal() {
                return finished(state, caller, id).await;
            }
            tokio::select! {
                _ = ctx.ct.cancelled() => return Err(cancelled(state, caller, id).await),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}

/// The client cancelled a waiting call: cancel its workflow too. (Nothing is sent
/// back for a cancelled request; the error only ends the call.)
async fn cancelled(state: &AppState, caller: &Caller, id: &str) -> ApiError {
    match workflows::cancel_workflow(state, caller, id).await {
        Ok(_) => tracing::info!(workflow_id = %id, "MCP request cancelled: workflow cancelled"),
        Err(e) => tracing::info!(workflow_id = %id, error = %e, "MCP request cancelled"),
    }
    ApiError::AlreadyFinished {
        id: id.to_string(),
        status: "cancelled".into(),
    }
}

fn progress_message(ev: &Event) -> String {
    let mut detail = String::new();
    for key in ["agent_id", "stage", "level", "error", "reason"] {
        if let Some(v) = ev.data.get(key) {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            detail.push_str(&format!(" {key}={v}"));
        }
    }
    let mut msg = format!("{}{detail}", ev.kind.as_str());
    if msg.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| msg.is_char_boundary(*i))
            .unwrap_or(0);
        msg.truncate(cut);
    }
    msg
}

/// The answer of a waited call: the create answer for the finished workflow, its
/// record and its result; the text is the Markdown report.
async fn finished(state: &AppState, caller: &Caller, id: &str) -> Result<Output, ApiError> {
    let (wf, _) = workflows::read_workflow(state, caller, id).await?;
    let result = workflows::load_result(state, caller, id).await?;
    let mut structured = workflows::created_body(&wf);
    structured["workflow"] = json!(wf);
    structured["result"] = json!(result);
    Ok(Output {
        text: report(&wf, &result),
        structured,
    })
}

/// The Markdown report of a result; a short summary when there is none (a
/// workflow that failed or was cancelled before writing it).
pub fn report(wf: &Workflow, r: &WorkflowResult) -> String {
    r.documents
        .iter()
        .find(|d| d.format == "markdown")
        .map(|d| d.content.clone())
        .unwrap_or_else(|| {
            let mut s = format!("# {}\n\nWorkflow {} {}.", wf.title, wf.id, wf.status);
            if let Some(e) = &wf.error {
                s.push_str(&format!("\n\nError ({}): {}", e.code, e.message));
            }
            if let Some(f) = &r.final_synthesis {
                s.push_str(&format!("\n\n{f}"));
            }
            s
        })
}

async fn status(state: &AppState, caller: &Caller, args: Value) -> Result<Output, ApiError> {
    let a: TaskArgs = parse(args)?;
    let (wf, _) = workflows::read_workflow(state, caller, &a.task_id).await?;
    Ok(Output::json(json!(wf)))
}

async fn result(state: &AppState, caller: &Caller, args: Value) -> Result<Output, ApiError> {
    let a: TaskArgs = parse(args)?;
    let (wf, _) = workflows::read_workflow(state, caller, &a.task_id).await?;
    let r = workflows::load_result(state, caller, &wf.id).await?;
    Ok(Output {
        text: report(&wf, &r),
        structured: json!(r),
    })
}

async fn cancel(state: &AppState, caller: &Caller, args: Value) -> Result<Output, ApiError> {
    let a: TaskArgs = parse(args)?;
    let wf: Arc<Workflow> = workflows::cancel_workflow(state, caller, &a.task_id).await?;
    Ok(Output::json(json!(wf)))
}

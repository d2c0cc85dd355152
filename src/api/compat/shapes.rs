//! The old routes' response shapes: the started answer, stages and results in the
//! old data model, the pattern list, stream frames and the server info at `/`.

use actix_web::{web, HttpResponse};
use actix_web_lab::sse;
use serde_json::{json, Value};

use super::super::openapi::AnyObject;
use crate::error::CompatError;

type Reply = Result<HttpResponse, CompatError>;
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::bounds::{RESEARCH_AGENTS, SEARCH_AGENTS};
use crate::domain::{AgentStatus, Event, Stage, Workflow, WorkflowResult, AGENT_TYPES};
use crate::AppState;

/// The answer to a create; a replay (`Idempotency-Key`) shows no new secret.
pub(super) fn started(
    (wf, replayed): (&Workflow, bool),
    webhook_url: Option<String>,
    secret: Option<String>,
    message: String,
) -> HttpResponse {
    let mut out = json!({
        "success": true,
        "task_id": wf.id,
        "status": wf.status,
        "stream_url": format!("/stream/{}", wf.id),
        "webhook_url": webhook_url,
        "message": message,
        "estimated_completion": Value::Null,
    });
    let mut resp = HttpResponse::Ok();
    match secret {
        _ if replayed => drop(resp.insert_header((crate::idempotency::REPLAYED, "true"))),
        Some(s) => out["webhook_secret"] = json!(s),
        None => {}
    }
    resp.json(out)
}

pub(super) fn old_stage(s: Stage) -> &'static str {
    match s {
        Stage::Queued => "queued",
        Stage::Decomposing => "task_decomposition",
        Stage::Agents => "agent_execution",
        Stage::Synthesis => "synthesis",
        Stage::Documents => "document_generation",
        Stage::Done => "completed",
    }
}

/// A result in the old data model (AgentResult.result, tokens_used, drummer/camina…).
pub(super) fn old_result(wf: &Workflow, r: &WorkflowResult) -> Value {
    let agents: Vec<Value> = r
        .agent_results
        .iter()
        .map(|a| {
            json!({
                "agent_id": a.agent_id, "agent_type": a.agent_type, "subtask": a.subtask,
                "status": if a.status == AgentStatus::Completed { "success" } else { "failed" },
                "result": a.content, "tokens_used": a.tokens.total, "cost": a.cost,
                "execution_time": a.execution_time, "error": a.error,
                "metadata": {"model": a.model, "retries": a.retries, "tools_used": a.tools_used},
            })
        })
        .collect();
    let syntheses: Vec<Value> = r
        .synthesis_results
        .iter()
        .map(|s| {
            let (level, id) = match s.group {
                Some(g) if s.level == "group" => ("drummer", format!("drummer-{g:03}")),
                _ => ("camina", "camina-001".to_string()),
            };
            json!({
                "level": level, "synthesis_id": id, "synthesis": s.content,
                "tokens_used": s.tokens.total, "cost": s.cost, "execution_time": s.execution_time,
                "metadata": {"sources": s.sources, "model": s.model},
            })
        })
        .collect();
    let docs: Vec<Value> = r
        .documents
        .iter()
        .map(|d| {
            // Results from before documents had bytes carry only the text.
            let size = if d.bytes > 0 { d.bytes as usize } else { d.content.len() };
            let mut v = json!({"format": d.format, "name": d.name, "size_bytes": size, "content": d.content});
            let listed = crate::api::documents::entry(&r.workflow_id, d);
            for k in ["url", "sha256", "content_type", "error"] {
                if let Some(x) = listed.get(k) {
                    v[k] = x.clone();
                }
            }
            v
        })
        .collect();
    json!({
        "title": wf.title,
        "final_synthesis": r.final_synthesis,
        "agent_results": agents,
        "synthesis_results": syntheses,
        "generated_documents": docs,
        "total_cost": r.total_cost,
        "execution_time": r.execution_time,
        "simulated": r.simulated,
        "sources": r.sources,
    })
}

/// The old stream's event shape: `{event, task_id, timestamp, data}`.
pub(super) fn old_frame(e: &Event) -> sse::Data {
    let data = json!({"event": e.kind.as_str(), "task_id": e.workflow_id, "timestamp": e.timestamp, "data": e.data});
    sse::Data::new(data.to_string())
        .id(e.seq.to_string())
        .event(e.kind.as_str())
}

/// The patterns, by their old names (any body is ignored).
#[utoipa::path(post, path = "/tools/list_orchestrator_patterns", tag = "old API",
    responses(
        (status = 200, description = "`{success, patterns, count}`", body = AnyObject),
    ))]
pub(super) async fn list_patterns(caller: Caller) -> Reply {
    caller.require(Scope::Read)?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "patterns": [
            {
                "name": "beltalowda",
                "v1_name": "research",
                "display_name": "Beltalowda Hierarchical Research",
                "description": "3-tier synthesis: Belters → Drummers → Camina",
                "use_cases": ["Comprehensive research reports", "Literature reviews", "Market analysis"],
                "typical_agents": "8-15",
                "parameters": {"num_agents": {"min": RESEARCH_AGENTS.min, "max": RESEARCH_AGENTS.max, "default": 5},
                               "synthesis_group_size": {"default": 5}, "max_concurrent_agents": {"default": 10}},
            },
            {
                "name": "swarm",
                "v1_name": "search",
                "display_name": "Swarm Multi-Agent Search",
                "description": "9 specialized agent types for diverse searches",
                "use_cases": ["Multi-source fact checking", "Trend analysis", "Product research"],
                "agent_types": AGENT_TYPES,
                "typical_agents": "4-8",
                "parameters": {"num_agents": {"min": SEARCH_AGENTS.min, "max": SEARCH_AGENTS.max, "default": 5}},
            }
        ],
        "count": 2,
    })))
}

/// The old server's index: name, version and endpoints.
#[utoipa::path(get, path = "/", tag = "old API",
    responses((status = 200, description = "Index", body = AnyObject)))]
pub(super) async fn root(state: web::Data<AppState>, caller: Caller) -> Reply {
    caller.require(Scope::Read)?;
    Ok(HttpResponse::Ok().json(json!({
        "name": "MCP Orchestrator Server",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Multi-agent LLM workflows with durable state (Rust rewrite of the unified MCP server)",
        "endpoints": {
            "health": "/health",
            "orchestrate_research": "/tools/orchestrate_research",
            "orchestrate_search": "/tools/orchestrate_search",
            "get_orchestration_status": "/tools/get_orchestration_status",
            "cancel_orchestration": "/tools/cancel_orchestration",
            "list_orchestrator_patterns": "/tools/list_orchestrator_patterns",
            "stream": "/stream/{task_id}",
            "workflows": "/v1/workflows",
            "patterns": "/v1/patterns",
            "metrics": "/metrics",
            "dashboard": "/dashboard",
        },
        "orchestrators": ["beltalowda", "swarm"],
        "store": state.store.kind(),
        "default_provider": state.config.execution.default_provider,
    })))
}

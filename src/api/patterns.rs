//! `GET /v1/patterns`: defaults and limits per pattern.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::{AnyObject, Doc};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::bounds::{
    CONCURRENT_AGENTS, RESEARCH_AGENTS, SYNTHESIS_GROUP_SIZE, TOOL_ROUNDS,
};
use crate::domain::{Pattern, ResearchConfig, SearchConfig, AGENT_TYPES};
use crate::error::ApiError;
use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_patterns, _, _>(patterns));
}

/// The patterns with their defaults and limits, and the providers.
#[utoipa::path(get, path = "/v1/patterns", tag = "workflows",
    responses((status = 200, description = "Patterns and providers", body = AnyObject)))]
async fn patterns(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(describe(&state, &caller)?))
}

/// Defaults and limits per pattern (`read` scope). Shared by `GET /v1/patterns`
/// and MCP.
pub fn describe(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    caller.require(Scope::Read)?;
    Ok(json!({
        "default_provider": state.config.execution.default_provider,
        "providers": state.config.providers.keys().collect::<Vec<_>>(),
        // What `config.tools` may narrow (never widen), per agent type; server
        // commands, URLs and headers are the operator's and are not shown.
        "tools": {
            "servers": state.config.tools.servers.keys().collect::<Vec<_>>(),
            "agents": state.config.tools.agents,
            "max_tool_rounds": state.config.tools.max_tool_rounds,
            "rounds": state.config.tools.rounds,
            "max_tool_rounds_limits": TOOL_ROUNDS,
            "max_result_bytes": state.config.tools.max_result_bytes,
        },
        "patterns": [
            {
                "name": "research",
                "aliases": ["beltalowda"],
                "description": "decompose the task into N subtasks, run N agents in parallel, synthesise in groups, then a final synthesis and a Markdown report",
                "defaults": ResearchConfig::default(),
                "limits": {"num_agents": RESEARCH_AGENTS, "max_concurrent_agents": CONCURRENT_AGENTS, "synthesis_group_size": SYNTHESIS_GROUP_SIZE},
                // The tool rounds its agents and decomposer take unless a
                // request sets `config.max_tool_rounds`.
                "max_tool_rounds": state.config.tools.rounds_for(Pattern::Research),
            },
            {
                "name": "search",
                "aliases": ["swarm"],
                "description": "one agent per requested agent type, then a synthesis and a Markdown report",
                "defaults": SearchConfig::default(),
                "limits": {"max_concurrent_agents": CONCURRENT_AGENTS, "agent_types": AGENT_TYPES},
                "max_tool_rounds": state.config.tools.rounds_for(Pattern::Search),
            }
        ]
    }))
}

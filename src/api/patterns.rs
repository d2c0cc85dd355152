//! `GET /v1/patterns`: defaults and limits per pattern.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::allow_only;
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::{ResearchConfig, SearchConfig, AGENT_TYPES};
use crate::error::ApiError;
use crate::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/patterns")
            .route(web::get().to(patterns))
            .default_service(allow_only("GET")),
    );
}

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
        "patterns": [
            {
                "name": "research",
                "aliases": ["beltalowda"],
                "description": "decompose the task into N subtasks, run N agents in parallel, synthesise in groups, then a final synthesis and a Markdown report",
                "defaults": ResearchConfig::default(),
                "limits": {"num_agents": [3, 20], "max_concurrent_agents": [1, 20], "synthesis_group_size": [2, 10]},
            },
            {
                "name": "search",
                "aliases": ["swarm"],
                "description": "one agent per requested agent type, then a synthesis and a Markdown report",
                "defaults": SearchConfig::default(),
                "limits": {"max_concurrent_agents": [1, 20], "agent_types": AGENT_TYPES},
            }
        ]
    }))
}

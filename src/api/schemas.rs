//! The request and parameter shapes the OpenAPI document names, as the handlers
//! accept them (bounds included, so generated requests that fit the schema are
//! accepted and those that do not are refused). Documentation types only: the
//! handlers parse with their own structs.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// `research` (alias `beltalowda`) or `search` (alias `swarm`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatternName {
    Research,
    Search,
    Beltalowda,
    Swarm,
}

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

/// `POST /v1/workflows`. `config` takes the pattern's options (see
/// `GET /v1/patterns` for defaults and limits); `webhook` a per-workflow webhook.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub pattern: PatternName,
    /// The task; at least one non-space character.
    #[schema(max_length = 100000, pattern = r"\S")]
    pub task: String,
    /// Defaults to the task's first line.
    #[schema(max_length = 200, pattern = r"\S")]
    pub title: Option<String>,

    pub config: Option<EmptyConfig>,
}

/// Pattern options (num_agents, max_concurrent_agents, synthesis_group_size,
/// agent_types, provider, models, budgets, timeouts); see `GET /v1/patterns`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyConfig {}

/// A global webhook subscription (`POST /v1/webhooks`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// An https URL that does not resolve to a private address.
    pub url: String,
    /// At least 8 characters; generated (and shown once) when absent.
    #[schema(min_length = 8)]
    pub secret: Option<String>,

    pub events: Option<Vec<String>>,
}

/// The old `orchestrate_research` body (unknown fields are ignored).
#[derive(Serialize, ToSchema)]
pub struct OldResearchRequest {
    #[schema(max_length = 100000, pattern = r"\S")]
    pub task: String,
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[schema(minimum = 3, maximum = 20)]
    pub num_agents: Option<i64>,

    pub enable_synthesis: Option<bool>,
    #[schema(minimum = 2, maximum = 10)]
    pub synthesis_group_size: Option<i64>,

    pub parallel_execution: Option<bool>,
    #[schema(minimum = 1, maximum = 20)]
    pub max_concurrent_agents: Option<i64>,
}

/// The old `orchestrate_search` body (unknown fields are ignored).
#[derive(Serialize, ToSchema)]
pub struct OldSearchRequest {
    #[schema(max_length = 100000, pattern = r"\S")]
    pub query: String,
    #[schema(minimum = 1, maximum = 20)]
    pub num_agents: Option<i64>,

    pub parallel_execution: Option<bool>,

    pub enable_synthesis: Option<bool>,
    #[schema(minimum = 1, maximum = 20)]
    pub max_concurrent_agents: Option<i64>,
}

/// `{"task_id"}`: the old API's way to name a workflow.
#[derive(Serialize, ToSchema)]
pub struct TaskRequest {
    #[schema(pattern = r"\S")]
    pub task_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(pattern = r"\S")]
    pub task_id: String,
    #[schema(pattern = r"\S")]
    pub webhook_url: String,
    #[schema(min_length = 8)]
    pub secret: String,

    pub events: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct UnregisterRequest {
    #[schema(pattern = r"\S")]
    pub task_id: String,
    #[schema(pattern = r"\S")]
    pub webhook_url: String,
}

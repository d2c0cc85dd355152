//! JSON Schemas of the MCP tools' inputs and outputs. Inputs mirror the HTTP
//! API's create body (`config` is validated by the same code, so a schema-valid
//! call can still get a `validation_error` naming the field); outputs describe
//! exactly the JSON the HTTP API returns for the same read.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::domain::AGENT_TYPES;

pub type Schema = Arc<Map<String, Value>>;

fn object(v: Value) -> Schema {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(Map::new()),
    }
}

const STATUSES: [&str; 6] = [
    "pending",
    "running",
    "interrupted",
    "completed",
    "failed",
    "cancelled",
];

/// The options both patterns share (`config.*` of `POST /v1/workflows`).
fn exec_options() -> Map<String, Value> {
    let v = json!({
        "provider": {"type": "string", "description": "provider name from the server's config; default execution.default_provider"},
        "primary_model": {"type": "string", "minLength": 1, "description": "model for decomposition and synthesis"},
        "agent_model": {"type": "string", "minLength": 1, "description": "model for the agents"},
        "min_successful_agents": {"type": "integer", "minimum": 1, "maximum": 20, "description": "agents that must succeed; default half, rounded up"},
        "budget_usd": {"type": "number", "exclusiveMinimum": 0, "description": "stop and fail with budget_exceeded when spent"},
        "max_tokens_total": {"type": "integer", "minimum": 1},
        "agent_timeout_secs": {"type": "number", "exclusiveMinimum": 0},
        "synthesis_timeout_secs": {"type": "number", "exclusiveMinimum": 0},
        "final_timeout_secs": {"type": "number", "exclusiveMinimum": 0},
        "tools": {"type": "array", "maxItems": 64, "items": {"type": "string", "maxLength": 128},
            "description": "only these of the tools the server's [tools.agents] allows (\"server.tool\" or \"server.*\"); never more"},
        "max_tool_rounds": {"type": "integer", "minimum": 1, "maximum": 16, "description": "rounds of tool calls per agent; default tools.max_tool_rounds"},
        "document_formats": {"type": "array", "items": {"enum": ["markdown", "pdf", "docx"]}, "minItems": 1, "uniqueItems": true,
            "description": "report documents to generate; default documents.default_formats (markdown). Read them as resources orchestrator://workflows/{id}/documents/{name}"}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn config(own: Value) -> Value {
    let mut props = exec_options();
    if let Value::Object(m) = own {
        props.extend(m);
    }
    json!({
        "type": "object",
        "description": "pattern options, as `config` of POST /v1/workflows; unknown keys are refused",
        "properties": props,
        "additionalProperties": false
    })
}

fn wait() -> Value {
    json!({
        "type": "boolean",
        "default": false,
        "description": "false: return the workflow id at once. true: report each workflow event as notifications/progress (when the request has a progressToken) and return the result when the workflow ends; cancelling the request cancels the workflow"
    })
}

pub fn research_input() -> Schema {
    object(json!({
        "type": "object",
        "properties": {
            "task": {"type": "string", "minLength": 1, "maxLength": 100000, "description": "what to research"},
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "config": config(json!({
                "num_agents": {"type": "integer", "minimum": 3, "maximum": 20, "default": 5},
                "max_concurrent_agents": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
                "synthesis_group_size": {"type": "integer", "minimum": 2, "maximum": 10, "default": 3},
                "enable_synthesis": {"type": "boolean", "default": true}
            })),
            "wait": wait()
        },
        "required": ["task"],
        "additionalProperties": false
    }))
}

pub fn search_input() -> Schema {
    object(json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 100000, "description": "what to search for"},
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "config": config(json!({
                "agent_types": {"type": "array", "items": {"enum": AGENT_TYPES}, "minItems": 1, "uniqueItems": true,
                                "default": ["text", "news", "academic"]},
                "num_agents": {"type": "integer", "minimum": 1, "maximum": 20, "description": "default one per agent type"},
                "max_concurrent_agents": {"type": "integer", "minimum": 1, "maximum": 20, "default": 9},
                "enable_synthesis": {"type": "boolean", "default": true}
            })),
            "wait": wait()
        },
        "required": ["query"],
        "additionalProperties": false
    }))
}

pub fn task_id_input() -> Schema {
    object(json!({
        "type": "object",
        "properties": {
            "task_id": {"type": "string", "minLength": 1, "maxLength": 64, "description": "workflow id (wf_…) returned by orchestrate_research / orchestrate_search"}
        },
        "required": ["task_id"],
        "additionalProperties": false
    }))
}

pub fn empty_input() -> Schema {
    object(json!({"type": "object", "properties": {}, "additionalProperties": false}))
}

fn tokens() -> Value {
    json!({
        "type": "object",
        "properties": {"input": {"type": "integer"}, "output": {"type": "integer"}, "total": {"type": "integer"}},
        "required": ["input", "output", "total"]
    })
}

/// The workflow record (`GET /v1/workflows/{id}`).
fn workflow() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "pattern": {"enum": ["research", "search"]},
            "task": {"type": "string"},
            "title": {"type": "string"},
            "config": {"type": "object"},
            "status": {"enum": STATUSES},
            "created_at": {"type": "string"},
            "started_at": {"type": ["string", "null"]},
            "completed_at": {"type": ["string", "null"]},
            "error": {
                "anyOf": [
                    {"type": "null"},
                    {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}, "required": ["code", "message"]}
                ]
            },
            "progress": {
                "type": "object",
                "properties": {
                    "stage": {"type": "string"},
                    "completed_agents": {"type": "integer"},
                    "total_agents": {"type": "integer"},
                    "percent": {"type": "number"}
                },
                "required": ["stage", "completed_agents", "total_agents", "percent"]
            },
            "provider": {"type": "string"},
            "simulated": {"type": "boolean"},
            "total_cost_usd": {"type": "number"},
            "tokens": tokens(),
            "execution_time": {"type": ["number", "null"]},
            "resumes": {"type": "integer"}
        },
        "required": ["id", "pattern", "task", "title", "status", "created_at", "progress"]
    })
}

/// The result (`GET /v1/workflows/{id}/result`).
fn result() -> Value {
    json!({
        "type": "object",
        "properties": {
            "workflow_id": {"type": "string"},
            "pattern": {"enum": ["research", "search"]},
            "status": {"enum": STATUSES},
            "simulated": {"type": "boolean"},
            "subtasks": {"type": "array", "items": {"type": "string"}},
            "agent_results": {"type": "array", "items": {"type": "object"}},
            "synthesis_results": {"type": "array", "items": {"type": "object"}},
            "final_synthesis": {"type": ["string", "null"]},
            "documents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "format": {"type": "string"}, "content": {"type": "string"},
                        "bytes": {"type": "integer"}, "sha256": {"type": "string"}, "error": {"type": "string"}},
                    "required": ["name", "format", "content"]
                }
            },
            "execution_time": {"type": "number"},
            "total_cost": {"type": "number"},
            "tokens": tokens()
        },
        "required": ["workflow_id", "pattern", "status", "agent_results", "documents", "total_cost"]
    })
}

pub fn workflow_output() -> Schema {
    object(workflow())
}

pub fn result_output() -> Schema {
    object(result())
}

/// What an orchestrate call returns: the create answer of `POST /v1/workflows`;
/// with `wait`, for the finished workflow, plus its record and result.
pub fn orchestrate_output() -> Schema {
    object(json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": STATUSES},
            "pattern": {"enum": ["research", "search"]},
            "title": {"type": "string"},
            "created_at": {"type": "string"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "workflow": workflow(),
            "result": result()
        },
        "required": ["id", "status", "pattern", "links"]
    }))
}

/// `GET /v1/patterns`.
pub fn patterns_output() -> Schema {
    object(json!({
        "type": "object",
        "properties": {
            "default_provider": {"type": "string"},
            "providers": {"type": "array", "items": {"type": "string"}},
            "patterns": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "aliases": {"type": "array", "items": {"type": "string"}},
                        "description": {"type": "string"},
                        "defaults": {"type": "object"},
                        "limits": {"type": "object"}
                    },
                    "required": ["name", "defaults", "limits"]
                }
            }
        },
        "required": ["default_provider", "providers", "patterns"]
    }))
}

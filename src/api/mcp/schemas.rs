//! JSON Schemas of the MCP tools' inputs and outputs. Inputs are the HTTP API's
//! create body, built by `api::requests` from the same bounds table (`config` is
//! validated by the same code, so a schema-valid call can still get a
//! `validation_error` naming the field); outputs describe exactly the JSON the
//! HTTP API returns for the same read.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::api::requests;

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
            "task": requests::task("what to research"),
            "title": requests::title(),
            "config": requests::research_config(None),
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
            "query": requests::task("what to search for"),
            "title": requests::title(),
            "config": requests::search_config(None),
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

//! The JSON Schemas of the create requests, built from the domain's bounds table
//! (`domain::bounds`) in this one place: the OpenAPI request bodies of
//! `POST /v1/workflows`, `/tools/orchestrate_research` and
//! `/tools/orchestrate_search` ([`document`]) and the MCP tools' inputs
//! (`mcp::schemas`). A field serde takes as `Option` also takes `null`, and the
//! schema says so. What a schema cannot state (an agent count the quorum must
//! fit, the models a provider accepts, the tools `[tools.agents]` allows, a
//! webhook URL's address) is refused with a `validation_error` naming the field.

use serde_json::{json, Map, Value};

use crate::domain::bounds::{
    self, Bounds, Range, AGENT_TYPES, CONCURRENT_AGENTS, MAX_TASK_CHARS, MAX_TITLE_CHARS,
    MAX_TOOLS, MAX_TOOL_CHARS, MIN_SUCCESSFUL_AGENTS, RESEARCH_AGENTS, SEARCH_AGENTS,
    SYNTHESIS_GROUP_SIZE, TOOL_ENTRY_PATTERN, TOOL_ROUNDS,
};
use crate::domain::{ResearchConfig, SearchConfig};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `schema` with `extra`'s keys added.
fn with(schema: Value, extra: Value) -> Value {
    let mut m = object(schema);
    m.extend(object(extra));
    Value::Object(m)
}

/// `schema` that also takes `null` (its `type` becomes a list with `"null"`).
fn nullable(schema: Value) -> Value {
    let mut m = object(schema);
    match m.get("type").cloned() {
        Some(Value::String(t)) => {
            m.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(mut ts)) => {
            ts.push(json!("null"));
            m.insert("type".into(), Value::Array(ts));
        }
        _ => return json!({"anyOf": [Value::Object(m), {"type": "null"}]}),
    }
    Value::Object(m)
}

fn integer(r: Range) -> Value {
    json!({"type": "integer", "minimum": r.min, "maximum": r.max})
}

/// A number in `(0, max]`; without the configured maximum, `(0, ∞)`.
fn positive(max: Option<f64>, key: &str) -> Value {
    let mut s = json!({"type": "number", "exclusiveMinimum": 0,
        "description": format!("greater than 0, at most {key}")});
    if let Some(m) = max {
        s["maximum"] = json!(m);
    }
    s
}

/// A string with a non-space character and at most `max` characters.
fn text(max: usize, description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": r"\S", "description": description})
}

fn tools() -> Value {
    json!({"type": "array", "maxItems": MAX_TOOLS,
        "items": {"type": "string", "maxLength": MAX_TOOL_CHARS, "pattern": TOOL_ENTRY_PATTERN},
        "description": "only these of the tools the server's [tools.agents] allows the workflow's agent types (\"server.tool\" or \"server.*\"); never more"})
}

fn document_formats() -> Value {
    json!({"type": "array", "items": {"enum": bounds::document_formats()}, "minItems": 1, "uniqueItems": true,
        "description": "report documents to generate; default documents.default_formats (markdown)"})
}

fn agent_types() -> Value {
    json!({"type": "array", "items": {"enum": AGENT_TYPES}, "minItems": 1, "uniqueItems": true})
}

/// The options both patterns take (`config.*`): absent or `null` means the
/// configured default. `maxima`: the configured `limits.*`, when known.
fn exec_options(maxima: Option<&Bounds>) -> Map<String, Value> {
    let timeout = || {
        positive(
            maxima.map(|b| b.max_call_timeout_secs),
            "limits.max_call_timeout",
        )
    };
    let mut tokens =
        json!({"type": "integer", "minimum": 1, "description": "at most limits.max_tokens_total"});
    if let Some(b) = maxima {
        tokens["maximum"] = json!(b.max_tokens_total);
    }
    let options = [
        (
            "provider",
            json!({"type": "string", "description": "a provider of the server's config; default execution.default_provider"}),
        ),
        (
            "primary_model",
            json!({"type": "string", "minLength": 1, "pattern": r"\S", "description": "model for decomposition and synthesis; one the provider accepts"}),
        ),
        (
            "agent_model",
            json!({"type": "string", "minLength": 1, "pattern": r"\S", "description": "model for the agents; one the provider accepts"}),
        ),
        (
            "min_successful_agents",
            with(
                integer(MIN_SUCCESSFUL_AGENTS),
                json!({"description": "agents that must succeed, at most the workflow's agents; default half, rounded up"}),
            ),
        ),
        (
            "budget_usd",
            positive(maxima.map(|b| b.max_budget_usd), "limits.max_budget_usd"),
        ),
        ("max_tokens_total", tokens),
        ("agent_timeout_secs", timeout()),
        ("synthesis_timeout_secs", timeout()),
        ("final_timeout_secs", timeout()),
        ("tools", tools()),
        (
            "max_tool_rounds",
            with(
                integer(TOOL_ROUNDS),
                json!({"description": "rounds of tool calls per agent (and a research decomposer with tools); default tools.rounds.<pattern>, else tools.max_tool_rounds"}),
            ),
        ),
        ("document_formats", document_formats()),
    ];
    options
        .into_iter()
        .map(|(k, v)| (k.to_string(), nullable(v)))
        .collect()
}

fn config(own: Value, maxima: Option<&Bounds>) -> Value {
    let mut props = object(own);
    props.extend(exec_options(maxima));
    json!({
        "type": "object",
        "description": "pattern options (GET /v1/patterns lists defaults and limits); unknown keys are refused",
        "properties": props,
        "additionalProperties": false
    })
}

/// `config` of a research workflow.
pub fn research_config(maxima: Option<&Bounds>) -> Value {
    let d = ResearchConfig::default();
    config(
        json!({
            "num_agents": with(integer(RESEARCH_AGENTS), json!({"default": d.num_agents, "description": "subtasks, one agent each"})),
            "max_concurrent_agents": with(integer(CONCURRENT_AGENTS), json!({"default": d.max_concurrent_agents})),
            "synthesis_group_size": with(integer(SYNTHESIS_GROUP_SIZE), json!({"default": d.synthesis_group_size, "description": "agent results per group synthesis"})),
            "enable_synthesis": {"type": "boolean", "default": d.enable_synthesis}
        }),
        maxima,
    )
}

/// `config` of a search workflow.
pub fn search_config(maxima: Option<&Bounds>) -> Value {
    let d = SearchConfig::default();
    config(
        json!({
            "agent_types": with(agent_types(), json!({"default": d.agent_types})),
            "num_agents": nullable(with(integer(SEARCH_AGENTS), json!({"description": "default one per agent type"}))),
            "max_concurrent_agents": with(integer(CONCURRENT_AGENTS), json!({"default": d.max_concurrent_agents})),
            "enable_synthesis": {"type": "boolean", "default": d.enable_synthesis}
        }),
        maxima,
    )
}

/// The task and the title, as `/v1` and MCP take them.
pub fn task(description: &str) -> Value {
    text(MAX_TASK_CHARS, description)
}

pub fn title() -> Value {
    text(MAX_TITLE_CHARS, "defaults to the task's first line")
}

/// `POST /v1/workflows`: the config's options depend on the pattern.
fn create_request(maxima: Option<&Bounds>) -> Value {
    let branch = |names: [&str; 2], config: Value| json!({"properties": {"pattern": {"enum": names}, "config": nullable(config)}});
    json!({
        "type": "object",
        "description": "`config` takes the pattern's options; `webhook` a per-workflow webhook",
        "properties": {
            "pattern": {"enum": ["research", "search", "beltalowda", "swarm"],
                "description": "research (alias beltalowda) or search (alias swarm)"},
            "task": task("the task"),
            "title": nullable(title()),
            "config": {"type": ["object", "null"]},
            "webhook": {"anyOf": [{"$ref": "#/components/schemas/WebhookRequest"}, {"type": "null"}]}
        },
        "required": ["pattern", "task"],
        "additionalProperties": false,
        "oneOf": [
            branch(["research", "beltalowda"], research_config(maxima)),
            branch(["search", "swarm"], search_config(maxima))
        ]
    })
}

/// The fields both old create routes take beside their own (unknown fields are
/// ignored, as the old server did).
fn old_common(task_field: &str) -> Map<String, Value> {
    let n = |r: Range| nullable(integer(r));
    object(json!({
        task_field: {"type": "string", "maxLength": MAX_TASK_CHARS, "pattern": r"\S",
            "description": format!("at most {MAX_TASK_CHARS} characters with `context`")},
        "context": {"description": "any JSON, appended to the task"},
        "webhook_url": {"type": ["string", "null"], "description": "a per-workflow webhook (https, public address); its secret is returned once"},
        "provider": {"type": ["string", "null"]},
        "parallel_execution": {"type": ["boolean", "null"]},
        "enable_synthesis": {"type": ["boolean", "null"]},
        "max_concurrent_agents": with(n(CONCURRENT_AGENTS), json!({"description": "default 10; 1 without parallel_execution"})),
        "tools": nullable(tools()),
        "max_tool_rounds": n(TOOL_ROUNDS),
        "document_formats": nullable(document_formats())
    }))
}

fn old_request(task_field: &str, own: Value) -> Value {
    let mut props = old_common(task_field);
    props.extend(object(own));
    json!({"type": "object", "properties": props, "required": [task_field]})
}

/// A per-call timeout of the old routes, in seconds.
fn old_timeout(maxima: Option<&Bounds>) -> Value {
    nullable(positive(
        maxima.map(|b| b.max_call_timeout_secs),
        "limits.max_call_timeout",
    ))
}

/// `/tools/orchestrate_research`.
fn old_research(maxima: Option<&Bounds>) -> Value {
    let n = |r: Range| nullable(integer(r));
    let model = json!({"type": ["string", "null"], "minLength": 1, "pattern": r"\S"});
    let timeout = old_timeout(maxima);
    old_request(
        "task",
        json!({
            "title": {"type": ["string", "null"], "maxLength": MAX_TITLE_CHARS},
            "num_agents": with(n(RESEARCH_AGENTS), json!({"default": 5})),
            "synthesis_group_size": with(n(SYNTHESIS_GROUP_SIZE), json!({"default": 5})),
            "primary_model": model,
            "agent_model": model,
            "belter_timeout": timeout,
            "drummer_timeout": timeout,
            "camina_timeout": timeout
        }),
    )
}

/// `/tools/orchestrate_search`.
fn old_search(maxima: Option<&Bounds>) -> Value {
    old_request(
        "query",
        json!({
            "num_agents": with(nullable(integer(SEARCH_AGENTS)), json!({"default": 5})),
            "agent_types": with(nullable(json!({"type": "array", "items": {"enum": AGENT_TYPES}})),
                json!({"description": "picked from the query when absent or empty"})),
            "timeout_seconds": old_timeout(maxima)
        }),
    )
}

/// The request bodies built here: path, component name, schema.
fn bodies(maxima: &Bounds) -> [(&'static str, &'static str, Value); 3] {
    [
        (
            "/v1/workflows",
            "CreateRequest",
            create_request(Some(maxima)),
        ),
        (
            "/tools/orchestrate_research",
            "OldResearchRequest",
            old_research(Some(maxima)),
        ),
        (
            "/tools/orchestrate_search",
            "OldSearchRequest",
            old_search(Some(maxima)),
        ),
    ]
}

/// The OpenAPI document as served: `doc` with the create requests' bodies built
/// here (with the configured `limits.*`) as components, each path's POST body
/// naming its own.
pub fn document(doc: &utoipa::openapi::OpenApi, maxima: &Bounds) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    for (path, name, schema) in bodies(maxima) {
        doc["components"]["schemas"][name] = schema;
        doc["paths"][path]["post"]["requestBody"] = json!({
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}},
            "required": true
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_adds_null_to_the_type() {
        assert_eq!(
            nullable(json!({"type": "integer"}))["type"],
            json!(["integer", "null"])
        );
        assert_eq!(
            nullable(json!({"enum": ["a"]})),
            json!({"anyOf": [{"enum": ["a"]}, {"type": "null"}]})
        );
    }

    #[test]
    fn the_bounds_come_from_the_table() {
        let r = research_config(None);
        assert_eq!(
            r["properties"]["num_agents"]["minimum"],
            RESEARCH_AGENTS.min
        );
        assert_eq!(
            r["properties"]["num_agents"]["maximum"],
            RESEARCH_AGENTS.max
        );
        assert_eq!(r["properties"]["tools"]["maxItems"], MAX_TOOLS);
        assert!(r["properties"]["budget_usd"].get("maximum").is_none());
        let b = Bounds::default();
        let s = search_config(Some(&b));
        assert_eq!(s["properties"]["budget_usd"]["maximum"], b.max_budget_usd);
        assert_eq!(
            s["properties"]["document_formats"]["items"]["enum"],
            json!(["markdown", "pdf", "docx"])
        );
    }
}

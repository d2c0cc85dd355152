//! The old routes' request fields: ranges, required fields, the task with its
//! `context` (bounded together, as sent), the old names of `/v1` config fields, and the
//! agent types picked from a query.

use serde_json::Value;

use crate::domain::bounds::{Range, MAX_TASK_CHARS};
use crate::domain::Pattern;
use crate::error::ApiError;
use crate::error::CompatError;

/// An integer in `range` (JSON's `7.0` is the integer 7, as JSON Schema says).
pub(super) fn bounded(
    field: &str,
    v: Option<f64>,
    default: u32,
    range: Range,
) -> Result<u32, CompatError> {
    let (lo, hi) = (range.min, range.max);
    match v {
        None => Ok(default),
        Some(n) if n.fract() == 0.0 && n >= f64::from(lo) && n <= f64::from(hi) => Ok(n as u32),
        Some(n) => Err(ApiError::validation(
            field,
            format!("{field} must be between {lo} and {hi}, got {n}"),
        )
        .into()),
    }
}

pub(super) fn required(field: &str, v: Option<String>) -> Result<String, CompatError> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => {
            Err(ApiError::validation(field, format!("Missing required parameter: {field}")).into())
        }
    }
}

/// The limit on the task (`field`: task or query) counts the `context` too, both
/// as the client sent them: before any trimming, a string context by its
/// characters, any other by its JSON text. Checked before anything else about the
/// task, so an oversized request is refused whatever else it carries.
pub(super) fn sent_within_limit(
    field: &str,
    task: Option<&str>,
    context: Option<&Value>,
) -> Result<(), CompatError> {
    let chars = |s: &str| s.chars().take(MAX_TASK_CHARS + 1).count();
    let task_chars = task.map_or(0, chars);
    let context_chars = match context {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => chars(s),
        Some(other) => chars(&other.to_string()),
    };
    if task_chars + context_chars > MAX_TASK_CHARS {
        return Err(ApiError::validation(
            field,
            format!(
                "{field} (with context) is longer than {MAX_TASK_CHARS} characters, got {}",
                task_chars + context_chars
            ),
        )
        .into());
    }
    Ok(())
}

/// The old `context` travels with the task text (a string as it is, anything else
/// as JSON); [`sent_within_limit`] has bounded the two together.
pub(super) fn with_context(task: String, context: Option<Value>) -> String {
    let context = match context {
        None | Some(Value::Null) => return task,
        Some(Value::String(s)) if s.trim().is_empty() => return task,
        Some(Value::Object(m)) if m.is_empty() => return task,
        Some(Value::Array(a)) if a.is_empty() => return task,
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    format!("{task}\n\nContext:\n{context}")
}

/// The old request's name for a `/v1` config field, so a refusal names what the
/// client sent.
pub(super) fn old_field(pattern: Pattern, field: &str) -> &str {
    let name = field.strip_prefix("config.").unwrap_or(field);
    match (pattern, name) {
        (Pattern::Research, "agent_timeout_secs") => "belter_timeout",
        (Pattern::Research, "synthesis_timeout_secs") => "drummer_timeout",
        (Pattern::Research, "final_timeout_secs") => "camina_timeout",
        (Pattern::Search, "agent_timeout_secs") => "timeout_seconds",
        _ => name,
    }
}

/// The old server picked agent types from the query when none were given.
pub fn detect_agent_types(query: &str) -> Vec<String> {
    let q = query.to_lowercase();
    let rules: [(&str, &[&str]); 7] = [
        (
            "news",
            &["news", "latest", "today", "breaking", "recent", "announce"],
        ),
        (
            "academic",
            &[
                "paper",
                "study",
                "research",
                "journal",
                "theory",
                "scientific",
            ],
        ),
        (
            "technical",
            &[
                "code",
                "api",
                "library",
                "software",
                "programming",
                "rust",
                "python",
            ],
        ),
        (
            "product",
            &["buy", "price", "product", "review", "cheap", "best"],
        ),
        ("image", &["image", "photo", "picture", "diagram"]),
        ("video", &["video", "youtube", "watch"]),
        ("social", &["twitter", "reddit", "social", "opinion"]),
    ];
    let mut types: Vec<String> = rules
        .iter()
        .filter(|(_, words)| words.iter().any(|w| q.contains(w)))
        .map(|(t, _)| t.to_string())
        .collect();
    types.insert(0, "text".into());
    if types.len() < 3 {
        types.push("general".into());
    }
    types
}

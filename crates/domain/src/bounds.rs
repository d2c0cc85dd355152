//! The bounds of a create request's fields, stated once: `PatternConfig::validate`,
//! the old routes' checks, the OpenAPI and MCP request schemas and
//! `GET /v1/patterns` are all built from this table.

use serde::Serialize;

use super::DocFormat;

/// A refusal: `(field, message)`.
pub type Invalid = (String, String);

/// An inclusive integer range a request field must fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "[u32; 2]")]
pub struct Range {
    pub min: u32,
    pub max: u32,
}

impl From<Range> for [u32; 2] {
    fn from(r: Range) -> [u32; 2] {
        [r.min, r.max]
    }
}

impl Range {
    pub const fn new(min: u32, max: u32) -> Range {
        Range { min, max }
    }

    pub fn contains(self, v: u32) -> bool {
        (self.min..=self.max).contains(&v)
    }

    /// The range with a lower upper bound (`min_successful_agents` is at most
    /// the workflow's agents).
    pub fn at_most(self, max: u32) -> Range {
        Range::new(self.min, self.max.min(max))
    }

    /// `v` within the range; the refusal names `field` and the range.
    pub fn check(self, field: &str, v: u32) -> Result<(), Invalid> {
        if self.contains(v) {
            Ok(())
        } else {
            Err((
                field.to_string(),
                format!(
                    "{field} must be between {} and {}, got {v}",
                    self.min, self.max
                ),
            ))
        }
    }
}

/// Research: subtasks, one agent each.
pub const RESEARCH_AGENTS: Range = Range::new(3, 20);
/// Search: agents (default one per agent type; they cycle through the types).
pub const SEARCH_AGENTS: Range = Range::new(1, 20);
/// Agents running at once, both patterns.
pub const CONCURRENT_AGENTS: Range = Range::new(1, 20);
/// Research: agent results per group synthesis.
pub const SYNTHESIS_GROUP_SIZE: Range = Range::new(2, 10);
/// Agents that must succeed for synthesis; also at most the workflow's agents.
pub const MIN_SUCCESSFUL_AGENTS: Range = Range::new(1, 20);
/// Rounds of tool calls per agent (`config.max_tool_rounds`, `tools.max_tool_rounds`).
pub const TOOL_ROUNDS: Range = Range::new(1, 16);

/// Entries of `config.tools`, and the characters of one.
pub const MAX_TOOLS: usize = 64;
pub const MAX_TOOL_CHARS: usize = 128;
/// What one `config.tools` entry looks like: `server.tool` or `server.*` (as an
/// ECMA-262 pattern for the schemas; [`tool_entry_ok`] is the same rule).
pub const TOOL_ENTRY_PATTERN: &str = r"^[^.]+\.[\s\S]+$";

/// `server.tool` or `server.*`: a dot with something on both sides, at most
/// [`MAX_TOOL_CHARS`] characters.
pub fn tool_entry_ok(p: &str) -> bool {
    p.chars().count() <= MAX_TOOL_CHARS
        && p.split_once('.')
            .is_some_and(|(s, t)| !s.is_empty() && !t.is_empty())
}

/// A task in characters (the old routes: task or query, `context` included).
pub const MAX_TASK_CHARS: usize = 100_000;
/// A title in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Agent types a `search` workflow may ask for (no repeats, at least one).
pub const AGENT_TYPES: [&str; 9] = [
    "text",
    "image",
    "video",
    "news",
    "academic",
    "social",
    "product",
    "technical",
    "general",
];

/// The report formats `config.document_formats` may name (no repeats, at least one).
pub fn document_formats() -> [&'static str; 3] {
    DocFormat::ALL.map(DocFormat::as_str)
}

/// The configured maxima of a create request's numbers (`limits.*`), so every
/// number a client sends has an upper bound before the workflow is admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub max_call_timeout_secs: f64,
    pub max_budget_usd: f64,
    pub max_tokens_total: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_call_timeout_secs: 600.0,
            max_budget_usd: 1_000.0,
            max_tokens_total: 100_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_field_and_tool_entries_need_a_dot() {
        assert!(RESEARCH_AGENTS.check("config.num_agents", 3).is_ok());
        let (field, msg) = RESEARCH_AGENTS.check("config.num_agents", 21).unwrap_err();
        assert_eq!(field, "config.num_agents");
        assert_eq!(msg, "config.num_agents must be between 3 and 20, got 21");
        assert_eq!(MIN_SUCCESSFUL_AGENTS.at_most(5), Range::new(1, 5));
        assert_eq!(
            serde_json::to_value(TOOL_ROUNDS).unwrap(),
            serde_json::json!([1, 16])
        );
        for ok in ["web.fetch", "kb.*", "a.b.c"] {
            assert!(tool_entry_ok(ok), "{ok}");
        }
        for bad in ["web", ".fetch", "web.", ""] {
            assert!(!tool_entry_ok(bad), "{bad}");
        }
        assert_eq!(document_formats(), ["markdown", "pdf", "docx"]);
    }
}

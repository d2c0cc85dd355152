//! Checking a `PatternConfig` against the bounds table and the configured limits;
//! every message names the field it is about.

use super::PatternConfig;
use crate::bounds::{
    tool_entry_ok, Bounds, Invalid, AGENT_TYPES, CONCURRENT_AGENTS, MAX_TOOLS,
    MIN_SUCCESSFUL_AGENTS, RESEARCH_AGENTS, SEARCH_AGENTS, SYNTHESIS_GROUP_SIZE, TOOL_ROUNDS,
};

/// A range check that names the field (`config.num_agents`) on failure.
fn in_range(field: &str, v: u32, range: crate::bounds::Range) -> Result<(), Invalid> {
    range.check(&format!("config.{field}"), v)
}

/// A number in `(0, max]`; the message names the field, the range and the key that
/// sets the maximum.
fn positive_at_most(field: &str, v: Option<f64>, max: f64, key: &str) -> Result<(), Invalid> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0 && x <= max) => Err((
            format!("config.{field}"),
            format!("config.{field} must be greater than 0 and at most {max} ({key}), got {x}"),
        )),
        _ => Ok(()),
    }
}

impl PatternConfig {
    /// Validates limits; the error is `(field, message)`.
    pub fn validate(&self, bounds: &Bounds) -> Result<(), Invalid> {
        match self {
            PatternConfig::Research(c) => {
                in_range("num_agents", c.num_agents, RESEARCH_AGENTS)?;
                in_range(
                    "max_concurrent_agents",
                    c.max_concurrent_agents,
                    CONCURRENT_AGENTS,
                )?;
                in_range(
                    "synthesis_group_size",
                    c.synthesis_group_size,
                    SYNTHESIS_GROUP_SIZE,
                )?;
            }
            PatternConfig::Search(c) => {
                in_range(
                    "max_concurrent_agents",
                    c.max_concurrent_agents,
                    CONCURRENT_AGENTS,
                )?;
                if let Some(n) = c.num_agents {
                    in_range("num_agents", n, SEARCH_AGENTS)?;
                }
                if c.agent_types.is_empty() {
                    return Err((
                        "config.agent_types".into(),
                        "config.agent_types must name at least one agent type".into(),
                    ));
                }
                for (i, t) in c.agent_types.iter().enumerate() {
                    if !AGENT_TYPES.contains(&t.as_str()) {
                        return Err((
                            format!("config.agent_types[{i}]"),
                            format!(
                                "unknown agent type '{t}'; known: {}",
                                AGENT_TYPES.join(", ")
                            ),
                        ));
                    }
                    if c.agent_types[..i].contains(t) {
                        return Err((
                            format!("config.agent_types[{i}]"),
                            format!("agent type '{t}' is listed twice"),
                        ));
                    }
                }
            }
        }
        if let Some(f) = self.document_formats() {
            crate::document::check_formats("config.", f)?;
        }
        let e = self.exec();
        if let Some(m) = e.min_successful_agents {
            let range = MIN_SUCCESSFUL_AGENTS.at_most(self.total_agents());
            in_range("min_successful_agents", m, range)?;
        }
        let b = bounds;
        positive_at_most(
            "budget_usd",
            e.budget_usd,
            b.max_budget_usd,
            "limits.max_budget_usd",
        )?;
        if let Some(n) = e.max_tokens_total {
            if n == 0 || n > b.max_tokens_total {
                return Err((
                    "config.max_tokens_total".into(),
                    format!(
                        "config.max_tokens_total must be between 1 and {} (limits.max_tokens_total), got {n}",
                        b.max_tokens_total
                    ),
                ));
            }
        }
        for (field, v) in [
            ("agent_timeout_secs", e.agent_timeout_secs),
            ("synthesis_timeout_secs", e.synthesis_timeout_secs),
            ("final_timeout_secs", e.final_timeout_secs),
        ] {
            positive_at_most(field, v, b.max_call_timeout_secs, "limits.max_call_timeout")?;
        }
        if let Some(n) = e.max_tool_rounds {
            in_range("max_tool_rounds", n, TOOL_ROUNDS)?;
        }
        if let Some(t) = &e.tools {
            if t.len() > MAX_TOOLS {
                return Err((
                    "config.tools".into(),
                    format!("config.tools lists at most {MAX_TOOLS} tools"),
                ));
            }
            for (i, p) in t.iter().enumerate() {
                if !tool_entry_ok(p) {
                    return Err((
                        format!("config.tools[{i}]"),
                        format!("config.tools[{i}] must be \"server.tool\" or \"server.*\""),
                    ));
                }
            }
        }
        for (field, v) in [
            ("primary_model", &e.primary_model),
            ("agent_model", &e.agent_model),
        ] {
            if v.as_deref().is_some_and(|m| m.trim().is_empty()) {
                return Err((
                    format!("config.{field}"),
                    format!("config.{field} must not be empty"),
                ));
            }
        }
        Ok(())
    }
}

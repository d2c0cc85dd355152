//! The two workflow patterns, their per-pattern configuration, defaults and limits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// decompose → N agents → group syntheses → final synthesis → report
    Research,
    /// one agent per agent type → synthesis → report
    Search,
}

/// Agent types a `search` workflow may ask for.
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

impl Pattern {
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Research => "research",
            Pattern::Search => "search",
        }
    }

    /// Accepts the old server's names (`beltalowda`, `swarm`) as aliases.
    pub fn parse(s: &str) -> Option<Pattern> {
        match s {
            "research" | "beltalowda" => Some(Pattern::Research),
            "search" | "swarm" => Some(Pattern::Search),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResearchConfig {
    /// Subtasks (and agents), 3–20.
    pub num_agents: u32,
    /// Agents running at once, 1–20.
    pub max_concurrent_agents: u32,
    /// Agent results per group synthesis, 2–10.
    pub synthesis_group_size: u32,
    /// Without synthesis the report is the agents' results.
    pub enable_synthesis: bool,
    /// Provider name; `execution.default_provider` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl Default for ResearchConfig {
    fn default() -> Self {
        ResearchConfig {
            num_agents: 5,
            max_concurrent_agents: 5,
            synthesis_group_size: 3,
            enable_synthesis: true,
            provider: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// One agent per type, from `AGENT_TYPES`, no repeats.
    pub agent_types: Vec<String>,
    pub max_concurrent_agents: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            agent_types: vec!["text".into(), "news".into(), "academic".into()],
            max_concurrent_agents: 9,
            provider: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PatternConfig {
    Research(ResearchConfig),
    Search(SearchConfig),
}

/// A range check that names the field (`config.num_agents`) on failure.
fn in_range(field: &str, v: u32, lo: u32, hi: u32) -> Result<(), (String, String)> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err((
            format!("config.{field}"),
            format!("config.{field} must be between {lo} and {hi}, got {v}"),
        ))
    }
}

impl PatternConfig {
    pub fn default_for(p: Pattern) -> PatternConfig {
        match p {
            Pattern::Research => PatternConfig::Research(ResearchConfig::default()),
            Pattern::Search => PatternConfig::Search(SearchConfig::default()),
        }
    }

    /// Validates limits; the error is `(field, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self {
            PatternConfig::Research(c) => {
                in_range("num_agents", c.num_agents, 3, 20)?;
                in_range("max_concurrent_agents", c.max_concurrent_agents, 1, 20)?;
                in_range("synthesis_group_size", c.synthesis_group_size, 2, 10)?;
            }
            PatternConfig::Search(c) => {
                in_range("max_concurrent_agents", c.max_concurrent_agents, 1, 20)?;
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
        Ok(())
    }

    pub fn provider(&self) -> Option<&str> {
        match self {
            PatternConfig::Research(c) => c.provider.as_deref(),
            PatternConfig::Search(c) => c.provider.as_deref(),
        }
    }

    /// How many agents the workflow runs.
    pub fn total_agents(&self) -> u32 {
        match self {
            PatternConfig::Research(c) => c.num_agents,
            PatternConfig::Search(c) => c.agent_types.len() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_patterns() {
        assert_eq!(Pattern::parse("beltalowda"), Some(Pattern::Research));
        assert_eq!(Pattern::parse("swarm"), Some(Pattern::Search));
        assert_eq!(Pattern::parse("research"), Some(Pattern::Research));
        assert_eq!(Pattern::parse("other"), None);
    }

    #[test]
    fn research_limits_name_the_field() {
        let c = ResearchConfig {
            num_agents: 21,
            ..Default::default()
        };
        let err = PatternConfig::Research(c).validate().unwrap_err();
        assert_eq!(err.0, "config.num_agents");
        let c = ResearchConfig {
            num_agents: 3,
            ..Default::default()
        };
        assert!(PatternConfig::Research(c).validate().is_ok());
    }

    #[test]
    fn search_rejects_unknown_and_repeated_types() {
        let c = SearchConfig {
            agent_types: vec!["text".into(), "poetry".into()],
            ..Default::default()
        };
        assert_eq!(
            PatternConfig::Search(c).validate().unwrap_err().0,
            "config.agent_types[1]"
        );
        let c = SearchConfig {
            agent_types: vec!["news".into(), "news".into()],
            ..Default::default()
        };
        assert!(PatternConfig::Search(c).validate().is_err());
    }
}

//! The two workflow patterns, their per-pattern configuration, defaults and limits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// decompose → N agents → group syntheses → final synthesis → report
    Research,
    /// agents over the requested agent types → synthesis → report
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

/// Execution options both patterns take: provider and models per role, quorum,
/// spending limits and per-role timeouts. Absent means "the configured default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOptions {
    pub provider: Option<String>,
    /// Model for decomposition and synthesis.
    pub primary_model: Option<String>,
    /// Model for agents.
    pub agent_model: Option<String>,
    pub min_successful_agents: Option<u32>,
    pub budget_usd: Option<f64>,
    pub max_tokens_total: Option<u64>,
    pub agent_timeout_secs: Option<f64>,
    pub synthesis_timeout_secs: Option<f64>,
    pub final_timeout_secs: Option<f64>,
}

/// Declares a pattern config struct with the shared execution options appended, so
/// the JSON stays flat (as the old API was) and unknown keys are still refused.
macro_rules! pattern_config {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Provider name; `execution.default_provider` when absent.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub provider: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub primary_model: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub agent_model: Option<String>,
            /// Agents that must succeed for synthesis; default half, rounded up.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub min_successful_agents: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub budget_usd: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub max_tokens_total: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub agent_timeout_secs: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub synthesis_timeout_secs: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub final_timeout_secs: Option<f64>,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($field: $default,)*
                    provider: None,
                    primary_model: None,
                    agent_model: None,
                    min_successful_agents: None,
                    budget_usd: None,
                    max_tokens_total: None,
                    agent_timeout_secs: None,
                    synthesis_timeout_secs: None,
                    final_timeout_secs: None,
                }
            }
        }

        impl $name {
            pub fn exec(&self) -> ExecOptions {
                ExecOptions {
                    provider: self.provider.clone(),
                    primary_model: self.primary_model.clone(),
                    agent_model: self.agent_model.clone(),
                    min_successful_agents: self.min_successful_agents,
                    budget_usd: self.budget_usd,
                    max_tokens_total: self.max_tokens_total,
                    agent_timeout_secs: self.agent_timeout_secs,
                    synthesis_timeout_secs: self.synthesis_timeout_secs,
                    final_timeout_secs: self.final_timeout_secs,
                }
            }
        }
    };
}

pattern_config!(ResearchConfig {
    /// Subtasks (and agents), 3–20.
    num_agents: u32 = 5,
    /// Agents running at once, 1–20.
    max_concurrent_agents: u32 = 5,
    /// Agent results per group synthesis, 2–10.
    synthesis_group_size: u32 = 3,
    /// Without synthesis the report is the agents' results.
    enable_synthesis: bool = true,
});

pattern_config!(SearchConfig {
    /// Agent types, from `AGENT_TYPES`, no repeats; agents cycle through them.
    agent_types: Vec<String> = vec!["text".into(), "news".into(), "academic".into()],
    /// Agents, 1–20; default one per agent type.
    num_agents: Option<u32> = None,
    max_concurrent_agents: u32 = 9,
    enable_synthesis: bool = true,
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PatternConfig {
    Research(ResearchConfig),
    Search(SearchConfig),
}

type Invalid = (String, String);

/// A range check that names the field (`config.num_agents`) on failure.
fn in_range(field: &str, v: u32, lo: u32, hi: u32) -> Result<(), Invalid> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err((
            format!("config.{field}"),
            format!("config.{field} must be between {lo} and {hi}, got {v}"),
        ))
    }
}

fn positive(field: &str, v: Option<f64>) -> Result<(), Invalid> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err((
            format!("config.{field}"),
            format!("config.{field} must be a positive number, got {x}"),
        )),
        _ => Ok(()),
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
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            PatternConfig::Research(c) => {
                in_range("num_agents", c.num_agents, 3, 20)?;
                in_range("max_concurrent_agents", c.max_concurrent_agents, 1, 20)?;
                in_range("synthesis_group_size", c.synthesis_group_size, 2, 10)?;
            }
            PatternConfig::Search(c) => {
                in_range("max_concurrent_agents", c.max_concurrent_agents, 1, 20)?;
                if let Some(n) = c.num_agents {
                    in_range("num_agents", n, 1, 20)?;
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
        let e = self.exec();
        if let Some(m) = e.min_successful_agents {
            in_range("min_successful_agents", m, 1, self.total_agents())?;
        }
        positive("budget_usd", e.budget_usd)?;
        if e.max_tokens_total == Some(0) {
            return Err((
                "config.max_tokens_total".into(),
                "config.max_tokens_total must be at least 1".into(),
            ));
        }
        positive("agent_timeout_secs", e.agent_timeout_secs)?;
        positive("synthesis_timeout_secs", e.synthesis_timeout_secs)?;
        positive("final_timeout_secs", e.final_timeout_secs)?;
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

    pub fn exec(&self) -> ExecOptions {
        match self {
            PatternConfig::Research(c) => c.exec(),
            PatternConfig::Search(c) => c.exec(),
        }
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
            PatternConfig::Search(c) => c.num_agents.unwrap_or(c.agent_types.len() as u32),
        }
    }

    /// Agents that must succeed before synthesis: configured, else half rounded up.
    pub fn min_successful(&self) -> u32 {
        self.exec()
            .min_successful_agents
            .unwrap_or_else(|| self.total_agents().div_ceil(2))
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

    #[test]
    fn quorum_defaults_to_half_rounded_up_and_is_bounded() {
        let c = |n, m| {
            PatternConfig::Research(ResearchConfig {
                num_agents: n,
                min_successful_agents: m,
                ..Default::default()
            })
        };
        assert_eq!(c(5, None).min_successful(), 3);
        assert_eq!(c(4, None).min_successful(), 2);
        assert_eq!(c(5, Some(5)).min_successful(), 5);
        assert_eq!(
            c(5, Some(6)).validate().unwrap_err().0,
            "config.min_successful_agents"
        );
        let s = PatternConfig::Search(SearchConfig {
            num_agents: Some(6),
            ..Default::default()
        });
        assert_eq!(s.total_agents(), 6);
        assert_eq!(s.min_successful(), 3);
    }

    #[test]
    fn budgets_and_timeouts_must_be_positive() {
        let c = PatternConfig::Research(ResearchConfig {
            budget_usd: Some(0.0),
            ..Default::default()
        });
        assert_eq!(c.validate().unwrap_err().0, "config.budget_usd");
        let c = PatternConfig::Research(ResearchConfig {
            agent_timeout_secs: Some(-1.0),
            ..Default::default()
        });
        assert_eq!(c.validate().unwrap_err().0, "config.agent_timeout_secs");
    }
}

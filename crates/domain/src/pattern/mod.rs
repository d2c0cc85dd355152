//! The two workflow patterns, their per-pattern configuration, defaults and limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

mod validate;

/// A per-call timeout in seconds as a `Duration`, never panicking: records stored
/// before the limits existed may hold any number. Non-positive or non-finite values
/// mean "the provider's own timeout"; larger ones are clamped to a day.
pub fn call_timeout(secs: Option<f64>) -> Option<Duration> {
    const CEILING_SECS: f64 = 86_400.0;
    secs.filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s.min(CEILING_SECS)).ok())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// decompose → N agents → group syntheses → final synthesis → report
    Research,
    /// agents over the requested agent types → synthesis → report
    Search,
}

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
    /// Narrows the tools `[tools.agents]` allows (`server.tool`, `server.*`).
    pub tools: Option<Vec<String>>,
    pub max_tool_rounds: Option<u32>,
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
            /// Only these of the tools `[tools.agents]` allows (`server.tool`, `server.*`).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub tools: Option<Vec<String>>,
            /// Tool rounds per agent (and decomposer), 1–16; `tools.rounds.<pattern>`,
            /// else `tools.max_tool_rounds`, when absent.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub max_tool_rounds: Option<u32>,
            /// Report formats (`markdown`, `pdf`, `docx`); `documents.default_formats`
            /// when absent (filled in at admission, so the record says what was made).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub document_formats: Option<Vec<String>>,
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
                    tools: None,
                    max_tool_rounds: None,
                    document_formats: None,
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
                    tools: self.tools.clone(),
                    max_tool_rounds: self.max_tool_rounds,
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

impl PatternConfig {
    pub fn default_for(p: Pattern) -> PatternConfig {
        match p {
            Pattern::Research => PatternConfig::Research(ResearchConfig::default()),
            Pattern::Search => PatternConfig::Search(SearchConfig::default()),
        }
    }

    pub fn exec(&self) -> ExecOptions {
        match self {
            PatternConfig::Research(c) => c.exec(),
            PatternConfig::Search(c) => c.exec(),
        }
    }

    /// The report formats asked for; None = the service default.
    pub fn document_formats(&self) -> Option<&[String]> {
        match self {
            PatternConfig::Research(c) => c.document_formats.as_deref(),
            PatternConfig::Search(c) => c.document_formats.as_deref(),
        }
    }

    /// Fills in the service default when the request named no formats.
    pub fn default_document_formats(&mut self, default: &[String]) {
        let slot = match self {
            PatternConfig::Research(c) => &mut c.document_formats,
            PatternConfig::Search(c) => &mut c.document_formats,
        };
        if slot.is_none() {
            *slot = Some(default.to_vec());
        }
    }

    /// The pattern this config is for.
    pub fn pattern(&self) -> Pattern {
        match self {
            PatternConfig::Research(_) => Pattern::Research,
            PatternConfig::Search(_) => Pattern::Search,
        }
    }

    pub fn provider(&self) -> Option<&str> {
        match self {
            PatternConfig::Research(c) => c.provider.as_deref(),
            PatternConfig::Search(c) => c.provider.as_deref(),
        }
    }

    /// The agent types its agents have (`research` for every research agent).
    pub fn agent_types(&self) -> Vec<&str> {
        match self {
            PatternConfig::Research(_) => vec!["research"],
            PatternConfig::Search(c) => c.agent_types.iter().map(String::as_str).collect(),
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
    use crate::bounds::Bounds;

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
        let err = PatternConfig::Research(c)
            .validate(&Bounds::default())
            .unwrap_err();
        assert_eq!(err.0, "config.num_agents");
        let c = ResearchConfig {
            num_agents: 3,
            ..Default::default()
        };
        assert!(PatternConfig::Research(c)
            .validate(&Bounds::default())
            .is_ok());
    }

    #[test]
    fn search_rejects_unknown_and_repeated_types() {
        let c = SearchConfig {
            agent_types: vec!["text".into(), "poetry".into()],
            ..Default::default()
        };
        assert_eq!(
            PatternConfig::Search(c)
                .validate(&Bounds::default())
                .unwrap_err()
                .0,
            "config.agent_types[1]"
        );
        let c = SearchConfig {
            agent_types: vec!["news".into(), "news".into()],
            ..Default::default()
        };
        assert!(PatternConfig::Search(c)
            .validate(&Bounds::default())
            .is_err());
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
            c(5, Some(6)).validate(&Bounds::default()).unwrap_err().0,
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
    fn numbers_are_bounded_by_the_configured_maxima() {
        let b = Bounds {
            max_call_timeout_secs: 600.0,
            max_budget_usd: 10.0,
            max_tokens_total: 1000,
        };
        let field = |c: ResearchConfig| PatternConfig::Research(c).validate(&b).unwrap_err();
        let (f, msg) = field(ResearchConfig {
            final_timeout_secs: Some(1e20),
            ..Default::default()
        });
        assert_eq!(f, "config.final_timeout_secs");
        assert!(
            msg.contains("at most 600") && msg.contains("limits.max_call_timeout"),
            "{msg}"
        );
        let (f, _) = field(ResearchConfig {
            budget_usd: Some(10.5),
            ..Default::default()
        });
        assert_eq!(f, "config.budget_usd");
        let (f, msg) = field(ResearchConfig {
            max_tokens_total: Some(1001),
            ..Default::default()
        });
        assert_eq!(f, "config.max_tokens_total");
        assert!(msg.contains("between 1 and 1000"), "{msg}");
        let ok = ResearchConfig {
            agent_timeout_secs: Some(600.0),
            budget_usd: Some(10.0),
            max_tokens_total: Some(1000),
            ..Default::default()
        };
        assert!(PatternConfig::Research(ok).validate(&b).is_ok());
    }

    #[test]
    fn call_timeouts_never_panic() {
        assert_eq!(call_timeout(Some(1e20)), Some(Duration::from_secs(86_400)));
        assert_eq!(call_timeout(Some(f64::INFINITY)), None);
        assert_eq!(call_timeout(Some(f64::NAN)), None);
        assert_eq!(call_timeout(Some(-1.0)), None);
        assert_eq!(call_timeout(Some(1.5)), Some(Duration::from_millis(1500)));
        assert_eq!(call_timeout(None), None);
    }

    #[test]
    fn budgets_and_timeouts_must_be_positive() {
        let c = PatternConfig::Research(ResearchConfig {
            budget_usd: Some(0.0),
            ..Default::default()
        });
        assert_eq!(
            c.validate(&Bounds::default()).unwrap_err().0,
            "config.budget_usd"
        );
        let c = PatternConfig::Research(ResearchConfig {
            agent_timeout_secs: Some(-1.0),
            ..Default::default()
        });
        assert_eq!(
            c.validate(&Bounds::default()).unwrap_err().0,
            "config.agent_timeout_secs"
        );
    }
}

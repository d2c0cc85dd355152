//! The bounds every create request is checked against before admission, on `/v1`
//! and on the old routes alike: text lengths, URL lengths, the configured maxima
//! of its numbers (`limits.*`) and the models its provider accepts
//! (`providers.<name>.models`). Each refusal names the field and the allowed range.

use crate::config::{tool_allowed, Config};
use crate::domain::tools::DECOMPOSER;
use crate::domain::{Pattern, PatternConfig};
use crate::error::ApiError;

pub use crate::domain::bounds::{MAX_TASK_CHARS, MAX_TITLE_CHARS};
/// Webhook URLs, in characters.
pub const MAX_URL_CHARS: usize = 2_048;
/// Webhook secrets, in bytes.
pub const MAX_SECRET_CHARS: usize = 256;

/// A text no longer than `max` characters; the message names the field.
pub fn text_at_most(field: &str, text: &str, max: usize) -> Result<(), ApiError> {
    // Counting stops early: a 1 MiB string is not walked to the end.
    if text.chars().nth(max).is_some() {
        return Err(ApiError::validation(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// The pattern config's numbers within `limits.*`, and its models among those the
/// chosen provider accepts. An unknown provider is left to the registry, which
/// answers it with the provider list.
pub fn check_config(config: &Config, pc: &PatternConfig) -> Result<(), ApiError> {
    pc.validate(&config.limits.bounds())
        .map_err(|(field, message)| ApiError::validation(field, message))?;
    check_tools(config, pc)?;
    let name = pc
        .provider()
        .unwrap_or(config.execution.default_provider.as_str());
    let Some(provider) = config.providers.get(name) else {
        return Ok(());
    };
    let e = pc.exec();
    for (field, model) in [
        ("config.primary_model", &e.primary_model),
        ("config.agent_model", &e.agent_model),
    ] {
        if let Some(m) = model.as_deref() {
            if !provider.accepts_model(m) {
                return Err(ApiError::validation(
                    field,
                    format!(
                        "{field}: provider '{name}' accepts the models {} (providers.{name}.models), not '{}'",
                        provider.allowed_models().join(", "),
                        shorten(m)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `config.tools` may narrow what `[tools.agents]` allows the workflow's agent
/// types (and a research workflow's decomposer), never widen it: each entry
/// must be allowed for one of them.
fn check_tools(config: &Config, pc: &PatternConfig) -> Result<(), ApiError> {
    let Some(wanted) = pc.exec().tools else {
        return Ok(());
    };
    let mut types = pc.agent_types();
    if pc.pattern() == Pattern::Research {
        types.push(DECOMPOSER);
    }
    let allowed: Vec<String> = types
        .iter()
        .flat_map(|t| config.tools.allowed_for(t).iter().cloned())
        .collect();
    for (i, p) in wanted.iter().enumerate() {
        let covered = match p.split_once('.') {
            Some((s, "*")) => allowed.iter().any(|a| a == &format!("{s}.*")),
            Some((s, t)) => tool_allowed(&allowed, s, t),
            None => false,
        };
        if !covered {
            let field = format!("config.tools[{i}]");
            let allowed = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(ApiError::validation(
                &field,
                format!(
                    "{field}: '{}' is not a tool the agent types {} may use ([tools.agents] allows: {allowed}); a request can only narrow the tools",
                    shorten(p),
                    types.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A client's string repeated in a message, cut to a readable length.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OpenAiConfig, ProviderConfig};
    use crate::domain::ResearchConfig;

    fn openai(models: &[&str]) -> ProviderConfig {
        let toml = format!(
            "base_url = \"http://x/v1\"\nmodel = \"m0\"\nmodels = {:?}",
            models
        );
        ProviderConfig::Openai(toml::from_str::<OpenAiConfig>(&toml).unwrap())
    }

    fn with_agent_model(m: &str) -> PatternConfig {
        PatternConfig::Research(ResearchConfig {
            provider: Some("p".into()),
            agent_model: Some(m.into()),
            ..Default::default()
        })
    }

    fn refused_field(provider: ProviderConfig, model: &str) -> Option<String> {
        let mut c = Config::default();
        c.providers.insert("p".into(), provider);
        match check_config(&c, &with_agent_model(model)) {
            Err(ApiError::Validation { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn models_default_to_the_providers_own() {
        assert_eq!(refused_field(openai(&[]), "m0"), None);
        assert_eq!(
            refused_field(openai(&[]), "other").as_deref(),
            Some("config.agent_model")
        );
        assert_eq!(refused_field(openai(&["a", "b"]), "b"), None);
        assert!(refused_field(openai(&["a", "b"]), "m0").is_some());
        assert_eq!(refused_field(openai(&["*"]), "anything at all"), None);
    }

    #[test]
    fn requests_narrow_tools_but_never_widen_them() {
        let c = Config {
            tools: toml::from_str(
                "[servers.web]\ncommand = \"x\"\n[servers.kb]\ncommand = \"y\"\n[agents]\nnews = [\"web.fetch\", \"kb.*\"]\n",
            )
            .unwrap(),
            ..Default::default()
        };
        let search = |tools: &[&str]| {
            PatternConfig::Search(crate::domain::SearchConfig {
                agent_types: vec!["news".into(), "text".into()],
                tools: Some(tools.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            })
        };
        assert!(check_config(&c, &search(&["web.fetch", "kb.search", "kb.*"])).is_ok());
        assert!(check_config(&c, &search(&[])).is_ok());
        for (tools, field) in [
            (&["web.fetch", "web.other"][..], "config.tools[1]"),
            (&["web.*"][..], "config.tools[0]"),
            (&["nope"][..], "config.tools[0]"),
        ] {
            match check_config(&c, &search(tools)) {
                Err(ApiError::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{tools:?}: {other:?}"),
            }
        }
        // Research agents are of type "research": nothing allows them a tool.
        let research = PatternConfig::Research(ResearchConfig {
            tools: Some(vec!["web.fetch".into()]),
            ..Default::default()
        });
        assert!(check_config(&c, &research).is_err());
    }

    #[test]
    fn text_limits_count_characters() {
        assert!(text_at_most("task", &"é".repeat(10), 10).is_ok());
        assert!(text_at_most("task", &"é".repeat(11), 10).is_err());
        assert_eq!(shorten(&"x".repeat(100)).chars().count(), 65);
    }
}

//! `[tools]`: the MCP tool servers agents may call (stdio children the orchestrator
//! starts and supervises, or Streamable HTTP endpoints), which tools each agent
//! type may use, and the bounds on what a tool call may bring back. Configured by
//! the operator only: a request can narrow the tools, never add one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
pub use crate::domain::tools::DECOMPOSER;
use crate::domain::Pattern;

/// Tool rounds one agent may take at most, whatever the config or a request says.
pub const MAX_TOOL_ROUNDS: u32 = crate::domain::bounds::TOOL_ROUNDS.max;
/// Largest `tools.max_result_bytes`.
pub const MAX_RESULT_BYTES_LIMIT: usize = 4 * 1024 * 1024;
/// Tool servers at most.
pub const MAX_SERVERS: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Tool servers by name (letters, digits, `-`; the model sees `name__tool`).
    pub servers: BTreeMap<String, ToolServerConfig>,
    /// Tools per agent type: `"server.tool"` or `"server.*"`; `default` applies to
    /// agent types not listed. `decomposer` gives the research pattern's
    /// decomposition tools; `default` does not apply to it (only an explicit
    /// `decomposer` entry does), so adding tools for agents never changes how a
    /// task is split.
    pub agents: BTreeMap<String, Vec<String>>,
    /// A tool result is cut to this many bytes before the model sees it.
    pub max_result_bytes: usize,
    /// Rounds of tool calls per agent (model turn → tool calls → model turn), by
    /// default; a request may set `config.max_tool_rounds` up to 16.
    pub max_tool_rounds: u32,
    /// The default per pattern (`research = 4`, `search = 6`), each 1–16;
    /// patterns not listed use `max_tool_rounds`.
    pub rounds: BTreeMap<String, u32>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            servers: BTreeMap::new(),
            agents: BTreeMap::new(),
            max_result_bytes: 64 * 1024,
            max_tool_rounds: 4,
            rounds: BTreeMap::new(),
        }
    }
}

/// One tool server: `command` (stdio) or `url` (Streamable HTTP), never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolServerConfig {
    /// Executable of a stdio server (looked up on PATH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub args: Vec<String>,
    /// The child's whole environment besides PATH, HOME and LANG; `${VAR}` in a
    /// value is replaced from the orchestrator's environment.
    pub env: BTreeMap<String, String>,
    /// URL of a Streamable HTTP server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers sent to an HTTP server; `${VAR}` is replaced from the environment.
    pub headers: BTreeMap<String, String>,
    /// Per tool call.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Added to the workflow's cost for each call (USD).
    pub cost_per_call: f64,
}

impl Default for ToolServerConfig {
    fn default() -> Self {
        ToolServerConfig {
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            url: None,
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(30),
            cost_per_call: 0.0,
        }
    }
}

/// `${VAR}` replaced by the variable's value; the names of unset ones in `Err`.
pub fn expand_env(value: &str) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(value.len());
    let mut missing = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => missing.push(name.to_string()),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// A server or tool name the model can see inside `server__tool`: OpenAI function
/// names are `[A-Za-z0-9_-]{1,64}`.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 24
        && !name.contains("__")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl ToolsConfig {
    /// Checks what types alone cannot say; every message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.servers.len() > MAX_SERVERS {
            return Err(ConfigError(format!(
                "tools.servers: at most {MAX_SERVERS} servers"
            )));
        }
        if !(1024..=MAX_RESULT_BYTES_LIMIT).contains(&self.max_result_bytes) {
            return Err(ConfigError(format!(
                "tools.max_result_bytes: must be between 1024 and {MAX_RESULT_BYTES_LIMIT}"
            )));
        }
        if !(1..=MAX_TOOL_ROUNDS).contains(&self.max_tool_rounds) {
            return Err(ConfigError(format!(
                "tools.max_tool_rounds: must be between 1 and {MAX_TOOL_ROUNDS}"
            )));
        }
        for (pattern, n) in &self.rounds {
            if Pattern::parse(pattern).is_none_or(|p| p.as_str() != pattern) {
                return Err(ConfigError(format!(
                    "tools.rounds.{pattern}: not a pattern (research, search)"
                )));
            }
            if !(1..=MAX_TOOL_ROUNDS).contains(n) {
                return Err(ConfigError(format!(
                    "tools.rounds.{pattern}: must be between 1 and {MAX_TOOL_ROUNDS}"
                )));
            }
        }
        for (name, s) in &self.servers {
            let key = |k: &str| format!("tools.servers.{name}.{k}");
            if !valid_server_name(name) {
                return Err(ConfigError(format!(
                    "tools.servers.{name}: a server name is 1-24 letters, digits, '-' or '_' without '__'"
                )));
            }
            match (&s.command, &s.url) {
                (Some(c), None) if !c.trim().is_empty() => {
                    if !s.headers.is_empty() {
                        return Err(ConfigError(format!("{}: only for url servers", key("headers"))));
                    }
                }
                (None, Some(u)) => {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(ConfigError(format!("{}: '{u}' is not an http(s) URL", key("url"))));
                    }
                    if !s.args.is_empty() || !s.env.is_empty() {
                        return Err(ConfigError(format!("{}: only for command servers", key("args/env"))));
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(ConfigError(format!(
                        "tools.servers.{name}: set either command (stdio) or url (HTTP), not both"
                    )))
                }
                _ => {
                    return Err(ConfigError(format!(
                        "tools.servers.{name}: set command (a stdio server) or url (a Streamable HTTP server)"
                    )))
                }
            }
            if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&s.timeout) {
                return Err(ConfigError(format!(
                    "{}: must be between 100ms and 1h",
                    key("timeout")
                )));
            }
            if !(s.cost_per_call.is_finite() && s.cost_per_call >= 0.0) {
                return Err(ConfigError(format!(
                    "{}: must be 0 or positive",
                    key("cost_per_call")
                )));
            }
        }
        for (agent, patterns) in &self.agents {
            for (i, p) in patterns.iter().enumerate() {
                let key = format!("tools.agents.{agent}[{i}]");
                let Some((server, tool)) = p.split_once('.') else {
                    return Err(ConfigError(format!(
                        "{key}: '{p}' is not \"server.tool\" or \"server.*\""
                    )));
                };
                if !self.servers.contains_key(server) {
                    return Err(ConfigError(format!(
                        "{key}: '{server}' is not a configured server (tools.servers)"
                    )));
                }
                if tool.is_empty() {
                    return Err(ConfigError(format!("{key}: '{p}' names no tool")));
                }
            }
        }
        Ok(())
    }

    /// Environment variables the servers' `${VAR}`s name that are not set.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, s) in &self.servers {
            for (what, map) in [("env", &s.env), ("headers", &s.headers)] {
                for (k, v) in map {
                    if let Err(missing) = expand_env(v) {
                        out.push(format!(
                            "tools.servers.{name}.{what}.{k}: environment variable {} is not set; server '{name}' will not start",
                            missing.join(", ")
                        ));
                    }
                }
            }
        }
        out
    }

    /// The patterns (`server.tool`, `server.*`) an agent type may use; the
    /// decomposer only what its own entry lists (`default` is for agents).
    pub fn allowed_for(&self, agent_type: &str) -> &[String] {
        self.agents
            .get(agent_type)
            .or_else(|| {
                (agent_type != DECOMPOSER)
                    .then(|| self.agents.get("default"))
                    .flatten()
            })
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Tool rounds by default for a pattern's agents (and decomposer):
    /// `tools.rounds.<pattern>`, else `tools.max_tool_rounds`.
    pub fn rounds_for(&self, pattern: Pattern) -> u32 {
        self.rounds
            .get(pattern.as_str())
            .copied()
            .unwrap_or(self.max_tool_rounds)
    }
}

/// Whether `server.tool` matches one of the patterns.
pub fn tool_allowed(patterns: &[String], server: &str, tool: &str) -> bool {
    patterns.iter().any(|p| match p.split_once('.') {
        Some((s, "*")) => s == server,
        Some((s, t)) => s == server && t == tool,
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<(), String> {
        let c: ToolsConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.0)
    }

    #[test]
    fn a_valid_section_passes() {
        parse(
            r#"
            [servers.web]
            command = "uvx"
            args = ["mcp-server-fetch"]
            timeout = "30s"
            [servers.kb]
            url = "http://127.0.0.1:9300/mcp"
            headers = { Authorization = "Bearer ${KB_TOKEN}" }
            [agents]
            news = ["web.fetch", "kb.search"]
            default = ["kb.*"]
            "#,
        )
        .unwrap();
    }

    #[test]
    fn mistakes_name_the_key() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("[servers.a]\n").contains("tools.servers.a"));
        assert!(err("[servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n").contains("not both"));
        assert!(err("[servers.a]\nurl = \"ftp://h\"\n").contains("tools.servers.a.url"));
        assert!(err("[servers.a__b]\ncommand = \"x\"\n").contains("tools.servers.a__b"));
        assert!(err("[servers.a]\ncommand = \"x\"\ntimeout = \"1ms\"\n")
            .contains("tools.servers.a.timeout"));
        assert!(
            err("[servers.a]\ncommand = \"x\"\n[agents]\nnews = [\"b.fetch\"]\n")
                .contains("tools.agents.news[0]")
        );
        assert!(
            err("[servers.a]\ncommand = \"x\"\n[agents]\nnews = [\"afetch\"]\n")
                .contains("tools.agents.news[0]")
        );
        assert!(err("max_tool_rounds = 17\n").contains("tools.max_tool_rounds"));
        assert!(err("max_result_bytes = 10\n").contains("tools.max_result_bytes"));
        assert!(err("[rounds]\nsearch = 0\n").contains("tools.rounds.search"));
        assert!(err("[rounds]\nresearch = 17\n").contains("tools.rounds.research"));
        assert!(err("[rounds]\nswarm = 4\n").contains("tools.rounds.swarm"));
        assert!(err("[servers.a]\ncommand = \"x\"\nbogus = 1\n").contains("bogus"));
    }

    #[test]
    fn rounds_default_per_pattern_then_globally() {
        let c: ToolsConfig = toml::from_str("max_tool_rounds = 3\n[rounds]\nsearch = 6\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.rounds_for(Pattern::Search), 6);
        assert_eq!(c.rounds_for(Pattern::Research), 3);
    }

    #[test]
    fn the_decomposer_gets_tools_only_from_its_own_entry() {
        let c: ToolsConfig =
            toml::from_str("[servers.kb]\ncommand = \"x\"\n[agents]\ndefault = [\"kb.*\"]\n")
                .unwrap();
        assert_eq!(c.allowed_for("news"), ["kb.*"]);
        assert!(c.allowed_for(DECOMPOSER).is_empty());
        let c: ToolsConfig = toml::from_str(
            "[servers.kb]\ncommand = \"x\"\n[agents]\ndecomposer = [\"kb.search\"]\n",
        )
        .unwrap();
        assert_eq!(c.allowed_for(DECOMPOSER), ["kb.search"]);
    }

    #[test]
    fn patterns_match_server_and_tool() {
        let p = vec!["web.fetch".to_string(), "kb.*".to_string()];
        assert!(tool_allowed(&p, "web", "fetch"));
        assert!(!tool_allowed(&p, "web", "other"));
        assert!(tool_allowed(&p, "kb", "anything"));
        assert!(!tool_allowed(&p, "kbx", "anything"));
    }

    #[test]
    fn env_references_expand_or_name_what_is_missing() {
        std::env::set_var("MCPO_UNIT_TOOLS_VAR", "v1");
        assert_eq!(
            expand_env("Bearer ${MCPO_UNIT_TOOLS_VAR}!").unwrap(),
            "Bearer v1!"
        );
        assert_eq!(expand_env("plain").unwrap(), "plain");
        assert_eq!(
            expand_env("${MCPO_UNIT_TOOLS_UNSET_1}${MCPO_UNIT_TOOLS_UNSET_2}").unwrap_err(),
            vec!["MCPO_UNIT_TOOLS_UNSET_1", "MCPO_UNIT_TOOLS_UNSET_2"]
        );
        assert_eq!(expand_env("${unterminated").unwrap(), "${unterminated");
    }
}

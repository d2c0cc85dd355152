//! `[mcp]`: the MCP endpoint at `/mcp` (Streamable HTTP): which browser origins it
//! answers and how many sessions it keeps (the Host check is `server.allowed_hosts`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sections::string_or_list;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Serve `/mcp`.
    pub enabled: bool,
    /// Browser origins allowed to call `/mcp` (`scheme://host:port`, `:*` = any
    /// port). A request carrying any other `Origin` gets 403; requests without an
    /// `Origin` (non-browser clients) pass. Empty = refuse every `Origin`.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_origins: Vec<String>,
    /// Deprecated alias: added to `server.allowed_hosts`, which every route
    /// (`/mcp` included) checks.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_hosts: Vec<String>,
    /// Open sessions at most; an `initialize` beyond gets an error.
    pub max_sessions: usize,
    /// A session with no request for this long is closed.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            enabled: true,
            allowed_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into(),
            ],
            allowed_hosts: Vec::new(),
            max_sessions: 1000,
            session_idle_timeout: Duration::from_secs(600),
        }
    }
}

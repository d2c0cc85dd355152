//! The orchestrator as an MCP client: the tool servers of `[tools]`, each kept
//! connected by a supervised actor (`supervisor.rs`), their tools offered to the
//! agents the config allows (`catalog`), and tool calls (`call.rs`). Tool output
//! is untrusted data: it reaches the model as a tool message, bounded, and never
//! changes config, tools or prompts.

mod call;
mod connect;
pub mod content;
mod supervisor;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rmcp::service::{Peer, RoleClient};
use serde_json::Value;

use crate::config::{tool_allowed, ToolServerConfig, ToolsConfig};
pub use call::{CallOutcome, TOOL_CALLS, TOOL_CALL_DURATION};

/// Tools kept from one server's `tools/list` at most: each offered tool is a
/// metric label and part of every prompt that offers it.
pub const MAX_TOOLS_PER_SERVER: usize = 64;

/// A tool a server listed.
#[derive(Debug, Clone)]
pub struct ListedTool {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// A tool offered to one agent: the function the model sees and where it goes.
#[derive(Debug, Clone)]
pub struct Offered {
    /// `server__tool`.
    pub function: String,
    pub server: String,
    pub tool: String,
    /// The OpenAI `tools[]` entry.
    pub definition: Value,
}

#[derive(Default)]
struct SlotState {
    peer: Option<Peer<RoleClient>>,
    tools: Vec<ListedTool>,
    /// Why the server is not connected (None while it is, or before the first try).
    down: Option<String>,
    connected_once: bool,
    /// The first connection attempt ended (either way).
    attempted: bool,
}

/// One configured server as the rest of the process sees it; its actor writes it.
pub struct ServerSlot {
    pub name: String,
    pub cfg: ToolServerConfig,
    state: RwLock<SlotState>,
}

impl ServerSlot {
    fn set_up(&self, peer: Peer<RoleClient>, tools: Vec<ListedTool>) {
        if let Ok(mut s) = self.state.write() {
            s.peer = Some(peer);
            s.tools = tools;
            s.down = None;
            s.connected_once = true;
            s.attempted = true;
        }
    }

    fn set_down(&self, reason: String) {
        if let Ok(mut s) = self.state.write() {
            s.peer = None;
            s.down = Some(reason);
            s.attempted = true;
        }
    }

    fn peer(&self) -> Option<Peer<RoleClient>> {
        self.state.read().ok().and_then(|s| s.peer.clone())
    }
}

/// A server's health: `None` while it is connected.
pub struct ServerHealth {
    pub name: String,
    pub problem: Option<String>,
    pub tools: usize,
}

/// Every configured tool server and the rules of who may call what.
pub struct ToolHub {
    cfg: ToolsConfig,
    slots: BTreeMap<String, Arc<ServerSlot>>,
    /// Kept so the supervisors keep restarting their actors.
    actors: std::sync::Mutex<Vec<actix::Addr<supervisor::ServerActor>>>,
}

impl ToolHub {
    pub fn new(cfg: &ToolsConfig) -> Arc<ToolHub> {
        let slots = cfg
            .servers
            .iter()
            .map(|(name, s)| {
                let slot = ServerSlot {
                    name: name.clone(),
                    cfg: s.clone(),
                    state: RwLock::new(SlotState::default()),
                };
                (name.clone(), Arc::new(slot))
            })
            .collect();
        Arc::new(ToolHub {
            cfg: cfg.clone(),
            slots,
            actors: Default::default(),
        })
    }

    /// Starts one supervised actor per server (inside the actix System).
    pub fn start(&self) {
        let started = self
            .slots
            .values()
            .map(|slot| supervisor::start(Arc::clone(slot)));
        if let Ok(mut actors) = self.actors.lock() {
            actors.extend(started);
        }
    }

    /// Waits (at most `limit`) until every server's first connection attempt
    /// ended, connected or not.
    pub async fn first_attempts(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            let pending = self
                .slots
                .values()
                .any(|s| s.state.read().map(|s| !s.attempted).unwrap_or(false));
            if !pending {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tracing::warn!("tool servers still connecting after {limit:?}; starting without them");
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn config(&self) -> &ToolsConfig {
        &self.cfg
    }

    /// The tools an agent of `agent_type` may call now: allowed by `[tools.agents]`,
    /// within the request's narrowing (if any), listed by a connected server.
    pub fn catalog(&self, agent_type: &str, narrowing: Option<&[String]>) -> Vec<Offered> {
        let allowed = self.cfg.allowed_for(agent_type);
        let mut out = Vec::new();
        for (name, slot) in &self.slots {
            let Ok(state) = slot.state.read() else {
                continue;
            };
            if state.peer.is_none() {
                continue;
            }
            for t in &state.tools {
                if !tool_allowed(allowed, name, &t.name)
                    || narrowing.is_some_and(|n| !tool_allowed(n, name, &t.name))
                {
                    continue;
                }
                let function = format!("{name}__{}", t.name);
                let definition = serde_json::json!({
                    "type": "function",
                    "function": {
                        "name": function,
                        "description": t.description,
                        "parameters": t.input_schema,
                    }
                });
                out.push(Offered {
                    function,
                    server: name.clone(),
                    tool: t.name.clone(),
                    definition,
                });
            }
        }
        out
    }

    /// Whether any tool server is configured that an agent of this type may use
    /// (connected or not): such agents run the tool loop.
    pub fn configured_for(&self, agent_type: &str) -> bool {
        !self.cfg.allowed_for(agent_type).is_empty()
    }

    pub fn slot(&self, server: &str) -> Option<&Arc<ServerSlot>> {
        self.slots.get(server)
    }

    pub fn health(&self) -> Vec<ServerHealth> {
        self.slots
            .values()
            .map(|slot| {
                let (problem, tools) = match slot.state.read() {
                    Ok(s) if s.peer.is_some() => (None, s.tools.len()),
                    Ok(s) => (
                        Some(s.down.clone().unwrap_or_else(|| {
                            if s.connected_once {
                                "reconnecting".into()
                            } else {
                                "starting".into()
                            }
                        })),
                        0,
                    ),
                    Err(_) => (Some("state unavailable".into()), 0),
                };
                ServerHealth {
                    name: slot.name.clone(),
                    problem,
                    tools,
                }
            })
            .collect()
    }
}

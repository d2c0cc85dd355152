//! MCP sessions: rmcp's in-memory session manager with a cap (`mcp.max_sessions`)
//! and the `mcp_sessions` gauge. Shared by every HTTP worker (a session is
//! reachable from any of them); idle sessions close after
//! `mcp.session_idle_timeout`. Each session belongs to the key that initialized
//! it (`owners`): `/mcp`'s guard answers any other caller as if the id did not
//! exist, and no key may open more than its share of the cap (`auth.max_share`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::Stream;
use metrics::gauge;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};
use rmcp::transport::streamable_http_server::SessionManager;

use crate::actors::metrics::MCP_SESSIONS;
use crate::auth::Shares;
use crate::config::McpConfig;
use crate::error::ApiError;

pub struct Sessions {
    inner: LocalSessionManager,
    max: usize,
    /// The key (None: auth off) that initialized each session. Entries of
    /// sessions that closed by themselves (idle) go at the next `admit`.
    owners: Mutex<HashMap<SessionId, Option<Arc<str>>>>,
    shares: Shares,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error("{0} MCP sessions are open, the limit (mcp.max_sessions)")]
    Full(usize),
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

impl Sessions {
    pub fn new(cfg: &McpConfig, shares: Shares) -> Sessions {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(cfg.session_idle_timeout);
        Sessions {
            inner,
            max: cfg.max_sessions,
            owners: Mutex::new(HashMap::new()),
            shares,
        }
    }

    /// Room for one more session of `key` within its share of the cap (the cap
    /// itself is checked when rmcp creates the session). Concurrent initializes
    /// of one key may pass together: its share can be exceeded by at most the
    /// number of HTTP workers.
    pub async fn admit(&self, key: Option<&str>) -> Result<(), ApiError> {
        let live = self.inner.sessions.read().await;
        let mut owners = self
            .owners
            .lock()
            .map_err(|_| ApiError::Internal("MCP session owners poisoned".into()))?;
        owners.retain(|id, _| live.contains_key(id));
        let mine = owners.values().filter(|o| o.as_deref() == key).count();
        let limit = self.shares.limit(key, self.max);
        if mine >= limit {
            self.shares.refused(key, "mcp_sessions");
            return Err(ApiError::TooManySessions {
                open: mine,
                limit,
                key: "auth.max_share of mcp.max_sessions",
                scope: Shares::scope(key),
            });
        }
        Ok(())
    }

    /// Records who initialized a session.
    pub fn set_owner(&self, id: &str, key: Option<&str>) {
        if let Ok(mut owners) = self.owners.lock() {
            owners.insert(SessionId::from(id), key.map(Arc::from));
        }
    }

    /// Whether `key` may use session `id`: only the key that initialized it. An
    /// unknown id is nobody's.
    pub fn owned_by(&self, id: &str, key: Option<&str>) -> bool {
        self.owners
            .lock()
            .ok()
            .and_then(|o| o.get(id).map(|owner| owner.as_deref() == key))
            .unwrap_or(false)
    }

    /// A closed session has no owner any more.
    pub fn forget(&self, id: &str) {
        if let Ok(mut owners) = self.owners.lock() {
            owners.remove(id);
        }
    }

    pub async fn open(&self) -> usize {
        self.inner.sessions.read().await.len()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    async fn publish(&self) {
        gauge!(MCP_SESSIONS).set(self.open().await as f64);
    }
}

type Transport = <LocalSessionManager as SessionManager>::Transport;

impl SessionManager for Sessions {
    type Error = SessionsError;
    type Transport = Transport;

    async fn create_session(&self) -> Result<(SessionId, Transport), SessionsError> {
        // Checked before inserting: concurrent initializes may pass together, so
        // the cap can be exceeded by at most the number of HTTP workers.
        if self.open().await >= self.max {
            return Err(SessionsError::Full(self.max));
        }
        let created = self.inner.create_session().await?;
        self.publish().await;
        Ok(created)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: rmcp::model::ClientJsonRpcMessage,
    ) -> Result<rmcp::model::ServerJsonRpcMessage, SessionsError> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, SessionsError> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), SessionsError> {
        let closed = self.inner.close_session(id).await;
        self.publish().await;
        Ok(closed?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: rmcp::model::ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionsError> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: rmcp::model::ClientJsonRpcMessage,
    ) -> Result<(), SessionsError> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionsError> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, SessionsError> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }
}

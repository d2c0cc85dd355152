//! Opening one tool server: a stdio child (its own process group, an environment
//! of only PATH/HOME/LANG and what the config gives it, stderr to our log) or a
//! Streamable HTTP endpoint (configured headers, and each tool call's step key as
//! its `Idempotency-Key`); then `initialize` and `tools/list`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, ProcessGroup};
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use tokio::io::AsyncBufReadExt;

use super::{ListedTool, ServerSlot, MAX_TOOLS_PER_SERVER};
use crate::config::expand_env;

/// Where a tool call's step key travels in `_meta` (and so to the header).
pub const STEP_KEY_META: &str = "mcp-orchestrator/step-key";
/// Variables a child inherits from us; nothing else of our environment.
const INHERITED_ENV: [&str; 3] = ["PATH", "HOME", "LANG"];
/// `initialize` plus `tools/list` must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest stderr line of a child that reaches our log.
const MAX_STDERR_LINE: usize = 500;

pub type Service = RunningService<RoleClient, ()>;

/// Why a tool server is down: `/health` and the log show the text.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("neither command nor url is set")]
    NoTransport,
    #[error("{what}.{key}: environment variable {} is not set", missing.join(", "))]
    MissingEnv {
        what: &'static str,
        key: String,
        missing: Vec<String>,
    },
    #[error("cannot start '{command}': {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("headers.{0}: not a header name")]
    HeaderName(String),
    #[error("headers.{0}: not a header value")]
    HeaderValue(String),
    #[error("HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("initialize failed: {0}")]
    Initialize(String),
    #[error("tools/list failed: {0}")]
    List(String),
    #[error("no answer to initialize/tools/list within {0:?}")]
    TimedOut(Duration),
}

/// Connects and lists the tools (names are logged, nothing else).
pub async fn open(slot: &ServerSlot) -> Result<(Service, Vec<ListedTool>), ConnectError> {
    let work = async {
        let service = match (&slot.cfg.command, &slot.cfg.url) {
            (Some(command), _) => stdio(slot, command).await?,
            (None, Some(url)) => http(slot, url).await?,
            (None, None) => return Err(ConnectError::NoTransport),
        };
        let tools = service
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| ConnectError::List(e.to_string()))?;
        Ok((service, tools))
    };
    let (service, tools) = tokio::time::timeout(HANDSHAKE_TIMEOUT, work)
        .await
        .map_err(|_| ConnectError::TimedOut(HANDSHAKE_TIMEOUT))??;
    let mut listed = Vec::new();
    for t in tools {
        let name = t.name.to_string();
        // The model calls `server__tool`: OpenAI function names are [A-Za-z0-9_-]{1,64}.
        let usable = !name.is_empty()
            && slot.name.len() + 2 + name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !usable {
            tracing::warn!(server = %slot.name, tool = %name.chars().take(64).collect::<String>(), "tool name unusable as a function name; not offered");
            continue;
        }
        if listed.len() == MAX_TOOLS_PER_SERVER {
            tracing::warn!(server = %slot.name, "more than {MAX_TOOLS_PER_SERVER} tools; the rest are not offered");
            break;
        }
        listed.push(ListedTool {
            name,
            description: t
                .description
                .map(|d| d.chars().take(2000).collect())
                .unwrap_or_default(),
            input_schema: serde_json::Value::Object((*t.input_schema).clone()),
        });
    }
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    tracing::info!(server = %slot.name, tools = ?names, "tool server connected");
    Ok((service, listed))
}

fn expanded(what: &'static str, key: &str, value: &str) -> Result<String, ConnectError> {
    expand_env(value).map_err(|missing| ConnectError::MissingEnv {
        what,
        key: key.to_string(),
        missing,
    })
}

async fn stdio(slot: &ServerSlot, command: &str) -> Result<Service, ConnectError> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(&slot.cfg.args).env_clear();
    for k in INHERITED_ENV {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    for (k, v) in &slot.cfg.env {
        cmd.env(k, expanded("env", k, v)?);
    }
    let mut wrapped = CommandWrap::from(cmd);
    // Its own process group: a server that starts helpers (npx, uvx) is
    // stopped whole.
    wrapped.wrap(ProcessGroup::leader());
    let (child, stderr) = TokioChildProcess::builder(wrapped)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| ConnectError::Spawn {
            command: command.to_string(),
            source,
        })?;
    if let Some(stderr) = stderr {
        let name = slot.name.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line: String = line.chars().take(MAX_STDERR_LINE).collect();
                tracing::info!(server = %name, "tool server stderr: {line}");
            }
        });
    }
    ().serve(child)
        .await
        .map_err(|e| ConnectError::Initialize(e.to_string()))
}

async fn http(slot: &ServerSlot, url: &str) -> Result<Service, ConnectError> {
    let mut headers = HashMap::new();
    for (k, v) in &slot.cfg.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ConnectError::HeaderName(k.clone()))?;
        let value = HeaderValue::from_str(&expanded("headers", k, v)?)
            .map_err(|_| ConnectError::HeaderValue(k.clone()))?;
        headers.insert(name, value);
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(ConnectError::Client)?;
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(StepKeyed(client), config);
    ().serve(transport)
        .await
        .map_err(|e| ConnectError::Initialize(e.to_string()))
}

/// reqwest with one addition: a `tools/call` whose `_meta` carries a step key
/// sends it as the `Idempotency-Key` header, so a server (or a gateway before
/// it) can answer a repeated call without running it again.
#[derive(Clone)]
struct StepKeyed(reqwest::Client);

fn step_key_of(message: &ClientJsonRpcMessage) -> Option<HeaderValue> {
    let v = serde_json::to_value(message).ok()?;
    if v["method"] != "tools/call" {
        return None;
    }
    let key = v["params"]["_meta"][STEP_KEY_META].as_str()?;
    HeaderValue::from_str(key).ok()
}

fn with_key(
    message: &ClientJsonRpcMessage,
    mut headers: HashMap<HeaderName, HeaderValue>,
) -> HashMap<HeaderName, HeaderValue> {
    if let Some(k) = step_key_of(message) {
        headers.insert(HeaderName::from_static("idempotency-key"), k);
    }
    headers
}

impl StreamableHttpClient for StepKeyed {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_key(&message, custom_headers);
        self.0
            .post_message(uri, message, session_id, auth_header, headers)
            .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_key(&message, custom_headers);
        self.0
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                headers,
                max_sse_event_size,
            )
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = with_key(&message, custom_headers);
        self.0
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                headers,
                limits,
            )
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.0
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        futures::stream::BoxStream<
            'static,
            Result<sse_stream::Sse, rmcp::transport::streamable_http_client::SseError>,
        >,
        StreamableHttpError<Self::Error>,
    > {
        self.0
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<
        futures::stream::BoxStream<
            'static,
            Result<sse_stream::Sse, rmcp::transport::streamable_http_client::SseError>,
        >,
        StreamableHttpError<Self::Error>,
    > {
        self.0
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

//! One `tools/call`: the model's arguments checked to be a JSON object, the step
//! key in `_meta` (and, for HTTP servers, the `Idempotency-Key` header), the
//! server's per-call timeout, the result rendered and cut (`content.rs`), and the
//! outcome counted. Every failure becomes a tool error the model is told about;
//! none fails the workflow.

use std::time::Instant;

use rmcp::model::{CallToolRequestParams, JsonObject, RequestMetaObject};

use super::connect::STEP_KEY_META;
use super::{content, ToolHub};
use crate::domain::ToolCallAnswer;

pub use crate::metric_names::{TOOL_CALLS, TOOL_CALL_DURATION};

pub type CallOutcome = ToolCallAnswer;

impl ToolHub {
    /// Calls `server`'s `tool` with the model's `arguments` (JSON text).
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: &str,
        step_key: &str,
    ) -> CallOutcome {
        let started = Instant::now();
        let max = self.cfg.max_result_bytes;
        let (cost, timeout) = self
            .slot(server)
            .map(|s| (s.cfg.cost_per_call, s.cfg.timeout))
            .unwrap_or((0.0, std::time::Duration::from_secs(1)));
        let mut answer = ToolCallAnswer {
            step_key: step_key.to_string(),
            server: server.to_string(),
            tool: tool.to_string(),
            ok: false,
            content: String::new(),
            size: 0,
            truncated: false,
            sources: Vec::new(),
            duration: 0.0,
            cost: 0.0,
        };
        let outcome = match self
            .invoke(server, tool, arguments, step_key, timeout)
            .await
        {
            Ok(result) => {
                let r = content::render(&result, max);
                answer.ok = !r.is_error;
                answer.content = r.text;
                answer.size = r.size;
                answer.truncated = r.truncated;
                answer.sources = r.sources;
                answer.cost = cost;
                if r.is_error {
                    "tool_error"
                } else {
                    "ok"
                }
            }
            Err((outcome, message)) => {
                answer.content = format!("Tool error: {message}");
                answer.size = answer.content.len();
                if outcome == "error" || outcome == "timeout" {
                    // The server was asked: the call counts for its price.
                    answer.cost = cost;
                }
                outcome
            }
        };
        answer.duration = started.elapsed().as_secs_f64();
        let labels = [("server", server.to_string()), ("tool", tool.to_string())];
        metrics::counter!(TOOL_CALLS, "server" => server.to_string(), "tool" => tool.to_string(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(TOOL_CALL_DURATION, &labels).record(answer.duration);
        tracing::info!(
            server,
            tool,
            step_key,
            outcome,
            size = answer.size,
            duration_ms = (answer.duration * 1000.0) as u64,
            "tool call"
        );
        answer
    }

    async fn invoke(
        &self,
        server: &str,
        tool: &str,
        arguments: &str,
        step_key: &str,
        timeout: std::time::Duration,
    ) -> Result<serde_json::Value, (&'static str, String)> {
        let args: JsonObject = match serde_json::from_str::<serde_json::Value>(arguments) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(("error", "the arguments must be a JSON object".into())),
            Err(e) => return Err(("error", format!("the arguments are not valid JSON: {e}"))),
        };
        let peer = self.slot(server).and_then(|s| s.peer()).ok_or((
            "unavailable",
            format!("tool server '{server}' is unavailable"),
        ))?;
        let mut meta = JsonObject::new();
        meta.insert(STEP_KEY_META.into(), step_key.into());
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(args);
        params.meta = Some(RequestMetaObject::from(meta));
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => Err(("timeout", format!("no answer within {timeout:?}"))),
            Ok(Err(e)) => Err(("error", e.to_string().chars().take(300).collect())),
            Ok(Ok(result)) => serde_json::to_value(&result)
                .map_err(|e| ("error", format!("unreadable result: {e}"))),
        }
    }
}

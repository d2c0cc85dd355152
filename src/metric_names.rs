//! Every metric name the service exports, with a doc line each (the seed's
//! names first, exactly as users know them). A leaf: it imports nothing, so any
//! layer that records a metric names it from here without importing the layer
//! that describes and exports it (`actors::metrics`).

/// Counter: workflows accepted, by `orchestrator_type` (research | search).
pub const WORKFLOWS_CREATED: &str = "workflows_created_total";
/// Counter: workflows that reached a terminal state, by `orchestrator_type` and
/// `status` (completed | failed | cancelled).
pub const WORKFLOWS_COMPLETED: &str = "workflows_completed_total";
/// Histogram: seconds from start to terminal state, by `orchestrator_type`.
pub const WORKFLOW_DURATION: &str = "workflow_duration_seconds";
/// Histogram: total LLM cost of a finished workflow in USD, by `orchestrator_type`.
pub const WORKFLOW_COST: &str = "workflow_cost_usd";
/// Gauge: pending + running + interrupted workflows held in memory.
pub const ACTIVE_WORKFLOWS: &str = "active_workflows";
/// Gauge: bytes Redis reports in use (0 while no Redis is configured).
pub const REDIS_MEMORY: &str = "redis_memory_bytes";
/// Gauge: uncompressed / compressed size of results stored in Redis.
pub const REDIS_COMPRESSION_RATIO: &str = "redis_compression_ratio";
/// Counter: finished workflows dropped from memory by the retention policy.
pub const EVICTIONS: &str = "workflows_evicted_total";
/// Gauge: finished workflows still held in memory.
pub const RETAINED_WORKFLOWS: &str = "retained_workflows";
/// Counter: HTTP requests by `method`, `route` (the pattern, not the raw path) and
/// `status`.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Histogram: HTTP request latency by `method`, `route` and `status`.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Gauge: changes waiting in a persister's queue, by `persister` (primary | redis).
pub const PERSISTER_QUEUE: &str = "persister_queue_depth";
/// Counter: changes a persister committed, by `persister`.
pub const PERSISTER_WRITES: &str = "persister_writes_total";
/// Histogram: seconds a primary-store batch took from its cut to its commit, by
/// `persister` (primary): an answer waits for the batch in flight and its own.
pub const PERSISTER_BATCH: &str = "persister_batch_seconds";
/// Counter: failed write attempts, by `persister`.
pub const PERSISTER_FAILURES: &str = "persister_failures_total";
/// Counter: persister restarts by its supervisor, by `persister`.
pub const PERSISTER_RESTARTS: &str = "persister_restarts_total";
/// Counter: LLM calls by `provider`, `model` and `outcome` (ok | error).
pub const LLM_REQUESTS: &str = "llm_requests_total";
/// Counter: LLM tokens by `provider`, `model` and `kind` (input | output).
pub const LLM_TOKENS: &str = "llm_tokens_total";
/// Histogram: LLM call latency (retries included, quota wait excluded), by
/// `provider` and `model`.
pub const LLM_DURATION: &str = "llm_request_duration_seconds";
/// Histogram: time a call waited for its provider's quota, by `provider`.
pub const LLM_QUEUE_WAIT: &str = "llm_queue_wait_seconds";
/// Counter: webhook deliveries that reached a final state, by `outcome`
/// (delivered | failed).
pub const WEBHOOK_DELIVERIES: &str = "webhook_deliveries_total";
/// Counter: webhook delivery attempts (retries included).
pub const WEBHOOK_ATTEMPTS: &str = "webhook_attempts_total";
/// Gauge: webhook deliveries not yet final.
pub const WEBHOOK_PENDING: &str = "webhook_deliveries_pending";
/// Gauge: webhook subscriptions held (bounded by `webhooks.max_subscriptions`).
pub const WEBHOOK_SUBSCRIPTIONS: &str = "webhook_subscriptions";
/// Counter: webhook subscriptions refused with 429 `too_many_webhooks`.
pub const WEBHOOK_SUBSCRIPTIONS_REFUSED: &str = "webhook_subscriptions_refused_total";
/// Gauge: webhook deliveries waiting to be sent (bounded by `webhooks.max_pending`).
pub const WEBHOOK_WAITING: &str = "webhook_deliveries_waiting";
/// Counter: webhook deliveries recorded as failed unsent because
/// `webhooks.max_pending` was reached.
pub const WEBHOOK_OVERFLOWED: &str = "webhook_deliveries_overflowed_total";
/// Gauge: connected Server-Sent-Events clients.
pub const SSE_CLIENTS: &str = "sse_clients";
/// Gauge: open MCP sessions (`/mcp`).
pub const MCP_SESSIONS: &str = "mcp_sessions";
/// Gauge: open SSE streams, live or replaying (bounded by `limits.max_sse_streams`).
pub const SSE_STREAMS: &str = "sse_streams_open";
/// Counter: SSE streams refused with 429 `too_many_streams`.
pub const SSE_STREAMS_REFUSED: &str = "sse_streams_refused_total";
/// Counter: workflow events emitted.
pub const EVENTS_EMITTED: &str = "workflow_events_total";
/// Histogram: seconds from an LLM answer's arrival to its commit as a durable
/// step: the window in which a crash makes the call repeat on resume.
pub const STEP_COMMIT: &str = "llm_step_commit_seconds";
/// Counter: LLM calls a resumed run skipped because their answer was committed.
pub const STEPS_REUSED: &str = "llm_steps_reused_total";
/// Gauge: create `Idempotency-Key`s held in memory (all are in the store too).
pub const IDEMPOTENCY_KEYS: &str = "idempotency_keys_cached";
/// Counter: MCP tool calls made for agents, by `server`, `tool` and `outcome`
/// (ok | tool_error | error | timeout | unavailable). Labels are configured
/// server names and the tools those servers listed (at most
/// `MAX_TOOLS_PER_SERVER` each), never anything a request sent.
pub const TOOL_CALLS: &str = "tool_calls_total";
/// Histogram: MCP tool call latency, by `server` and `tool`.
pub const TOOL_CALL_DURATION: &str = "tool_call_duration_seconds";
/// Counter: report documents generated, by `format` (markdown | pdf | docx) and
/// `outcome` (ok | error).
pub const DOCUMENTS_GENERATED: &str = "documents_generated_total";
/// Histogram: time to render one report document, by `format`.
pub const DOCUMENT_DURATION: &str = "document_generation_seconds";
/// Histogram: size of a generated report document in bytes, by `format`.
pub const DOCUMENT_BYTES: &str = "document_bytes";

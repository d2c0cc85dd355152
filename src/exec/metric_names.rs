//! Names of the metrics the executors record (LLM calls), kept here so executors
//! import them without importing actors; `actors::metrics` describes and exports
//! them with all the others.

/// Counter: LLM calls by `provider`, `model` and `outcome` (ok | error).
pub const LLM_REQUESTS: &str = "llm_requests_total";
/// Counter: LLM tokens by `provider`, `model` and `kind` (input | output).
pub const LLM_TOKENS: &str = "llm_tokens_total";
/// Histogram: LLM call latency (retries included, quota wait excluded), by
/// `provider` and `model`.
pub const LLM_DURATION: &str = "llm_request_duration_seconds";
/// Histogram: time a call waited for its provider's quota, by `provider`.
pub const LLM_QUEUE_WAIT: &str = "llm_queue_wait_seconds";
/// Counter: report documents generated, by `format` (markdown | pdf | docx) and
/// `outcome` (ok | error).
pub const DOCUMENTS_GENERATED: &str = "documents_generated_total";
/// Histogram: time to render one report document, by `format`.
pub const DOCUMENT_DURATION: &str = "document_generation_seconds";
/// Histogram: size of a generated report document in bytes, by `format`.
pub const DOCUMENT_BYTES: &str = "document_bytes";

//! Metrics: the Prometheus recorder behind `/metrics` (every name it exports is a
//! documented constant in `crate::metric_names`), and the `MetricsActor`, which
//! sees every `StateChange` and counts workflow lifecycles from it.
//!
//! Counting rules, so nothing is counted twice: a workflow is "created" when its
//! first record (status `pending`) is emitted — restored workflows never emit that
//! again — and "completed" when its terminal record is emitted, which the registry
//! does exactly once per workflow (terminal states never change). Counters are per
//! process, as Prometheus expects; a restart resets them (a counter reset), and
//! restored or resumed workflows do not re-count their creation.
//! Gauges that mirror someone else's state (active workflows, persister queues,
//! webhook totals, SSE clients) are read at scrape time by `refresh`, so they can
//! never drift.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use actix::prelude::*;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::persist::PersistHealth;
use super::registry::RegistryStats;
use super::Publish;
use crate::domain::ChangeKind;
use crate::events::streams::StreamLimits;
use crate::events::webhooks::WebhookStats;

// The names live in the leaf `crate::metric_names`; re-exported for the
// describing and exporting below.
pub use crate::metric_names::*;

const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
const COST_BUCKETS: &[f64] = &[
    0.0, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BYTES_BUCKETS: &[f64] = &[
    1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTANCE: OnceLock<String> = OnceLock::new();

/// The `instance` label every exported series carries, so series from several
/// instances on one PostgreSQL stay apart: the effective `cluster.instance_id`,
/// from configuration only (never from a request). Takes effect only before the
/// recorder is installed; later calls are ignored.
pub fn set_instance(id: String) {
    let _ = INSTANCE.set(id);
}

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
/// A second recorder cannot be installed (tests in one process share this one).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                (WORKFLOW_DURATION, DURATION_BUCKETS),
                (WORKFLOW_COST, COST_BUCKETS),
                (HTTP_DURATION, LATENCY_BUCKETS),
                (LLM_DURATION, LATENCY_BUCKETS),
                (LLM_QUEUE_WAIT, LATENCY_BUCKETS),
                (STEP_COMMIT, LATENCY_BUCKETS),
                (PERSISTER_BATCH, LATENCY_BUCKETS),
                (DOCUMENT_DURATION, LATENCY_BUCKETS),
                (DOCUMENT_BYTES, BYTES_BUCKETS),
            ];
            let mut b = PrometheusBuilder::new();
            for (name, values) in buckets {
                // Only fails on an empty bucket list, which these are not.
                b = match b.set_buckets_for_metric(Matcher::Full(name.into()), values) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(metric = name, error = %e, "bad histogram buckets");
                        PrometheusBuilder::new()
                    }
                };
            }
            // Unset (in-process tests): the default id, `<hostname>-<pid>`.
            let instance = INSTANCE
                .get_or_init(|| crate::config::ClusterConfig::default().effective_instance_id());
            let recorder = b
                .add_global_label("instance", instance.as_str())
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "a metrics recorder was already installed");
            }
            describe();
            // Present from the start, even without Redis: dashboards show 0, not
            // "no data".
            gauge!(REDIS_MEMORY).set(0.0);
            gauge!(ACTIVE_WORKFLOWS).set(0.0);
            gauge!(IDEMPOTENCY_KEYS).set(0.0);
            counter!(STEPS_REUSED).absolute(0);
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(WORKFLOWS_CREATED, "Total workflows created");
    crate::auth::metrics::describe();
    crate::auth::share::describe();
    crate::cluster::metrics::describe();
    describe_counter!(
        WORKFLOWS_COMPLETED,
        "Total workflows that reached a terminal state"
    );
    describe_histogram!(WORKFLOW_DURATION, Unit::Seconds, "Workflow execution time");
    describe_histogram!(WORKFLOW_COST, "Workflow API cost in USD");
    describe_gauge!(ACTIVE_WORKFLOWS, "Current active workflows");
    describe_gauge!(REDIS_MEMORY, Unit::Bytes, "Redis memory usage");
    describe_gauge!(
        REDIS_COMPRESSION_RATIO,
        "Uncompressed to compressed size of results stored in Redis"
    );
    describe_counter!(EVICTIONS, "Finished workflows evicted from memory");
    describe_gauge!(RETAINED_WORKFLOWS, "Finished workflows held in memory");
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route pattern and status");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route pattern and status"
    );
    describe_gauge!(PERSISTER_QUEUE, "Changes waiting in a persister's queue");
    describe_counter!(PERSISTER_WRITES, "Changes committed by a persister");
    describe_counter!(PERSISTER_FAILURES, "Failed persister write attempts");
    describe_counter!(PERSISTER_RESTARTS, "Persister restarts by its supervisor");
    describe_counter!(LLM_REQUESTS, "LLM calls by provider, model and outcome");
    describe_counter!(
        TOOL_CALLS,
        "MCP tool calls by server, tool and outcome (ok, tool_error, error, timeout, unavailable)"
    );
    describe_histogram!(
        TOOL_CALL_DURATION,
        Unit::Seconds,
        "MCP tool call duration by server and tool"
    );
    describe_counter!(LLM_TOKENS, "LLM tokens by provider, model and kind");
    describe_histogram!(
        LLM_DURATION,
        Unit::Seconds,
        "LLM call latency including retries, excluding quota wait"
    );
    describe_histogram!(
        LLM_QUEUE_WAIT,
        Unit::Seconds,
        "Time LLM calls waited for the provider's quota"
    );
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook deliveries by final outcome");
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook delivery attempts");
    describe_gauge!(WEBHOOK_PENDING, "Webhook deliveries not yet final");
    describe_gauge!(
        WEBHOOK_SUBSCRIPTIONS,
        "Webhook subscriptions held (webhooks.max_subscriptions)"
    );
    describe_counter!(
        WEBHOOK_SUBSCRIPTIONS_REFUSED,
        "Webhook subscriptions refused with too_many_webhooks"
    );
    describe_gauge!(
        WEBHOOK_WAITING,
        "Webhook deliveries waiting to be sent (webhooks.max_pending)"
    );
    describe_counter!(
        WEBHOOK_OVERFLOWED,
        "Webhook deliveries recorded as failed unsent because webhooks.max_pending was reached"
    );
    describe_gauge!(SSE_CLIENTS, "Connected Server-Sent-Events clients");
    describe_gauge!(
        SSE_STREAMS,
        "Open Server-Sent-Events streams (limits.max_sse_streams)"
    );
    describe_counter!(
        SSE_STREAMS_REFUSED,
        "Server-Sent-Events streams refused with too_many_streams"
    );
    describe_counter!(EVENTS_EMITTED, "Workflow events emitted");
    describe_gauge!(MCP_SESSIONS, "Open MCP sessions");
    describe_histogram!(
        PERSISTER_BATCH,
        Unit::Seconds,
        "Time a primary-store batch took from its cut to its commit"
    );
    describe_histogram!(
        STEP_COMMIT,
        Unit::Seconds,
        "Time from an LLM answer's arrival to its commit as a durable step"
    );
    describe_counter!(
        STEPS_REUSED,
        "LLM calls skipped on resume because their answer was committed"
    );
    describe_gauge!(IDEMPOTENCY_KEYS, "Create Idempotency-Keys held in memory");
    describe_counter!(
        DOCUMENTS_GENERATED,
        "Report documents generated, by format and outcome (ok | error)"
    );
    describe_histogram!(
        DOCUMENT_DURATION,
        Unit::Seconds,
        "Time to render one report document, by format"
    );
    describe_histogram!(
        DOCUMENT_BYTES,
        Unit::Bytes,
        "Size of a generated report document, by format"
    );
}

/// Sets the gauges and counters that mirror other components' state; called on
/// every scrape.
pub fn refresh(
    stats: Option<&RegistryStats>,
    persisters: &[(&'static str, &PersistHealth)],
    webhooks: &WebhookStats,
    streams: &StreamLimits,
) {
    if let Some(s) = stats {
        gauge!(ACTIVE_WORKFLOWS).set(s.active as f64);
        gauge!(RETAINED_WORKFLOWS).set(s.retained as f64);
        gauge!(SSE_CLIENTS).set(s.sse_clients as f64);
        counter!(EVENTS_EMITTED).absolute(s.events_emitted);
        gauge!(WEBHOOK_SUBSCRIPTIONS).set(s.webhooks_registered as f64);
        counter!(WEBHOOK_SUBSCRIPTIONS_REFUSED).absolute(s.webhooks_refused);
    }
    for (label, p) in persisters {
        let l = [("persister", *label)];
        gauge!(PERSISTER_QUEUE, &l).set(p.queue_len() as f64);
        counter!(PERSISTER_WRITES, &l).absolute(p.written().1);
        counter!(PERSISTER_FAILURES, &l).absolute(p.failures());
        counter!(PERSISTER_RESTARTS, &l).absolute(p.restarts());
    }
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter!(WEBHOOK_DELIVERIES, "outcome" => "delivered").absolute(load(&webhooks.delivered));
    counter!(WEBHOOK_DELIVERIES, "outcome" => "failed").absolute(load(&webhooks.failed));
    counter!(WEBHOOK_ATTEMPTS).absolute(load(&webhooks.attempts));
    gauge!(WEBHOOK_PENDING).set(load(&webhooks.pending) as f64);
    gauge!(WEBHOOK_WAITING).set(load(&webhooks.waiting) as f64);
    counter!(WEBHOOK_OVERFLOWED).absolute(load(&webhooks.overflowed));
    gauge!(SSE_STREAMS).set(streams.open() as f64);
    counter!(SSE_STREAMS_REFUSED).absolute(streams.refused());
}

/// How often histogram samples are folded into buckets between scrapes, so
/// memory stays bounded when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Counts workflow lifecycles from the registry's changes.
pub struct MetricsActor {
    handle: PrometheusHandle,
}

impl MetricsActor {
    pub fn new() -> MetricsActor {
        MetricsActor { handle: install() }
    }

    fn observe(&mut self, kind: &ChangeKind) {
        match kind {
            ChangeKind::Workflow(wf) => {
                let t = wf.pattern.as_str();
                if wf.status == crate::domain::Status::Pending && wf.started_at.is_none() {
                    counter!(WORKFLOWS_CREATED, "orchestrator_type" => t).increment(1);
                } else if wf.status.is_terminal() {
                    let status = wf.status.as_str();
                    counter!(WORKFLOWS_COMPLETED, "orchestrator_type" => t, "status" => status)
                        .increment(1);
                    histogram!(WORKFLOW_DURATION, "orchestrator_type" => t)
                        .record(wf.execution_time.unwrap_or(0.0));
                    histogram!(WORKFLOW_COST, "orchestrator_type" => t).record(wf.total_cost_usd);
                }
            }
            ChangeKind::Evicted(_) => counter!(EVICTIONS).increment(1),
            _ => {}
        }
    }
}

impl Default for MetricsActor {
    fn default() -> Self {
        MetricsActor::new()
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Registered at zero so rates and dashboards work before the first eviction.
        counter!(EVICTIONS).absolute(0);
        ctx.run_interval(UPKEEP, |act, _| act.handle.run_upkeep());
    }
}

impl Handler<Publish> for MetricsActor {
    type Result = ();

    fn handle(&mut self, Publish(changes): Publish, _: &mut Context<Self>) {
        for change in changes.iter() {
            self.observe(&change.kind);
        }
    }
}

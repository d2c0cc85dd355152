//! Starting the registry and what it works with: the webhook dispatcher (on a
//! thread of its own, so slow receivers never touch the registry), the key ring
//! and today's spend per key, the evictor, and the deliveries still pending.

use std::sync::Arc;

use actix::prelude::*;

use super::StartError;
use crate::actors::evictor::Evictor;
use crate::actors::persist::PersistHealth;
use crate::actors::registry::{
    EpochOf, RegistryConfig, RegistryParts, ResumeDeliveries, WorkflowRegistry,
};
use crate::actors::Publish;
use crate::auth::{Keyring, Ledger, Shares};
use crate::config::{Config, RetentionConfig};
use crate::domain::{Delivery, Subscription, Workflow};
use crate::events::webhooks::{SetRecorder, WebhookDispatcher, WebhookStats};
use crate::exec::{self, CommitStep, Executor};
use crate::store::{Startup, Store};
use crate::tools::ToolHub;

/// What the earlier steps made that the registry is built from.
pub struct Inputs {
    pub startup: Startup,
    /// Receive every `StateChange`, in order (the persisters and metrics).
    pub subscribers: Vec<Recipient<Publish>>,
    pub primary: Arc<PersistHealth>,
    pub mirror: Option<Arc<PersistHealth>>,
    pub steps: Recipient<CommitStep>,
    pub executor: Arc<Executor>,
    pub tools: Arc<ToolHub>,
    /// Several instances: lease epochs held here, stamped on every change.
    pub epochs: Option<EpochOf>,
}

/// The registry and what the routes share with it.
pub struct Core {
    pub registry: Addr<WorkflowRegistry>,
    pub keys: Arc<Keyring>,
    pub ledger: Arc<Ledger>,
    /// No key may hold more than its share of a shared cap (`auth.max_share`).
    pub shares: Shares,
    pub webhook_stats: Arc<WebhookStats>,
    /// The dispatcher's thread, kept as long as the runtime.
    pub arbiter: Arbiter,
}

pub async fn start(
    config: &Config,
    store: &Arc<dyn Store>,
    clustered: bool,
    inputs: Inputs,
) -> Result<Core, StartError> {
    let (webhooks, pending) = load_webhooks(store, clustered).await?;
    store.release_idle_connections();
    let shares = Shares::new(&config.auth);
    let webhook_stats = Arc::new(WebhookStats::default());
    let arbiter = Arbiter::new();
    let dispatcher = {
        let (cfg, stats, shares) = (
            config.webhooks.clone(),
            Arc::clone(&webhook_stats),
            shares.clone(),
        );
        WebhookDispatcher::start_in_arbiter(&arbiter.handle(), move |_| {
            WebhookDispatcher::new(cfg, stats, shares)
        })
    };
    let (keys, ledger) = keys_and_ledger(config, store, &inputs.startup).await?;
    let parts = RegistryParts {
        cfg: registry_config(config),
        subscribers: inputs.subscribers,
        primary: inputs.primary,
        mirror: inputs.mirror,
        executor: inputs.executor,
        providers: exec::provider::build(&config.providers),
        steps: inputs.steps,
        dispatcher: Some(dispatcher.clone().recipient()),
        restored_active: inputs.startup.active,
        retained: inputs.startup.retained,
        webhooks,
        ledger: Arc::clone(&ledger),
        tools: inputs.tools,
        shares: shares.clone(),
        epochs: inputs.epochs,
    };
    let registry = create(parts, &config.retention);
    dispatcher.do_send(SetRecorder(registry.clone().recipient()));
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "resuming pending webhook deliveries");
    }
    // Through the registry: it counts them against their subscriptions.
    registry.do_send(ResumeDeliveries(pending));
    Ok(Core {
        registry,
        keys,
        ledger,
        shares,
        webhook_stats,
        arbiter,
    })
}

fn registry_config(config: &Config) -> RegistryConfig {
    RegistryConfig {
        max_active: config.limits.max_active,
        retry_after_secs: config.limits.retry_after.as_secs().max(1),
        default_provider: config.execution.default_provider.clone(),
        default_budget_usd: config.execution.default_budget_usd,
        default_max_tokens_total: config.execution.default_max_tokens_total,
        max_resumes: config.execution.max_resumes,
        max_workflow_duration: config.limits.max_workflow_duration,
        max_webhooks: config.webhooks.max_subscriptions,
        max_webhooks_per_workflow: config.webhooks.max_subscriptions_per_workflow,
        default_document_formats: config.documents.default_formats.clone(),
        documents_max_bytes: config.documents.max_bytes,
    }
}

/// Stored subscriptions and the deliveries still pending. On a cluster member
/// pending deliveries are claimed, one claimant each, and a workflow's
/// subscriptions come with the workflow when it is claimed: only the global ones
/// are loaded here.
async fn load_webhooks(
    store: &Arc<dyn Store>,
    clustered: bool,
) -> Result<(Vec<Subscription>, Vec<Delivery>), StartError> {
    let (subscriptions, pending) = store
        .load_webhooks()
        .await
        .map_err(|e| StartError(format!("cannot read stored webhooks: {e}")))?;
    if !clustered {
        return Ok((subscriptions, pending));
    }
    let global = subscriptions
        .into_iter()
        .filter(|s| s.workflow_id.is_none())
        .collect();
    Ok((global, Vec::new()))
}

/// The configured keys, and per key the workflows active and today's spend.
async fn keys_and_ledger(
    config: &Config,
    store: &Arc<dyn Store>,
    startup: &Startup,
) -> Result<(Arc<Keyring>, Arc<Ledger>), StartError> {
    let keys = Arc::new(Keyring::new(&config.auth));
    let ledger = Arc::new(Ledger::new(&keys));
    if keys.enabled() {
        let midnight = chrono::Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        let spent = store
            .spend_by_owner_since(midnight)
            .await
            .map_err(|e| StartError(format!("cannot read today's spend per key: {e}")))?;
        let active: Vec<&Workflow> = startup.active.iter().map(|a| &a.workflow).collect();
        ledger.seed(&spent, &active);
    }
    Ok((keys, ledger))
}

/// The registry, with its evictor subscribed to its changes.
fn create(parts: RegistryParts, retention: &RetentionConfig) -> Addr<WorkflowRegistry> {
    let (max_completed, max_age) = (retention.max_completed, retention.max_age);
    WorkflowRegistry::create(move |ctx| {
        let evictor = Evictor::new(
            ctx.address().recipient(),
            max_completed,
            max_age,
            &parts.retained,
        )
        .start();
        let mut parts = parts;
        parts.subscribers.push(evictor.recipient());
        WorkflowRegistry::new(parts)
    })
}

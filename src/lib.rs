//! mcp-orchestrator: long-lived multi-agent LLM workflows behind an HTTP API, with
//! state that survives restarts. `start` wires the actors, `create_app` builds the
//! HTTP app (shared by the binary and the tests), `serve` runs both until a signal.

pub mod actors;
pub mod api;
pub mod archive;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod documents;
pub mod error;
pub mod events;
pub mod exec;
pub mod healthcheck;
pub mod idempotency;
pub mod metric_names;
pub mod net;
pub mod startup;
pub mod store;
pub mod tools;

/// The pure core, its own crate (crates/domain): `crate::domain::…` names it.
pub use mcpo_domain as domain;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpServer};
use utoipa_actix_web::AppExt;

use actors::evictor::Evictor;
use actors::metrics::MetricsActor;
use actors::persist::{PersistHealth, RedisLink, RedisPersister, StoreWriter};
use actors::registry::{
    BeginShutdown, InterruptAll, RegistryConfig, RegistryParts, ResumeDeliveries, Stats,
    WorkflowRegistry,
};
use config::{Config, Durability};
use error::ApiError;
use events::address_policy::Guard;
use events::streams::StreamLimits;
use events::webhooks::{SetRecorder, WebhookDispatcher, WebhookStats};
use exec::Executor;
use store::Store;

/// What every request handler shares.
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Addr<WorkflowRegistry>,
    pub store: Arc<dyn Store>,
    pub primary: Arc<PersistHealth>,
    /// The Redis mirror's writer health, when `redis.url` is set.
    pub mirror: Option<Arc<PersistHealth>>,
    /// The Redis mirror itself (probe for `/health`), when `redis.url` is set.
    pub redis: Option<Arc<RedisLink>>,
    /// Checks webhook URLs at registration (and the dispatcher at delivery).
    pub guard: Guard,
    pub webhook_stats: Arc<WebhookStats>,
    /// MCP sessions, shared by every HTTP worker's `/mcp`.
    pub mcp_sessions: Arc<api::mcp::Sessions>,
    /// Caps on open SSE streams.
    pub streams: Arc<StreamLimits>,
    /// `Idempotency-Key`s of creates: claims in progress and recent outcomes.
    pub idempotency: Arc<idempotency::Index>,
    pub started: Instant,
    /// The configured API keys (none = auth off).
    pub keys: Arc<auth::Keyring>,
    /// The `Host` values answered (`server.allowed_hosts`).
    pub hosts: auth::browser::HostPolicy,
    /// Per-key active workflows and daily spend (shared with the registry).
    pub ledger: Arc<auth::Ledger>,
    /// Where archived workflows are read from (and written to, when enabled).
    pub archive: Arc<archive::Archive>,
    /// Several instances on one PostgreSQL (set whenever `postgres.url` is).
    pub cluster: Option<ClusterHandle>,
    /// MCP tool servers the agents call (`[tools]`; empty when none).
    pub tools: Arc<tools::ToolHub>,
}

/// This instance's part in the cluster, for the routes and `/health`.
#[derive(Clone)]
pub struct ClusterHandle {
    pub cluster: Arc<cluster::Cluster>,
    pub health: Arc<std::sync::Mutex<actors::cluster::PassHealth>>,
}

impl AppState {
    /// With sync durability, waits until change `seq` is committed to the primary
    /// store: only then may a create or cancel be acknowledged.
    pub async fn acknowledge(&self, seq: u64) -> Result<(), ApiError> {
        if self.config.storage.durability == Durability::Sync {
            self.primary
                .wait_committed(seq, self.config.ack_timeout())
                .await
                .map_err(|e| ApiError::StoreUnavailable(e.0))?;
        }
        Ok(())
    }

    /// Before reading the store for something memory no longer has: wait (bounded)
    /// until every change emitted so far is committed. A store that is down makes
    /// the read itself fail, so the wait's own failure is not an error.
    pub async fn read_barrier(&self) {
        let _ = self.primary.barrier(self.config.ack_timeout()).await;
    }
}

pub fn create_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let origins = state.config.server.cors_allowed_origins.clone();
    // The OpenAPI document is collected from the annotated handlers as the routes
    // are registered; what every operation shares is added once they all are.
    let (app, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(<api::openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .configure(api::configure)
        .split_for_parts();
    utoipa::Modify::modify(&api::openapi::Standard, &mut doc);
    app.app_data(state.clone())
        .app_data(web::Data::new(doc))
        .wrap(actix_web::middleware::from_fn(
            auth::middleware::authenticate,
        ))
        // Preflights are answered before a key is asked for.
        .wrap(actix_web::middleware::Condition::new(
            !origins.is_empty(),
            auth::cors::cors(&origins),
        ))
        // Host and Origin before anything else looks at the request.
        .wrap(actix_web::middleware::from_fn(auth::browser::guard))
        .wrap(actix_web::middleware::from_fn(api::middleware::observe))
        .configure(api::mcp::configure(state))
        .default_service(web::to(api::not_found))
}

use startup::store_key;
pub use startup::{open_store, StartError};

/// The running actors, for `serve` and the tests.
pub struct Runtime {
    pub state: web::Data<AppState>,
    pub executor: Arc<Executor>,
    /// Kept so the webhook and persister threads live as long as the runtime.
    _arbiters: Vec<Arbiter>,
}

/// Opens the primary store, restores state and starts the actors. Must run inside
/// an actix `System`.
pub async fn start(config: Config) -> Result<Runtime, StartError> {
    let config = Arc::new(config);
    let (store, clustered) = startup::primary::open_primary(&config).await?;
    let redis = match &config.redis.url {
        Some(url) => Some(Arc::new(
            RedisLink::new(&config.redis, url).map_err(StartError)?,
        )),
        None => None,
    };
    let t0 = Instant::now();
    let (max_completed, max_age) = (config.retention.max_completed, config.retention.max_age);
    // Redis first when it holds everything; the primary store otherwise.
    let from_redis = match &redis {
        Some(link) => match link.restore(store.as_ref(), max_completed, max_age).await {
            Ok(s) => Some(s),
            Err(why) => {
                tracing::info!(reason = %why, "redis cannot restore every workflow; using the primary store");
                None
            }
        },
        None => None,
    };
    let (startup, source, seed) = match from_redis {
        Some(s) => (s, "redis", Vec::new()),
        None => {
            let s = store
                .load_startup(max_completed, max_age)
                .await
                .map_err(|e| {
                    StartError(format!(
                        "{}: cannot read stored workflows: {e}",
                        store_key(&config)
                    ))
                })?;
            // Put what Redis lacked back, so it mirrors the store again.
            let seed = match &redis {
                Some(_) => actors::persist::redis::reseed(store.as_ref(), &s).await,
                None => Vec::new(),
            };
            (s, store.kind(), seed)
        }
    };
    // Committed step answers come from the primary store whatever the source
    // (Redis does not mirror them): a resumed run reuses every one.
    let mut startup = startup;
    if clustered.is_some() {
        // Unfinished workflows are resumed by whichever instance claims their
        // expired leases (this one too, at its first pass), never all by each.
        startup.active.clear();
    }
    let ids: Vec<String> = startup
        .active
        .iter()
        .map(|a| a.workflow.id.clone())
        .collect();
    if !ids.is_empty() {
        let mut steps: std::collections::HashMap<String, Vec<domain::StepRecord>> =
            std::collections::HashMap::new();
        for s in store.steps_of(&ids).await.map_err(|e| {
            StartError(format!(
                "{}: cannot read stored step answers: {e}",
                store_key(&config)
            ))
        })? {
            steps.entry(s.workflow_id.clone()).or_default().push(s);
        }
        for a in &mut startup.active {
            a.steps = steps.remove(&a.workflow.id).unwrap_or_default();
        }
    }
    tracing::info!(
        active = startup.active.len(),
        retained = startup.retained.len(),
        took_ms = t0.elapsed().as_millis() as u64,
        "restored state from {source}"
    );

    let primary = Arc::new(PersistHealth::new(store.kind(), config.storage.max_queue));
    // Each persister encodes its batches on a thread of its own: on the registry's
    // thread they made it the bottleneck (BENCHMARKS.md).
    let writer_arbiter = Arbiter::new();
    let writer = {
        let (store, primary, batch, interval) = (
            Arc::clone(&store),
            Arc::clone(&primary),
            config.storage.batch_max,
            config.storage.commit_interval,
        );
        Supervisor::start_in_arbiter(&writer_arbiter.handle(), move |_| {
            StoreWriter::new(store, primary, batch, interval)
                .with_commit_delay(config::test_commit_delay())
        })
    };
    let mut arbiters = vec![writer_arbiter];
    tracing::info!(
        store = store.kind(),
        "primary store writer started under its supervisor"
    );
    let step_writer = writer.clone().recipient();
    let mut subscribers = vec![writer.recipient(), MetricsActor::new().start().recipient()];
    if let Some(link) = &redis {
        let (l, batch) = (Arc::clone(link), config.storage.batch_max);
        let refill = actors::persist::redis::Refill {
            store: Arc::clone(&store),
            max_completed,
            max_age,
        };
        let redis_arbiter = Arbiter::new();
        let persister = Supervisor::start_in_arbiter(&redis_arbiter.handle(), move |_| {
            RedisPersister::new(l, refill, batch, seed)
        });
        arbiters.push(redis_arbiter);
        subscribers.push(persister.recipient());
        let link = Arc::clone(link);
        // Keeps redis_memory_bytes current and prunes expired index entries.
        actix_rt::spawn(async move {
            loop {
                link.upkeep().await;
                tokio::time::sleep(Duration::from_secs(15)).await;
            }
        });
    }
    let executor = Arc::new(Executor::new(config.execution.threads));
    let providers = exec::provider::build(&config.providers);
    // Tool servers connect before any workflow resumes: a resumed agent sees the
    // same tools as the run that died.
    let tool_hub = tools::ToolHub::new(&config.tools);
    tool_hub.start();
    tool_hub.first_attempts(Duration::from_secs(30)).await;
    let registry_cfg = RegistryConfig {
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
    };
    let (subscriptions, mut pending_deliveries) = store
        .load_webhooks()
        .await
        .map_err(|e| StartError(format!("cannot read stored webhooks: {e}")))?;
    let subscriptions = match &clustered {
        Some(_) => {
            // Pending deliveries are claimed, one claimant each; a workflow's
            // subscriptions come with the workflow when it is claimed.
            pending_deliveries.clear();
            subscriptions
                .into_iter()
                .filter(|s| s.workflow_id.is_none())
                .collect()
        }
        None => subscriptions,
    };
    store.release_idle_connections();
    // No key may hold more than its share of a shared cap (auth.max_share).
    let shares = auth::Shares::new(&config.auth);
    // Deliveries run on their own thread: slow receivers never touch the registry.
    let webhook_arbiter = Arbiter::new();
    let webhook_stats = Arc::new(WebhookStats::default());
    let dispatcher = {
        let (cfg, stats) = (config.webhooks.clone(), Arc::clone(&webhook_stats));
        let shares = shares.clone();
        WebhookDispatcher::start_in_arbiter(&webhook_arbiter.handle(), move |_| {
            WebhookDispatcher::new(cfg, stats, shares)
        })
    };
    arbiters.push(webhook_arbiter);

    let keys = Arc::new(auth::Keyring::new(&config.auth));
    let ledger = Arc::new(auth::Ledger::new(&keys));
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
        let active: Vec<&domain::Workflow> = startup.active.iter().map(|a| &a.workflow).collect();
        ledger.seed(&spent, &active);
    }
    let retention = config.retention.clone();
    let parts = RegistryParts {
        cfg: registry_cfg,
        subscribers,
        primary: Arc::clone(&primary),
        mirror: redis.as_ref().map(|l| Arc::clone(&l.health)),
        executor: Arc::clone(&executor),
        providers,
        steps: step_writer,
        dispatcher: Some(dispatcher.clone().recipient()),
        restored_active: startup.active,
        retained: startup.retained,
        webhooks: subscriptions,
        ledger: Arc::clone(&ledger),
        tools: Arc::clone(&tool_hub),
        shares: shares.clone(),
        epochs: clustered.as_ref().map(|c| {
            let cluster = Arc::clone(&c.cluster);
            Arc::new(move |id: &str| cluster.epoch_of(id)) as actors::registry::EpochOf
        }),
    };
    let registry = WorkflowRegistry::create(move |ctx| {
        let evictor = Evictor::new(
            ctx.address().recipient(),
            retention.max_completed,
            retention.max_age,
            &parts.retained,
        )
        .start();
        let mut parts = parts;
        parts.subscribers.push(evictor.recipient());
        WorkflowRegistry::new(parts)
    });
    dispatcher.do_send(SetRecorder(registry.clone().recipient()));
    if !pending_deliveries.is_empty() {
        tracing::info!(
            count = pending_deliveries.len(),
            "resuming pending webhook deliveries"
        );
    }
    // Through the registry: it counts them against their subscriptions.
    registry.do_send(ResumeDeliveries(pending_deliveries));
    let archive = Arc::new(
        archive::Archive::open(&config.archive, &config.storage.sqlite_path).map_err(StartError)?,
    );
    if config.archive.enabled {
        let (store, archive, cfg) = (
            Arc::clone(&store),
            Arc::clone(&archive),
            config.archive.clone(),
        );
        let evict = registry.clone().recipient();
        Supervisor::start(move |_| archive::Archiver::new(store, evict, archive, &cfg));
        tracing::info!(url = %archive_url(&config), after = ?config.archive.after,
            interval = ?config.archive.interval, "archiver started under its supervisor");
    }
    let cluster = clustered.map(|c| {
        let health = Arc::new(std::sync::Mutex::new(actors::cluster::PassHealth::default()));
        let (cl, pg, reg, h) = (
            Arc::clone(&c.cluster),
            c.store,
            registry.clone(),
            Arc::clone(&health),
        );
        let actor = Supervisor::start(move |_| actors::cluster::ClusterActor::new(cl, pg, reg, h));
        actix_rt::spawn(cluster::listener::run(
            c.listen,
            c.cluster.watchers.clone(),
            actor.recipient(),
        ));
        tracing::info!(instance = %c.cluster.id, lease_ttl = ?c.cluster.ttl, "cluster member started");
        ClusterHandle {
            cluster: c.cluster,
            health,
        }
    });
    let idempotency = Arc::new(idempotency::Index::new(
        config.idempotency.ttl,
        config.idempotency.max_cached,
    ));
    let state = web::Data::new(AppState {
        tools: tool_hub,
        guard: Guard::new(&config.webhooks),
        hosts: auth::browser::HostPolicy::new(&config),
        mcp_sessions: Arc::new(api::mcp::Sessions::new(&config.mcp, shares.clone())),
        streams: Arc::new(StreamLimits::new(&config.limits, shares)),
        config,
        registry,
        store,
        primary,
        mirror: redis.as_ref().map(|l| Arc::clone(&l.health)),
        redis,
        webhook_stats,
        idempotency,
        started: Instant::now(),
        keys,
        ledger,
        archive,
        cluster,
    });
    Ok(Runtime {
        state,
        executor,
        _arbiters: arbiters,
    })
}

fn archive_url(config: &Config) -> String {
    config.archive.effective_url(&config.storage.sqlite_path)
}

/// Runs the server until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let listeners = net::listen(&config.server.bind)?;
    let rt = start(config).await?;
    let cfg = Arc::clone(&rt.state.config);
    let state = rt.state.clone();
    let s = &cfg.server;
    // Slow or idle clients hold a connection for a bounded time only: the head and
    // body must arrive within client_request_timeout, idle keep-alive ends.
    let keep_alive = match s.keep_alive.is_zero() {
        true => actix_web::http::KeepAlive::Disabled,
        false => actix_web::http::KeepAlive::Timeout(s.keep_alive),
    };
    let mut server = HttpServer::new(move || create_app(state.clone()))
        .on_connect(net::no_delay)
        .disable_signals()
        .shutdown_timeout(1)
        .client_request_timeout(s.client_request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(keep_alive)
        .max_connections(s.max_connections);
    if s.workers > 0 {
        server = server.workers(s.workers);
    }
    for l in listeners {
        server = server
            .listen(l)
            .map_err(|e| StartError(format!("server.bind '{}': cannot listen: {e}", s.bind)))?;
    }
    if !rt.state.keys.enabled() {
        tracing::warn!(
            bind = %cfg.server.bind,
            "auth is off: no API keys are configured (auth.keys); every caller may do everything"
        );
    } else {
        tracing::info!(keys = rt.state.keys.keys().len(), "auth is on");
    }
    for addr in server.addrs() {
        // Tests and scripts read this line to find the port.
        println!("mcp-orchestrator listening on http://{addr}");
        tracing::info!(%addr, store = rt.state.store.kind(), "listening");
    }
    let server = server.run();
    let handle = server.handle();
    let mut server_task = actix_rt::spawn(server);
    tokio::select! {
        sig = net::wait_for_signal() => tracing::info!(signal = sig, "shutting down"),
        res = &mut server_task => {
            return Err(StartError(format!("HTTP server stopped unexpectedly: {res:?}")));
        }
    }
    shutdown(&rt, cfg.shutdown.grace).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), handle.stop(true)).await;
    Ok(())
}

/// Stop admitting; let running workflows finish while most of the grace period
/// lasts; interrupt the rest (resumed at the next start); flush the store. With
/// several instances, runs are interrupted at once and their leases handed over,
/// so the other instances resume them immediately.
pub async fn shutdown(rt: &Runtime, grace: Duration) {
    let t0 = Instant::now();
    let reserve = (grace / 3).min(Duration::from_secs(5));
    let registry = &rt.state.registry;
    let cluster = rt.state.cluster.as_ref().map(|c| &c.cluster);
    if let Some(c) = cluster {
        c.stop_claiming();
    }
    let _ = registry.send(BeginShutdown).await;
    // Several instances: the others resume this one's runs at once, so there is
    // nothing to wait for.
    while cluster.is_none() && t0.elapsed() + reserve < grace {
        match registry.send(Stats).await {
            Ok(s) if s.running > 0 => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => break,
        }
    }
    let last = registry.send(InterruptAll).await.unwrap_or(0);
    let left = grace
        .saturating_sub(t0.elapsed())
        .saturating_sub(Duration::from_millis(300));
    match rt.state.primary.wait_committed(last, left).await {
        Ok(()) => tracing::info!(flushed_seq = last, "store flushed"),
        Err(e) => tracing::error!(error = %e.0, "store not fully flushed at shutdown"),
    }
    if let Some(c) = cluster {
        match c.hand_over().await {
            Ok(n) => tracing::info!(leases = n, "leases handed over to the other instances"),
            Err(e) => {
                tracing::error!(error = %e, "cannot hand leases over; they expire after cluster.lease_ttl")
            }
        }
    }
    if let Some(m) = &rt.state.mirror {
        let left = grace.saturating_sub(t0.elapsed());
        match m.wait_committed(last, left).await {
            Ok(()) => tracing::info!(flushed_seq = last, "redis mirror flushed"),
            Err(e) => {
                tracing::warn!(error = %e.0, "redis mirror not fully flushed at shutdown; the next start restores from the primary store")
            }
        }
    }
    rt.executor.stop();
}

/// Installs the process-wide rustls crypto provider before any TLS client (reqwest,
/// Redis `rediss://`) exists: with more than one provider compiled in, rustls
/// would otherwise panic at the first handshake.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

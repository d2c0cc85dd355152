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

use actors::persist::{PersistHealth, RedisLink};
use actors::registry::{BeginShutdown, InterruptAll, Stats, WorkflowRegistry};
use config::{Config, Durability};
use error::ApiError;
use events::address_policy::Guard;
use events::streams::StreamLimits;
use events::webhooks::WebhookStats;
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
    let doc = api::requests::document(&doc, &state.config.limits.bounds());
    app.app_data(state.clone())
        .app_data(web::Data::new(api::openapi::OpenApiJson(doc)))
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

pub use startup::{open_store, ClusterHandle, StartError};

/// The running actors, for `serve` and the tests.
pub struct Runtime {
    pub state: web::Data<AppState>,
    pub executor: Arc<Executor>,
    /// Kept so the webhook and persister threads live as long as the runtime.
    _arbiters: Vec<Arbiter>,
}

/// Opens the primary store, restores state and starts the actors, one step of
/// `startup` each. Must run inside an actix `System`.
pub async fn start(config: Config) -> Result<Runtime, StartError> {
    let config = Arc::new(config);
    let (store, clustered) = startup::primary::open_primary(&config).await?;
    let mut restored = startup::restore::restore(&config, &store, clustered.is_some()).await?;
    let persisters = startup::persisters::start(&config, &store, &mut restored);
    let executor = Arc::new(Executor::new(config.execution.threads));
    // Tool servers connect before any workflow resumes: a resumed agent sees the
    // same tools as the run that died.
    let tools = tools::ToolHub::new(&config.tools);
    tools.start();
    tools.first_attempts(Duration::from_secs(30)).await;
    let mirror = restored.redis.as_ref().map(|l| Arc::clone(&l.health));
    let inputs = startup::registry::Inputs {
        startup: restored.startup,
        subscribers: persisters.subscribers,
        primary: Arc::clone(&persisters.primary),
        mirror: mirror.clone(),
        steps: persisters.steps,
        executor: Arc::clone(&executor),
        tools: Arc::clone(&tools),
        epochs: clustered.as_ref().map(startup::neighbours::epochs),
    };
    let core = startup::registry::start(&config, &store, clustered.is_some(), inputs).await?;
    let archive = startup::neighbours::start_archive(&config, &store, &core.registry)?;
    let cluster = clustered.map(|c| startup::neighbours::join(c, &core.registry));
    let mut arbiters = persisters.arbiters;
    arbiters.push(core.arbiter);
    let state = web::Data::new(AppState {
        tools,
        guard: Guard::new(&config.webhooks),
        hosts: auth::browser::HostPolicy::new(&config),
        mcp_sessions: Arc::new(api::mcp::Sessions::new(&config.mcp, core.shares.clone())),
        streams: Arc::new(StreamLimits::new(&config.limits, core.shares)),
        idempotency: Arc::new(idempotency::Index::new(
            config.idempotency.ttl,
            config.idempotency.max_cached,
        )),
        config,
        registry: core.registry,
        store,
        primary: persisters.primary,
        mirror,
        redis: restored.redis,
        webhook_stats: core.webhook_stats,
        started: Instant::now(),
        keys: core.keys,
        ledger: core.ledger,
        archive,
        cluster,
    });
    Ok(Runtime {
        state,
        executor,
        _arbiters: arbiters,
    })
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

//! Opening PostgreSQL: parsing `postgres.url`, the two connection pools (writer
//! and point reads; analytics) and the migrations. Every error is one line that
//! names `postgres.url` with its password redacted, fit to print at start-up.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::{redact_url, PostgresConfig};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Any fixed number: start-ups of several instances migrate one at a time.
const MIGRATION_LOCK: i64 = 0x006d_6370_6f6d_6967;

/// Why PostgreSQL could not be opened or migrated: one line naming
/// `postgres.url` (password redacted), fit to print at start-up.
#[derive(Debug, thiserror::Error)]
#[error("postgres.url '{url}': {what}")]
pub struct UrlError {
    url: String,
    what: String,
}

/// `postgres.url '<redacted>': <what>`.
pub fn url_error(cfg: &PostgresConfig, what: impl std::fmt::Display) -> UrlError {
    UrlError {
        url: cfg.url.as_deref().map(redact_url).unwrap_or_default(),
        what: what.to_string(),
    }
}

/// Parses the URL and applies the connect and statement timeouts.
fn pg_config(cfg: &PostgresConfig) -> Result<tokio_postgres::Config, UrlError> {
    let url = cfg
        .url
        .as_deref()
        .ok_or_else(|| url_error(cfg, "is not set"))?;
    let mut pg = tokio_postgres::Config::from_str(url)
        .map_err(|e| url_error(cfg, format!("is not a valid PostgreSQL URL: {e}")))?;
    pg.connect_timeout(cfg.connect_timeout);
    // Keep any options the URL already carries.
    // A session left idle inside a transaction (its process stopped, its network
    // cut) holds row locks; with several instances those are lease rows that a
    // survivor must claim, so PostgreSQL ends such a session after 5 s.
    let timeout = format!(
        "-c statement_timeout={} -c idle_in_transaction_session_timeout=5000",
        cfg.statement_timeout.as_millis().max(1)
    );
    let options = match pg.get_options() {
        Some(o) if !o.is_empty() => format!("{o} {timeout}"),
        _ => timeout,
    };
    pg.options(&options);
    Ok(pg)
}

/// Sessions are named per pool (`pg_stat_activity.application_name`) so an
/// operator sees which pool holds what; a name from the URL is kept as prefix.
fn named(mut pg: tokio_postgres::Config, pool: &str) -> tokio_postgres::Config {
    let base = pg
        .get_application_name()
        .unwrap_or("mcp-orchestrator")
        .to_string();
    pg.application_name(format!("{base}-{pool}"));
    pg
}

fn pool(
    cfg: &PostgresConfig,
    pg: tokio_postgres::Config,
    max_size: usize,
) -> Result<Pool, UrlError> {
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            // A connection killed on the server side is noticed when it is next
            // handed out (`is_closed`), not after a failed query.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(cfg.connect_timeout))
        .wait_timeout(Some(cfg.connect_timeout))
        .recycle_timeout(Some(cfg.connect_timeout))
        .build()
        .map_err(|e| url_error(cfg, format!("cannot build connection pool: {e}")))
}

/// The writer/read pool and the analytics pool; nothing is connected yet.
pub fn pools(cfg: &PostgresConfig) -> Result<(Pool, Pool), UrlError> {
    let pg = pg_config(cfg)?;
    let main = pool(cfg, named(pg.clone(), "writer"), cfg.pool_size)?;
    let analytics = pool(cfg, named(pg, "analytics"), cfg.analytics_pool_size)?;
    Ok((main, analytics))
}

/// The cluster's own small pool (heartbeats and claims never wait behind the
/// writer) and the settings of its dedicated LISTEN connection.
pub fn cluster_connections(
    cfg: &PostgresConfig,
) -> Result<(Pool, tokio_postgres::Config), UrlError> {
    let pg = pg_config(cfg)?;
    // Admissions (one round trip each) and the heartbeat pass.
    let pool = pool(cfg, named(pg.clone(), "cluster"), 4)?;
    Ok((pool, named(pg, "listen")))
}

/// Connects once (proving the server is reachable) and applies the migrations.
pub async fn migrate(cfg: &PostgresConfig, pool: &Pool) -> Result<usize, UrlError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| url_error(cfg, format!("cannot connect: {}", describe_pool(&e))))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| url_error(cfg, format!("cannot lock for migration: {}", chain(&e))))?;
    let applied = migrate_locked(cfg, &mut client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    applied
}

/// Up to V8, the conversion of packed results (`unpack`), then the rest (V13
/// needs the conversion done).
async fn migrate_locked(cfg: &PostgresConfig, client: &mut Object) -> Result<usize, UrlError> {
    let failed = |e: refinery::Error| url_error(cfg, format!("migration failed: {e}"));
    let first = embedded::migrations::runner()
        .set_target(refinery::Target::Version(UNPACK_AFTER))
        .run_async(&mut ***client)
        .await
        .map_err(failed)?;
    let converted = super::unpack::unpack_all(client)
        .await
        .map_err(|e| url_error(cfg, format!("migration failed: {e}")))?;
    if converted > 0 {
        tracing::info!(converted, "packed results converted (migration V8)");
    }
    let rest = embedded::migrations::runner()
        .run_async(&mut ***client)
        .await
        .map_err(failed)?;
    Ok(first.applied_migrations().len() + rest.applied_migrations().len())
}

/// Applies the migrations up to `version` only, as a release of that schema
/// left the database (tests of upgrades); no conversion runs.
pub async fn migrate_until(
    cfg: &PostgresConfig,
    pool: &Pool,
    version: i32,
) -> Result<usize, UrlError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| url_error(cfg, format!("cannot connect: {}", describe_pool(&e))))?;
    let report = embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run_async(&mut **client)
        .await
        .map_err(|e| url_error(cfg, format!("migration failed: {e}")))?;
    Ok(report.applied_migrations().len())
}

/// The migration after which packed results are converted.
const UNPACK_AFTER: i32 = 8;

/// An error followed by its causes: tokio-postgres keeps the server's message
/// (e.g. "canceling statement due to statement timeout") in the source chain.
pub use crate::store::error_chain as chain;

/// deadpool's errors hide the cause behind a generic word; say what happened.
pub fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Timeout(_) => "timed out waiting for a connection".to_string(),
        PoolError::Backend(e) => chain(e),
        other => other.to_string(),
    }
}

/// A short bound for health pings, below any HTTP client's patience.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

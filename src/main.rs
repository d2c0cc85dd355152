//! The command line: `serve` (default), `migrate`, `check-config`, `healthcheck`,
//! `keys new`, `archive`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_orchestrator::config::{redact_url, Config, LogFormat};
use mcp_orchestrator::store::postgres::PgStore;
use mcp_orchestrator::store::sqlite::lock::{self, DbLock, LockError};
use mcp_orchestrator::store::sqlite::SqliteStore;

// glibc's malloc showed as 10-15% of the server's CPU under load (many threads,
// many short-lived JSON buffers); with mimalloc the server's CPU per workflow fell
// by a third (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mcp-orchestrator",
    version,
    about = "Multi-agent LLM workflows behind an HTTP API, with durable state"
)]
struct Cli {
    /// Config file (default: config/default.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Overrides server.bind.
    #[arg(long, global = true)]
    bind: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and print the effective values (secrets redacted).
    CheckConfig,
    /// Probe `GET /health` on the configured listener; exit 0 when it answers 200
    /// (the container's HEALTHCHECK: the runtime image has no curl).
    Healthcheck {
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Run one archive pass and print what it did (exit 1 if it stopped early).
    Archive {
        /// Archive workflows finished longer ago than this (default: archive.after),
        /// e.g. 90d, 12h, 0s.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Only count the workflows a pass would archive.
        #[arg(long)]
        dry_run: bool,
    },
    /// API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh token (once: only its SHA-256 is kept) and the
    /// `[[auth.keys]]` entry to paste into the config or the keys file.
    New {
        /// The key's name: shown in logs and metrics, recorded as owner.
        #[arg(long)]
        name: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
    },
}

/// Why `keys new` printed no key.
#[derive(Debug, thiserror::Error)]
enum KeyError {
    #[error("--scopes: unknown scope '{0}'; expected read, write, admin")]
    UnknownScope(String),
    #[error("--scopes: name at least one of read, write, admin")]
    NoScope,
    #[error(transparent)]
    Token(#[from] mcp_orchestrator::auth::NoRandomness),
    #[error("{0}")]
    Invalid(String),
}

/// `keys new`: the token on stdout's first line, then the TOML entry.
fn new_key(name: &str, scopes: &str) -> Result<String, KeyError> {
    use mcp_orchestrator::config::Scope;
    let mut list = Vec::new();
    for s in scopes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let scope = Scope::parse(s).ok_or_else(|| KeyError::UnknownScope(s.to_string()))?;
        if !list.contains(&scope) {
            list.push(scope);
        }
    }
    if list.is_empty() {
        return Err(KeyError::NoScope);
    }
    let entry = mcp_orchestrator::config::KeyConfig {
        name: name.to_string(),
        sha256: String::new(),
        scopes: list.clone(),
        max_active: None,
        requests_per_second: None,
        burst: None,
        budget_usd_per_day: None,
        max_share: None,
    };
    let token = mcp_orchestrator::auth::new_token()?;
    let entry = mcp_orchestrator::config::KeyConfig {
        sha256: mcp_orchestrator::auth::sha256_hex(&token),
        ..entry
    };
    let check = mcp_orchestrator::config::AuthConfig {
        keys: vec![entry.clone()],
        ..Default::default()
    };
    check
        .validate("127.0.0.1:0")
        .map_err(|e| KeyError::Invalid(e.0.replace("auth.keys[0].name", "--name")))?;
    let scopes: Vec<String> = list.iter().map(|s| format!("\"{}\"", s.as_str())).collect();
    Ok(format!(
        "{token}\n\n# The token above is shown only this once; the server keeps its SHA-256.\n\
         # Paste this into the config file or the file named by auth.keys_file:\n\
         [[auth.keys]]\nname = \"{}\"\nsha256 = \"{}\"\nscopes = [{}]\n\
         # Optional quotas:\n# max_active = 10\n# requests_per_second = 20\n# burst = 40\n# budget_usd_per_day = 50.0\n# max_share = 0.25\n",
        entry.name,
        entry.sha256,
        scopes.join(", ")
    ))
}

fn init_tracing(cfg: &mcp_orchestrator::config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    // RUST_LOG when set and valid, else log.level.
    let text = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|t| EnvFilter::try_new(t).is_ok())
        .unwrap_or_else(|| cfg.level.clone());
    let mut filter = EnvFilter::try_new(&text).unwrap_or_else(|_| EnvFilter::new("info"));
    // rmcp logs MCP session ids (a session's only credential) at info and in its
    // spans: below warn it is silent unless the filter names it explicitly.
    if !text.contains("rmcp") {
        for quiet in ["rmcp=warn", "rmcp_actix_web=warn"] {
            if let Ok(d) = quiet.parse() {
                filter = filter.add_directive(d);
            }
        }
    }
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cfg.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Needs no configuration: a key can be made before there is a config file.
    if let Some(Command::Keys(KeysCommand::New { name, scopes })) = &cli.command {
        return match new_key(name, scopes) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mcp-orchestrator keys new: {e}");
                ExitCode::from(2)
            }
        };
    }
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-orchestrator: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(bind) = cli.bind {
        config.server.bind = bind;
        if let Err(e) = config.validate() {
            eprintln!("mcp-orchestrator: {e}");
            return ExitCode::from(2);
        }
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Keys(_) => ExitCode::SUCCESS,
        Command::Healthcheck { timeout } => {
            let probe =
                mcp_orchestrator::healthcheck::target(&config.server.bind).and_then(|addr| {
                    mcp_orchestrator::healthcheck::check(
                        addr,
                        std::time::Duration::from_secs(timeout),
                    )
                });
            match probe {
                Ok(status) => {
                    println!("{status}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mcp-orchestrator healthcheck: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig => {
            for w in config.warnings() {
                eprintln!("warning: {w}");
            }
            println!(
                "# effective configuration (secrets redacted)\n{}",
                config.to_redacted_toml()
            );
            ExitCode::SUCCESS
        }
        Command::Migrate if config.postgres.url.is_some() => {
            let system = actix_rt::System::new();
            match system.block_on(PgStore::migrate(&config.postgres)) {
                Ok(n) => {
                    let url = config.postgres.url.as_deref().map(redact_url);
                    println!(
                        "migrations applied to {} ({n} new)",
                        url.unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mcp-orchestrator: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Migrate => {
            match sqlite_lock(&config, "", " (a server applies migrations when it starts)")
                .map(|_lock| SqliteStore::migrate(&config.storage.sqlite_path))
            {
                Err(code) => code,
                Ok(Ok(())) => {
                    println!(
                        "migrations applied to {}",
                        config.storage.sqlite_path.display()
                    );
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => {
                    eprintln!("mcp-orchestrator: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Archive {
            older_than,
            dry_run,
        } => {
            // A pass rewrites the file under a running server: the server archives on
            // its own schedule instead (archive.enabled).
            let _lock = match sqlite_lock(
                &config,
                " archive",
                " (a running server archives on its own: archive.enabled)",
            ) {
                Ok(l) => l,
                Err(code) => return code,
            };
            init_tracing(&config.log);
            mcp_orchestrator::install_crypto_provider();
            let system = actix_rt::System::new();
            let older_than = older_than.unwrap_or(config.archive.after);
            match system.block_on(archive_once(config, older_than, dry_run)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mcp-orchestrator archive: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Serve => {
            // Held until the process exits: one server per SQLite file.
            let _lock = match sqlite_lock(&config, "", "") {
                Ok(l) => l,
                Err(code) => return code,
            };
            init_tracing(&config.log);
            for w in config.warnings() {
                tracing::warn!("{w}");
            }
            mcp_orchestrator::install_crypto_provider();
            mcp_orchestrator::actors::metrics::set_instance(config.cluster.effective_instance_id());
            let system = actix_rt::System::new();
            match system.block_on(mcp_orchestrator::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mcp-orchestrator: {e}");
                    // Exit before the System is dropped: actors started before the
                    // failure would be dropped outside the runtime and panic.
                    std::process::exit(1)
                }
            }
        }
    }
}

/// The SQLite file's exclusive lock for a command that opens it (none with
/// PostgreSQL, which several instances share). Another process holding it: one
/// line naming `storage.sqlite_path` and exit 2, like a configuration error;
/// a lock file that cannot be made: exit 1, like a database that cannot be opened.
fn sqlite_lock(config: &Config, cmd: &str, hint: &str) -> Result<Option<DbLock>, ExitCode> {
    if config.postgres.url.is_some() {
        return Ok(None);
    }
    match lock::acquire(&config.storage.sqlite_path) {
        Ok(l) => Ok(Some(l)),
        Err(e @ LockError::Busy(_)) => {
            eprintln!("mcp-orchestrator{cmd}: {e}{hint}");
            Err(ExitCode::from(2))
        }
        Err(e @ LockError::Io(_)) => {
            eprintln!("mcp-orchestrator{cmd}: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// Why an archive pass failed.
#[derive(Debug, thiserror::Error)]
enum ArchiveRunError {
    #[error(transparent)]
    Start(#[from] mcp_orchestrator::StartError),
    #[error(transparent)]
    Url(#[from] mcp_orchestrator::archive::BadArchiveUrl),
    #[error("pass stopped: {0} (nothing unverified was deleted; run again to retry)")]
    Stopped(String),
}

/// One archive pass, printed: counts, throughput, store size before and after.
async fn archive_once(
    config: Config,
    older_than: std::time::Duration,
    dry_run: bool,
) -> Result<(), ArchiveRunError> {
    use mcp_orchestrator::archive::{pass, Archive};
    let store = mcp_orchestrator::open_store(&config).await?;
    let archive = Archive::open(&config.archive, &config.storage.sqlite_path)?;
    let age = humantime::format_duration(older_than);
    println!("archive: {} (store: {})", archive.url, store.kind());
    let r = pass::run(&store, &archive, older_than, config.archive.batch, dry_run).await;
    let sizes = |s: &mcp_orchestrator::store::Space| {
        s.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if dry_run {
        println!(
            "candidates: {} (finished more than {age} ago)",
            r.candidates
        );
        println!("archived: 0 (dry run)");
    } else {
        println!(
            "candidates: {} (finished more than {age} ago)",
            r.candidates
        );
        println!(
            "archived: {} in {:.2} s ({:.0} workflows/s), {} bytes written ({} per workflow)",
            r.archived,
            r.seconds,
            r.workflows_per_second(),
            r.bytes,
            r.bytes / r.archived.max(1)
        );
    }
    println!("store size before: {}", sizes(&r.space_before));
    println!("store size after: {}", sizes(&r.space_after));
    match r.error {
        Some(e) => Err(ArchiveRunError::Stopped(e)),
        None => Ok(()),
    }
}

//! The command line: `serve` (default), `migrate`, `check-config`, `healthcheck`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_orchestrator::config::{redact_url, Config, LogFormat};
use mcp_orchestrator::store::postgres::PgStore;
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
}

fn init_tracing(cfg: &mcp_orchestrator::config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
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
        Command::Migrate => match SqliteStore::migrate(&config.storage.sqlite_path) {
            Ok(()) => {
                println!(
                    "migrations applied to {}",
                    config.storage.sqlite_path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mcp-orchestrator: {e}");
                ExitCode::from(1)
            }
        },
        Command::Serve => {
            init_tracing(&config.log);
            for w in config.warnings() {
                tracing::warn!("{w}");
            }
            mcp_orchestrator::install_crypto_provider();
            let system = actix_rt::System::new();
            match system.block_on(mcp_orchestrator::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mcp-orchestrator: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

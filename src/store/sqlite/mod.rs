//! Embedded SQLite primary store: one writer connection (used only by the writer
//! actor, one batch at a time) and a small pool of readers; WAL mode lets readers
//! run while a batch commits. All calls run on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::StoreError;
use crate::config::Durability;

mod analytics;
mod archive;
pub mod lock;
mod logs;
mod rows;
mod store;
mod write;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

const MAX_IDLE_READERS: usize = 8;

/// Why the database could not be opened: one line naming `storage.sqlite_path`,
/// fit to print at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("storage.sqlite_path '{path}': cannot create directory '{dir}': {source}")]
    CreateDir {
        path: String,
        dir: String,
        source: std::io::Error,
    },
    #[error("storage.sqlite_path '{path}': cannot open database: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("storage.sqlite_path '{path}': {source}")]
    Setting {
        path: String,
        source: rusqlite::Error,
    },
    #[error("storage.sqlite_path '{path}': migration failed: {source}")]
    Migration {
        path: String,
        source: refinery::Error,
    },
}

/// A cheap-to-clone handle; connections live in the shared inner part.
#[derive(Clone)]
pub struct SqliteStore(Arc<Inner>);

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Locked while `writer` is, by the batch writer only.
    logs: Mutex<logs::CommittedLogs>,
    readers: Mutex<Vec<Connection>>,
}

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database. Errors are one line
    /// naming the path, fit to print at start-up.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, OpenError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
                path: shown.clone(),
                dir: dir.display().to_string(),
                source,
            })?;
        }
        let pragma = |source| OpenError::Setting {
            path: shown.clone(),
            source,
        };
        let mut conn = Self::connect(path).map_err(|source| OpenError::Open {
            path: shown.clone(),
            source,
        })?;
        let sync = match durability {
            Durability::Sync => "FULL",
            Durability::Async => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
            .map_err(pragma)?;
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(|source| OpenError::Migration {
                path: shown.clone(),
                source,
            })?;
        // SQLite checkpoints inside the commit that crosses the threshold, between
        // the single writer's transactions, so the WAL is reset each time. (A
        // checkpointer thread was tried: under continuous writes it never caught
        // up with the writer and the WAL grew past 1 GB.) A larger threshold than
        // the default 1,000 pages copies each hot page once per 16 MB written instead
        // of once per 4 MB (+20% workflows/s in the benchmark); the WAL stays near 16 MB.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 4000;")
            .map_err(pragma)?;
        // The writer's page cache: at the default 2 MB the hot pages (recent
        // workflows, events, steps) can fall out between batches and be read back
        // through the kernel (page-cache reads showed on the writer thread in the
        // profile). 64 MB holds them; the memory is only used as pages are. No
        // throughput change was measurable on its own (BENCHMARKS.md).
        conn.execute_batch("PRAGMA cache_size = -65536;")
            .map_err(pragma)?;
        Ok(SqliteStore(Arc::new(Inner {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            logs: Mutex::default(),
            readers: Mutex::new(Vec::new()),
        })))
    }

    /// Applies migrations only (the `migrate` command).
    pub fn migrate(path: &Path) -> Result<(), OpenError> {
        Self::open(path, Durability::Sync).map(|_| ())
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Archival empties pages; with incremental auto-vacuum a pass gives them
        // back to the file system. It takes effect only on a new database, and
        // only before the switch to WAL writes the first page (after it, it was
        // silently ignored); on an existing database this is a no-op.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
        // Reading the journal mode also proves the file is a database.
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA foreign_keys = OFF;")?;
        Ok(conn)
    }

    /// Runs `f` on the writer connection (between the writer's batches) on the
    /// blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let this = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let mut conn = this.writer.lock().map_err(backend)?;
            f(&mut conn).map_err(backend)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `f` with a reader connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let this = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let conn = match this.readers.lock().map_err(backend)?.pop() {
                Some(c) => c,
                None => Self::connect(&this.path).map_err(backend)?,
            };
            let out = f(&conn);
            let mut idle = this.readers.lock().map_err(backend)?;
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(backend)?
    }
}

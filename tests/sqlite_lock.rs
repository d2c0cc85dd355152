//! SQLite stays single-instance: a second process on the same database
//! file refuses to start with one line naming `storage.sqlite_path` and exit 2,
//! and so do `archive` and `migrate` while a server holds the file; a SIGKILLed
//! holder's lock goes with it, so a restart is never blocked. With PostgreSQL
//! nothing is locked: several instances may share a data directory.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::pg::PgDb;
use crate::common::{research, server, BIN, SEC};

/// Runs the real binary on `db` with `args` and waits for it to exit.
fn run_on(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(db.parent().expect("db dir"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("MCPO__SERVER__BIND", "127.0.0.1:0")
        .env("MCPO__STORAGE__SQLITE_PATH", db)
        .env("MCPO__LOG__LEVEL", "warn")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the binary")
}

/// The one line a refused command prints, checked: exit 2, nothing else on stderr.
fn refused(out: &Output, prefix: &str, db: &Path) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line:\n{err}");
    let want = format!(
        "{prefix}: storage.sqlite_path '{}' is in use by another process",
        db.display()
    );
    assert!(lines[0].starts_with(&want), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

#[tokio::test]
async fn a_second_process_on_the_same_sqlite_file_is_refused_until_the_first_dies() {
    let mut first = server().latency_ms(1).start();
    let dir = first.dir.clone();
    let db = dir.join("orchestrator.db");
    let id = first.create(research("before the second", 3)).await;
    first.wait_status(&id, "completed", 30 * SEC).await;

    let line = refused(&run_on(&db, &["serve"]), "mcp-orchestrator", &db);
    assert!(
        line.contains("postgres.url"),
        "says how to run several: {line}"
    );
    // The commands that write the same file refuse too, saying why.
    let line = refused(
        &run_on(&db, &["archive", "--older-than", "0s"]),
        "mcp-orchestrator archive",
        &db,
    );
    assert!(line.contains("archive.enabled"), "{line}");
    refused(&run_on(&db, &["migrate"]), "mcp-orchestrator", &db);
    // The first server never noticed.
    assert_eq!(first.get("/health").await.status, 200);
    assert_eq!(first.workflow(&id).await["status"], "completed");

    // SIGKILL: no clean-up ran, the lock file is still there, and yet the lock is
    // gone with the process.
    first.kill9();
    assert!(dir.join("orchestrator.db.lock").exists());
    let mut second = server().dir(&dir).start();
    assert_eq!(second.workflow(&id).await["status"], "completed");
    refused(&run_on(&db, &["serve"]), "mcp-orchestrator", &db);

    // Stopped cleanly, the file is free for the offline commands.
    second.signal(libc::SIGTERM);
    second.wait_exit(30 * SEC);
    for args in [&["migrate"][..], &["archive", "--older-than", "0s"]] {
        let out = run_on(&db, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn with_postgres_two_instances_may_share_a_data_directory() {
    let db = PgDb::new();
    let first = server()
        .env("MCPO__POSTGRES__URL", &db.url)
        .env("MCPO__CLUSTER__INSTANCE_ID", "first")
        .start();
    // Same working directory and the same (unused) storage.sqlite_path; two
    // instances of one cluster, so two instance ids.
    let second = server()
        .dir(&first.dir)
        .env("MCPO__POSTGRES__URL", &db.url)
        .env("MCPO__CLUSTER__INSTANCE_ID", "second")
        .start();
    assert_eq!(first.get("/health").await.status, 200);
    assert_eq!(second.get("/health").await.status, 200);
    assert!(!first.dir.join("orchestrator.db.lock").exists());
}

//! PostgreSQL for tests: a fresh database per test on the shared server
//! (`MCPO_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`), dropped
//! afterwards; and a private throw-away server on a free port for tests that
//! stop and start PostgreSQL (the shared one is used by tests running in parallel).

use std::path::PathBuf;
use std::process::Command;

use super::free_port;

fn server_url() -> String {
    std::env::var("MCPO_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// Runs one SQL statement with psql against `url`; returns the unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A database of its own on a PostgreSQL server, dropped on drop.
pub struct PgDb {
    pub name: String,
    pub url: String,
    server: String,
}

impl PgDb {
    pub fn new() -> PgDb {
        Self::on(&server_url())
    }

    /// A new database on the server at `server` (a URL without a database).
    pub fn on(server: &str) -> PgDb {
        let name = format!("mcpo_t_{}", uuid::Uuid::new_v4().simple());
        psql(
            &format!("{server}/postgres"),
            &format!("CREATE DATABASE {name}"),
        );
        PgDb {
            url: format!("{server}/{name}"),
            name,
            server: server.to_string(),
        }
    }

    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }

    /// Ends every session of the application on this database (the writer's too).
    pub fn terminate_backends(&self) -> usize {
        let killed = self.query(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ));
        killed.parse().unwrap_or(0)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", self.server),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A private PostgreSQL server (initdb + pg_ctl) on a free port, trust auth, run
/// as the `postgres` OS user when the tests run as root (postgres refuses root).
pub struct PrivatePg {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL bin directory with pg_ctl")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl PrivatePg {
    pub fn start() -> PrivatePg {
        let dir = tempfile::Builder::new()
            .prefix("mcpo-pg-")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            let st = Command::new("chown")
                .args(["postgres:postgres", &dir.path().display().to_string()])
                .status()
                .expect("chown");
            assert!(st.success(), "chown the private PostgreSQL directory");
        }
        let pg = PrivatePg {
            port: free_port(),
            bin: pg_bin(),
            dir,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.pg_ctl_start();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool).display().to_string();
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &exe]);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().expect("run PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
    }

    /// `postgres://postgres@127.0.0.1:PORT` (no database).
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server (fast: open sessions are ended) and waits for it.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    pub fn restart(&self) {
        self.pg_ctl_start();
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl").display().to_string();
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &exe])
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

//! Test harness: starts the real binary on a free loopback port with its own data
//! directory, and talks to it over real HTTP. Each test is isolated by its own
//! temporary directory, so tests run in parallel and repeatedly.

#![allow(dead_code)]

pub mod archiving;
pub mod crash;
pub mod fake_openai;
pub mod keys;
pub mod mcp_client;
pub mod pages;
pub mod pg;
pub mod prometheus;
pub mod receiver;
pub mod redis_util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_orchestrator::domain::{ChangeKind, StateChange};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-orchestrator");

pub struct Server {
    pub base: String,
    pub dir: PathBuf,
    child: Option<Child>,
    pub http: reqwest::Client,
}

#[derive(Clone, Default)]
pub struct Builder {
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
    args: Vec<String>,
}

impl Builder {
    pub fn env(mut self, k: &str, v: impl ToString) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Reuse a data directory (to restart on the same state).
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn latency_ms(self, ms: u64) -> Self {
        self.env("MCPO__PROVIDERS__SIMULATED__LATENCY_MS", ms)
    }

    /// Webhooks to test receivers on this machine: `hosts` (a comma-separated
    /// `webhooks.allow_hosts`) pass the SSRF guard, over plain HTTP.
    pub fn webhooks_to(self, hosts: &str) -> Self {
        self.env("MCPO__WEBHOOKS__ALLOW_HOSTS", hosts)
            .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
    }

    /// The provider `fake` (the default) on a fake OpenAI-compatible server,
    /// its key `key` read from the variable `key_env`.
    pub fn fake_provider(self, fake: &fake_openai::FakeOpenAi, key_env: &str, key: &str) -> Self {
        self.env("MCPO__PROVIDERS__FAKE__KIND", "openai")
            .env("MCPO__PROVIDERS__FAKE__BASE_URL", &fake.base_url)
            .env("MCPO__PROVIDERS__FAKE__MODEL", "fake-default")
            .env("MCPO__PROVIDERS__FAKE__API_KEY_ENV", key_env)
            .env(key_env, key)
            .env("MCPO__EXECUTION__DEFAULT_PROVIDER", "fake")
    }

    pub fn start(self) -> Server {
        let dir = self.dir.unwrap_or_else(new_dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("server log");
        // MCPO_TEST_BIN runs the tests against another build (e.g. release, for
        // the crash benchmark in BENCHMARKS.md).
        let bin = std::env::var("MCPO_TEST_BIN").unwrap_or_else(|_| BIN.to_string());
        let mut cmd = Command::new(bin);
        cmd.current_dir(&dir)
            .args(&self.args)
            .env_remove("RUST_LOG")
            .env("MCPO__SERVER__BIND", "127.0.0.1:0")
            .env("MCPO__SERVER__WORKERS", "2")
            .env("MCPO__EXECUTION__THREADS", "2")
            .env("MCPO__STORAGE__SQLITE_PATH", dir.join("orchestrator.db"))
            .env("MCPO__LOG__LEVEL", "info")
            // With PostgreSQL each server is a cluster member; one restarted on
            // the same directory is the same member and takes its leases back
            // at once instead of waiting for them to expire.
            .env("MCPO__CLUSTER__INSTANCE_ID", instance_id(&dir))
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn server binary");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("mcp-orchestrator listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log:\n{}", read_log(&dir));
            }
        };
        Server {
            base,
            dir,
            child: Some(child),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                // Below the server's keep-alive (5 s): a pooled connection is never
                // reused just as the server closes it for idling.
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("client"),
        }
    }
}

/// The cluster instance id of a server on `dir`: its directory's name.
pub fn instance_id(dir: &Path) -> String {
    dir.file_name()
        .map(|n| {
            n.to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        })
        .unwrap_or_else(|| "test".into())
}

/// Runs the binary to completion in `dir` (a command such as `check-config`, or a
/// start that must fail): its exit code, stdout and stderr.
pub fn run_bin(args: &[&str], env: &[(&str, &str)], dir: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first column of the first row `sql` returns from the SQLite database at
/// `db`, as text (`null`, a number, the text, or `blob <length>`).
pub fn sqlite_value(db: &Path, sql: &str) -> String {
    use rusqlite::types::ValueRef;
    let c = rusqlite::Connection::open(db).expect("open the SQLite database");
    c.query_row(sql, [], |r| {
        Ok(match r.get_ref(0)? {
            ValueRef::Null => "null".to_string(),
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Real(f) => f.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ValueRef::Blob(b) => format!("blob {}", b.len()),
        })
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A change as the registry emits it, outside any lease epoch.
pub fn change(seq: u64, kind: ChangeKind) -> Arc<StateChange> {
    Arc::new(StateChange {
        seq,
        epoch: None,
        kind,
    })
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn server() -> Builder {
    Builder::default()
}

/// A fresh `mcpo-test-*` directory. It lives until the test's thread ends (a
/// test may stop a server and start another on the same directory); then it is
/// removed if the test passed and kept, for its logs, if it failed.
pub fn new_dir() -> PathBuf {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = TEST_DIRS.try_with(|d| d.failed.set(true));
            previous(info);
        }));
    });
    let d = tempfile::Builder::new()
        .prefix("mcpo-test-")
        .tempdir()
        .expect("tempdir")
        .keep();
    let _ = TEST_DIRS.try_with(|t| t.dirs.borrow_mut().push(d.clone()));
    d
}

/// The directories a test thread made, removed when the thread ends unless it
/// panicked (libtest runs each test on its own thread).
#[derive(Default)]
struct TestDirs {
    dirs: std::cell::RefCell<Vec<PathBuf>>,
    failed: std::cell::Cell<bool>,
}

thread_local! {
    static TEST_DIRS: TestDirs = TestDirs::default();
}

impl Drop for TestDirs {
    fn drop(&mut self) {
        let dirs = self.dirs.take();
        if self.failed.get() {
            for d in &dirs {
                eprintln!("kept test directory {}", d.display());
            }
            return;
        }
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// `GET /v1/workflows/{id}/deliveries`: its items.
pub async fn deliveries(s: &Server, id: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/workflows/{id}/deliveries")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub(crate) async fn into_resp(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::into_resp(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        Self::into_resp(
            self.http
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Resp {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        Self::into_resp(r).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str) -> Resp {
        Self::into_resp(
            self.http
                .request(method, self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Creates a workflow and returns its id (asserting 201).
    pub async fn create(&self, body: Value) -> String {
        let r = self.post("/v1/workflows", &body).await;
        assert_eq!(r.status, 201, "create failed: {:?}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    pub async fn workflow(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/workflows/{id}")).await;
        assert_eq!(r.status, 200, "GET {id}: {:?}", r.body);
        r.body
    }

    /// Polls until the workflow has `status`; returns the record.
    pub async fn wait_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let t = Instant::now();
        loop {
            let wf = self.workflow(id).await;
            if wf["status"] == status {
                return wf;
            }
            assert!(
                t.elapsed() < within,
                "workflow {id} did not reach {status} within {within:?}; now {}",
                wf["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reads an SSE stream to its end (bounded by `within`).
    pub async fn sse(
        &self,
        id: &str,
        last_event_id: Option<u64>,
        within: Duration,
    ) -> Vec<SseEvent> {
        let mut req = self
            .http
            .get(self.url(&format!("/v1/workflows/{id}/events")));
        if let Some(n) = last_event_id {
            req = req.header("Last-Event-ID", n.to_string());
        }
        let resp = req.send().await.expect("SSE request");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let text = tokio::time::timeout(within, resp.text())
            .await
            .expect("SSE stream did not close in time")
            .expect("SSE body");
        parse_sse(&text)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit; returns its status and how long it took.
    pub fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let t = Instant::now();
        let child = self.child.as_mut().expect("child");
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return (st, t.elapsed());
            }
            if t.elapsed() > within {
                let _ = child.kill();
                panic!(
                    "server did not exit within {within:?}; log:\n{}",
                    read_log(&self.dir)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(10));
    }

    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = read_log(&self.dir);
            let tail: String = log
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!("--- server log tail ({}) ---\n{tail}", self.dir.display());
        }
    }
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: Value,
    /// The data line exactly as sent.
    pub raw: String,
}

pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut ev = SseEvent {
                id: None,
                event: None,
                data: Value::Null,
                raw: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    ev.id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    ev.event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    ev.data = serde_json::from_str(v).unwrap_or(Value::String(v.to_string()));
                    ev.raw = v.to_string();
                    has_data = true;
                }
            }
            has_data.then_some(ev)
        })
        .collect()
}

pub fn research(task: &str, num_agents: u32) -> Value {
    serde_json::json!({"pattern": "research", "task": task, "config": {"num_agents": num_agents}})
}

pub const SEC: Duration = Duration::from_secs(1);

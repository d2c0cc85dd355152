//! The archive from the tests' side: the `archive` command, every content route
//! of a workflow and where each was served from, finished workflows to archive,
//! and a moto S3 server.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{research, Builder, Server, BIN, SEC};

/// Runs the real binary's `archive` command against `dir`'s store.
pub fn archive_cmd(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .arg("archive")
        .args(args)
        .env_remove("RUST_LOG")
        .env("MCPO__STORAGE__SQLITE_PATH", dir.join("orchestrator.db"))
        .env("MCPO__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn run_archive(dir: &Path, env: &[(&str, String)], args: &[&str]) -> String {
    let out = archive_cmd(dir, env, args).output().expect("run archive");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "archive {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number after `label: ` in the command's output.
pub fn count(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}: ")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{label}:' in\n{out}"))
}

pub async fn raw_get(s: &Server, path: &str, last_event_id: Option<u64>) -> (u16, String, String) {
    let mut req = s.http.get(s.url(path));
    if let Some(n) = last_event_id {
        req = req.header("Last-Event-ID", n.to_string());
    }
    let r = req.send().await.expect("GET");
    let status = r.status().as_u16();
    let from = r
        .headers()
        .get("x-served-from")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    (status, from, r.text().await.expect("body"))
}

/// A body as a value: JSON parsed; an SSE stream as `[[id, event, data], …]`.
/// Object keys compare regardless of order (PostgreSQL's JSONB keeps its own).
pub fn normalize(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v;
    }
    let events = super::parse_sse(body);
    json!(events
        .iter()
        .map(|e| json!([e.id, e.event, e.data]))
        .collect::<Vec<_>>())
}

/// What every content route answers for `id`: route -> (status, body), and
/// where each was served from.
pub async fn routes(s: &Server, id: &str) -> (BTreeMap<String, (u16, Value)>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut from = Vec::new();
    for (name, path, last) in [
        ("workflow", format!("/v1/workflows/{id}"), None),
        ("result", format!("/v1/workflows/{id}/result"), None),
        ("events", format!("/v1/workflows/{id}/events"), None),
        (
            "events after 2",
            format!("/v1/workflows/{id}/events"),
            Some(2),
        ),
        ("deliveries", format!("/v1/workflows/{id}/deliveries"), None),
        ("old stream", format!("/stream/{id}"), None),
    ] {
        let (status, f, body) = raw_get(s, &path, last).await;
        out.insert(name.to_string(), (status, normalize(&body)));
        from.push(format!("{name}: {f}"));
    }
    let r = s
        .http
        .post(s.url("/tools/get_orchestration_status"))
        .json(&json!({"task_id": id}))
        .send()
        .await
        .expect("status");
    let f = r
        .headers()
        .get("x-served-from")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    from.push(format!("old status: {f}"));
    let status = r.status().as_u16();
    out.insert(
        "old status".into(),
        (status, normalize(&r.text().await.expect("body"))),
    );
    (out, from)
}

/// Creates research and search workflows and waits until all have finished.
pub async fn finished_workflows(s: &Server, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = if i % 3 == 2 {
            json!({"pattern": "search", "task": format!("archived search {i}"),
                "config": {"agent_types": ["text", "news"]}})
        } else {
            research(&format!("archived research {i}"), 3)
        };
        ids.push(s.create(body).await);
    }
    for id in &ids {
        s.wait_status(id, "completed", 30 * SEC).await;
    }
    ids
}

pub fn local(b: Builder) -> Builder {
    b.latency_ms(1)
        .env("MCPO__RETENTION__MAX_COMPLETED", 0)
        .env("MCPO__ARCHIVE__ENABLED", "false")
}

/// A moto S3 server on `port`, killed on drop.
pub struct Moto(Child);

impl Moto {
    pub fn start(port: u16) -> Moto {
        Self::spawn(port, false)
    }

    /// Moto checking every request's credentials against its IAM users (of
    /// which there are none): any access key is wrong.
    pub fn start_checking_credentials(port: u16) -> Moto {
        Self::spawn(port, true)
    }

    fn spawn(port: u16, check_credentials: bool) -> Moto {
        let mut cmd = Command::new("moto_server");
        if check_credentials {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is missing: scripts/test.sh installs PyPI moto[server]");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < 30 * SEC, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto(child)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

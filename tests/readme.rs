//! The README's shell examples run as written: every command of "Using
//! it" and of the MCP, webhook and API key quick starts is taken from README.md and
//! run with bash against the real binary. Only what cannot be literal is replaced:
//! the port (5060 → the test server's), the workflow id (`wf_…` → the id the
//! section's create returned) and the webhook receiver's address. A line that
//! starts the server (`[VAR=value …] mcp-orchestrator [&]`) starts it through the
//! test harness with those variables, in the directory the commands run in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::receiver::Receiver;
use crate::common::{new_dir, server, Server, BIN, SEC};

const README: &str = include_str!("../README.md");

/// The commands of the ```sh blocks under the heading `title` (up to the next
/// heading of the same or a higher level): continuation lines joined, lines that
/// are only comments dropped.
fn commands(title: &str) -> Vec<String> {
    let mut lines = README.lines();
    let level = lines
        .by_ref()
        .find_map(|l| {
            let hashes = l.chars().take_while(|c| *c == '#').count();
            (hashes > 0 && l[hashes..].trim() == title).then_some(hashes)
        })
        .unwrap_or_else(|| panic!("README has no heading '{title}'"));
    let mut out = Vec::new();
    let (mut in_sh, mut current) = (false, String::new());
    for l in lines {
        let hashes = l.chars().take_while(|c| *c == '#').count();
        if !in_sh && hashes > 0 && hashes <= level && l[hashes..].starts_with(' ') {
            break;
        }
        if l.starts_with("```") {
            in_sh = !in_sh && l.trim() == "```sh";
            continue;
        }
        if !in_sh || (current.is_empty() && (l.trim().is_empty() || l.starts_with('#'))) {
            continue;
        }
        match l.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(l);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(!out.is_empty(), "no shell commands under '{title}'");
    out
}

/// The variables of a line that starts the server, or None for any other line.
fn server_start(cmd: &str) -> Option<Vec<(String, String)>> {
    let code = cmd.split(" #").next().unwrap_or(cmd).trim();
    let code = code.strip_suffix('&').unwrap_or(code).trim();
    let mut words: Vec<&str> = code.split_whitespace().collect();
    if words.last() != Some(&"mcp-orchestrator") {
        return None;
    }
    words.pop();
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Runs one section's commands in one directory with `mcp-orchestrator` on PATH.
struct Session {
    dir: PathBuf,
    bin_dir: PathBuf,
    server: Option<Server>,
    /// Replacements applied to every command (port, receiver, workflow id).
    subst: Vec<(String, String)>,
}

impl Session {
    fn new() -> Session {
        let dir = new_dir();
        let bin_dir = dir.join("bin");
        std::fs::create_dir_all(&bin_dir).expect("bin dir");
        std::os::unix::fs::symlink(BIN, bin_dir.join("mcp-orchestrator")).expect("symlink");
        Session {
            dir,
            bin_dir,
            server: None,
            subst: Vec::new(),
        }
    }

    fn start(&mut self, env: &[(String, String)]) {
        let mut b = server().dir(&self.dir).latency_ms(1);
        for (k, v) in env {
            b = b.env(k, v);
        }
        let s = b.start();
        let port = s.base.rsplit(':').next().unwrap_or_default().to_string();
        self.subst
            .push(("localhost:5060".into(), format!("localhost:{port}")));
        self.server = Some(s);
    }

    /// Runs `cmd` as the README has it (after the replacements); its stdout.
    fn run(&mut self, cmd: &str) -> String {
        if let Some(env) = server_start(cmd) {
            self.start(&env);
            return String::new();
        }
        let mut line = cmd.to_string();
        for (from, to) in &self.subst {
            line = line.replace(from, to);
        }
        assert!(!line.contains("wf_…"), "no workflow id yet for: {cmd}");
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .args(["-c", &format!("set -euo pipefail; {line}")])
            .current_dir(&self.dir)
            .env("PATH", path)
            .output()
            .expect("bash");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README command failed ({}): {cmd}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for refusal in ["unsupported_media_type", "invalid_json", "validation_error"] {
            assert!(!stdout.contains(refusal), "{cmd}\n→ {stdout}");
        }
        stdout
    }

    /// Runs `cmd` and, if it created a workflow, remembers its id for `wf_…`.
    fn run_json(&mut self, cmd: &str) -> Value {
        let out = self.run(cmd);
        let v: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{cmd}\n→ not JSON ({e}): {out}"));
        if let Some(id) = v["id"].as_str().filter(|id| id.starts_with("wf_")) {
            if !self.subst.iter().any(|(from, _)| from == "wf_…") {
                self.subst.push(("wf_…".into(), id.to_string()));
            }
        }
        v
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("a server runs")
    }

    fn id(&self) -> String {
        self.subst
            .iter()
            .find(|(from, _)| from == "wf_…")
            .map(|(_, id)| id.clone())
            .expect("a workflow was created")
    }
}

fn is_json_command(cmd: &str) -> bool {
    !cmd.contains("/events") && cmd.trim_start().starts_with("curl")
}

#[tokio::test]
async fn readme_using_it_commands_run_as_written() {
    let cmds = commands("Using it");
    let mut s = Session::new();
    s.start(&[]);
    let created = s.run_json(&cmds[0]);
    assert_eq!(created["status"], "pending", "{created}");
    assert!(created["links"]["events"].is_string(), "{created}");
    let id = s.id();
    for cmd in &cmds[1..] {
        if cmd.contains("/events") {
            // The stream closes after the terminal event.
            let out = s.run(cmd);
            assert!(out.contains("event: workflow_completed"), "{out}");
            continue;
        }
        if cmd.contains(" -sOJ ") {
            // Saved under the name the server gives it.
            s.run(cmd);
            let name = cmd.rsplit('/').next().unwrap_or_default();
            let name = name.split_whitespace().next().unwrap_or_default();
            let saved = std::fs::read_to_string(s.dir.join(name)).unwrap_or_default();
            assert!(
                saved.starts_with("# "),
                "{cmd} saved no report as {name}: {saved}"
            );
            continue;
        }
        assert!(is_json_command(cmd), "{cmd}");
        let v = s.run_json(cmd);
        if cmd.ends_with("/documents") || cmd.contains("/documents ") {
            assert!(v.to_string().contains("report.md"), "{v}");
        } else if cmd.contains("/result") {
            assert!(v["final_synthesis"].is_string(), "{v}");
        } else if cmd.contains("/cancel") {
            // It has finished by now: cancelling says so.
            assert_eq!(v["error"]["code"], "already_finished", "{v}");
        } else if cmd.contains("/documents") {
            assert_eq!(v["workflow_id"], id.as_str(), "{v}");
            assert_eq!(v["documents"][0]["name"], "report.md", "{v}");
        } else if cmd.contains("?status=") {
            assert_eq!(v["items"][0]["id"], id.as_str(), "{v}");
        } else {
            assert_eq!(v["id"], id.as_str(), "{v}");
        }
    }
}

#[tokio::test]
async fn readme_mcp_quick_start_runs_as_written() {
    let cmds: Vec<String> = commands("MCP clients: `/mcp`")
        .into_iter()
        .filter(|c| c.starts_with("curl"))
        .collect();
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    let mut s = Session::new();
    s.start(&[]);
    let tools = s.run_json(&cmds[0]);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{tools}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"orchestrate_research"), "{names:?}");
    let called = s.run_json(&cmds[1]);
    let result = &called["result"];
    assert_ne!(result["isError"], true, "{called}");
    assert_eq!(
        result["structuredContent"]["status"], "completed",
        "{called}"
    );
    let report = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(report.starts_with('#'), "the Markdown report: {report}");
}

#[tokio::test]
async fn readme_webhook_quick_start_runs_as_written() {
    let cmds = commands("Webhooks");
    let receiver = Receiver::start();
    let mut s = Session::new();
    s.subst.push((
        "127.0.0.1:9000".into(),
        format!("127.0.0.1:{}", receiver.port),
    ));
    assert!(server_start(&cmds[0]).is_some(), "{}", cmds[0]);
    s.run(&cmds[0]);
    let global = s.run_json(&cmds[1]);
    assert!(global["secret"].is_string(), "{global}");
    let created = s.run_json(&cmds[2]);
    assert_eq!(created["status"], "pending", "{created}");
    let id = s.id();
    s.server().wait_status(&id, "completed", 30 * SEC).await;
    let listed = s.run_json(&cmds[3]);
    assert_eq!(listed["items"][0]["id"], global["id"], "{listed}");
    // The global subscription hears the end; the workflow's own every event.
    let got = receiver.wait_for(2, 30 * SEC).await;
    let completed = got
        .iter()
        .filter(|r| r.header("X-MCP-Event") == Some("workflow_completed"))
        .count();
    assert!(completed >= 1, "{:?}", got.len());
    let deliveries = wait_deliveries(&mut s, &cmds[4]).await;
    assert!(deliveries.iter().all(|d| d["status"] == "delivered"));
}

/// The workflow's deliveries once none is pending.
async fn wait_deliveries(s: &mut Session, cmd: &str) -> Vec<Value> {
    let t = std::time::Instant::now();
    loop {
        let v = s.run_json(cmd);
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() && items.iter().all(|d| d["status"] != "pending") {
            return items;
        }
        assert!(t.elapsed() < 30 * SEC, "deliveries still pending: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readme_api_key_quick_start_runs_as_written() {
    let cmds = commands("API keys, scopes and quotas");
    let mut s = Session::new();
    // `keys new` prints the token block (whose first line is a comment in the
    // README); the quick start is the block that writes ci-key.txt.
    let start = cmds
        .iter()
        .position(|c| c.contains("> ci-key.txt"))
        .expect("the quick start");
    let quick = &cmds[start..];
    s.run(&quick[0]);
    s.run(&quick[1]);
    assert!(Path::new(&s.dir.join("keys.toml")).exists());
    assert!(server_start(&quick[2]).is_some(), "{}", quick[2]);
    s.run(&quick[2]);
    let refused = s.run_json(&quick[3]);
    assert_eq!(refused["error"]["code"], "unauthorized", "{refused}");
    let listed = s.run_json(&quick[4]);
    assert_eq!(listed["items"], serde_json::json!([]), "{listed}");
}

//! API keys: 401 without a valid key, owners, safe defaults at start,
//! `keys new`.

use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::json;

use crate::common::keys::{code, key, keys_file};
use crate::common::{new_dir, research, server, BIN};

#[tokio::test]
async fn a_key_is_required_and_a_workflow_belongs_to_the_key_that_created_it() {
    let (a, b, admin) = (
        key("team-a", &["read", "write"]),
        key("team-b", &["read", "write"]),
        key("ops", &["admin"]),
    );
    let s = server().keys(&[&a, &b, &admin]).start();

    let none = s.call(Method::GET, "/v1/workflows", None, None).await;
    assert_eq!((none.status, code(&none).as_str()), (401, "unauthorized"));
    assert_eq!(
        none.headers["www-authenticate"],
        "Bearer realm=\"mcp-orchestrator\""
    );
    let wrong = s
        .call(Method::GET, "/v1/workflows", Some("mcpo_not-a-key"), None)
        .await;
    assert_eq!((wrong.status, code(&wrong).as_str()), (401, "unauthorized"));
    assert!(!wrong.body.to_string().contains("mcpo_not-a-key"));

    let id = s.create_as(&a, research("owned", 3)).await;
    let mine = s.get_as(&a, &format!("/v1/workflows/{id}")).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body["owner"], "team-a");
    let theirs = s.get_as(&b, &format!("/v1/workflows/{id}")).await;
    assert_eq!(
        (theirs.status, code(&theirs).as_str()),
        (404, "workflow_not_found")
    );
    assert_eq!(
        s.get_as(&admin, &format!("/v1/workflows/{id}"))
            .await
            .status,
        200
    );
    let ids = |r: &crate::common::Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|w| w["id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(ids(&s.get_as(&a, "/v1/workflows").await).contains(&id));
    assert!(!ids(&s.get_as(&b, "/v1/workflows").await).contains(&id));
    assert!(ids(&s.get_as(&admin, "/v1/workflows").await).contains(&id));

    // Old clients send X-API-Key.
    let old = s
        .http
        .post(s.url("/tools/get_orchestration_status"))
        .header("X-API-Key", &a.token)
        .json(&json!({"task_id": id}))
        .send()
        .await
        .expect("POST");
    assert_eq!(old.status().as_u16(), 200);
    let missing = s
        .call(
            Method::POST,
            "/tools/get_orchestration_status",
            None,
            Some(&json!({"task_id": id})),
        )
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.body["success"], false);
    assert_eq!(code(&missing), "unauthorized");

    // Public routes need no key; /metrics does once keys exist (it names them).
    for path in ["/health", "/ready", "/dashboard"] {
        let r = s.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    let r = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"));
}

#[tokio::test]
async fn metrics_require_a_key_once_keys_exist_unless_opened() {
    let k = key("scraper", &["read"]);
    let opened = server()
        .keys(&[&k])
        .env("MCPO__METRICS__REQUIRE_AUTH", "false")
        .start();
    let r = opened.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200, "an explicit setting wins");
    drop(opened);
    let s = server().keys(&[&k]).start();
    let none = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!((none.status, code(&none).as_str()), (401, "unauthorized"));
    let ok = s.get_as(&k, "/metrics").await;
    assert_eq!(ok.status, 200);
    let m = crate::common::prometheus::samples(ok.body.as_str().unwrap_or(""));
    assert!(m
        .keys()
        .any(|k| k.starts_with("auth_key_requests_total{key=\"scraper\"")));
    assert_eq!(s.call(Method::GET, "/health", None, None).await.status, 200);
}

fn run(args: &[&str], env: &[(&str, String)]) -> std::process::Child {
    let dir = new_dir();
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(&dir)
        .env_remove("RUST_LOG")
        .env("MCPO__STORAGE__SQLITE_PATH", dir.join("o.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn")
}

#[test]
fn without_keys_only_a_loopback_bind_starts() {
    let out = run(&[], &[("MCPO__SERVER__BIND", "0.0.0.0:0".into())])
        .wait_with_output()
        .expect("wait");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.keys"), "{err}");

    // Explicitly without auth, it starts.
    let mut child = run(
        &[],
        &[
            ("MCPO__SERVER__BIND", "0.0.0.0:0".into()),
            ("MCPO__AUTH__REQUIRED", "false".into()),
        ],
    );
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
    assert!(line.starts_with("mcp-orchestrator listening on"), "{line}");
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth is off"), "{err}");

    // With a key, any bind is fine.
    let k = key("k", &["read"]);
    let mut child = run(
        &[],
        &[
            ("MCPO__SERVER__BIND", "0.0.0.0:0".into()),
            (
                "MCPO__AUTH__KEYS_FILE",
                keys_file(&[&k]).display().to_string(),
            ),
        ],
    );
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
    assert!(line.starts_with("mcp-orchestrator listening on"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn keys_new_prints_a_token_once_and_the_entry_that_accepts_it() {
    let out = Command::new(BIN)
        .args(["keys", "new", "--name", "ci", "--scopes", "read,write"])
        .output()
        .expect("keys new");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text.lines().next().expect("token line").trim().to_string();
    assert!(token.starts_with("mcpo_") && token.len() >= 40, "{token}");
    let block_start = text.find("[[auth.keys]]").expect("entry");
    let block = &text[block_start..];
    assert!(
        !block.contains(&token),
        "the entry must not contain the token"
    );
    assert!(block.contains(&mcp_orchestrator::auth::sha256_hex(&token)));
    assert!(block.contains("scopes = [\"read\", \"write\"]"), "{block}");
    let again = Command::new(BIN)
        .args(["keys", "new", "--name", "ci"])
        .output()
        .expect("keys new");
    assert_ne!(
        String::from_utf8_lossy(&again.stdout).lines().next(),
        Some(token.as_str())
    );
    let bad = Command::new(BIN)
        .args(["keys", "new", "--name", "ci", "--scopes", "root"])
        .output()
        .expect("keys new");
    assert_eq!(bad.status.code(), Some(2));

    // The printed entry, pasted into a keys file, accepts the token.
    let path = new_dir().join("keys.toml");
    std::fs::write(&path, block).expect("write");
    let s = server()
        .env("MCPO__AUTH__KEYS_FILE", path.display())
        .start();
    let r = s
        .call(Method::GET, "/v1/workflows", Some(&token), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

//! Start-up, configuration and health: the default database, config layers and
//! their errors, `check-config`, health.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn fresh_directory_gets_its_default_database() {
    let dir = new_dir();
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .env("MCPO__SERVER__BIND", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !dir.join("data/orchestrator.db").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "data/orchestrator.db not created"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn unwritable_or_corrupt_database_fails_with_one_line_naming_the_path() {
    let dir = new_dir();
    let bad_dir = "/proc/mcpo-cannot-create/orchestrator.db";
    let (code, _, err) = run_bin(
        &[],
        &[
            ("MCPO__STORAGE__SQLITE_PATH", bad_dir),
            ("MCPO__SERVER__BIND", "127.0.0.1:0"),
        ],
        &dir,
    );
    assert_ne!(code, 0);
    assert!(err.contains(bad_dir), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.contains("mcp-orchestrator:"))
            .count(),
        1,
        "{err}"
    );

    let corrupt = dir.join("corrupt.db");
    std::fs::write(&corrupt, b"this is not a database, just some bytes that are long enough to look like a header......................").unwrap();
    let path = corrupt.to_str().unwrap();
    let (code, _, err) = run_bin(
        &[],
        &[
            ("MCPO__STORAGE__SQLITE_PATH", path),
            ("MCPO__SERVER__BIND", "127.0.0.1:0"),
        ],
        &dir,
    );
    assert_ne!(code, 0);
    assert!(err.contains(path), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn config_layers_file_env_and_check_config() {
    let dir = new_dir();
    // Built-in defaults, printed.
    let (code, out, _) = run_bin(&["check-config"], &[], &dir);
    assert_eq!(code, 0);
    assert!(out.contains("max_active = 50"), "{out}");
    assert!(out.contains("bind = \"127.0.0.1:5060\""));
    // Environment overrides.
    let (_, out, _) = run_bin(
        &["check-config"],
        &[
            ("MCPO__LIMITS__MAX_ACTIVE", "5"),
            ("MCPO__SHUTDOWN__GRACE", "9s"),
        ],
        &dir,
    );
    assert!(out.contains("max_active = 5\n"), "{out}");
    assert!(out.contains("grace = \"9s\""), "{out}");
    // --config FILE, and env beats file.
    let file = dir.join("custom.toml");
    std::fs::write(
        &file,
        "[limits]\nmax_active = 7\n[retention]\nmax_completed = 11\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, out, _) = run_bin(&["--config", f, "check-config"], &[], &dir);
    assert_eq!(code, 0);
    assert!(
        out.contains("max_active = 7\n") && out.contains("max_completed = 11\n"),
        "{out}"
    );
    let (_, out, _) = run_bin(
        &["--config", f, "check-config"],
        &[("MCPO__LIMITS__MAX_ACTIVE", "8")],
        &dir,
    );
    assert!(out.contains("max_active = 8\n"), "{out}");
    // config/default.toml in the working directory is read when present.
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/default.toml"),
        "[limits]\nmax_active = 3\n",
    )
    .unwrap();
    let (_, out, _) = run_bin(&["check-config"], &[], &dir);
    assert!(out.contains("max_active = 3\n"), "{out}");

    // Bad values fail with the key and the reason.
    let bad = [
        (
            vec![("MCPO__LIMITS__MAX_ACTIVE", "lots")],
            "limits.max_active",
        ),
        (vec![("MCPO__LIMITS__MAX_ACTIVE", "0")], "limits.max_active"),
        (
            vec![("MCPO__STORAGE__DURABILITY", "sometimes")],
            "storage.durability",
        ),
        (vec![("MCPO__SHUTDOWN__GRACE", "soon")], "shutdown.grace"),
        (
            vec![("MCPO__EXECUTION__DEFAULT_PROVIDER", "gpt")],
            "execution.default_provider",
        ),
        (vec![("MCPO__SERVER__BIND", "nowhere")], "server.bind"),
    ];
    for (env, key) in bad {
        let (code, _, err) = run_bin(&["check-config"], &env, &dir);
        assert_eq!(code, 2, "{env:?}: {err}");
        assert!(err.contains(key), "{env:?}: {err}");
    }
    std::fs::write(&file, "[limits]\nmax_actve = 7\n").unwrap();
    let (code, _, err) = run_bin(&["--config", f, "check-config"], &[], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("max_actve"), "unknown key named: {err}");
    let (code, _, err) = run_bin(
        &["--config", "/nonexistent.toml", "check-config"],
        &[],
        &dir,
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.toml"), "{err}");
}

#[tokio::test]
async fn shipped_default_config_starts_the_server() {
    let dir = new_dir();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        dir.join("config/default.toml"),
    )
    .unwrap();
    let s = server().dir(&dir).start();
    let h = s.get("/health").await;
    assert_eq!(h.status, 200);
}

#[tokio::test]
async fn health_reports_components_and_writes_are_batched() {
    let s = server().latency_ms(0).start();
    let h = s.get("/health").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body["status"], "healthy");
    assert_eq!(h.body["components"]["registry"]["status"], "healthy");
    assert_eq!(h.body["components"]["store"]["kind"], "sqlite");
    assert!(h.body["components"]["store"]["latency_ms"]
        .as_f64()
        .is_some());
    let ready = s.get("/ready").await;
    assert_eq!(ready.status, 200);

    let ids =
        futures::future::join_all((0..20).map(|i| s.create(research(&format!("batch {i}"), 5))))
            .await;
    for id in &ids {
        s.wait_status(id, "completed", 30 * SEC).await;
    }
    let h = s.get("/health").await.body;
    let store = &h["components"]["store"];
    let (batches, changes) = (
        store["batches_written"].as_u64().unwrap(),
        store["changes_written"].as_u64().unwrap(),
    );
    assert!(changes >= 20 * 20, "every step is persisted: {changes}");
    assert!(
        batches * 2 < changes,
        "changes share transactions: {batches} batches for {changes} changes"
    );
    assert_eq!(h["active_workflows"], 0);
    // The plan's top-level keys, without Redis.
    assert_eq!(h["redis"], "disabled");
    assert_eq!(h["redis_keys"], 0);

    let p = s.get("/v1/patterns").await.body;
    assert_eq!(p["patterns"][0]["name"], "research");
    assert_eq!(p["patterns"][0]["defaults"]["num_agents"], 5);
}

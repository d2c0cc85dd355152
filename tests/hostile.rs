//! Hostile input (oversized and out-of-range values, malformed requests, floods): each test sends the attack and
//! asserts the refusal or the clean failure, then that a normal workflow still
//! completes on the same server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

/// After an attack: the server still admits and finishes ordinary work.
async fn still_works(s: &Server) {
    let id = s.create(research("an ordinary question", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
}

fn assert_refused(r: &Resp, field: &str, mentions: &str) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "validation_error", "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], field, "{:?}", r.body);
    let msg = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains(mentions), "{msg}");
}

/// The old routes' shape: `{"success": false, "error": "..."}` naming the field.
fn assert_refused_old(r: &Resp, field: &str) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["success"], false, "{:?}", r.body);
    let msg = r.body["error"].as_str().unwrap_or("");
    assert!(msg.contains(field), "{msg}");
}

#[tokio::test]
async fn huge_numbers_are_refused_before_admission() {
    let s = server().env("MCPO__LIMITS__MAX_ACTIVE", 5).start();
    // Five of these used to take every slot for good (issue 12).
    for _ in 0..5 {
        let r = s
            .post(
                "/v1/workflows",
                &json!({"pattern": "research", "task": "x", "config": {"final_timeout_secs": 1e20}}),
            )
            .await;
        assert_refused(&r, "config.final_timeout_secs", "at most 600");
    }
    for (field, v) in [
        ("agent_timeout_secs", json!(600.5)),
        ("synthesis_timeout_secs", json!(-1)),
        ("budget_usd", json!(1e300)),
        ("max_tokens_total", json!(1u64 << 60)),
    ] {
        let r = s
            .post(
                "/v1/workflows",
                &json!({"pattern": "search", "task": "x", "config": {field: v}}),
            )
            .await;
        assert_refused(&r, &format!("config.{field}"), "limits.");
    }
    let r = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "research", "task": "x", "config": {"num_agents": 1e20}}),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "config.num_agents");
    for (path, field) in [
        ("/tools/orchestrate_research", "camina_timeout"),
        ("/tools/orchestrate_research", "belter_timeout"),
        ("/tools/orchestrate_research", "drummer_timeout"),
        ("/tools/orchestrate_search", "timeout_seconds"),
    ] {
        let r = s
            .post(path, &json!({"task": "x", "query": "x", field: 1e20}))
            .await;
        assert_refused_old(&r, field);
    }
    // Nothing was admitted: every slot is free.
    let all = s.get("/v1/workflows").await;
    assert_eq!(all.body["items"], json!([]));
    for _ in 0..5 {
        still_works(&s).await;
    }
}

#[tokio::test]
async fn texts_urls_and_models_are_bounded_on_every_route() {
    let s = server()
        .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
        .env("MCPO__WEBHOOKS__ALLOW_HOSTS", "127.0.0.1")
        .env("MCPO__PROVIDERS__ANY__KIND", "simulated")
        .env("MCPO__PROVIDERS__ANY__MODELS", "*")
        .start();
    let long = "x".repeat(100_001);
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": long.clone()}),
        )
        .await;
    assert_refused_old(&r, "task");
    // The context counts: a task under the limit with a context over it.
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "x".repeat(99_990), "context": {"notes": "y".repeat(100)}}),
        )
        .await;
    assert_refused_old(&r, "task");
    let r = s
        .post(
            "/tools/orchestrate_search",
            &json!({"query": "q", "context": {"notes": long.clone()}}),
        )
        .await;
    assert_refused_old(&r, "query");
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "t", "title": "t".repeat(201)}),
        )
        .await;
    assert_refused_old(&r, "title");
    let url = format!("http://127.0.0.1/{}", "u".repeat(2_048));
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "t", "webhook_url": url.clone()}),
        )
        .await;
    assert_refused_old(&r, "webhook_url");
    let r = s
        .post(
            "/webhook/register",
            &json!({"task_id": "wf_x", "webhook_url": url.clone(), "secret": "s3cr3t-s3cr3t"}),
        )
        .await;
    assert_refused_old(&r, "webhook_url");
    let r = s.post("/v1/webhooks", &json!({"url": url.clone()})).await;
    assert_refused(&r, "url", "2048");
    let r = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "research", "task": "t", "webhook": {"url": url}}),
        )
        .await;
    assert_refused(&r, "webhook.url", "2048");
    let r = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "research", "task": long.clone()}),
        )
        .await;
    assert_refused(&r, "task", "100000");

    // Models: only what the provider lists.
    for field in ["agent_model", "primary_model"] {
        let r = s
            .post(
                "/v1/workflows",
                &json!({"pattern": "research", "task": "t", "config": {field: "gpt-unknown"}}),
            )
            .await;
        assert_refused(&r, &format!("config.{field}"), "providers.simulated.models");
        let r = s
            .post(
                "/tools/orchestrate_research",
                &json!({"task": "t", field: "gpt-unknown"}),
            )
            .await;
        assert_refused_old(&r, field);
    }
    let ok = s
        .create(json!({"pattern": "research", "task": "t", "config": {"agent_model": "simulated"}}))
        .await;
    s.wait_status(&ok, "completed", 30 * SEC).await;
    // A provider listing "*" takes any name.
    let any = s
        .create(json!({"pattern": "research", "task": "t",
                       "config": {"provider": "any", "agent_model": "whatever-model-7"}}))
        .await;
    s.wait_status(&any, "completed", 30 * SEC).await;
    still_works(&s).await;
}

#[tokio::test]
async fn old_routes_count_task_and_context_together_as_sent() {
    let s = server().latency_ms(0).start();
    let sixty = "x".repeat(60_000);
    // 60,000 + 60,000 characters: over the limit whatever shape the context has.
    for context in [
        json!("y".repeat(60_000)),
        json!({"notes": "y".repeat(60_000)}),
        json!(["y".repeat(60_000)]),
    ] {
        let r = s
            .post(
                "/tools/orchestrate_research",
                &json!({"task": sixty.clone(), "context": context.clone()}),
            )
            .await;
        assert_refused_old(&r, "task");
        assert!(r.body["error"].as_str().unwrap_or("").contains("context"));
        let r = s
            .post(
                "/tools/orchestrate_search",
                &json!({"query": sixty.clone(), "context": context}),
            )
            .await;
        assert_refused_old(&r, "query");
    }
    // Counted as sent, before trimming: blanks around the task count too.
    let padded = format!("{}{}", " ".repeat(10), "x".repeat(99_995));
    let r = s
        .post("/tools/orchestrate_research", &json!({"task": padded}))
        .await;
    assert_refused_old(&r, "task");
    // Nothing was admitted.
    assert_eq!(s.get("/v1/workflows").await.body["items"], json!([]));
    // Under the limit together: admitted, and a string context travels with the task.
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "x".repeat(50_000), "context": "audience: engineers"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["task_id"].as_str().unwrap_or_default().to_string();
    let wf = s.wait_status(&id, "completed", 30 * SEC).await;
    assert!(wf["task"]
        .as_str()
        .unwrap_or("")
        .ends_with("audience: engineers"));
    still_works(&s).await;
}

/// A small deterministic generator (xorshift): varied input without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'A' + (self.next() % 26) as u8) as char)
            .collect()
    }
}

#[tokio::test]
async fn metric_labels_never_come_from_request_text() {
    let s = server().latency_ms(0).start();
    still_works(&s).await;
    // Every series an ordinary workflow and a scrape create exist before we measure.
    let _ = s.get("/metrics").await;
    let before = s.get("/metrics").await.body.as_str().unwrap().len();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut reqs = Vec::new();
    for i in 0..10_000 {
        let token = noise.word(8);
        let req = match i % 4 {
            0 => s.http.request(
                reqwest::Method::from_bytes(token.as_bytes()).unwrap(),
                s.url(&format!("/v1/workflows/{}", noise.word(6))),
            ),
            1 => s.http.get(s.url(&format!("/{}/{}", token, noise.word(12)))),
            2 => s.http.post(s.url("/v1/workflows")).json(
                &json!({"pattern": "research", "task": "t", "config": {"agent_model": token}}),
            ),
            _ => s
                .http
                .post(s.url("/tools/orchestrate_research"))
                .json(&json!({"task": "t", "agent_model": token, "primary_model": token})),
        };
        reqs.push(req);
    }
    let statuses: Vec<u16> = futures::stream::iter(reqs)
        .map(|r| async move { r.send().await.map(|r| r.status().as_u16()).unwrap_or(0) })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|c| *c >= 400),
        "every request was refused"
    );
    let after = s.get("/metrics").await.body.as_str().unwrap().to_string();
    let grown = after.len().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "/metrics grew by {grown} bytes over 10,000 hostile requests"
    );
    assert!(
        after.contains("method=\"other\""),
        "odd methods count as other"
    );
    assert!(after.contains("route=\"unmatched\""));
    still_works(&s).await;
}

/// Sends raw bytes on a fresh connection and returns what the server answers
/// (until it closes or `read_for` passes).
fn raw_exchange(base: &str, bytes: &[u8], read_for: Duration) -> String {
    let addr = base.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(bytes).expect("write");
    c.set_read_timeout(Some(read_for)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slow_and_huge_clients_are_bounded() {
    // A loaded machine may take seconds to commit the 200 KB tasks: the test is
    // about bounds, not about commit latency.
    let s = server()
        .env("MCPO__SERVER__CLIENT_REQUEST_TIMEOUT", "1s")
        .env("MCPO__STORAGE__ACK_TIMEOUT", "60s")
        .start();
    let base = s.base.clone();
    // The server's own Host: any other is refused (421) before the body is read.
    let host = base.trim_start_matches("http://").to_string();
    let (slow_v1, slow_old, slow_head) = tokio::task::spawn_blocking(move || {
        let wait = Duration::from_secs(20);
        let head = |line: &str| format!("{line}\r\nHost: {host}\r\n");
        (
            // A body that stops after 5 of its 100 bytes.
            raw_exchange(
                &base,
                format!(
                    "{}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pat",
                    head("POST /v1/workflows HTTP/1.1")
                )
                .as_bytes(),
                wait,
            ),
            raw_exchange(
                &base,
                format!(
                    "{}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"q",
                    head("POST /tools/orchestrate_search HTTP/1.1")
                )
                .as_bytes(),
                wait,
            ),
            // A head that never ends.
            raw_exchange(&base, head("GET /health HTTP/1.1").as_bytes(), wait),
        )
    })
    .await
    .unwrap();
    assert!(slow_v1.starts_with("HTTP/1.1 408"), "{slow_v1}");
    assert!(slow_v1.contains("request_timeout"), "{slow_v1}");
    assert!(slow_old.starts_with("HTTP/1.1 408"), "{slow_old}");
    assert!(slow_old.contains("\"success\":false"), "{slow_old}");
    assert!(slow_head.starts_with("HTTP/1.1 408"), "{slow_head}");

    let r = s
        .http
        .get(s.url("/health"))
        .header("X-Padding", "p".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 431);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");

    // At the limits: a 100,000-character task (2 bytes each), in a body of exactly
    // server.max_body_bytes.
    let task = "é".repeat(100_000);
    let mut body = serde_json::to_vec(&json!({"pattern": "research", "task": task})).unwrap();
    body.resize(1024 * 1024, b' ');
    let r = s.post_raw("/v1/workflows", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    s.wait_status(r.body["id"].as_str().unwrap(), "completed", 30 * SEC)
        .await;
    let r = s
        .post(
            "/tools/orchestrate_research",
            &json!({"task": "é".repeat(100_000)}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    still_works(&s).await;
}

#[tokio::test]
async fn a_second_server_on_a_busy_port_fails_with_one_line() {
    let first = server().start();
    let addr = first.base.trim_start_matches("http://").to_string();
    let dir = new_dir();
    let out = std::process::Command::new(BIN)
        .current_dir(&dir)
        .env("MCPO__SERVER__BIND", &addr)
        .env("MCPO__STORAGE__SQLITE_PATH", dir.join("second.db"))
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run the second server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line:\n{err}");
    assert!(
        lines[0].starts_with(&format!(
            "mcp-orchestrator: server.bind '{addr}': cannot listen"
        )),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        !dir.join("second.db").exists(),
        "the second server opened no store"
    );
    still_works(&first).await;
}

//! Logs over the real binary: text by default, JSON with `log.format = "json"`,
//! `RUST_LOG` over `log.level`; a request id per HTTP request (the caller's, or a
//! new one) is returned and carried into the workflow's log lines; no secrets.

use serde_json::Value;

use crate::common::{research, server, SEC};

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn json_logs_carry_the_request_id_into_the_workflow() {
    let secret = "sk-test-never-log-this-0123456789";
    let s = server()
        .env("MCPO__LOG__FORMAT", "json")
        .env("MCPO__PROVIDERS__REMOTE__KIND", "openai")
        .env("MCPO__PROVIDERS__REMOTE__BASE_URL", "http://127.0.0.1:9/v1")
        .env(
            "MCPO__PROVIDERS__REMOTE__API_KEY_ENV",
            "MCPO_TEST_SECRET_KEY",
        )
        .env("MCPO__PROVIDERS__REMOTE__MODEL", "m")
        .env("MCPO_TEST_SECRET_KEY", secret)
        .start();
    let rid = format!("req-{}", uuid::Uuid::new_v4().simple());
    let r = s
        .http
        .post(s.url("/v1/workflows"))
        .header("X-Request-Id", &rid)
        .json(&research("logged run", 3))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["x-request-id"].to_str().unwrap(), rid);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_status(&id, "completed", 30 * SEC).await;
    // The registry logs "workflow finished" right after the terminal change; the
    // log file may lag the API by a moment.
    let t = std::time::Instant::now();
    let lines = loop {
        let lines = json_lines(&s.log());
        if lines
            .iter()
            .any(|l| l["fields"]["message"] == "workflow finished")
        {
            break lines;
        }
        assert!(t.elapsed() < 10 * SEC, "no 'workflow finished' line");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    let created = lines
        .iter()
        .find(|l| l["fields"]["message"] == "workflow created")
        .expect("a 'workflow created' line");
    assert_eq!(created["span"]["request_id"], rid.as_str(), "{created}");
    assert_eq!(created["fields"]["workflow_id"], id.as_str());
    // The workflow's own lines, written later by the executor, carry it too.
    let run: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["workflow_id"] == id.as_str())
        .collect();
    let messages: Vec<&str> = run
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(messages.contains(&"workflow run started"), "{messages:?}");
    assert!(messages.contains(&"workflow run finished"), "{messages:?}");
    for l in &run {
        assert_eq!(l["span"]["request_id"], rid.as_str(), "{l}");
    }
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "workflow finished")
        .unwrap();
    assert_eq!(finished["fields"]["request_id"], rid.as_str());
    assert!(!s.log().contains(secret), "a secret reached the log");
}

#[tokio::test]
async fn request_ids_are_generated_text_is_the_default_and_rust_log_wins() {
    let s = server().start();
    let r = s
        .http
        .post(s.url("/v1/workflows"))
        .header("X-Request-Id", "bad id with spaces")
        .json(&research("text logs", 3))
        .send()
        .await
        .expect("POST");
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid.len(), 32, "{rid}");
    assert!(rid.bytes().all(|b| b.is_ascii_hexdigit()));
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_status(&id, "completed", 30 * SEC).await;
    let r = s.get("/health").await;
    assert_eq!(r.headers["x-request-id"].len(), 32);
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("workflow run started"))
        .expect("run line");
    assert!(
        serde_json::from_str::<Value>(line).is_err(),
        "text expected: {line}"
    );
    assert!(line.contains(&format!("request_id={rid}")), "{line}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file");

    // RUST_LOG over log.level: at warn, no INFO line.
    let quiet = server().env("RUST_LOG", "warn").start();
    let id = quiet.create(research("quiet", 3)).await;
    quiet.wait_status(&id, "completed", 30 * SEC).await;
    assert!(!quiet.log().contains(" INFO "), "{}", quiet.log());
}

//! Run supervision: every run ends its workflow. Faults are
//! injected through the provider kind `fault`, which exists only for tests and is
//! refused unless the server runs with `MCPO_TEST_FAULTS=1`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::receiver::Receiver;
use crate::common::*;

/// A server with a `broken` provider that answers `after_calls` calls, then
/// injects `fault`; the simulator stays the default provider.
fn faulty(fault: &str, after_calls: u32) -> Builder {
    server()
        .env("MCPO_TEST_FAULTS", "1")
        .env("MCPO__PROVIDERS__BROKEN__KIND", "fault")
        .env("MCPO__PROVIDERS__BROKEN__FAULT", fault)
        .env("MCPO__PROVIDERS__BROKEN__AFTER_CALLS", after_calls)
        .env("MCPO__WEBHOOKS__ALLOW_HOSTS", "127.0.0.1,localhost")
        .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
}

fn broken(task: &str, webhook: Option<&str>) -> Value {
    let mut body = json!({"pattern": "research", "task": task,
        "config": {"num_agents": 3, "max_concurrent_agents": 1, "provider": "broken"}});
    if let Some(url) = webhook {
        body["webhook"] =
            json!({"url": url, "secret": "s3cret-hook", "events": ["workflow_failed"]});
    }
    body
}

#[tokio::test]
async fn a_run_that_panics_fails_its_workflow_and_frees_its_slot() {
    let recv = Receiver::start();
    // Decomposition and the first agent answer; the second agent's call panics.
    let s = faulty("panic", 2)
        .latency_ms(0)
        .env("MCPO__LIMITS__MAX_ACTIVE", 1)
        .start();
    let id = s.create(broken("panics", Some(&recv.url))).await;
    let wf = s.wait_status(&id, "failed", 20 * SEC).await;
    assert_eq!(wf["error"]["code"], "internal_error");
    let message = wf["error"]["message"].as_str().unwrap();
    assert!(message.contains("panicked"), "{message}");
    // Partial results are kept.
    let r = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    assert_eq!(r["subtasks"].as_array().unwrap().len(), 3);
    assert_eq!(r["agent_results"].as_array().unwrap().len(), 1);
    // workflow_failed is emitted and delivered.
    let events = s.sse(&id, None, 10 * SEC).await;
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("workflow_failed"));
    assert_eq!(last.data["data"]["error"]["code"], "internal_error");
    let got = recv.wait_for(1, 10 * SEC).await;
    assert_eq!(got[0].json()["data"]["error"]["code"], "internal_error");
    // Its slot is free at once (max_active = 1): a normal workflow runs.
    let next = s.create(research("after the panic", 3)).await;
    s.wait_status(&next, "completed", 20 * SEC).await;
}

#[tokio::test]
async fn a_run_whose_executor_thread_stops_fails_and_the_next_workflow_runs() {
    // One executor thread; the first agent call stops it.
    let s = faulty("stop_executor", 1)
        .latency_ms(0)
        .env("MCPO__EXECUTION__THREADS", 1)
        .env("MCPO__LIMITS__MAX_ACTIVE", 1)
        .start();
    let id = s.create(broken("loses its thread", None)).await;
    let wf = s.wait_status(&id, "failed", 20 * SEC).await;
    assert_eq!(wf["error"]["code"], "internal_error");
    assert!(wf["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ended without finishing"));
    assert_eq!(
        s.get(&format!("/v1/workflows/{id}/result")).await.body["subtasks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The next workflow is created pending onto the executor that is gone (or
    // going): it gets a new thread and runs, or fails with internal_error if the
    // dying thread took it along; it never stays pending.
    let next = s.create(research("after the thread died", 3)).await;
    let wf = wait_terminal(&s, &next).await;
    if wf["status"] == "failed" {
        assert_eq!(wf["error"]["code"], "internal_error", "{wf}");
    }
    // From then on the new thread runs workflows to the end.
    let last = s.create(research("on the new thread", 3)).await;
    s.wait_status(&last, "completed", 20 * SEC).await;
}

async fn wait_terminal(s: &Server, id: &str) -> Value {
    let t = std::time::Instant::now();
    loop {
        let wf = s.workflow(id).await;
        if ["completed", "failed", "cancelled"].contains(&wf["status"].as_str().unwrap_or("")) {
            return wf;
        }
        assert!(t.elapsed() < 20 * SEC, "still {} after 20 s", wf["status"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_fault_provider_is_refused_without_the_test_switch() {
    let dir = new_dir();
    let out = std::process::Command::new(BIN)
        .current_dir(&dir)
        .arg("check-config")
        .env("MCPO__PROVIDERS__BROKEN__KIND", "fault")
        .env("MCPO__PROVIDERS__BROKEN__FAULT", "panic")
        .env_remove("MCPO_TEST_FAULTS")
        .output()
        .expect("run check-config");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("providers.broken.kind"), "{err}");
    assert!(err.contains("MCPO_TEST_FAULTS"), "{err}");
}

#[tokio::test]
async fn a_run_past_the_deadline_fails_and_its_calls_stop() {
    let s = server()
        .latency_ms(200)
        .env("MCPO__LIMITS__MAX_WORKFLOW_DURATION", "1s")
        .start();
    let id = s
        .create(json!({"pattern": "research", "task": "too slow",
                       "config": {"num_agents": 20, "max_concurrent_agents": 1}}))
        .await;
    let wf = s.wait_status(&id, "failed", 20 * SEC).await;
    assert_eq!(wf["error"]["code"], "deadline_exceeded");
    assert!(wf["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limits.max_workflow_duration"));
    let done = wf["progress"]["completed_agents"].as_u64().unwrap();
    assert!(done < 20, "stopped early: {done}");
    // Its calls were aborted: nothing more is recorded.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    assert_eq!(r["agent_results"].as_array().unwrap().len() as u64, done);
    assert_eq!(
        s.workflow(&id).await["progress"]["completed_agents"],
        json!(done)
    );
}

#[tokio::test]
async fn resume_limit_holds_across_restarts_of_the_binary() {
    let dir = new_dir();
    let start = || {
        server()
            .dir(&dir)
            .latency_ms(100)
            .env("MCPO__EXECUTION__MAX_RESUMES", 1)
    };
    let body = json!({"pattern": "research", "task": "keeps dying",
                      "config": {"num_agents": 20, "max_concurrent_agents": 1}});
    let mut s = start().start();
    let id = s.create(body).await;
    wait_agents(&s, &id, 1).await;
    // The first run dies: not a failed resume.
    s.kill9();
    drop(s);
    let mut s = start().start();
    let wf = s.wait_status(&id, "running", 20 * SEC).await;
    assert_eq!(wf["resumes"], 1);
    let before = wf["progress"]["completed_agents"].as_u64().unwrap();
    wait_agents(&s, &id, before + 1).await;
    // The resumed run dies too: that is max_resumes (1) failed resumes.
    s.kill9();
    drop(s);
    let s = start().start();
    let wf = s.wait_status(&id, "failed", 20 * SEC).await;
    assert_eq!(wf["error"]["code"], "resume_limit_reached");
    assert_eq!(wf["failed_resumes"], 1, "counted in the stored record");
    assert_eq!(wf["resumes"], 1, "not resumed again");
    drop(s);
    // And it stays failed on the next start.
    let s = start().start();
    let again = s.workflow(&id).await;
    assert_eq!(again["status"], "failed");
    assert_eq!(again["resumes"], 1);
}

async fn wait_agents(s: &Server, id: &str, n: u64) {
    let t = std::time::Instant::now();
    while s.workflow(id).await["progress"]["completed_agents"]
        .as_u64()
        .unwrap_or(0)
        < n
    {
        assert!(t.elapsed() < 20 * SEC, "agents did not progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

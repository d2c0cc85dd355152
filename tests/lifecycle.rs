//! Shutdown, restart and crash without loss.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

fn long_research(task: &str) -> Value {
    json!({"pattern": "research", "task": task,
           "config": {"num_agents": 12, "max_concurrent_agents": 1}})
}

#[tokio::test]
async fn sigterm_drains_flushes_and_restart_resumes_without_loss() {
    let dir = new_dir();
    let mut s = server()
        .dir(&dir)
        .latency_ms(150)
        .env("MCPO__SHUTDOWN__GRACE", "2s")
        .env("MCPO__RETENTION__MAX_COMPLETED", 2)
        .start();
    // Three finished (one of them evicted), two long-running.
    let mut finished = Vec::new();
    for i in 0..3 {
        let id = s
            .create(json!({"pattern": "search", "task": format!("quick {i}"), "config": {"agent_types": ["text"]}}))
            .await;
        s.wait_status(&id, "completed", 20 * SEC).await;
        finished.push(id);
    }
    let long: Vec<String> = vec![
        s.create(long_research("long a")).await,
        s.create(long_research("long b")).await,
    ];
    for id in &long {
        s.wait_status(id, "running", 10 * SEC).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut before: HashMap<String, Value> = HashMap::new();
    for id in &finished {
        before.insert(id.clone(), s.workflow(id).await);
    }

    s.signal(libc::SIGTERM);
    // While draining, creates are refused with 503 shutting_down.
    let mut saw_503 = false;
    for _ in 0..50 {
        let r = s.post("/v1/workflows", &research("late", 3)).await;
        if r.status == 503 {
            assert_eq!(r.body["error"]["code"], "shutting_down");
            saw_503 = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_503, "no 503 while draining");
    let (status, took) = s.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_millis(2600),
        "exit took {took:?}, grace is 2s"
    );
    let log = s.log();
    assert!(!log.contains("panicked"), "{log}");
    drop(s);

    let s = server()
        .dir(&dir)
        .latency_ms(5)
        .env("MCPO__RETENTION__MAX_COMPLETED", 2)
        .start();
    for id in &finished {
        assert_eq!(
            &s.workflow(id).await,
            &before[id],
            "identical after restart"
        );
    }
    for id in &long {
        let wf = s.wait_status(id, "completed", 30 * SEC).await;
        assert_eq!(wf["resumes"], 1);
        let events = s.sse(id, None, 10 * SEC).await;
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
        let i = kinds
            .iter()
            .position(|k| *k == "workflow_interrupted")
            .expect("interrupted event");
        assert_eq!(kinds[i + 1], "workflow_resumed");
        for (n, e) in events.iter().enumerate() {
            assert_eq!(
                e.id,
                Some(n as u64 + 1),
                "one gap-free log across the restart"
            );
        }
        // Agents finished before the shutdown are not run again.
        let mut completed: Vec<&str> = events
            .iter()
            .filter(|e| e.event.as_deref() == Some("agent_completed"))
            .map(|e| e.data["data"]["agent_id"].as_str().unwrap())
            .collect();
        let before_interrupt = events[..i]
            .iter()
            .filter(|e| e.event.as_deref() == Some("agent_completed"))
            .count();
        assert!(before_interrupt >= 1, "some agents ran before the shutdown");
        completed.sort();
        completed.dedup();
        assert_eq!(completed.len(), 12, "every agent completed exactly once");
        let r = s.get(&format!("/v1/workflows/{id}/result")).await.body;
        assert_eq!(r["agent_results"].as_array().unwrap().len(), 12);
    }
}

#[tokio::test]
async fn created_workflow_survives_sigkill_right_after_201() {
    let dir = new_dir();
    let mut s = server().dir(&dir).latency_ms(100).start();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.create(research(&format!("durable {i}"), 3)).await);
    }
    s.kill9();
    drop(s);
    let s = server().dir(&dir).latency_ms(0).start();
    for id in &ids {
        let wf = s.workflow(id).await;
        assert_eq!(wf["id"], id.as_str());
        s.wait_status(id, "completed", 20 * SEC).await;
    }
}

#[tokio::test]
async fn sigkill_mid_run_marks_interrupted_and_resumes() {
    let dir = new_dir();
    let mut s = server().dir(&dir).latency_ms(100).start();
    let id = s.create(long_research("crash")).await;
    let t = std::time::Instant::now();
    while s.workflow(&id).await["progress"]["completed_agents"]
        .as_u64()
        .unwrap()
        < 2
    {
        assert!(t.elapsed() < 20 * SEC);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill9();
    drop(s);
    let s = server().dir(&dir).latency_ms(5).start();
    let wf = s.wait_status(&id, "completed", 30 * SEC).await;
    assert_eq!(wf["resumes"], 1);
    let kinds: Vec<String> = s
        .sse(&id, None, 10 * SEC)
        .await
        .into_iter()
        .map(|e| e.event.unwrap())
        .collect();
    assert!(kinds.iter().any(|k| k == "workflow_interrupted"));
    assert!(kinds.iter().any(|k| k == "workflow_resumed"));
}

#[tokio::test]
async fn event_log_replays_after_restart() {
    let dir = new_dir();
    let s = server().dir(&dir).latency_ms(0).start();
    let id = s.create(research("replay", 3)).await;
    s.wait_status(&id, "completed", 20 * SEC).await;
    let all = s.sse(&id, None, 10 * SEC).await;
    drop(s);
    let s = server().dir(&dir).latency_ms(0).start();
    let replay = s.sse(&id, Some(4), 10 * SEC).await;
    assert_eq!(replay.len(), all.len() - 4);
    for (a, b) in replay.iter().zip(&all[4..]) {
        assert_eq!((a.id, &a.event, &a.data), (b.id, &b.event, &b.data));
    }
}

/// One event, one timestamp: an event reaches a stream only once the store has
/// committed it, so what a client saw live survives even a SIGKILL right after
/// and a replay returns it byte for byte. Slow commits make the window wide: a
/// stream served before the commit would show events the restart re-makes.
#[tokio::test]
async fn what_a_client_saw_live_survives_sigkill_byte_for_byte() {
    let dir = new_dir();
    let mut s = server()
        .dir(&dir)
        .latency_ms(0)
        .env("MCPO__STORAGE__COMMIT_INTERVAL", "300ms")
        .start();
    let id = s.create(research("seen live", 3)).await;
    let live = s.sse(&id, None, 20 * SEC).await;
    assert_eq!(
        live.last().unwrap().event.as_deref(),
        Some("workflow_completed")
    );
    s.kill9();
    drop(s);
    let s = server().dir(&dir).latency_ms(0).start();
    assert_eq!(s.workflow(&id).await["status"], "completed", "not re-run");
    let replay = s.sse(&id, None, 10 * SEC).await;
    assert_eq!(replay.len(), live.len());
    for (a, b) in replay.iter().zip(&live) {
        assert_eq!((a.id, &a.event, &a.raw), (b.id, &b.event, &b.raw));
    }
}

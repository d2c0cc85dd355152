//! Cancelling workflows: pending or running ones end cancelled with partial
//! results kept; finished ones answer `already_finished`.

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn cancel_stops_agents_and_keeps_partial_results() {
    let s = server().latency_ms(150).start();
    let id = s
        .create(json!({"pattern": "research", "task": "long one",
                       "config": {"num_agents": 8, "max_concurrent_agents": 2}}))
        .await;
    // Wait for the first agent to finish.
    let t = std::time::Instant::now();
    loop {
        let wf = s.workflow(&id).await;
        if wf["progress"]["completed_agents"].as_u64().unwrap() >= 1 {
            break;
        }
        assert!(t.elapsed() < 20 * SEC, "no agent finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = s
        .post(&format!("/v1/workflows/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert!(r.body["completed_at"].is_string());

    let res = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(res.status, 200);
    let done = res.body["agent_results"].as_array().unwrap().len();
    assert!((1..8).contains(&done), "partial results kept: {done}");
    assert_eq!(res.body["status"], "cancelled");

    // In-flight agents stopped: nothing is recorded after the cancel.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events = s.sse(&id, None, 10 * SEC).await;
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("workflow_cancelled"));
    let agents_completed = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("agent_completed"))
        .count();
    assert_eq!(agents_completed, done);
    let after = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(after.body["agent_results"].as_array().unwrap().len(), done);
    assert_eq!(s.workflow(&id).await["status"], "cancelled");

    let again = s
        .post(&format!("/v1/workflows/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "already_finished");
}

#[tokio::test]
async fn cancel_of_completed_is_409_and_of_unknown_is_404() {
    let s = server()
        .latency_ms(0)
        .env("MCPO__RETENTION__MAX_COMPLETED", 1)
        .start();
    let a = s.create(research("a", 3)).await;
    s.wait_status(&a, "completed", 20 * SEC).await;
    let b = s.create(research("b", 3)).await;
    s.wait_status(&b, "completed", 20 * SEC).await;
    // `a` is evicted by now or soon: the answer must not depend on it.
    for id in [&a, &b] {
        let r = s
            .post(&format!("/v1/workflows/{id}/cancel"), &json!({}))
            .await;
        assert_eq!(r.status, 409, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "already_finished");
        assert_eq!(s.workflow(id).await["status"], "completed");
    }
    let r = s.post("/v1/workflows/wf_unknown/cancel", &json!({})).await;
    assert_eq!(r.status, 404);
}

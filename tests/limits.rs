//! The bounded active set and FIFO eviction by completion time .

use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn exactly_max_active_of_200_concurrent_creates_are_admitted() {
    let s = server()
        .latency_ms(300)
        .env("MCPO__LIMITS__MAX_ACTIVE", 10)
        .start();
    let body = research("crowd", 3);
    let reqs = (0..200).map(|_| s.post("/v1/workflows", &body));
    let answers = futures::future::join_all(reqs).await;
    let admitted: Vec<&Resp> = answers.iter().filter(|r| r.status == 201).collect();
    let refused: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(admitted.len(), 10);
    assert_eq!(refused.len(), 190);
    for r in &refused {
        assert_eq!(r.body["error"]["code"], "active_limit_reached");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1);
    }
    // Refused creates stored nothing.
    let all = s.get("/v1/workflows?limit=500").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 10);

    // Once one finishes, creating succeeds again.
    let first = admitted[0].body["id"].as_str().unwrap();
    s.wait_status(first, "completed", 30 * SEC).await;
    let again = s.post("/v1/workflows", &body).await;
    assert_eq!(again.status, 201, "{:?}", again.body);
}

#[tokio::test]
async fn eviction_retires_earliest_completed_not_shortest() {
    let dir = new_dir();
    let s = server()
        .dir(&dir)
        .latency_ms(100)
        .env("MCPO__RETENTION__MAX_COMPLETED", 3)
        .start();
    // Each later workflow is no longer but completes later (one at a time). The
    // policies differ once the first is longer than every one of the last three:
    // its 20 calls one after another take at least 2 s whatever the load (a
    // floor, not a guess), while the last three make 3 calls each; load would
    // have to stretch all three past 2 s to make the setup check below fail.
    let mut ids = Vec::new();
    let mut durations = Vec::new();
    for n in [20u32, 12, 6, 3, 3, 3] {
        let id = s
            .create(json!({"pattern": "research", "task": format!("n={n}"),
                           "config": {"num_agents": n, "max_concurrent_agents": 1, "enable_synthesis": false}}))
            .await;
        let wf = s.wait_status(&id, "completed", 30 * SEC).await;
        durations.push(wf["execution_time"].as_f64().unwrap());
        ids.push(id);
    }
    // The test tells the policies apart when keeping the 3 longest-running would
    // keep others than the 3 latest-completed (which are the last 3 created).
    let mut by_duration: Vec<usize> = (0..durations.len()).collect();
    by_duration.sort_by(|a, b| durations[*b].total_cmp(&durations[*a]));
    let mut longest = by_duration[..3].to_vec();
    longest.sort();
    assert_ne!(
        longest,
        [3, 4, 5],
        "setup: the latest runs must not be the longest: {durations:?}"
    );
    // Let the evictor act, then see where each workflow is served from.
    let mut from = Vec::new();
    let t = std::time::Instant::now();
    while t.elapsed() < 60 * SEC {
        from.clear();
        for id in &ids {
            let r = s.get(&format!("/v1/workflows/{id}")).await;
            assert_eq!(r.status, 200, "an evicted workflow is still readable");
            from.push(r.headers["x-served-from"].to_str().unwrap().to_string());
        }
        if from.iter().filter(|f| *f == "memory").count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        from,
        ["store", "store", "store", "memory", "memory", "memory"]
    );
    let h = s.get("/health").await.body;
    assert_eq!(h["components"]["registry"]["retained"], 3);

    // Evicted records read back identical to what memory served.
    let mut before = Vec::new();
    for id in &ids {
        before.push(s.workflow(id).await);
    }
    drop(s);
    let s = server()
        .dir(&dir)
        .env("MCPO__RETENTION__MAX_COMPLETED", 3)
        .start();
    for (i, id) in ids.iter().enumerate() {
        let r = s.get(&format!("/v1/workflows/{id}")).await;
        assert_eq!(r.body, before[i]);
        let want = if i < 3 { "store" } else { "memory" };
        assert_eq!(
            r.headers["x-served-from"], want,
            "restart restores the newest-completed"
        );
    }
}

#[tokio::test]
async fn retention_max_age_evicts_old_completions() {
    let s = server()
        .latency_ms(0)
        .env("MCPO__RETENTION__MAX_AGE", "300ms")
        .start();
    let id = s.create(research("aging", 3)).await;
    s.wait_status(&id, "completed", 20 * SEC).await;
    let mut served = String::new();
    for _ in 0..100 {
        let r = s.get(&format!("/v1/workflows/{id}")).await;
        served = r.headers["x-served-from"].to_str().unwrap().to_string();
        if served == "store" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, "store");
}

//! Submitting and following workflows, listing, and bad input.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

fn ts(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().expect("timestamp").parse().expect("RFC 3339")
}

#[tokio::test]
async fn research_workflow_goes_pending_running_completed_with_a_report() {
    let s = server().latency_ms(40).start();
    let r = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "research", "task": "Why is the sky blue?",
                    "config": {"num_agents": 4, "synthesis_group_size": 2, "max_concurrent_agents": 2}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("wf_"));
    assert_eq!(r.body["status"], "pending");
    assert_eq!(
        r.body["links"]["events"],
        format!("/v1/workflows/{id}/events")
    );
    assert_eq!(
        r.headers["location"],
        format!("/v1/workflows/{id}").as_str()
    );

    let early = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(early.status, 409);
    assert_eq!(early.body["error"]["code"], "not_finished");

    let running = s.wait_status(&id, "running", 5 * SEC).await;
    assert!(running["started_at"].is_string());
    assert!(running["completed_at"].is_null());
    assert_eq!(running["progress"]["total_agents"], 4);

    let done = s.wait_status(&id, "completed", 20 * SEC).await;
    let (c, st, co) = (
        ts(&done["created_at"]),
        ts(&done["started_at"]),
        ts(&done["completed_at"]),
    );
    assert!(c <= st && st <= co, "timestamps out of order: {done}");
    assert_eq!(done["progress"]["percent"], 100.0);
    assert_eq!(done["progress"]["completed_agents"], 4);
    assert_eq!(done["simulated"], true);
    assert!(done["tokens"]["total"].as_u64().unwrap() > 0);

    let res = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(res.status, 200);
    let r = &res.body;
    assert_eq!(r["status"], "completed");
    assert_eq!(r["simulated"], true);
    assert_eq!(r["subtasks"].as_array().unwrap().len(), 4);
    let agents = r["agent_results"].as_array().unwrap();
    assert_eq!(agents.len(), 4);
    assert!(agents
        .iter()
        .all(|a| a["status"] == "completed" && !a["content"].as_str().unwrap().is_empty()));
    let synth = r["synthesis_results"].as_array().unwrap();
    let groups = synth.iter().filter(|x| x["level"] == "group").count();
    let finals = synth.iter().filter(|x| x["level"] == "final").count();
    assert_eq!(
        (groups, finals),
        (2, 1),
        "4 agents in groups of 2, then one final"
    );
    assert!(r["final_synthesis"].is_string());
    let report = &r["documents"][0];
    assert_eq!(report["format"], "markdown");
    let md = report["content"].as_str().unwrap();
    assert!(md.starts_with("# Why is the sky blue?"));
    assert!(md.contains("Simulated run"));
    assert!(md.contains("## Agent findings"));
}

#[tokio::test]
async fn search_workflow_runs_one_agent_per_type() {
    let s = server().latency_ms(5).start();
    let id = s
        .create(json!({"pattern": "swarm", "task": "rust actors",
                       "config": {"agent_types": ["news", "academic", "technical"]}}))
        .await;
    let wf = s.wait_status(&id, "completed", 20 * SEC).await;
    assert_eq!(wf["pattern"], "search");
    let r = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    let types: Vec<&str> = r["agent_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["news", "academic", "technical"]);
    assert_eq!(r["synthesis_results"].as_array().unwrap().len(), 1);
    assert!(r["documents"][0]["content"]
        .as_str()
        .unwrap()
        .contains("## Summary"));
}

#[tokio::test]
async fn sse_streams_every_event_and_replays_after_last_event_id() {
    let s = server().latency_ms(30).start();
    let id = s.create(research("events please", 3)).await;
    // Connected while the workflow runs: backlog + live events, closed at the end.
    let live = s.sse(&id, None, 30 * SEC).await;
    let n = live.len();
    // started, decomposed, 3 × agent started/completed, 1 group + 1 final synthesis
    // (started/completed each), documents, completed.
    assert_eq!(n, 1 + 1 + 3 + 3 + 2 + 2 + 1 + 1, "{live:?}");
    for (i, e) in live.iter().enumerate() {
        assert_eq!(e.id, Some(i as u64 + 1), "ids are the per-workflow seq");
        assert_eq!(
            e.event.as_deref(),
            e.data["type"].as_str(),
            "event: is the type"
        );
        assert_eq!(e.data["seq"], i as u64 + 1);
        assert_eq!(e.data["workflow_id"], id.as_str());
    }
    let kinds: Vec<&str> = live.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(kinds[0], "workflow_started");
    assert_eq!(kinds[1], "task_decomposed");
    assert_eq!(kinds.iter().filter(|k| **k == "agent_completed").count(), 3);
    assert_eq!(*kinds.last().unwrap(), "workflow_completed");
    assert!(kinds.contains(&"documents_generated"));

    // Replay from the stored log: exactly the events after n.
    for k in [0, 1, n as u64 / 2, n as u64 - 1, n as u64] {
        let replay = s.sse(&id, Some(k), 10 * SEC).await;
        let want: Vec<Option<u64>> = live.iter().skip(k as usize).map(|e| e.id).collect();
        let got: Vec<Option<u64>> = replay.iter().map(|e| e.id).collect();
        assert_eq!(got, want, "replay after {k}");
        for (a, b) in replay.iter().zip(live.iter().skip(k as usize)) {
            assert_eq!(a.data, b.data);
        }
    }
    let bad = s
        .http
        .get(s.url(&format!("/v1/workflows/{id}/events")))
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let missing = s.get("/v1/workflows/wf_nope/events").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn sse_reconnect_mid_run_resumes_without_gaps() {
    let s = server().latency_ms(60).start();
    let id = s
        .create(json!({"pattern": "research", "task": "slow", "config": {"num_agents": 6, "max_concurrent_agents": 1}}))
        .await;
    // Read a few events, drop the connection, reconnect after the last one seen.
    let resp = s
        .http
        .get(s.url(&format!("/v1/workflows/{id}/events")))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    use futures::StreamExt;
    while parse_sse(&buf).len() < 3 {
        let chunk = tokio::time::timeout(10 * SEC, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    drop(stream);
    let first = parse_sse(&buf);
    let last = first.last().unwrap().id.unwrap();
    let rest = s.sse(&id, Some(last), 30 * SEC).await;
    assert_eq!(rest[0].id, Some(last + 1));
    for w in rest.windows(2) {
        assert_eq!(w[1].id.unwrap(), w[0].id.unwrap() + 1);
    }
    assert_eq!(
        rest.last().unwrap().event.as_deref(),
        Some("workflow_completed")
    );
}

#[tokio::test]
async fn list_filters_and_paginates_newest_first() {
    let s = server().latency_ms(0).start();
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = if i % 2 == 0 {
            research(&format!("r{i}"), 3)
        } else {
            json!({"pattern": "search", "task": format!("s{i}")})
        };
        ids.push(s.create(body).await);
    }
    for id in &ids {
        s.wait_status(id, "completed", 20 * SEC).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/workflows?limit=2&cursor={c}"),
            None => "/v1/workflows?limit=2".into(),
        };
        let page = s.get(&path).await;
        assert_eq!(page.status, 200);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|w| w["id"].as_str().unwrap().to_string()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let searches = s.get("/v1/workflows?pattern=search").await.body;
    let got: Vec<&str> = searches["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[3].as_str(), ids[1].as_str()]);
    assert_eq!(
        s.get("/v1/workflows?status=completed").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        s.get("/v1/workflows?status=running").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let bad = s.get("/v1/workflows?status=done").await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (400, Some("status"))
    );
    let bad = s.get("/v1/workflows?limit=0").await;
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (400, Some("limit"))
    );
}

async fn expect_error(r: Resp, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{:?}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(r.body["error"]["field"].as_str(), field, "{:?}", r.body);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let s = server().env("MCPO__SERVER__MAX_BODY_BYTES", 4096).start();
    expect_error(
        s.post_raw("/v1/workflows", b"{\"pattern\": ".to_vec())
            .await,
        400,
        "invalid_json",
        None,
    )
    .await;
    expect_error(
        s.post_raw("/v1/workflows", b"".to_vec()).await,
        400,
        "invalid_json",
        None,
    )
    .await;
    let cases = [
        (json!({"pattern": "poem", "task": "x"}), "pattern"),
        (json!({"task": "x"}), "pattern"),
        (json!({"pattern": "research"}), "task"),
        (json!({"pattern": "research", "task": ""}), "task"),
        (json!({"pattern": "research", "task": "   "}), "task"),
        (json!({"pattern": "research", "task": 7}), "task"),
        (
            json!({"pattern": "research", "task": "x", "config": {"num_agents": 2}}),
            "config.num_agents",
        ),
        (
            json!({"pattern": "research", "task": "x", "config": {"num_agents": 21}}),
            "config.num_agents",
        ),
        (
            json!({"pattern": "research", "task": "x", "config": {"agents": 5}}),
            "config.agents",
        ),
        (
            json!({"pattern": "search", "task": "x", "config": {"agent_types": ["text", "poetry"]}}),
            "config.agent_types[1]",
        ),
        (
            json!({"pattern": "research", "task": "x", "priority": 1}),
            "priority",
        ),
        (
            json!({"pattern": "research", "task": "x", "config": {"provider": "nope"}}),
            "config.provider",
        ),
    ];
    for (body, field) in cases {
        expect_error(
            s.post("/v1/workflows", &body).await,
            400,
            "validation_error",
            Some(field),
        )
        .await;
    }
    let big = json!({"pattern": "research", "task": "x".repeat(5000)});
    expect_error(
        s.post("/v1/workflows", &big).await,
        413,
        "payload_too_large",
        None,
    )
    .await;
    expect_error(
        s.get("/v1/workflows/wf_doesnotexist").await,
        404,
        "workflow_not_found",
        None,
    )
    .await;
    expect_error(
        s.get("/v1/workflows/wf_doesnotexist/result").await,
        404,
        "workflow_not_found",
        None,
    )
    .await;
    expect_error(
        s.post("/v1/workflows/wf_doesnotexist/cancel", &json!({}))
            .await,
        404,
        "workflow_not_found",
        None,
    )
    .await;
    let wrong = s.request(reqwest::Method::DELETE, "/v1/workflows").await;
    assert_eq!(wrong.headers["allow"], "GET, POST");
    expect_error(wrong, 405, "method_not_allowed", None).await;
    expect_error(
        s.request(reqwest::Method::PUT, "/v1/workflows/wf_x/cancel")
            .await,
        405,
        "method_not_allowed",
        None,
    )
    .await;
    expect_error(s.get("/v2/nothing").await, 404, "not_found", None).await;

    // Nothing was stored for any rejected request, and the server is fine.
    let list = s.get("/v1/workflows").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
    let h = s.get("/health").await;
    assert_eq!(h.body["status"], "healthy");
    assert_eq!(h.body["components"]["store"]["changes_written"], 0);
    s.create(research("still works", 3)).await;
    let _ = Duration::ZERO;
}

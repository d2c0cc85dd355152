//! The old server's API keeps working: a test per route.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

async fn tool(s: &Server, name: &str, body: Value) -> Resp {
    s.post(&format!("/tools/{name}"), &body).await
}

fn old_error(r: &Resp, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["success"], false);
    let e = r.body["error"].as_str().unwrap();
    assert!(e.contains(needle), "{e}");
}

async fn wait_old_status(s: &Server, id: &str, status: &str) -> Value {
    let t = std::time::Instant::now();
    loop {
        let r = tool(s, "get_orchestration_status", json!({"task_id": id})).await;
        assert_eq!(r.status, 200);
        if r.body["status"] == status {
            return r.body;
        }
        assert!(
            t.elapsed() < 30 * SEC,
            "never reached {status}: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn orchestrate_research_starts_a_workflow() {
    let s = server().latency_ms(5).start();
    let r = tool(
        &s,
        "orchestrate_research",
        json!({
            "task": "Research transformer architectures", "title": "Transformers", "num_agents": 4,
            "enable_synthesis": true, "synthesis_group_size": 2, "generate_documents": true,
            "document_formats": ["markdown"], "belter_timeout": 180, "drummer_timeout": 240,
            "camina_timeout": 300, "parallel_execution": true, "max_concurrent_agents": 3,
            "context": {"audience": "engineers"}, "webhook_url": null
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["success"], true);
    let id = r.body["task_id"].as_str().unwrap();
    assert_eq!(r.body["stream_url"], format!("/stream/{id}"));
    assert!(r.body["message"].as_str().unwrap().contains("4 agents"));
    let wf = s.wait_status(id, "completed", 30 * SEC).await;
    assert_eq!(wf["pattern"], "research");
    assert_eq!(wf["title"], "Transformers");
    assert_eq!(wf["config"]["synthesis_group_size"], 2);
    assert_eq!(wf["config"]["agent_timeout_secs"], 180.0);
    assert!(
        wf["task"].as_str().unwrap().contains("engineers"),
        "context travels with the task"
    );

    old_error(
        &tool(&s, "orchestrate_research", json!({"num_agents": 5})).await,
        400,
        "task",
    );
    old_error(
        &tool(
            &s,
            "orchestrate_research",
            json!({"task": "x", "num_agents": 2}),
        )
        .await,
        400,
        "num_agents",
    );
    old_error(
        &tool(
            &s,
            "orchestrate_research",
            json!({"task": "x", "num_agents": 21}),
        )
        .await,
        400,
        "between 3 and 20",
    );
    let r = s
        .post_raw("/tools/orchestrate_research", b"{nope".to_vec())
        .await;
    old_error(&r, 400, "JSON");
}

#[tokio::test]
async fn orchestrate_search_validates_agent_types() {
    let s = server().latency_ms(5).start();
    let r = tool(
        &s,
        "orchestrate_search",
        json!({
            "query": "quantum computing breakthroughs", "num_agents": 4,
            "agent_types": ["news", "academic"], "timeout_seconds": 120, "enable_synthesis": true
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["message"],
        "Search workflow started with 4 agents (news, academic)"
    );
    let id = r.body["task_id"].as_str().unwrap();
    s.wait_status(id, "completed", 30 * SEC).await;
    let res = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    let types: Vec<&str> = res["agent_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["news", "academic", "news", "academic"]);

    old_error(
        &tool(
            &s,
            "orchestrate_search",
            json!({"query": "x", "agent_types": ["news", "poetry"]}),
        )
        .await,
        400,
        "poetry",
    );
    old_error(
        &tool(&s, "orchestrate_search", json!({"num_agents": 3})).await,
        400,
        "query",
    );
    old_error(
        &tool(
            &s,
            "orchestrate_search",
            json!({"query": "x", "num_agents": 0}),
        )
        .await,
        400,
        "num_agents",
    );
    // Without agent_types the types are picked from the query.
    let r = tool(
        &s,
        "orchestrate_search",
        json!({"query": "latest rust library news", "num_agents": 3}),
    )
    .await;
    assert_eq!(r.status, 200);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("news") && msg.contains("technical"), "{msg}");
}

#[tokio::test]
async fn get_orchestration_status_has_running_completed_and_failed_shapes() {
    let s = server().latency_ms(80).start();
    let r = tool(
        &s,
        "orchestrate_research",
        json!({"task": "status shapes", "num_agents": 3}),
    )
    .await;
    let id = r.body["task_id"].as_str().unwrap().to_string();
    let running = wait_old_status(&s, &id, "running").await;
    assert_eq!(running["success"], true);
    let p = &running["progress"];
    assert!(p["current_stage"].is_string() && p["percent_complete"].is_number());
    assert_eq!(p["total_agents"], 3);
    assert!(running["started_at"].is_string());

    let done = wait_old_status(&s, &id, "completed").await;
    let result = &done["result"];
    assert!(result["final_synthesis"].is_string());
    assert!(done["completed_at"].is_string());
    let agents = result["agent_results"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert!(agents
        .iter()
        .all(|a| a["status"] == "success" && a["result"].is_string() && a["tokens_used"].is_u64()));
    let levels: Vec<&str> = result["synthesis_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["drummer", "camina"]);
    assert_eq!(result["generated_documents"][0]["format"], "markdown");

    // A failed workflow (a token limit the first call exceeds).
    let failing = s
        .create(
            json!({"pattern": "research", "task": "will fail", "config": {"max_tokens_total": 1}}),
        )
        .await;
    let failed = wait_old_status(&s, &failing, "failed").await;
    assert_eq!(failed["success"], false);
    assert!(failed["error"].as_str().unwrap().contains("tokens"));
    assert!(failed["failed_at"].is_string());

    old_error(
        &tool(&s, "get_orchestration_status", json!({"task_id": "nope"})).await,
        404,
        "nope",
    );
    old_error(
        &tool(&s, "get_orchestration_status", json!({})).await,
        400,
        "task_id",
    );
}

#[tokio::test]
async fn cancel_orchestration_answers_200_409_404() {
    let s = server().latency_ms(200).start();
    let r = tool(
        &s,
        "orchestrate_research",
        json!({"task": "cancel me", "num_agents": 6, "max_concurrent_agents": 1}),
    )
    .await;
    let id = r.body["task_id"].as_str().unwrap().to_string();
    wait_old_status(&s, &id, "running").await;
    let c = tool(&s, "cancel_orchestration", json!({"task_id": id})).await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    assert_eq!(c.body["success"], true);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(c.body["partial_results"]["total_agents"], 6);
    old_error(
        &tool(&s, "cancel_orchestration", json!({"task_id": id})).await,
        409,
        "already finished",
    );
    old_error(
        &tool(&s, "cancel_orchestration", json!({"task_id": "missing"})).await,
        404,
        "missing",
    );
    let st = tool(&s, "get_orchestration_status", json!({"task_id": id})).await;
    assert_eq!(st.body["status"], "cancelled");
}

#[tokio::test]
async fn list_orchestrator_patterns_lists_both() {
    let s = server().start();
    let r = tool(&s, "list_orchestrator_patterns", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["count"], 2);
    let names: Vec<&str> = r.body["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["beltalowda", "swarm"]);
    assert_eq!(
        r.body["patterns"][1]["agent_types"]
            .as_array()
            .unwrap()
            .len(),
        9
    );
}

#[tokio::test]
async fn stream_sends_named_events_in_the_old_shape() {
    let s = server().latency_ms(10).start();
    let r = tool(
        &s,
        "orchestrate_search",
        json!({"query": "stream it", "agent_types": ["text"], "num_agents": 2}),
    )
    .await;
    let id = r.body["task_id"].as_str().unwrap().to_string();
    let resp = s
        .http
        .get(s.url(&format!("/stream/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(30 * SEC, resp.text())
        .await
        .unwrap()
        .unwrap();
    let events = parse_sse(&text);
    assert_eq!(
        events.first().unwrap().event.as_deref(),
        Some("workflow_started")
    );
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("workflow_completed")
    );
    for e in &events {
        assert_eq!(e.data["event"].as_str(), e.event.as_deref());
        assert_eq!(e.data["task_id"], id.as_str());
        assert!(e.data["timestamp"].is_string() && e.data["data"].is_object());
    }
    let missing = s.get("/stream/unknown-task").await;
    old_error(&missing, 404, "unknown-task");
}

#[tokio::test]
async fn root_describes_the_server() {
    let s = server().start();
    let r = s.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "MCP Orchestrator Server");
    assert_eq!(r.body["orchestrators"], json!(["beltalowda", "swarm"]));
    assert_eq!(r.body["endpoints"]["stream"], "/stream/{task_id}");
}

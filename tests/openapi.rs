//! `GET /openapi.json` is OpenAPI 3.1 generated from the handlers:
//! every route (the old ones too) with its parameters, error codes and the
//! bearer scheme; it needs a key; its methods are the ones the server takes.

use reqwest::Method;

use crate::common::keys::key;
use crate::common::server;

#[tokio::test]
async fn the_document_covers_every_route_and_the_server_keeps_to_it() {
    let k = key("reader", &["read"]);
    let s = server().keys(&[&k]).start();
    assert_eq!(
        s.call(Method::GET, "/openapi.json", None, None)
            .await
            .status,
        401
    );
    let doc = s.get_as(&k, "/openapi.json").await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/v1/workflows",
        "/v1/workflows/{id}",
        "/v1/workflows/{id}/result",
        "/v1/workflows/{id}/cancel",
        "/v1/workflows/{id}/events",
        "/v1/workflows/{id}/deliveries",
        "/v1/patterns",
        "/v1/webhooks",
        "/v1/webhooks/{id}",
        "/v1/analytics/workflows",
        "/v1/analytics/costs",
        "/v1/analytics/performance",
        "/tools/orchestrate_research",
        "/tools/orchestrate_search",
        "/tools/get_orchestration_status",
        "/tools/cancel_orchestration",
        "/tools/list_orchestrator_patterns",
        "/stream/{task_id}",
        "/webhook/register",
        "/webhook/unregister",
        "/stats",
        "/analytics/workflows",
        "/analytics/costs",
        "/analytics/performance",
        "/",
        "/health",
        "/ready",
        "/metrics",
        "/dashboard",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} is not documented");
    }
    // Errors and parameters are there, and the key is asked for where it is needed.
    let create = &paths["/v1/workflows"]["post"];
    for code in ["201", "400", "401", "403", "413", "415", "429", "503"] {
        assert!(
            create["responses"].get(code).is_some(),
            "POST /v1/workflows lacks {code}"
        );
    }
    assert_eq!(create["security"][0]["bearer"], serde_json::json!([]));
    assert!(paths["/health"]["get"].get("security").is_none());
    let list_params: Vec<&str> = paths["/v1/workflows"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(list_params, ["status", "pattern", "cursor", "limit"]);
    // Every documented path answers an undocumented method with 405 and the
    // documented ones in Allow.
    for (path, item) in paths {
        let concrete = path.replace("{id}", "wf_x").replace("{task_id}", "wf_x");
        let r = s.call(Method::PATCH, &concrete, Some(&k.token), None).await;
        assert_eq!(r.status, 405, "PATCH {path}");
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        let mut allowed: Vec<String> = r.headers["allow"]
            .to_str()
            .unwrap()
            .split(", ")
            .map(String::from)
            .collect();
        documented.sort();
        allowed.sort();
        assert_eq!(allowed, documented, "{path}");
    }
}

//! One `Idempotency-Key` per owner across the cluster: concurrent
//! creates with one key on three instances sharing one PostgreSQL create exactly
//! one workflow; every other answer returns it (200 `Idempotent-Replayed`) or says
//! it is still being created (409 `idempotency_in_progress`), never a second one.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::common::pg::PgDb;
use crate::common::{server, Server};

/// One create with `key`: status, body, and whether it says it was replayed.
async fn create(s: &Server, key: &str, body: &Value) -> (u16, Value, bool) {
    let r = s
        .http
        .post(s.url("/v1/workflows"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

#[tokio::test]
async fn one_idempotency_key_creates_one_workflow_across_three_instances() {
    let db = PgDb::new();
    // Slow calls: the workflow is still running while the requests race.
    let start = || {
        server()
            .env("MCPO__POSTGRES__URL", &db.url)
            .env("MCPO__CLUSTER__LEASE_TTL", "10s")
            .latency_ms(60_000)
            .start()
    };
    let servers = [start(), start(), start()];
    let body = json!({"pattern": "research", "task": "one key, one workflow",
        "config": {"num_agents": 3}});
    let answers: Vec<(u16, Value, bool)> =
        futures::future::join_all(servers.iter().flat_map(|s| {
            let body = &body;
            (0..20).map(move |_| create(s, "one-key", body))
        }))
        .await;
    let created: Vec<_> = answers.iter().filter(|a| a.0 == 201).collect();
    assert_eq!(created.len(), 1, "exactly one create: {answers:?}");
    let id = created[0].1["id"].as_str().unwrap_or_default().to_string();
    let mut ids = HashSet::new();
    for (status, body, replayed) in &answers {
        match status {
            201 => {}
            200 => assert!(*replayed, "a 200 says it replayed: {body}"),
            409 => assert_eq!(body["error"]["code"], "idempotency_in_progress", "{body}"),
            _ => panic!("unexpected answer {status}: {body}"),
        }
        if let Some(i) = body["id"].as_str() {
            ids.insert(i.to_string());
        }
    }
    assert_eq!(
        ids,
        HashSet::from([id.clone()]),
        "every id is the one workflow"
    );
    assert_eq!(db.query("SELECT count(*) FROM workflows"), "1");
    assert_eq!(db.query("SELECT count(*) FROM leases"), "1");
    assert_eq!(
        db.query("SELECT workflow_id FROM idempotency_keys WHERE key = 'one-key'"),
        id
    );
    // Once created, a retry on any instance returns it; another body is refused.
    for s in &servers {
        let (status, b, replayed) = create(s, "one-key", &body).await;
        assert_eq!((status, replayed), (200, true), "{b}");
        assert_eq!(b["id"], id.as_str());
        let other = json!({"pattern": "research", "task": "another request"});
        let (status, b, _) = create(s, "one-key", &other).await;
        assert_eq!(status, 422, "{b}");
        assert_eq!(b["error"]["code"], "idempotency_conflict");
    }
}

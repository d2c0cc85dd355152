//! The queryable history on PostgreSQL: migration V8 converts a
//! database written by the previous version (finished workflows packed into one
//! zstd value, their event rows gone) into the plan's schema without losing
//! anything, and V13 then makes `results.result` NOT NULL.

use chrono::{Duration, Utc};
use mcp_orchestrator::config::PostgresConfig;
use mcp_orchestrator::domain::{
    Event, EventType, FailureCode, Pattern, PatternConfig, Status, Workflow, WorkflowError,
    WorkflowResult,
};
use mcp_orchestrator::store::packed::{self, RawEvent};
use mcp_orchestrator::store::postgres::PgStore;
use mcp_orchestrator::store::Store;
use serde_json::json;
use tokio_postgres::NoTls;

use crate::common::pg::{psql, PgDb};
use crate::common::server;

fn cfg(db: &PgDb) -> PostgresConfig {
    PostgresConfig {
        url: Some(db.url.clone()),
        ..Default::default()
    }
}

/// A workflow as the previous version stored it, and what must read back.
struct Old {
    wf: Workflow,
    result: Option<WorkflowResult>,
    events: Vec<Event>,
}

fn old(id: &str, pattern: Pattern, to: Option<Status>, n_events: u64) -> Old {
    let t0 = Utc::now() - Duration::days(3);
    let mut wf = Workflow::new(
        id.into(),
        pattern,
        format!("task of {id}"),
        format!("title of {id}"),
        PatternConfig::default_for(pattern),
        "simulated".into(),
        true,
    );
    wf.created_at = t0;
    wf.owner = Some("analyst".into());
    wf.transition(Status::Running, t0 + Duration::seconds(1))
        .unwrap();
    let events = (1..=n_events)
        .map(|seq| Event {
            workflow_id: id.into(),
            seq,
            kind: if seq == 1 {
                EventType::WorkflowStarted
            } else {
                EventType::AgentCompleted
            },
            // Microseconds that a float conversion would get wrong.
            timestamp: chrono::DateTime::from_timestamp_micros(
                t0.timestamp_micros() + seq as i64 * 1_000_001 + 7,
            )
            .unwrap(),
            data: json!({"agent_id": format!("agent_{seq}"), "content": format!("raft quorum {seq} \"é\"\n")}).into(),
        })
        .collect();
    let mut result = None;
    if let Some(to) = to {
        wf.transition(to, t0 + Duration::seconds(30)).unwrap();
        wf.execution_time = Some(29.5);
        wf.total_cost_usd = 0.25;
        if to == Status::Failed {
            wf.error = Some(WorkflowError {
                code: FailureCode::SynthesisFailed,
                message: "the provider failed".into(),
            });
        }
        let mut r = WorkflowResult::empty(id, pattern, true);
        r.status = to;
        r.total_cost = 0.25;
        r.execution_time = 29.5;
        r.final_synthesis = Some("Consensus needs a quorum.".into());
        r.agent_results = (0..2)
            .map(|k| {
                serde_json::from_value(json!({"agent_id": format!("agent_{k}"),
                "agent_type": "research", "subtask": "s", "content": "raft", "status": "completed",
                "model": "m1", "tokens": {"input": 1, "output": 2, "total": 3}, "cost": 0.125,
                "execution_time": 1.0, "error": null}))
                .unwrap()
            })
            .collect();
        result = Some(r);
    }
    Old { wf, result, events }
}

/// What the previous version's writer did, as SQL (its V7 columns).
async fn write_as_v7(c: &tokio_postgres::Client, o: &Old, how: &str) {
    let wf = &o.wf;
    c.execute(
        "INSERT INTO workflows (id, pattern, status, created_at, completed_at, total_cost_usd,
           execution_time, record, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9)",
        &[
            &wf.id,
            &wf.pattern.as_str(),
            &wf.status.as_str(),
            &wf.created_at,
            &wf.completed_at,
            &wf.total_cost_usd,
            &wf.execution_time,
            &serde_json::to_string(wf).unwrap(),
            &wf.owner,
        ],
    )
    .await
    .unwrap();
    let json = o.result.as_ref().map(|r| serde_json::to_string(r).unwrap());
    let raw: Vec<RawEvent> = o.events.iter().map(RawEvent::of).collect();
    match how {
        // Finished since V4: result and events in one zstd value, no event rows.
        "packed" => {
            let value = packed::encode(json.as_deref(), raw);
            c.execute(
                "INSERT INTO results (workflow_id, result, packed) VALUES ($1, NULL, $2)",
                &[&wf.id, &value],
            )
            .await
            .unwrap();
            if let Some(r) = &o.result {
                for (model, n, cost) in packed::model_costs(r) {
                    c.execute(
                        "INSERT INTO model_costs (workflow_id, model, calls, cost) VALUES ($1, $2, $3, $4)",
                        &[&wf.id, &model, &(n as i64), &cost],
                    )
                    .await
                    .unwrap();
                }
            }
        }
        // Finished before V4, or still running: JSONB result (if any), event rows.
        _ => {
            if let Some(j) = &json {
                c.execute(
                    "INSERT INTO results (workflow_id, result) VALUES ($1, $2::text::jsonb)",
                    &[&wf.id, j],
                )
                .await
                .unwrap();
            }
            for e in &o.events {
                c.execute(
                    "INSERT INTO events (workflow_id, seq, type, ts, data) VALUES ($1, $2, $3, $4, $5::text::jsonb)",
                    &[&wf.id, &(e.seq as i64), &e.kind.as_str(), &e.timestamp, &e.data.to_string()],
                )
                .await
                .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_v7_database_is_converted_to_the_plan_schema_without_loss() {
    let db = PgDb::new();
    let cfg = cfg(&db);
    assert_eq!(PgStore::migrate_until(&cfg, 7).await.unwrap(), 7);
    let (c, conn) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let cases = [
        (
            old("wf_packed", Pattern::Research, Some(Status::Completed), 26),
            "packed",
        ),
        (
            old("wf_failed", Pattern::Search, Some(Status::Failed), 3),
            "packed",
        ),
        (
            old("wf_pre_v4", Pattern::Research, Some(Status::Completed), 4),
            "json",
        ),
        (old("wf_running", Pattern::Research, None, 2), "json"),
    ];
    for (o, how) in &cases {
        write_as_v7(&c, o, how).await;
    }
    // A value that held events only (its result was never written).
    let mut no_result = old(
        "wf_events_only",
        Pattern::Search,
        Some(Status::Cancelled),
        2,
    );
    no_result.result = None;
    write_as_v7(&c, &no_result, "packed").await;
    assert_eq!(
        db.query("SELECT count(*) FROM results WHERE packed IS NOT NULL"),
        "3"
    );

    // The new version: V8, the conversion, V13.
    let store = PgStore::connect(&cfg).await.expect("migrate and connect");
    assert_eq!(
        db.query("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'results' AND column_name = 'packed'"),
        "0"
    );
    assert_eq!(
        db.query("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'results' AND column_name = 'result'"),
        "NO"
    );
    for (o, _) in cases.iter().chain([(no_result, "packed")].iter()) {
        let id = &o.wf.id;
        assert_eq!(
            store.get_result(id).await.unwrap(),
            o.result,
            "result of {id}"
        );
        assert_eq!(
            store.events_after(id, 0).await.unwrap(),
            o.events,
            "events of {id}"
        );
        assert_eq!(store.get_workflow(id).await.unwrap().as_ref(), Some(&o.wf));
        assert_eq!(
            db.query(&format!(
                "SELECT count(*) FROM events WHERE workflow_id = '{id}'"
            )),
            o.events.len().to_string(),
            "event rows of {id}"
        );
    }
    // The plan's columns, filled from what was stored.
    assert_eq!(
        db.query(
            "SELECT orchestrator_type || ' ' || task || ' ' || (started_at IS NOT NULL) || ' '
               || coalesce(error, '-') || ' ' || (config->>'num_agents' IS NOT NULL)
             FROM workflows WHERE id = 'wf_packed'"
        ),
        "research task of wf_packed true - true"
    );
    assert_eq!(
        db.query(
            "SELECT legacy_type || ' ' || error FROM plan.workflows WHERE task_id = 'wf_failed'"
        ),
        "swarm synthesis_failed"
    );
    assert_eq!(
        db.query(
            "SELECT r.total_cost || ' ' || r.execution_time || ' ' || r.agent_count || ' ' || (r.created_at = w.completed_at)
             FROM results r JOIN workflows w ON w.id = r.workflow_id WHERE r.workflow_id = 'wf_packed'"
        ),
        "0.25 29.5 2 true"
    );
    assert_eq!(
        db.query("SELECT count(*) FROM plan.events WHERE task_id = 'wf_packed' AND event_type = 'agent_completed'"),
        "25"
    );
    // model_costs (analytics) are untouched, and a second start changes nothing.
    assert_eq!(db.query("SELECT sum(calls) FROM model_costs"), "4");
    let before = db.query("SELECT md5(string_agg(workflow_id || result::text, ',' ORDER BY workflow_id)) FROM results");
    assert_eq!(PgStore::migrate(&cfg).await.unwrap(), 0);
    assert_eq!(
        db.query("SELECT md5(string_agg(workflow_id || result::text, ',' ORDER BY workflow_id)) FROM results"),
        before
    );
    drop(store);

    // And the server reads the converted history through the API.
    let s = server().env("MCPO__POSTGRES__URL", &db.url).start();
    let r = s.get("/v1/workflows/wf_packed/result").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["final_synthesis"], "Consensus needs a quorum.");
    let events = s.sse("wf_packed", None, crate::common::SEC * 30).await;
    assert_eq!(events.len(), 26);
}

#[tokio::test]
async fn v13_refuses_to_run_while_a_packed_value_remains() {
    let db = PgDb::new();
    PgStore::migrate_until(&cfg(&db), 8).await.unwrap();
    let o = old("wf_packed", Pattern::Research, Some(Status::Completed), 2);
    let (c, conn) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
    tokio::spawn(conn);
    write_as_v7(&c, &o, "packed").await;
    let v13 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/postgres/V13__results_not_null.sql"
    ))
    .unwrap();
    let out = std::process::Command::new("psql")
        .args([db.url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", &v13])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("results.packed still holds values"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        psql(
            &db.url,
            "SELECT count(*) FROM results WHERE packed IS NOT NULL"
        ),
        "1"
    );
}

//! Packed results on the embedded SQLite store: a finished
//! workflow's events and result become one compressed value, reads return exactly
//! what was written, replays change nothing, and rows written before packing
//! existed (JSON text) still read and get packed when touched again.

use std::sync::Arc;

use mcp_orchestrator::config::Durability;
use mcp_orchestrator::domain::{
    ChangeKind, Event, EventType, Pattern, PatternConfig, Status, Workflow, WorkflowResult,
};
use mcp_orchestrator::store::analytics::AnalyticsQuery;
use mcp_orchestrator::store::sqlite::SqliteStore;
use mcp_orchestrator::store::Store;
use serde_json::json;

use crate::common::{change, sqlite_value};

fn workflow(id: &str) -> Workflow {
    let mut wf = Workflow::new(
        id.into(),
        Pattern::Research,
        "t".into(),
        "t".into(),
        PatternConfig::default_for(Pattern::Research),
        "simulated".into(),
        true,
    );
    wf.created_at = mcp_orchestrator::clock::now();
    wf
}

fn event(id: &str, seq: u64, kind: EventType) -> Arc<Event> {
    Arc::new(Event {
        workflow_id: id.into(),
        seq,
        kind,
        timestamp: mcp_orchestrator::clock::now(),
        data: json!({"n": seq, "text": "säme \"text\"\n".repeat(seq as usize)}).into(),
    })
}

fn result(id: &str) -> WorkflowResult {
    let mut r = WorkflowResult::empty(id, Pattern::Research, true);
    r.status = Status::Completed;
    r.total_cost = 0.5;
    r.agent_results = vec![serde_json::from_value(json!({"agent_id": "agent_1",
        "agent_type": "research", "subtask": "s", "content": "c", "status": "completed",
        "model": "m1", "tokens": {"input": 1, "output": 2, "total": 3}, "cost": 0.25,
        "execution_time": 1.0, "error": null}))
    .unwrap()];
    r
}

#[tokio::test]
async fn finished_workflows_are_packed_and_read_back_exactly_even_after_replays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let store = SqliteStore::open(&path, Durability::Sync).unwrap();
    let id = "wf_pack";
    let mut wf = workflow(id);
    let started = event(id, 1, EventType::WorkflowStarted);
    let first = vec![
        change(1, ChangeKind::Workflow(Arc::new(wf.clone()))),
        change(2, ChangeKind::Event(Arc::clone(&started))),
    ];
    store.write_batch(first.clone()).await.unwrap();
    // Unfinished: its events are rows, read as before.
    assert_eq!(sqlite_value(&path, "SELECT count(*) FROM events"), "1");
    assert_eq!(
        store.events_after(id, 0).await.unwrap(),
        vec![(*started).clone()]
    );

    wf.transition(Status::Running, mcp_orchestrator::clock::now())
        .unwrap();
    wf.transition(Status::Completed, mcp_orchestrator::clock::now())
        .unwrap();
    let agent = event(id, 2, EventType::AgentCompleted);
    let done = event(id, 3, EventType::WorkflowCompleted);
    let second = vec![
        change(3, ChangeKind::Event(Arc::clone(&agent))),
        change(4, ChangeKind::Result(Arc::new(result(id)))),
        change(5, ChangeKind::Event(Arc::clone(&done))),
        change(6, ChangeKind::Workflow(Arc::new(wf.clone()))),
    ];
    for _ in 0..3 {
        store.write_batch(second.clone()).await.unwrap();
        // A replay of an earlier batch re-inserts a row the packing already holds.
        store.write_batch(first[1..].to_vec()).await.unwrap();
    }
    store.write_batch(second.clone()).await.unwrap();
    assert_eq!(sqlite_value(&path, "SELECT count(*) FROM events"), "0");
    assert!(sqlite_value(&path, "SELECT result FROM results").starts_with("blob "));
    assert_eq!(
        sqlite_value(
            &path,
            "SELECT model || ' ' || calls || ' ' || cost FROM model_costs"
        ),
        "m1 1 0.25"
    );
    let want: Vec<Event> = [&started, &agent, &done]
        .iter()
        .map(|e| (***e).clone())
        .collect();
    assert_eq!(store.events_after(id, 0).await.unwrap(), want);
    assert_eq!(store.events_after(id, 2).await.unwrap(), want[2..].to_vec());
    assert_eq!(store.get_result(id).await.unwrap(), Some(result(id)));
    assert_eq!(store.get_workflow(id).await.unwrap(), Some(wf));
    let costs = store
        .analytics_costs(&AnalyticsQuery::default())
        .await
        .unwrap();
    assert_eq!(costs.by_model["m1"].calls, 1);
    assert_eq!(costs.by_model["m1"].total_cost_usd, 0.25);
}

#[tokio::test]
async fn rows_from_before_packing_still_read_and_are_packed_when_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let store = SqliteStore::open(&path, Durability::Sync).unwrap();
    let id = "wf_legacy";
    let mut wf = workflow(id);
    wf.transition(Status::Running, mcp_orchestrator::clock::now())
        .unwrap();
    store
        .write_batch(vec![change(1, ChangeKind::Workflow(Arc::new(wf.clone())))])
        .await
        .unwrap();
    // What the store wrote before V4: the result as JSON text, events as rows.
    let ev = event(id, 1, EventType::WorkflowCompleted);
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "INSERT INTO results (workflow_id, result) VALUES (?1, ?2)",
            rusqlite::params![id, serde_json::to_string(&result(id)).unwrap()],
        )
        .unwrap();
        c.execute(
            "INSERT INTO events (workflow_id, seq, type, ts_us, data) VALUES (?1, 1, ?2, ?3, ?4)",
            rusqlite::params![
                id,
                ev.kind.as_str(),
                ev.timestamp.timestamp_micros(),
                ev.data.to_string()
            ],
        )
        .unwrap();
        // V4's backfill of per-model costs, run again over this row.
        let sql = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite/V4__packed_results.sql"
        ))
        .unwrap();
        let backfill = &sql[sql.find("INSERT OR REPLACE INTO model_costs").unwrap()..];
        c.execute_batch(backfill).unwrap();
    }
    assert_eq!(
        sqlite_value(
            &path,
            "SELECT model || ' ' || calls || ' ' || cost FROM model_costs"
        ),
        "m1 1 0.25"
    );
    assert_eq!(store.get_result(id).await.unwrap(), Some(result(id)));
    assert_eq!(
        store.events_after(id, 0).await.unwrap(),
        vec![(*ev).clone()]
    );
    // The record written again (here: finished): the legacy result and rows get packed.
    wf.transition(Status::Completed, mcp_orchestrator::clock::now())
        .unwrap();
    store
        .write_batch(vec![change(2, ChangeKind::Workflow(Arc::new(wf.clone())))])
        .await
        .unwrap();
    assert_eq!(sqlite_value(&path, "SELECT count(*) FROM events"), "0");
    assert!(sqlite_value(&path, "SELECT result FROM results").starts_with("blob "));
    assert_eq!(store.get_result(id).await.unwrap(), Some(result(id)));
    assert_eq!(
        store.events_after(id, 0).await.unwrap(),
        vec![(*ev).clone()]
    );
}

/// The writer packs a workflow it saw from its first event from the log it
/// committed (its rows are deleted unread); one it did not (restored after a
/// restart: a new store handle) from its rows. Both give every event once.
#[tokio::test]
async fn a_workflow_is_packed_whole_whether_the_writer_saw_its_start_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    for reopen in [false, true] {
        let id = if reopen { "wf_restored" } else { "wf_seen" };
        let mut store = SqliteStore::open(&path, Durability::Sync).unwrap();
        let mut wf = workflow(id);
        let events: Vec<Arc<Event>> = (1..=4)
            .map(|seq| event(id, seq, EventType::AgentCompleted))
            .collect();
        // Two batches of running events, then (maybe after a restart) the finish.
        for (i, ev) in events[..3].iter().enumerate() {
            let seq = 10 * i as u64;
            store
                .write_batch(vec![
                    change(seq + 1, ChangeKind::Workflow(Arc::new(wf.clone()))),
                    change(seq + 2, ChangeKind::Event(Arc::clone(ev))),
                ])
                .await
                .unwrap();
        }
        if reopen {
            store = SqliteStore::open(&path, Durability::Sync).unwrap();
        }
        wf.transition(Status::Running, mcp_orchestrator::clock::now())
            .unwrap();
        wf.transition(Status::Completed, mcp_orchestrator::clock::now())
            .unwrap();
        store
            .write_batch(vec![
                change(41, ChangeKind::Event(Arc::clone(&events[3]))),
                change(42, ChangeKind::Result(Arc::new(result(id)))),
                change(43, ChangeKind::Workflow(Arc::new(wf.clone()))),
            ])
            .await
            .unwrap();
        let sql = format!("SELECT count(*) FROM events WHERE workflow_id = '{id}'");
        assert_eq!(sqlite_value(&path, &sql), "0", "{id}: rows left");
        let want: Vec<Event> = events.iter().map(|e| (**e).clone()).collect();
        assert_eq!(store.events_after(id, 0).await.unwrap(), want, "{id}");
        assert_eq!(store.get_result(id).await.unwrap(), Some(result(id)));
    }
}

//! Fencing by the epoch a change was made under: an instance that
//! loses a workflow's lease and claims it back before its queued changes are
//! written must not write them. The writer is held back by a test hook (every
//! commit waits), the lease is taken by a dead instance under a newer epoch and
//! already expired, so this instance's next round sees it lost and claims it back
//! at once, while changes made under the first epoch are still queued. The stored
//! event log must then be exactly the adopted run's continuation of what was
//! stored: no gap, no event of the stopped run after the restore point, and
//! event for event what the instance holds and serves.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::pg::PgDb;
use crate::common::{server, SEC};

#[tokio::test]
async fn changes_queued_under_a_lost_epoch_are_not_written_after_the_lease_is_claimed_back() {
    let db = PgDb::new();
    let s = server()
        .env("MCPO__POSTGRES__URL", &db.url)
        .env("MCPO__CLUSTER__LEASE_TTL", "3s")
        .env("MCPO_TEST_FAULTS", "1")
        .env("MCPO_TEST_COMMIT_DELAY_MS", 1500)
        .latency_ms(200)
        .start();
    let id = s
        .create(json!({"pattern": "research", "task": "fenced by epoch",
            "config": {"num_agents": 8, "max_concurrent_agents": 2}}))
        .await;
    let stored = |sql: &str| db.query(&sql.replace("$ID", &id));
    let t = Instant::now();
    while stored("SELECT count(*) FROM events WHERE workflow_id = '$ID'")
        .parse::<u64>()
        .unwrap_or(0)
        < 3
    {
        assert!(t.elapsed() < 60 * SEC, "the run never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Lost to a dead instance (epoch 2, expired): this instance claims it back
    // (epoch 3) within one round, changes of epoch 1 still in its queue.
    stored(
        "UPDATE leases SET instance_id = 'ghost', epoch = epoch + 1, \
         expires_at = now() - interval '1 second' WHERE workflow_id = '$ID'",
    );
    s.wait_status(&id, "completed", 120 * SEC).await;
    // Its last changes commit after the answer says completed (held back too).
    let t = Instant::now();
    while stored("SELECT count(*) FROM leases WHERE workflow_id = '$ID'") != "0" {
        assert!(
            t.elapsed() < 60 * SEC,
            "the terminal status was never stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.log().contains("claimed unfinished workflows"),
        "the lease was claimed back"
    );

    let rows = stored(
        "SELECT string_agg(seq || ' ' || type || ' ' || coalesce(data->>'agent_id', '-'), ',' ORDER BY seq) \
         FROM events WHERE workflow_id = '$ID'",
    );
    let events: Vec<(u64, String, String)> = rows
        .split(',')
        .map(|r| {
            let mut p = r.split(' ');
            let seq = p.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let kind = p.next().unwrap_or("").to_string();
            (seq, kind, p.next().unwrap_or("-").to_string())
        })
        .collect();
    for (i, (seq, _, _)) in events.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "seqs without gaps: {rows}");
    }
    let count = |kind: &str| events.iter().filter(|e| e.1 == kind).count();
    // The adopted run's own events are all there (none lost to a stale one
    // written at its seq), and the stopped run wrote nothing after the restore.
    assert_eq!(count("workflow_started"), 1, "{rows}");
    assert_eq!(count("workflow_interrupted"), 1, "{rows}");
    assert_eq!(count("workflow_resumed"), 1, "{rows}");
    assert_eq!(count("workflow_completed"), 1, "{rows}");
    let at = |kind: &str| events.iter().position(|e| e.1 == kind).unwrap_or(0);
    assert!(
        at("workflow_interrupted") < at("workflow_resumed"),
        "the restore point, then the adopted run: {rows}"
    );
    let mut completed: HashMap<&str, usize> = HashMap::new();
    for e in events.iter().filter(|e| e.1 == "agent_completed") {
        *completed.entry(&e.2).or_default() += 1;
    }
    assert_eq!(completed.len(), 8, "{rows}");
    assert!(completed.values().all(|n| *n == 1), "{rows}");

    // Event for event, the stored log is the one the instance holds and serves
    // (type, data, timestamp to the microsecond; data compared as JSON values,
    // since jsonb orders keys its own way): a stale change written at any seq
    // would differ here.
    let served = s.sse(&id, None, 10 * SEC).await;
    let stored_log: Vec<serde_json::Value> = serde_json::from_str(&stored(
        "SELECT json_agg(json_build_object('seq', seq, 'type', type, \
         'us', (extract(epoch FROM ts) * 1000000)::bigint, 'data', data) ORDER BY seq) \
         FROM events WHERE workflow_id = '$ID'",
    ))
    .expect("the stored log as one JSON array");
    assert_eq!(served.len(), stored_log.len(), "{rows}");
    for (live, row) in served.iter().zip(&stored_log) {
        let e = &live.data;
        assert_eq!(e["seq"], row["seq"], "{rows}");
        assert_eq!(e["type"], row["type"], "seq {}", row["seq"]);
        assert_eq!(e["data"], row["data"], "seq {}", row["seq"]);
        let us = e["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_micros());
        assert_eq!(us, row["us"].as_i64(), "seq {}", row["seq"]);
    }
}

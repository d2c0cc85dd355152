//! `/metrics` over real HTTP: the exposition passes `promtool check metrics`, and
//! the counters hold exactly what a known sequence of workflows did; a restart
//! does not count restored workflows again.

use serde_json::json;

use crate::common::prometheus::{samples, scrape, value, wait_metric, without_instance};
use crate::common::{research, server, SEC};

pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is missing: apt-get install prometheus (scripts/test.sh does)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn slow_server() -> crate::common::Builder {
    server()
        .env("MCPO__PROVIDERS__SLOW__KIND", "simulated")
        .env("MCPO__PROVIDERS__SLOW__LATENCY_MS", 600_000)
}

#[tokio::test]
async fn counters_match_a_known_sequence_and_promtool_accepts_them() {
    let s = slow_server()
        .env("MCPO__RETENTION__MAX_COMPLETED", 2)
        .start();
    // Before anything ran: the seed's gauges are there, at zero.
    let m = samples(&scrape(&s).await);
    assert_eq!(m.get("active_workflows"), Some(&0.0));
    assert_eq!(m.get("redis_memory_bytes"), Some(&0.0));

    // 3 research completed, 1 search cancelled, 1 research failed (token budget).
    let mut done = Vec::new();
    for i in 0..3 {
        done.push(s.create(research(&format!("metric run {i}"), 3)).await);
    }
    let slow = s
        .create(json!({"pattern": "search", "task": "never ends", "config": {"provider": "slow"}}))
        .await;
    let failing = s
        .create(json!({"pattern": "research", "task": "too expensive",
            "config": {"num_agents": 3, "max_tokens_total": 1}}))
        .await;
    for id in &done {
        s.wait_status(id, "completed", 30 * SEC).await;
    }
    s.wait_status(&failing, "failed", 30 * SEC).await;
    s.wait_status(&slow, "running", 30 * SEC).await;

    // An SSE client is counted while connected.
    let stream = s
        .http
        .get(s.url(&format!("/v1/workflows/{slow}/events")))
        .send()
        .await
        .expect("SSE");
    let m = samples(&scrape(&s).await);
    assert_eq!(value(&m, "sse_clients"), 1.0);
    assert_eq!(value(&m, "active_workflows"), 1.0);
    drop(stream);

    let r = s
        .post(&format!("/v1/workflows/{slow}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200);
    s.get(&format!("/v1/workflows/{slow}")).await;
    s.get("/v1/workflows/wf_does_not_exist").await;

    // 5 finished, 2 retained: 3 evicted.
    wait_metric(&s, "workflows_evicted_total", 3.0).await;
    let text = scrape(&s).await;
    promtool_check(&text);
    let m = samples(&text);
    let expect = [
        (
            r#"workflows_created_total{orchestrator_type="research"}"#,
            4.0,
        ),
        (
            r#"workflows_created_total{orchestrator_type="search"}"#,
            1.0,
        ),
        (
            r#"workflows_completed_total{orchestrator_type="research",status="completed"}"#,
            3.0,
        ),
        (
            r#"workflows_completed_total{orchestrator_type="research",status="failed"}"#,
            1.0,
        ),
        (
            r#"workflows_completed_total{orchestrator_type="search",status="cancelled"}"#,
            1.0,
        ),
        (
            r#"workflow_duration_seconds_count{orchestrator_type="research"}"#,
            4.0,
        ),
        (
            r#"workflow_cost_usd_count{orchestrator_type="search"}"#,
            1.0,
        ),
        ("active_workflows", 0.0),
        ("redis_memory_bytes", 0.0),
        (
            r#"http_requests_total{method="POST",route="/v1/workflows",status="201"}"#,
            5.0,
        ),
        (
            r#"http_requests_total{method="POST",route="/v1/workflows/{id}/cancel",status="200"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{method="GET",route="/v1/workflows/{id}",status="404"}"#,
            1.0,
        ),
        (r#"persister_queue_depth{persister="primary"}"#, 0.0),
        (r#"persister_failures_total{persister="primary"}"#, 0.0),
        (r#"webhook_deliveries_total{outcome="delivered"}"#, 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(m.get(series), Some(&want), "{series}\n{text}");
    }
    // Nothing else finished or was created.
    let total = |prefix: &str| -> f64 {
        m.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(total("workflows_completed_total{"), 5.0);
    assert_eq!(total("workflows_created_total{"), 5.0);
    // Routes are patterns: no workflow id ever becomes a label value.
    assert!(!text.contains("route=\"/v1/workflows/wf_"), "{text}");
    assert!(value(&m, r#"persister_writes_total{persister="primary"}"#) > 0.0);
    assert!(
        value(
            &m,
            r#"llm_requests_total{provider="simulated",model="simulated",outcome="ok"}"#
        ) >= 15.0
    );
    assert!(
        value(
            &m,
            r#"llm_tokens_total{provider="simulated",model="simulated",kind="input"}"#
        ) > 0.0
    );
    assert!(
        value(
            &m,
            r#"llm_request_duration_seconds_count{provider="simulated",model="simulated"}"#
        ) > 0.0
    );
    for help in [
        "# HELP workflows_created_total",
        "# HELP workflow_duration_seconds",
        "# TYPE workflow_cost_usd histogram",
        "# HELP llm_queue_wait_seconds",
    ] {
        assert!(text.contains(help), "missing {help}");
    }
}

#[tokio::test]
async fn a_restart_does_not_count_restored_workflows_again() {
    let s = slow_server().start();
    let dir = s.dir.clone();
    let a = s.create(research("before restart", 3)).await;
    s.wait_status(&a, "completed", 30 * SEC).await;
    let slow = s
        .create(json!({"pattern": "research", "task": "resumed later",
            "config": {"num_agents": 3, "provider": "slow"}}))
        .await;
    s.wait_status(&slow, "running", 30 * SEC).await;
    let mut s = s;
    s.kill9();

    // Same data; the "slow" provider is fast now, so the resumed run finishes.
    let s = server()
        .dir(&dir)
        .env("MCPO__PROVIDERS__SLOW__KIND", "simulated")
        .env("MCPO__PROVIDERS__SLOW__LATENCY_MS", 10)
        .start();
    s.wait_status(&slow, "completed", 30 * SEC).await;
    let text = scrape(&s).await;
    promtool_check(&text);
    let m = samples(&text);
    let created: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("workflows_created_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        created, 0.0,
        "restored workflows counted as created:\n{text}"
    );
    let completed: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("workflows_completed_total"))
        .map(|(_, v)| v)
        .sum();
    // Only the resumed one finished in this process; the one restored finished does not count.
    assert_eq!(completed, 1.0, "{text}");
    assert_eq!(
        value(
            &m,
            r#"workflows_completed_total{orchestrator_type="research",status="completed"}"#
        ),
        1.0
    );
}

/// Every series names its instance (issue 16): `cluster.instance_id` when set,
/// `<hostname>-<pid>` otherwise; never anything a client sent.
#[tokio::test]
async fn every_series_carries_the_configured_instance_label() {
    let s = server()
        .env("MCPO__CLUSTER__INSTANCE_ID", "node-a.1")
        .latency_ms(1)
        .start();
    let id = s.create(research("labelled", 3)).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    // A client naming another instance in a header, the query and the path.
    let r = s
        .http
        .get(s.url("/metrics?instance=evil"))
        .header("instance", "evil")
        .header("X-Instance", "evil")
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(r.status().as_u16(), 200);
    let _ = s.get("/instance=\"evil\"").await;
    let text = scrape(&s).await;
    promtool_check(&text);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(series.len() > 20, "{text}");
    for l in &series {
        let (_, instance) = without_instance(l.rsplit_once(' ').map_or(*l, |(s, _)| s));
        assert_eq!(instance, "node-a.1", "{l}");
    }
    assert!(!text.contains("evil"), "{text}");

    // Unset (empty): the host name and the server's process id.
    let s = server().env("MCPO__CLUSTER__INSTANCE_ID", "").start();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let want = format!("{}-{}", host.trim(), s.pid());
    let text = scrape(&s).await;
    let (_, instance) = without_instance(
        text.lines()
            .find(|l| l.starts_with("active_workflows"))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(s, _)| s)
            .expect("active_workflows"),
    );
    assert_eq!(instance, want, "{text}");
}

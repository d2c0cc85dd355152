//! Real LLM execution against a fake OpenAI-compatible server on loopback:
//! prices and usage, retries and rate advice, timeouts, models, secrets.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::fake_openai::{Behaviour, FakeOpenAi};
use crate::common::*;

const KEY: &str = "sk-test-SECRET-0a1b2c3d";

fn with_fake(b: Builder, fake: &FakeOpenAi, key_env: &str) -> Builder {
    b.fake_provider(fake, key_env, KEY)
        .env(
            "MCPO__PROVIDERS__FAKE__MODELS",
            "fake-default,big-model,small-model",
        )
        .env("MCPO__PROVIDERS__FAKE__INPUT_PRICE_PER_MTOK", "2.0")
        .env("MCPO__PROVIDERS__FAKE__OUTPUT_PRICE_PER_MTOK", "4.0")
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 2)
        .env("MCPO__PROVIDERS__FAKE__RETRY_BACKOFF", "20ms")
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "2s")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn all_text(s: &Server, id: &str) -> String {
    let wf = s.get(&format!("/v1/workflows/{id}")).await.body.to_string();
    let res = s
        .get(&format!("/v1/workflows/{id}/result"))
        .await
        .body
        .to_string();
    let events = format!("{:?}", s.sse(id, None, 10 * SEC).await);
    let health = s.get("/health").await.body.to_string();
    format!("{wf}{res}{events}{health}")
}

#[tokio::test]
async fn requests_carry_model_messages_and_key_and_cost_follows_usage() {
    let fake = FakeOpenAi::start();
    fake.decompose_into(&["alpha part", "beta part", "gamma part"]);
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_A").start();
    let id = s
        .create(json!({"pattern": "research", "task": "quantum widgets",
                       "config": {"num_agents": 3, "primary_model": "big-model", "agent_model": "small-model"}}))
        .await;
    let wf = s.wait_status(&id, "completed", 30 * SEC).await;
    assert_eq!(wf["simulated"], false);
    assert_eq!(wf["provider"], "fake");

    let reqs = fake.requests_for("quantum widgets");
    assert_eq!(
        reqs.len(),
        6,
        "1 decomposition + 3 agents + 1 group + 1 final synthesis"
    );
    for r in &reqs {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
        let msgs = r.body["messages"].as_array().unwrap();
        assert_eq!(
            (msgs[0]["role"].as_str(), msgs[1]["role"].as_str()),
            (Some("system"), Some("user"))
        );
        let agent = r.user_prompt().contains("Your role:");
        let want = if agent { "small-model" } else { "big-model" };
        assert_eq!(r.model(), want, "model per role for {:?}", r.user_prompt());
    }
    assert_eq!(
        reqs.iter().filter(|r| r.model() == "small-model").count(),
        3
    );
    let subtasks: Vec<String> = reqs
        .iter()
        .filter(|r| r.user_prompt().contains("Your role:"))
        .map(|r| r.user_prompt())
        .collect();
    assert!(
        subtasks.iter().any(|p| p.ends_with("beta part")),
        "the decomposition's subtasks reach the agents"
    );

    // 100 prompt + 50 completion tokens per call at $2 / $4 per million.
    let per_call = (100.0 * 2.0 + 50.0 * 4.0) / 1e6;
    assert!(
        close(wf["total_cost_usd"].as_f64().unwrap(), 6.0 * per_call),
        "{}",
        wf["total_cost_usd"]
    );
    assert_eq!(
        wf["tokens"],
        json!({"input": 600, "output": 300, "total": 900})
    );
    let res = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    assert!(close(res["total_cost"].as_f64().unwrap(), 6.0 * per_call));
    for a in res["agent_results"].as_array().unwrap() {
        assert!(close(a["cost"].as_f64().unwrap(), per_call));
        assert_eq!(a["tokens"]["total"], 150);
        assert_eq!(a["model"], "small-model");
        assert_eq!(a["retries"], 0);
    }
    // Agent events carry tokens, cost, execution time and retries.
    let events = s.sse(&id, None, 10 * SEC).await;
    let done: Vec<&SseEvent> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("agent_completed"))
        .collect();
    assert_eq!(done.len(), 3);
    for e in done {
        let d = &e.data["data"];
        assert!(
            d["tokens"]["total"].is_u64()
                && d["cost"].is_f64()
                && d["execution_time"].is_f64()
                && d["retries"].is_u64(),
            "{d}"
        );
    }

    // The key never shows: not in responses, not in the log.
    assert!(!all_text(&s, &id).await.contains(KEY));
    assert!(!s.log().contains(KEY), "API key leaked into the log");
}

async fn one_agent(s: &Server, task: &str, provider: &str) -> (Value, Value) {
    let id = s
        .create(json!({"pattern": "search", "task": task,
                       "config": {"agent_types": ["text"], "enable_synthesis": false, "provider": provider}}))
        .await;
    let wf = s.wait_status(&id, "failed", 30 * SEC).await;
    let res = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(res.status, 200, "partial result kept");
    (wf, res.body)
}

#[tokio::test]
async fn each_provider_failure_is_retried_then_a_clear_agent_error() {
    let fake = FakeOpenAi::start();
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_B")
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "300ms")
        .env("MCPO__PROVIDERS__DEAD__KIND", "openai")
        .env("MCPO__PROVIDERS__DEAD__BASE_URL", "http://127.0.0.1:9/v1")
        .env("MCPO__PROVIDERS__DEAD__MODEL", "m")
        .env("MCPO__PROVIDERS__DEAD__API_KEY_ENV", "MCPO_TEST_KEY_B")
        .env("MCPO__PROVIDERS__DEAD__MAX_RETRIES", 2)
        .env("MCPO__PROVIDERS__DEAD__RETRY_BACKOFF", "20ms")
        .start();
    let modes: Vec<(&str, Behaviour, &str)> = vec![
        (
            "mode-500",
            Behaviour::Status {
                code: 500,
                retry_after: None,
            },
            "HTTP 500",
        ),
        (
            "mode-503",
            Behaviour::Status {
                code: 503,
                retry_after: None,
            },
            "HTTP 503",
        ),
        (
            "mode-429",
            Behaviour::Status {
                code: 429,
                retry_after: Some(1),
            },
            "HTTP 429",
        ),
        (
            "mode-hang",
            Behaviour::Hang(Duration::from_secs(5)),
            "timed out",
        ),
        ("mode-malformed", Behaviour::Malformed, "malformed"),
        ("mode-empty", Behaviour::EmptyChoices, "no choices"),
    ];
    for (task, behaviour, want) in modes {
        fake.set(behaviour);
        let (wf, res) = one_agent(&s, task, "fake").await;
        assert_eq!(wf["error"]["code"], "insufficient_agents", "{task}: {wf}");
        let reqs = fake.requests_for(task);
        assert_eq!(reqs.len(), 3, "{task}: one attempt + 2 retries");
        let err = res["agent_results"][0]["error"].as_str().unwrap();
        assert!(
            err.contains(want) && err.contains("after 3 attempts"),
            "{task}: {err}"
        );
        assert_eq!(res["agent_results"][0]["status"], "failed");
        if task == "mode-429" {
            // Retry-After: 1, clamped to the 300 ms call timeout (issue 12); our
            // own backoff would wait 20-80 ms.
            for w in reqs.windows(2) {
                assert!(
                    w[1].at - w[0].at >= Duration::from_millis(280),
                    "Retry-After honoured up to the call timeout"
                );
            }
        }
    }
    // Not retried: a client error.
    fake.set(Behaviour::Status {
        code: 400,
        retry_after: None,
    });
    let (_, res) = one_agent(&s, "mode-400", "fake").await;
    assert_eq!(fake.requests_for("mode-400").len(), 1);
    assert!(res["agent_results"][0]["error"]
        .as_str()
        .unwrap()
        .contains("HTTP 400"));
    // Connection refused.
    let (_, res) = one_agent(&s, "mode-refused", "dead").await;
    let err = res["agent_results"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("cannot reach provider") && err.contains("after 3 attempts"),
        "{err}"
    );

    let h = s.get("/health").await.body;
    assert_eq!(
        h["status"], "healthy",
        "provider failures do not hurt the service"
    );
    assert!(!s.log().contains("panicked"));
}

#[tokio::test]
async fn synthesis_needs_a_quorum_of_agents() {
    let fake = FakeOpenAi::start();
    fake.fail_prompts_containing("FAILME");
    fake.decompose_into(&["a fine", "b FAILME", "c fine", "d fine"]);
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_C")
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 0)
        .start();

    let ok = s
        .create(json!({"pattern": "research", "task": "quorum-met", "config": {"num_agents": 4}}))
        .await;
    s.wait_status(&ok, "completed", 30 * SEC).await;
    let res = s.get(&format!("/v1/workflows/{ok}/result")).await.body;
    let statuses: Vec<&str> = res["agent_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "completed").count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == "failed").count(), 1);
    assert!(res["final_synthesis"].is_string());

    let strict = s
        .create(json!({"pattern": "research", "task": "quorum-missed", "config": {"num_agents": 4, "min_successful_agents": 4}}))
        .await;
    let wf = s.wait_status(&strict, "failed", 30 * SEC).await;
    assert_eq!(wf["error"]["code"], "insufficient_agents");
    assert!(
        wf["error"]["message"].as_str().unwrap().contains("3 of 4"),
        "{}",
        wf["error"]
    );
    let res = s.get(&format!("/v1/workflows/{strict}/result")).await.body;
    assert_eq!(
        res["agent_results"].as_array().unwrap().len(),
        4,
        "partial results kept"
    );
    assert!(res["synthesis_results"].as_array().unwrap().is_empty());
    let synth_calls = fake
        .requests_for("quorum-missed")
        .iter()
        .filter(|r| r.user_prompt().contains("Findings to synthesise"))
        .count();
    assert_eq!(synth_calls, 0);
}

#[tokio::test]
async fn budget_stops_the_workflow_with_partial_results() {
    let fake = FakeOpenAi::start();
    // 100 prompt tokens at $100 per million: $0.01 per call.
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_D")
        .env("MCPO__PROVIDERS__FAKE__INPUT_PRICE_PER_MTOK", "100.0")
        .env("MCPO__PROVIDERS__FAKE__OUTPUT_PRICE_PER_MTOK", "0.0")
        .start();
    let id = s
        .create(json!({"pattern": "research", "task": "budgeted",
                       "config": {"num_agents": 5, "max_concurrent_agents": 1, "budget_usd": 0.025}}))
        .await;
    let wf = s.wait_status(&id, "failed", 30 * SEC).await;
    assert_eq!(wf["error"]["code"], "budget_exceeded");
    assert!(
        close(wf["total_cost_usd"].as_f64().unwrap(), 0.03),
        "{}",
        wf["total_cost_usd"]
    );
    let res = s.get(&format!("/v1/workflows/{id}/result")).await.body;
    assert_eq!(res["agent_results"].as_array().unwrap().len(), 2);
    assert!(close(res["total_cost"].as_f64().unwrap(), 0.03));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.requests_for("budgeted").len(),
        3,
        "no calls after the budget was reached"
    );

    // A token limit works the same way (150 tokens per call).
    let id = s
        .create(json!({"pattern": "research", "task": "token-capped",
                       "config": {"num_agents": 5, "max_concurrent_agents": 1, "max_tokens_total": 400}}))
        .await;
    let wf = s.wait_status(&id, "failed", 30 * SEC).await;
    assert_eq!(wf["error"]["code"], "budget_exceeded");
    assert_eq!(wf["tokens"]["total"], 450);
}

#[tokio::test]
async fn provider_quota_queues_calls_across_workflows() {
    let fake = FakeOpenAi::start();
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_E")
        .env("MCPO__PROVIDERS__FAKE__REQUESTS_PER_MINUTE", 600)
        .start();
    let body = |t: &str| json!({"pattern": "search", "task": t, "config": {"agent_types": ["text", "news", "academic"], "enable_synthesis": false}});
    // Before the first call could be granted. The server and the fake share the
    // machine's monotonic clock.
    let t0 = std::time::Instant::now();
    let a = s.create(body("quota-a")).await;
    let b = s.create(body("quota-b")).await;
    s.wait_status(&a, "completed", 30 * SEC).await;
    s.wait_status(&b, "completed", 30 * SEC).await;
    let mut at: Vec<_> = fake.requests().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 6);
    // 600/min, no burst: the k-th grant comes at least k × 100 ms after the first,
    // which is after t0, and a call arrives after its grant. Load can only delay
    // arrivals, so this holds however busy the machine is; two arrivals may still
    // land closer than 100 ms when the first of them was delayed in transit.
    // (1 ms: the limiter's nanosecond rounding.)
    for (k, arrived) in at.iter().enumerate() {
        let earliest =
            Duration::from_millis(100 * k as u64).saturating_sub(Duration::from_millis(1));
        assert!(
            *arrived - t0 >= earliest,
            "call {k} arrived {:?} after the start, before its turn at {earliest:?}",
            *arrived - t0
        );
    }
    // The six calls were asked for together, so someone waited, and the events
    // report the very waits the limiter measured (as /metrics does).
    let mut queued = 0.0;
    for id in [&a, &b] {
        for e in s.sse(id, None, 10 * SEC).await {
            if e.event.as_deref() == Some("agent_completed") {
                queued += e.data["data"]["queued_time"].as_f64().unwrap();
            }
        }
    }
    assert!(queued > 0.0, "waiting time shows in events: {queued}");
    // And in /metrics, per provider: the wait, the calls and their tokens.
    let m = crate::common::prometheus::samples(&crate::common::prometheus::scrape(&s).await);
    assert_eq!(m[r#"llm_queue_wait_seconds_count{provider="fake"}"#], 6.0);
    let waited = m[r#"llm_queue_wait_seconds_sum{provider="fake"}"#];
    assert!(
        (waited - queued).abs() < 0.01,
        "metrics {waited} vs events {queued}"
    );
    let sum = |prefix: &str, suffix: &str| -> f64 {
        m.iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.ends_with(suffix))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(
        sum(r#"llm_requests_total{provider="fake","#, r#"outcome="ok"}"#),
        6.0
    );
    assert!(sum(r#"llm_tokens_total{provider="fake","#, r#"kind="output"}"#) > 0.0);
}

#[tokio::test]
async fn cancel_aborts_in_flight_provider_requests() {
    let fake = FakeOpenAi::start();
    fake.set(Behaviour::Hang(Duration::from_secs(30)));
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_F")
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "400ms")
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 5)
        .start();
    let id = s
        .create(json!({"pattern": "search", "task": "cancel-me", "config": {"agent_types": ["text", "news", "academic"]}}))
        .await;
    let t = std::time::Instant::now();
    while fake.requests_for("cancel-me").len() < 3 {
        assert!(t.elapsed() < 10 * SEC, "agents did not call the provider");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = s
        .post(&format!("/v1/workflows/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200);
    let seen = fake.requests_for("cancel-me").len();
    // Without the abort, timeouts (400 ms) would trigger retries within this wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fake.requests_for("cancel-me").len(),
        seen,
        "requests after cancel"
    );
    assert_eq!(s.workflow(&id).await["status"], "cancelled");
}

#[tokio::test]
async fn missing_api_key_is_a_422_and_a_check_config_warning() {
    let fake = FakeOpenAi::start();
    let unset = "MCPO_TEST_SURELY_UNSET_KEY";
    let s = server()
        .env("MCPO__PROVIDERS__NOKEY__KIND", "openai")
        .env("MCPO__PROVIDERS__NOKEY__BASE_URL", &fake.base_url)
        .env("MCPO__PROVIDERS__NOKEY__MODEL", "m")
        .env("MCPO__PROVIDERS__NOKEY__API_KEY_ENV", unset)
        .start();
    let r = s
        .post(
            "/v1/workflows",
            &json!({"pattern": "research", "task": "t", "config": {"provider": "nokey"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "provider_unavailable");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(unset));
    assert_eq!(
        s.get("/v1/workflows").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The simulated provider still works.
    s.create(research("fine", 3)).await;

    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .current_dir(&s.dir)
        .env("MCPO__PROVIDERS__NOKEY__KIND", "openai")
        .env("MCPO__PROVIDERS__NOKEY__BASE_URL", &fake.base_url)
        .env("MCPO__PROVIDERS__NOKEY__MODEL", "m")
        .env("MCPO__PROVIDERS__NOKEY__API_KEY_ENV", unset)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning") && err.contains(unset), "{err}");
}

#[tokio::test]
async fn a_provider_echoing_the_key_does_not_leak_it() {
    let fake = FakeOpenAi::start();
    fake.set(Behaviour::EchoAuth);
    let s = with_fake(server(), &fake, "MCPO_TEST_KEY_G").start();
    let (_, res) = one_agent(&s, "echo-auth", "fake").await;
    let err = res["agent_results"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("HTTP 401") && err.contains("[redacted]"),
        "{err}"
    );
    let id = res["workflow_id"].as_str().unwrap();
    assert!(!all_text(&s, id).await.contains(KEY));
    assert!(!s.log().contains(KEY));
}

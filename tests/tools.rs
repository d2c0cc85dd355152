//! Agents with tools, against MCP servers nobody here wrote: the
//! official reference fetch server (PyPI `mcp-server-fetch`, pinned in
//! tests/tools/requirements.txt) fetching pages from a loopback web site the
//! test starts, and the official reference filesystem server (npm
//! `@modelcontextprotocol/server-filesystem`, pinned in tests/tools/package.json)
//! over tests/tools/kb as the knowledge base — both started by the orchestrator
//! from config, as an operator would. scripts/test.sh installs them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::fake_openai::FakeOpenAi;
use crate::common::pages::{article, Pages};
use crate::common::*;

const KEY: &str = "sk-tools-test";

fn venv() -> PathBuf {
    std::env::var_os("MCPO_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/mcpo-tools-venv"))
}

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools")
}

/// The fetch server's executable, warmed up once: its HTML extractor installs
/// its Node part on first use, which must not happen inside a timed tool call.
fn fetch_server() -> String {
    static WARM: std::sync::Once = std::sync::Once::new();
    let bin = venv().join("bin/mcp-server-fetch");
    assert!(
        bin.exists(),
        "{} is missing: scripts/test.sh installs tests/tools/requirements.txt into {}",
        bin.display(),
        venv().display()
    );
    WARM.call_once(|| {
        let ok = std::process::Command::new(venv().join("bin/python"))
            .args(["-c", "from readabilipy import simple_json_from_html_string as f; f('<html><body><p>warm</p></body></html>', use_readability=True)"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "warming up the fetch server's HTML extractor failed");
    });
    bin.display().to_string()
}

fn filesystem_server() -> String {
    let bin = tools_dir().join("node_modules/.bin/mcp-server-filesystem");
    assert!(
        bin.exists(),
        "{} is missing: scripts/test.sh runs npm ci in tests/tools",
        bin.display()
    );
    bin.display().to_string()
}

/// The fake model as provider, the fetch server as `web` (news agents may
/// fetch) and the filesystem server as `kb` over tests/tools/kb (academic
/// agents may read and search it).
fn with_tools(b: Builder, fake: &FakeOpenAi) -> Builder {
    with_model(b, fake)
        .env("MCPO__TOOLS__SERVERS__WEB__COMMAND", fetch_server())
        .env(
            "MCPO__TOOLS__SERVERS__WEB__ARGS",
            "[\"--ignore-robots-txt\", \"--allow-private-ips\"]",
        )
        .env("MCPO__TOOLS__SERVERS__WEB__TIMEOUT", "30s")
        .env("MCPO__TOOLS__SERVERS__KB__COMMAND", filesystem_server())
        .env(
            "MCPO__TOOLS__SERVERS__KB__ARGS",
            format!("[\"{}\"]", tools_dir().join("kb").display()),
        )
        .env("MCPO__TOOLS__AGENTS__NEWS", "[\"web.fetch\"]")
        .env(
            "MCPO__TOOLS__AGENTS__ACADEMIC",
            "[\"kb.read_text_file\", \"kb.search_files\"]",
        )
}

/// The fake model as the default provider.
fn with_model(b: Builder, fake: &FakeOpenAi) -> Builder {
    b.env("MCPO__PROVIDERS__FAKE__KIND", "openai")
        .env("MCPO__PROVIDERS__FAKE__BASE_URL", &fake.base_url)
        .env("MCPO__PROVIDERS__FAKE__MODEL", "fake-tools")
        .env("MCPO__PROVIDERS__FAKE__API_KEY_ENV", "MCPO_TOOLS_TEST_KEY")
        .env("MCPO_TOOLS_TEST_KEY", KEY)
        .env("MCPO__PROVIDERS__FAKE__MAX_RETRIES", 0)
        .env("MCPO__PROVIDERS__FAKE__TIMEOUT", "10s")
        .env("MCPO__EXECUTION__DEFAULT_PROVIDER", "fake")
}

fn search(task: &str, types: &[&str], extra: Value) -> Value {
    let mut config = json!({"agent_types": types});
    if let (Some(c), Value::Object(m)) = (config.as_object_mut(), extra) {
        c.extend(m);
    }
    json!({"pattern": "search", "task": task, "config": config})
}

/// The value of the Prometheus sample `name` with these labels (and the
/// process-wide `instance` label).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (inner, value) = rest.split_once("} ")?;
        let have: Vec<&str> = inner
            .split(',')
            .filter(|l| !l.starts_with("instance="))
            .collect();
        let matches = have.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| have.contains(&format!("{k}=\"{v}\"").as_str()));
        matches.then(|| value.trim().parse().ok())?
    })
}

async fn result(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/v1/workflows/{id}/result")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn healthy_tools(s: &Server, within: Duration) -> Value {
    let t = std::time::Instant::now();
    loop {
        let h = s.get("/health").await.body;
        if h["components"]["tools"]["status"] == "healthy" {
            return h;
        }
        assert!(t.elapsed() < within, "tools never became healthy: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_search_report_cites_the_page_a_tool_fetched() {
    let pages = Pages::start();
    let url = pages.page(
        "/raft.html",
        &article(
            "Raft in practice",
            &["Raft keeps a replicated log consistent: a leader appends entries and followers copy them. Quorum writes survive the loss of a minority."],
        ),
    );
    let fake = FakeOpenAi::start();
    let kb_file = tools_dir().join("kb/raft.md");
    fake.script_tools(vec![vec![
        ("web__fetch", json!({"url": url})),
        ("kb__read_text_file", json!({"path": kb_file})),
    ]]);
    let s = with_tools(server(), &fake)
        .env("MCPO__TOOLS__SERVERS__WEB__COST_PER_CALL", "0.25")
        .start();
    let h = healthy_tools(&s, 30 * SEC).await;
    assert_eq!(h["components"]["tools"]["servers"]["web"]["tools"], 1);

    let id = s
        .create(search(
            "consensus protocols",
            &["news", "academic"],
            json!({}),
        ))
        .await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let r = result(&s, &id).await;

    // Each agent got only its own type's tools, and the results reached the model.
    let firsts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| !r.offered_tools().is_empty())
        .map(|r| r.offered_tools())
        .collect();
    assert!(
        firsts.contains(&vec!["web__fetch".to_string()]),
        "{firsts:?}"
    );
    assert!(firsts
        .iter()
        .any(|t| t.contains(&"kb__read_text_file".to_string())
            && t.contains(&"kb__search_files".to_string())
            && !t.contains(&"kb__write_file".to_string())));
    let seen: Vec<String> = fake
        .requests()
        .iter()
        .flat_map(|r| r.tool_messages())
        .collect();
    assert!(
        seen.iter()
            .any(|m| m.contains("Raft keeps a replicated log")),
        "{seen:?}"
    );
    assert_eq!(pages.hits("/raft.html"), 1);

    // Numbered sources: the fetched page (news agent, web.fetch) and the URL the
    // knowledge-base file names (academic agent, kb.read_text_file).
    let sources = r["sources"].as_array().expect("sources").clone();
    let page = sources
        .iter()
        .find(|s| s["url"] == url.as_str())
        .expect("page source");
    assert_eq!(page["agent"], "news_agent_01");
    assert_eq!(page["tool"], "web.fetch");
    assert_eq!(page["n"], 1);
    let kb = sources
        .iter()
        .find(|s| s["url"] == "https://kb.example/notes/raft-consensus")
        .expect("kb source");
    assert_eq!(
        (kb["agent"].as_str(), kb["tool"].as_str()),
        (Some("academic_agent_02"), Some("kb.read_text_file"))
    );
    for (i, s) in sources.iter().enumerate() {
        assert_eq!(s["n"], i + 1);
        assert!(s["title"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let news = r["agent_results"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["agent_type"] == "news"))
        .expect("news agent");
    assert_eq!(news["tools_used"], json!(["web.fetch"]));
    // cost_per_call: in the agent's cost and the total, and its own row of the
    // cost breakdown.
    assert_eq!(
        news["tool_usage"],
        json!([{"server": "web", "calls": 1, "cost": 0.25}])
    );
    assert!(news["cost"].as_f64().unwrap_or(0.0) >= 0.25);
    assert!(r["total_cost"].as_f64().unwrap_or(0.0) >= 0.25);
    let costs = s.get("/v1/analytics/costs").await.body;
    assert_eq!(costs["by_model"]["tool:web"]["calls"], 1, "{costs}");
    assert_eq!(
        costs["by_model"]["tool:web"]["total_cost_usd"], 0.25,
        "{costs}"
    );

    // The synthesis was shown the numbered sources and cites them; the report
    // names each agent's tools and ends with the sources.
    let synth = fake
        .requests()
        .into_iter()
        .find(|r| r.user_prompt().contains("Findings to synthesise"))
        .expect("synthesis request");
    assert!(
        synth.user_prompt().contains(&format!("[1] {url} <{url}>")),
        "{}",
        synth.user_prompt()
    );
    assert!(r["final_synthesis"].as_str().unwrap_or("").contains('['));
    let report = r["documents"][0]["content"].as_str().unwrap_or("");
    assert!(report.contains("_Tools used: web.fetch_"), "{report}");
    let tail = report
        .split("## Sources")
        .nth(1)
        .expect("a Sources section");
    assert!(
        tail.contains(&format!(
            "1. [{url}]({url}) — found by news_agent_01 with web.fetch"
        )),
        "{tail}"
    );

    // The old API's result shape carries the sources too.
    let old = s
        .post("/tools/get_orchestration_status", &json!({"task_id": id}))
        .await;
    assert_eq!(
        old.body["result"]["sources"], r["sources"],
        "{:?}",
        old.body
    );

    // Tool calls are events (server, tool, duration, ok, size; never arguments)
    // and metrics labelled by configured names.
    let events = s.sse(&id, None, 10 * SEC).await;
    let done: Vec<&SseEvent> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("tool_call_completed"))
        .collect();
    assert_eq!(done.len(), 2, "{events:?}");
    for e in &done {
        assert_eq!(e.data["data"]["ok"], true, "{:?}", e.data);
        assert!(e.data["data"]["size"].as_u64().unwrap_or(0) > 0);
        assert!(e.data["data"]["duration"].is_number());
    }
    assert!(events
        .iter()
        .any(|e| e.event.as_deref() == Some("tool_call_started")));
    assert!(!events
        .iter()
        .any(|e| e.raw.contains("arguments") || e.raw.contains("raft.md\"")));
    let metrics = s.get("/metrics").await.body;
    let text = metrics.as_str().unwrap_or("");
    let ok = [("server", "web"), ("tool", "fetch"), ("outcome", "ok")];
    assert_eq!(sample(text, "tool_calls_total", &ok), Some(1.0), "{text}");
    let kb = [("server", "kb"), ("tool", "read_text_file")];
    assert_eq!(
        sample(text, "tool_call_duration_seconds_count", &kb),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_tool_outside_the_agent_types_list_is_refused() {
    let fake = FakeOpenAi::start();
    let s = with_tools(server(), &fake).start();
    // Academic agents may read the knowledge base, not fetch pages.
    let r = s
        .post(
            "/v1/workflows",
            &search(
                "q",
                &["academic"],
                json!({"tools": ["kb.search_files", "web.fetch"]}),
            ),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["field"], "config.tools[1]");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("only narrow"));
    // Narrowing is fine; so is the old route's refusal naming the field.
    let ok = s
        .post(
            "/v1/workflows",
            &search("q", &["academic"], json!({"tools": ["kb.search_files"]})),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    let old = s
        .post(
            "/tools/orchestrate_search",
            &json!({"query": "q", "agent_types": ["academic"], "tools": ["kb.*"]}),
        )
        .await;
    assert_eq!(old.status, 400, "{:?}", old.body);
    assert!(old.body["error"]
        .as_str()
        .unwrap_or("")
        .contains("tools[0]"));
}

#[tokio::test]
async fn a_tool_that_times_out_is_a_tool_error_the_model_hears_about() {
    let pages = Pages::start();
    let url = pages.page("/slow.html", &article("Slow", &["never arrives"]));
    pages.hold("/slow.html");
    let fake = FakeOpenAi::start();
    fake.script_tools(vec![vec![("web__fetch", json!({"url": url}))]]);
    let s = with_tools(server(), &fake)
        .env("MCPO__TOOLS__SERVERS__WEB__TIMEOUT", "1s")
        .start();
    healthy_tools(&s, 30 * SEC).await;
    let id = s.create(search("slow page", &["news"], json!({}))).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    pages.release("/slow.html");
    let seen: Vec<String> = fake
        .requests()
        .iter()
        .flat_map(|r| r.tool_messages())
        .collect();
    assert!(
        seen.iter()
            .any(|m| m.starts_with("Tool error: no answer within 1s")),
        "{seen:?}"
    );
    let r = result(&s, &id).await;
    assert_eq!(r["agent_results"][0]["status"], "completed");
    assert_eq!(r["sources"], json!([]));
    let events = s.sse(&id, None, 10 * SEC).await;
    let done = events
        .iter()
        .find(|e| e.event.as_deref() == Some("tool_call_completed"))
        .expect("tool_call_completed");
    assert_eq!(done.data["data"]["ok"], false);
    let metrics = s.get("/metrics").await.body;
    let text = metrics.as_str().unwrap_or("");
    let labels = [("server", "web"), ("tool", "fetch"), ("outcome", "timeout")];
    assert_eq!(
        sample(text, "tool_calls_total", &labels),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_result_over_the_size_cap_reaches_the_model_cut() {
    let pages = Pages::start();
    let long = "Consensus needs a quorum of replicas to agree. ".repeat(400);
    let url = pages.page("/long.html", &article("Long", &[&long]));
    let fake = FakeOpenAi::start();
    fake.script_tools(vec![vec![(
        "web__fetch",
        json!({"url": url, "max_length": 100000}),
    )]]);
    let s = with_tools(server(), &fake)
        .env("MCPO__TOOLS__MAX_RESULT_BYTES", 2048)
        .start();
    healthy_tools(&s, 30 * SEC).await;
    let id = s.create(search("long page", &["news"], json!({}))).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let seen: Vec<String> = fake
        .requests()
        .iter()
        .flat_map(|r| r.tool_messages())
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let m = &seen[0];
    assert!(m.contains("[truncated: 2048 of "), "{m}");
    assert!(m.len() < 2048 + 100, "{} bytes reached the model", m.len());
    let events = s.sse(&id, None, 10 * SEC).await;
    let done = events
        .iter()
        .find(|e| e.event.as_deref() == Some("tool_call_completed"))
        .expect("tool_call_completed");
    assert!(
        done.data["data"]["size"].as_u64().unwrap_or(0) > 15_000,
        "{:?}",
        done.data
    );
}

/// Children of `pid` whose command line mentions `needle`.
fn children_running(pid: i32, needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // pid (comm) state ppid …: the comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        if ppid == Some(pid) && String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(child);
        }
    }
    out
}

#[tokio::test]
async fn a_tool_server_down_at_start_comes_up_later_and_is_restarted_when_it_dies() {
    let pages = Pages::start();
    let url = pages.page(
        "/late.html",
        &article("Late", &["The late server fetched this page."]),
    );
    let fake = FakeOpenAi::start();
    fake.script_tools(vec![vec![("late__fetch", json!({"url": url}))]]);
    let dir = new_dir();
    let script = dir.join("late-server.sh");
    let fetch = fetch_server();
    let s = with_model(server().dir(&dir), &fake)
        .env("MCPO__TOOLS__SERVERS__LATE__COMMAND", script.display())
        .env(
            "MCPO__TOOLS__SERVERS__LATE__ARGS",
            "[\"--ignore-robots-txt\", \"--allow-private-ips\"]",
        )
        .env("MCPO__TOOLS__AGENTS__NEWS", "[\"late.fetch\"]")
        .start();
    // Its executable does not exist yet: the service runs, degraded, naming it.
    let h = s.get("/health").await.body;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(
        h["components"]["tools"]["servers"]["late"]["status"],
        "down"
    );
    assert!(h["components"]["tools"]["error"]
        .as_str()
        .unwrap_or("")
        .contains("late: cannot start"));
    // A news agent meanwhile answers without tools.
    let id = s.create(search("before", &["news"], json!({}))).await;
    s.wait_status(&id, "completed", 30 * SEC).await;
    assert!(fake.requests().iter().all(|r| r.offered_tools().is_empty()));

    std::fs::write(&script, format!("#!/bin/sh\nexec {fetch} \"$@\"\n")).unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    healthy_tools(&s, 60 * SEC).await;
    let id = s.create(search("after", &["news"], json!({}))).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert_eq!(pages.hits("/late.html"), 1);
    assert_eq!(result(&s, &id).await["sources"][0]["url"], url.as_str());

    // Killed, it is started again by its supervisor.
    let first = children_running(s.pid(), "mcp-server-fetch");
    assert_eq!(first.len(), 1, "{first:?}");
    // SAFETY: a signal to the test server's own child.
    unsafe { libc::kill(first[0], libc::SIGKILL) };
    let t = std::time::Instant::now();
    loop {
        let now = children_running(s.pid(), "mcp-server-fetch");
        if now.len() == 1 && now[0] != first[0] {
            break;
        }
        assert!(
            t.elapsed() < 60 * SEC,
            "no new tool server process: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    healthy_tools(&s, 60 * SEC).await;
    assert!(s.log().contains("tool server down; reconnecting"));
    let id = s
        .create(search("after restart", &["news"], json!({})))
        .await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert_eq!(pages.hits("/late.html"), 2);
}

#[tokio::test]
async fn sigkill_between_two_tool_rounds_resumes_without_repeating_a_committed_step() {
    let pages = Pages::start();
    let a = pages.page(
        "/a.html",
        &article("A", &["First round page, about leases."]),
    );
    let b = pages.page(
        "/b.html",
        &article("B", &["Second round page, about fencing."]),
    );
    pages.hold("/b.html");
    let fake = FakeOpenAi::start();
    fake.script_tools(vec![
        vec![("web__fetch", json!({"url": a}))],
        vec![("web__fetch", json!({"url": b}))],
    ]);
    let dir = new_dir();
    let mut s = with_tools(server().dir(&dir), &fake).start();
    healthy_tools(&s, 30 * SEC).await;
    let id = s.create(search("two rounds", &["news"], json!({}))).await;
    // Round 2's fetch is under way: turn 1, its tool call and turn 2 are committed.
    pages.wait_hits("/b.html", 1, 60 * SEC).await;
    s.kill9();
    pages.release("/b.html");
    let before = fake.calls_by_step_key();
    let turn = |k: u32| format!("{id}/agent/1/turn/{k}");
    assert_eq!(before.get(&turn(1)).map(Vec::len), Some(1));
    assert_eq!(before.get(&turn(2)).map(Vec::len), Some(1));

    let s = with_tools(server().dir(&dir), &fake).start();
    s.wait_status(&id, "completed", 60 * SEC).await;
    // Reused, not called again: both committed turns and round 1's fetch. The
    // fetch that was in flight at the kill had no committed answer: made again.
    assert_resumed_without_repeats(&fake.calls_by_step_key(), turn, &pages);
    let r = result(&s, &id).await;
    let urls: Vec<&str> = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["url"].as_str())
        .collect();
    assert_eq!(urls, vec![a.as_str(), b.as_str()]);
    assert_eq!(r["agent_results"][0]["tools_used"], json!(["web.fetch"]));
    let wf = s.workflow(&id).await;
    assert_eq!(wf["resumes"], 1);
}

/// BENCHMARKS.md, "Tool calls": what one tool round costs on top of the model
/// turn and the tool server's own time. A news agent makes 16 rounds of one fast
/// call (the filesystem server's `list_allowed_directories`) against the fake
/// model; the same workflow narrowed to no tools is the baseline. Prints figures;
/// asserts only that every round happened.
#[tokio::test]
#[ignore = "benchmark: run on its own with --ignored --nocapture"]
async fn bench_tool_call_overhead() {
    const ROUNDS: usize = 16;
    const RUNS: usize = 5;
    let fake = FakeOpenAi::start();
    fake.script_tools(vec![
        vec![("kb__list_allowed_directories", json!({}))];
        ROUNDS
    ]);
    let s = with_tools(server(), &fake)
        .env(
            "MCPO__TOOLS__AGENTS__NEWS",
            "[\"kb.list_allowed_directories\"]",
        )
        .env("MCPO__TOOLS__MAX_TOOL_ROUNDS", ROUNDS)
        .start();
    healthy_tools(&s, 30 * SEC).await;
    let timed = |narrow: Option<Value>| {
        let s = &s;
        async move {
            let extra = narrow.map_or(json!({}), |t| json!({ "tools": t }));
            let t = std::time::Instant::now();
            let id = s.create(search("bench", &["news"], extra)).await;
            s.wait_status(&id, "completed", 120 * SEC).await;
            t.elapsed().as_secs_f64()
        }
    };
    let _warm = timed(None).await;
    let mut with_tools_s = Vec::new();
    let mut without = Vec::new();
    for _ in 0..RUNS {
        with_tools_s.push(timed(None).await);
        without.push(timed(Some(json!([]))).await);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (tw, tn) = (median(&mut with_tools_s), median(&mut without));
    let metrics = s.get("/metrics").await.body;
    let text = metrics.as_str().unwrap_or("").to_string();
    let kb = [("server", "kb"), ("tool", "list_allowed_directories")];
    let calls = sample(&text, "tool_call_duration_seconds_count", &kb).unwrap_or(0.0);
    let tool_s = sample(&text, "tool_call_duration_seconds_sum", &kb).unwrap_or(0.0);
    assert_eq!(calls as usize, ROUNDS * (RUNS + 1));
    let per_round = (tw - tn) / ROUNDS as f64;
    let tool_mean = tool_s / calls;
    let commit_n = sample(&text, "llm_step_commit_seconds_count", &[]).unwrap_or(0.0);
    let commit_mean = sample(&text, "llm_step_commit_seconds_sum", &[]).unwrap_or(0.0) / commit_n;
    println!(
        "tool rounds: workflow {tw:.3} s with {ROUNDS} rounds, {tn:.3} s without tools (medians of {RUNS}); \
         per round {:.2} ms: the MCP call {:.2} ms (server and transport), two step commits {:.2} ms \
         (answer to committed, mean {:.2} ms each), the rest (model turn on the fake, loop, events) {:.2} ms",
        per_round * 1e3,
        tool_mean * 1e3,
        2.0 * commit_mean * 1e3,
        commit_mean * 1e3,
        (per_round - tool_mean - 2.0 * commit_mean) * 1e3
    );
}

/// The stdlib MCP fixture of tests/tools/kb_http.py on a free port; stopped
/// when dropped.
struct HttpKb {
    child: std::process::Child,
    url: String,
    log: PathBuf,
}

impl HttpKb {
    fn start(dir: &Path) -> HttpKb {
        use std::io::BufRead;
        let log = dir.join("kb-calls.jsonl");
        let mut child = std::process::Command::new("python3")
            .arg(tools_dir().join("kb_http.py"))
            .arg("0")
            .arg(&log)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs tests/tools/kb_http.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the fixture prints its port");
        let port = line
            .trim()
            .strip_prefix("port ")
            .expect("port line")
            .to_string();
        HttpKb {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            log,
        }
    }

    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for HttpKb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_http_tool_server_gets_its_headers_and_each_calls_step_key() {
    let dir = new_dir();
    let kb = HttpKb::start(&dir);
    let fake = FakeOpenAi::start();
    fake.script_tools(vec![vec![("search__search", json!({"q": "leases"}))]]);
    let s = with_model(server(), &fake)
        .env("MCPO__TOOLS__SERVERS__SEARCH__URL", &kb.url)
        .env(
            "MCPO__TOOLS__SERVERS__SEARCH__HEADERS",
            "{Authorization = \"Bearer ${MCPO_KB_TEST_TOKEN}\"}",
        )
        .env("MCPO_KB_TEST_TOKEN", "kb-token-1")
        .env("MCPO__TOOLS__AGENTS__NEWS", "[\"search.*\"]")
        .start();
    healthy_tools(&s, 30 * SEC).await;
    let id = s.create(search("leases", &["news"], json!({}))).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    let calls = kb.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let key = format!("{id}/agent/1/tool/1/0");
    assert_eq!(calls[0]["authorization"], "Bearer kb-token-1");
    assert_eq!(calls[0]["idempotency_key"], key.as_str());
    assert_eq!(calls[0]["meta"]["mcp-orchestrator/step-key"], key.as_str());
    assert_eq!(calls[0]["arguments"], json!({"q": "leases"}));
    // A structured hit becomes a titled source.
    let r = result(&s, &id).await;
    assert_eq!(
        r["sources"],
        json!([{"n": 1, "url": "https://kb.example/hits/leases", "title": "Leases and fencing",
                "agent": "news_agent_01", "tool": "search.search"}])
    );
    // The token never shows in the printed config.
    let out = std::process::Command::new(BIN)
        .args(["check-config"])
        .env("MCPO__TOOLS__SERVERS__SEARCH__URL", &kb.url)
        .env(
            "MCPO__TOOLS__SERVERS__SEARCH__HEADERS",
            "{Authorization = \"Bearer literal-secret\"}",
        )
        .current_dir(&dir)
        .output()
        .expect("check-config");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("literal-secret"), "{text}");
    assert!(text.contains("Authorization = \"[redacted]\""), "{text}");
    // check-config refuses a section naming a server that is not configured.
    let bad = std::process::Command::new(BIN)
        .args(["check-config"])
        .env("MCPO__TOOLS__AGENTS__NEWS", "[\"nosuch.fetch\"]")
        .current_dir(&dir)
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(!bad.status.success());
    assert!(text.contains("tools.agents.news[0]"), "{text}");
}

fn research(task: &str, extra: Value) -> Value {
    let mut config = json!({"num_agents": 3});
    if let (Some(c), Value::Object(m)) = (config.as_object_mut(), extra) {
        c.extend(m);
    }
    json!({"pattern": "research", "task": task, "config": config})
}

const SUBTASKS: [&str; 3] = ["leases", "fencing tokens", "clock skew"];

#[tokio::test]
async fn a_decomposer_with_a_tool_looks_up_first_and_splits_after_reading() {
    let dir = new_dir();
    let kb = HttpKb::start(&dir);
    let fake = FakeOpenAi::start();
    fake.decompose_into(&SUBTASKS);
    fake.script_tools(vec![vec![("search__search", json!({"q": "leases"}))]]);
    // `default` is for agents: only the explicit `decomposer` entry gives the
    // decomposer its tool, and the research agents get none.
    let s = with_model(server(), &fake)
        .env("MCPO__TOOLS__SERVERS__SEARCH__URL", &kb.url)
        .env("MCPO__TOOLS__AGENTS__DECOMPOSER", "[\"search.search\"]")
        .start();
    healthy_tools(&s, 30 * SEC).await;
    let id = s.create(research("leases in practice", json!({}))).await;
    s.wait_status(&id, "completed", 60 * SEC).await;

    // Turn 1 offered the tool and asked for it; the call carried the step key;
    // turn 2 saw its result and answered with the subtasks.
    let calls = kb.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let tool_key = format!("{id}/decompose/tool/1/0");
    assert_eq!(calls[0]["idempotency_key"], tool_key.as_str());
    let by_key = fake.calls_by_step_key();
    let turn = |k: u32| format!("{id}/decompose/turn/{k}");
    let t1 = &by_key[&turn(1)];
    assert_eq!(t1.len(), 1);
    assert_eq!(t1[0].offered_tools(), vec!["search__search".to_string()]);
    assert!(t1[0].is_decomposition());
    let t2 = &by_key[&turn(2)];
    assert_eq!(t2.len(), 1);
    assert!(t2[0].tool_messages()[0].contains("1 hit for leases"));
    assert!(!by_key.contains_key(&format!("{id}/decompose")));
    assert!(fake
        .requests()
        .iter()
        .filter(|r| !r.is_decomposition())
        .all(|r| r.offered_tools().is_empty()));

    let r = result(&s, &id).await;
    let want: Vec<String> = SUBTASKS
        .iter()
        .map(|t| format!("{t} (after 1 tool results)"))
        .collect();
    assert_eq!(r["subtasks"], json!(want));
    assert_eq!(r["decomposition"]["tools_used"], json!(["search.search"]));
    assert_eq!(
        r["decomposition"]["tool_usage"],
        json!([{"server": "search", "calls": 1, "cost": 0.0}])
    );
    // Its source is the workflow's source [1], credited to the decomposer, and
    // reaches the synthesis prompt and the report's Sources.
    let hit = "https://kb.example/hits/leases";
    assert_eq!(
        r["sources"],
        json!([{"n": 1, "url": hit, "title": "Leases and fencing",
                "agent": "decomposer", "tool": "search.search"}])
    );
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.user_prompt().contains("Findings to synthesise")
            && r.user_prompt()
                .contains(&format!("[1] Leases and fencing <{hit}>"))));
    let report = r["documents"][0]["content"].as_str().unwrap_or("");
    let tail = report
        .split("## Sources")
        .nth(1)
        .expect("a Sources section");
    assert!(tail.contains(hit), "{tail}");
    assert!(tail.contains("decomposer"), "{tail}");
    let events = s.sse(&id, None, 10 * SEC).await;
    let done: Vec<&SseEvent> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("tool_call_completed"))
        .collect();
    assert_eq!(done.len(), 1, "{events:?}");
    assert_eq!(done[0].data["data"]["agent_id"], "decomposer");
    assert_eq!(done[0].data["data"]["step_key"], tool_key.as_str());
    assert_eq!(done[0].data["data"]["ok"], true);
}

#[tokio::test]
async fn a_request_narrowing_away_the_decomposers_tool_gets_a_plain_decomposition() {
    let dir = new_dir();
    let (kb, other) = (HttpKb::start(&dir), HttpKb::start(&new_dir()));
    let fake = FakeOpenAi::start();
    fake.decompose_into(&SUBTASKS);
    fake.script_tools(vec![vec![("search__search", json!({"q": "leases"}))]]);
    let s = with_model(server(), &fake)
        .env("MCPO__TOOLS__SERVERS__SEARCH__URL", &kb.url)
        .env("MCPO__TOOLS__SERVERS__OTHER__URL", &other.url)
        .env("MCPO__TOOLS__AGENTS__DECOMPOSER", "[\"search.search\"]")
        .env("MCPO__TOOLS__AGENTS__RESEARCH", "[\"other.search\"]")
        .start();
    healthy_tools(&s, 30 * SEC).await;
    // A research request may name the decomposer's tools, not others.
    let wide = s
        .post(
            "/v1/workflows",
            &research("q", json!({"tools": ["search.search", "web.fetch"]})),
        )
        .await;
    assert_eq!(wide.status, 400, "{:?}", wide.body);
    assert_eq!(wide.body["error"]["field"], "config.tools[1]");
    let id = s
        .create(research(
            "leases narrowed",
            json!({"tools": ["other.search"]}),
        ))
        .await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert!(kb.calls().is_empty(), "{:?}", kb.calls());
    let by_key = fake.calls_by_step_key();
    let plain = &by_key[&format!("{id}/decompose")];
    assert_eq!(plain.len(), 1);
    assert!(plain[0].offered_tools().is_empty());
    assert!(!by_key.contains_key(&format!("{id}/decompose/turn/1")));
    let r = result(&s, &id).await;
    assert_eq!(r["subtasks"], json!(SUBTASKS));
    assert!(r["decomposition"].get("tools_used").is_none(), "{r}");
    // The agents kept their own (narrowed) tool.
    assert!(fake
        .requests()
        .iter()
        .filter(|r| !r.is_decomposition())
        .any(|r| r.offered_tools() == vec!["other__search".to_string()]));
}

#[tokio::test]
async fn sigkill_between_the_decomposers_tool_rounds_repeats_no_committed_step() {
    let pages = Pages::start();
    let a = pages.page("/a.html", &article("A", &["First page, about leases."]));
    let b = pages.page("/b.html", &article("B", &["Second page, about fencing."]));
    pages.hold("/b.html");
    let fake = FakeOpenAi::start();
    fake.decompose_into(&SUBTASKS);
    fake.script_tools(vec![
        vec![("web__fetch", json!({"url": a}))],
        vec![("web__fetch", json!({"url": b}))],
    ]);
    let dir = new_dir();
    let decomposer = |b: Builder| b.env("MCPO__TOOLS__AGENTS__DECOMPOSER", "[\"web.fetch\"]");
    let mut s = decomposer(with_tools(server().dir(&dir), &fake)).start();
    healthy_tools(&s, 30 * SEC).await;
    let id = s.create(research("two lookups", json!({}))).await;
    // Round 2's fetch is under way: turn 1, its tool call and turn 2 are committed.
    pages.wait_hits("/b.html", 1, 60 * SEC).await;
    s.kill9();
    pages.release("/b.html");
    let turn = |k: u32| format!("{id}/decompose/turn/{k}");
    let before = fake.calls_by_step_key();
    assert_eq!(before.get(&turn(1)).map(Vec::len), Some(1));
    assert_eq!(before.get(&turn(2)).map(Vec::len), Some(1));

    let s = decomposer(with_tools(server().dir(&dir), &fake)).start();
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert_resumed_without_repeats(&fake.calls_by_step_key(), turn, &pages);
    let r = result(&s, &id).await;
    let want: Vec<String> = SUBTASKS
        .iter()
        .map(|t| format!("{t} (after 2 tool results)"))
        .collect();
    assert_eq!(r["subtasks"], json!(want));
    let urls: Vec<&str> = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["url"].as_str())
        .collect();
    assert_eq!(urls, vec![a.as_str(), b.as_str()]);
    assert_eq!(s.workflow(&id).await["resumes"], 1);
}

#[tokio::test]
async fn a_patterns_rounds_default_bounds_its_agents_tool_loop() {
    let dir = new_dir();
    let kb = HttpKb::start(&dir);
    let fake = FakeOpenAi::start();
    // The model would search five times; search agents get two rounds.
    fake.script_tools(vec![vec![("search__search", json!({"q": "again"}))]; 5]);
    let s = with_model(server(), &fake)
        .env("MCPO__TOOLS__SERVERS__SEARCH__URL", &kb.url)
        .env("MCPO__TOOLS__AGENTS__NEWS", "[\"search.*\"]")
        .env("MCPO__TOOLS__ROUNDS__SEARCH", 2)
        .start();
    healthy_tools(&s, 30 * SEC).await;
    let p = s.get("/v1/patterns").await.body;
    let rounds = |name: &str| {
        p["patterns"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .map(|x| x["max_tool_rounds"].clone())
    };
    assert_eq!(rounds("search"), Some(json!(2)), "{p}");
    assert_eq!(rounds("research"), Some(json!(4)), "{p}");
    let id = s.create(search("rounds", &["news"], json!({}))).await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert_eq!(kb.calls().len(), 2, "{:?}", kb.calls());
    let by_key = fake.calls_by_step_key();
    let turn = |k: u32| by_key.get(&format!("{id}/agent/1/turn/{k}"));
    assert_eq!(turn(2).map(|t| t[0].offered_tools().len()), Some(1));
    // The turn after the last round is offered no tools, so it answers.
    assert_eq!(turn(3).map(|t| t[0].offered_tools().len()), Some(0));
    assert!(turn(4).is_none());
    // A request still sets its own.
    let id = s
        .create(search("rounds", &["news"], json!({"max_tool_rounds": 3})))
        .await;
    s.wait_status(&id, "completed", 60 * SEC).await;
    assert_eq!(kb.calls().len(), 5);

    // check-config refuses a per-pattern value out of range, naming the key.
    let bad = std::process::Command::new(BIN)
        .args(["check-config"])
        .env("MCPO__TOOLS__ROUNDS__SEARCH", "17")
        .current_dir(&dir)
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&bad.stderr).to_string();
    assert!(!bad.status.success());
    assert!(text.contains("tools.rounds.search"), "{text}");
}

/// After a SIGKILL during round 2's fetch and a restart: both committed turns and
/// round 1's committed fetch were reused, not called again; the fetch in flight at
/// the kill had no committed answer and was made again; and the last turn saw
/// both results, in order, as the first run would have.
fn assert_resumed_without_repeats(
    after: &std::collections::HashMap<String, Vec<crate::common::fake_openai::Recorded>>,
    turn: impl Fn(u32) -> String,
    pages: &crate::common::pages::Pages,
) {
    let calls = |k: u32| after.get(&turn(k)).map(Vec::len);
    assert_eq!(calls(1), Some(1), "turn 1 repeated");
    assert_eq!(calls(2), Some(1), "turn 2 repeated");
    assert_eq!(calls(3), Some(1));
    assert_eq!(
        pages.hits("/a.html"),
        1,
        "round 1's committed fetch repeated"
    );
    assert_eq!(pages.hits("/b.html"), 2);
    let results = after[&turn(3)][0].tool_messages();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].contains("about leases") && results[1].contains("about fencing"));
}

//! The scope × route matrix: every route with no key, a wrong key, a
//! `read` key, a `write` key, an `admin` key, the owner's key and another owner's
//! key, each case with its exact status and code; then a scan of the log for any
//! token. Two more columns, both with the admin key: a rebound `Host`
//! (421 on every route) and a foreign `Origin` (403 on every state change, the
//! admin's answer on reads).

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::keys::{key, TestKey};
use crate::common::{research, server, Server};

/// (status, code); "" = no code to check (a success, or the old API's 404 "No data").
type Want = (u16, &'static str);

const U: Want = (401, "unauthorized");
const F: Want = (403, "forbidden");
const N: Want = (404, "workflow_not_found");
const OK: Want = (200, "");
const CREATED: Want = (201, "");

/// Sends one request; an event stream is not read, only its status.
async fn probe(
    s: &Server,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = s.http.request(method.clone(), s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let sse = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if sse {
        return (status, String::new());
    }
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
        .unwrap_or("")
        .to_string();
    (status, code)
}

struct Callers {
    ro: TestKey,
    wo: TestKey,
    admin: TestKey,
    owner: TestKey,
    other: TestKey,
}

const COLUMNS: [&str; 9] = [
    "none",
    "wrong",
    "read",
    "write",
    "admin",
    "owner",
    "other",
    "admin from a rebound Host",
    "admin from a foreign Origin",
];

/// The headers of a column: the two attack columns carry the admin key.
fn attack(col: usize) -> &'static [(&'static str, &'static str)] {
    match col {
        7 => &[("host", "attacker.example")],
        8 => &[("origin", "http://evil.example")],
        _ => &[],
    }
}

/// The attack columns' answers follow from the row: a rebound Host never gets
/// past the Host check; a foreign Origin is refused any state change and reads
/// as the admin does.
fn with_attacks(method: &Method, want: &[Want; 7]) -> [Want; 9] {
    let cross = if *method == Method::GET {
        want[4]
    } else {
        (403, "origin_not_allowed")
    };
    let mut all = [(421, "host_not_allowed"); 9];
    all[..7].copy_from_slice(want);
    all[8] = cross;
    all
}

impl Callers {
    fn token(&self, col: usize) -> Option<&str> {
        match col {
            0 => None,
            1 => Some("mcpo_0000000000000000000000000000000000000000000000000000000000000000"),
            2 => Some(&self.ro.token),
            3 => Some(&self.wo.token),
            4 => Some(&self.admin.token),
            5 => Some(&self.owner.token),
            6 => Some(&self.other.token),
            _ => Some(&self.admin.token),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_caller_with_the_exact_status_and_code() {
    let c = Callers {
        ro: key("reader", &["read"]),
        wo: key("writer", &["write"]),
        admin: key("ops", &["admin"]),
        owner: key("owner", &["read", "write"]),
        other: key("other", &["read", "write"]),
    };
    let s = server()
        .keys(&[&c.ro, &c.wo, &c.admin, &c.owner, &c.other])
        // Workflows stay running through the matrix.
        .latency_ms(30_000)
        // A set list: with keys any Host is answered otherwise.
        .env("MCPO__SERVER__ALLOWED_HOSTS", "127.0.0.1")
        .env("MCPO__WEBHOOKS__ALLOW_HTTP", "true")
        .env("MCPO__WEBHOOKS__ALLOW_HOSTS", "127.0.0.1")
        .start();
    let w = s.create_as(&c.owner, research("matrix", 3)).await;
    // Cancels that succeed need a workflow each.
    let for_admin = s
        .create_as(&c.owner, research("cancelled by admin", 3))
        .await;
    let for_owner = s
        .create_as(&c.owner, research("cancelled by owner", 3))
        .await;
    let for_admin_old = s
        .create_as(&c.owner, research("old cancel, admin", 3))
        .await;
    let for_owner_old = s
        .create_as(&c.owner, research("old cancel, owner", 3))
        .await;

    let get = Method::GET;
    let post = Method::POST;
    let del = Method::DELETE;
    let v = |p: &str| p.replace("{W}", &w);
    let new_research = research("made in the matrix", 3);
    let reg =
        json!({"task_id": w, "webhook_url": "http://127.0.0.1:9/hook", "secret": "longenough"});
    let unreg = json!({"task_id": w, "webhook_url": "http://127.0.0.1:9/none"});
    let status_body = json!({"task_id": w});
    let nf_hook: Want = (404, "webhook_not_found");
    let invalid: Want = (400, "validation_error");
    let not_finished: Want = (409, "not_finished");
    let no_data: Want = (404, "");
    // (method, path, body, [none, wrong, read, write, admin, owner, other])
    let rows: Vec<(&Method, String, Option<Value>, [Want; 7])> = vec![
        (&get, v("/v1/workflows"), None, [U, U, OK, F, OK, OK, OK]),
        (
            &post,
            v("/v1/workflows"),
            Some(new_research.clone()),
            [U, U, F, CREATED, CREATED, CREATED, CREATED],
        ),
        (&get, v("/v1/workflows/{W}"), None, [U, U, N, F, OK, OK, N]),
        (
            &get,
            v("/v1/workflows/{W}/result"),
            None,
            [U, U, N, F, not_finished, not_finished, N],
        ),
        (
            &get,
            v("/v1/workflows/{W}/events"),
            None,
            [U, U, N, F, OK, OK, N],
        ),
        (
            &get,
            v("/v1/workflows/{W}/deliveries"),
            None,
            [U, U, N, F, OK, OK, N],
        ),
        (&get, v("/v1/patterns"), None, [U, U, OK, F, OK, OK, OK]),
        (
            &get,
            v("/v1/analytics/workflows"),
            None,
            [U, U, OK, F, OK, OK, OK],
        ),
        (
            &get,
            v("/v1/analytics/costs"),
            None,
            [U, U, OK, F, OK, OK, OK],
        ),
        (
            &get,
            v("/v1/analytics/performance"),
            None,
            [U, U, OK, F, OK, OK, OK],
        ),
        (&get, v("/v1/webhooks"), None, [U, U, F, F, OK, F, F]),
        (
            &post,
            v("/v1/webhooks"),
            Some(json!({})),
            [U, U, F, F, invalid, F, F],
        ),
        (
            &get,
            v("/v1/webhooks/wh_none"),
            None,
            [U, U, F, F, nf_hook, F, F],
        ),
        (
            &del,
            v("/v1/webhooks/wh_none"),
            None,
            [U, U, F, F, nf_hook, F, F],
        ),
        (
            &post,
            v("/tools/orchestrate_research"),
            Some(json!({"task": "old research"})),
            [U, U, F, OK, OK, OK, OK],
        ),
        (
            &post,
            v("/tools/orchestrate_search"),
            Some(json!({"query": "old search"})),
            [U, U, F, OK, OK, OK, OK],
        ),
        (
            &post,
            v("/tools/get_orchestration_status"),
            Some(status_body.clone()),
            [U, U, N, F, OK, OK, N],
        ),
        (
            &post,
            v("/tools/list_orchestrator_patterns"),
            Some(json!({})),
            [U, U, OK, F, OK, OK, OK],
        ),
        (&get, v("/stream/{W}"), None, [U, U, N, F, OK, OK, N]),
        (
            &post,
            v("/webhook/register"),
            Some(reg),
            [U, U, F, N, OK, OK, N],
        ),
        (
            &post,
            v("/webhook/unregister"),
            Some(unreg),
            [U, U, F, N, nf_hook, nf_hook, N],
        ),
        (&get, v("/stats"), None, [U, U, OK, F, OK, OK, OK]),
        (
            &get,
            v("/analytics/workflows"),
            None,
            [U, U, OK, F, OK, OK, OK],
        ),
        (&get, v("/analytics/costs"), None, [U, U, OK, F, OK, OK, OK]),
        // Nothing has finished yet: the old API's 404 {"error": "No data"}.
        (
            &get,
            v("/analytics/performance"),
            None,
            [U, U, no_data, F, no_data, no_data, no_data],
        ),
        (&get, v("/"), None, [U, U, OK, F, OK, OK, OK]),
        (
            &get,
            v("/v1/no-such-route"),
            None,
            [
                U,
                U,
                (404, "not_found"),
                (404, "not_found"),
                (404, "not_found"),
                (404, "not_found"),
                (404, "not_found"),
            ],
        ),
        (&get, v("/health"), None, [OK; 7]),
        (&get, v("/ready"), None, [OK; 7]),
        // Once keys exist /metrics needs one (it names every key).
        (&get, v("/metrics"), None, [U, U, OK, OK, OK, OK, OK]),
        (&get, v("/dashboard"), None, [OK; 7]),
        (&get, v("/dashboard/dashboard.js"), None, [OK; 7]),
    ];
    let mut failures = Vec::new();
    for (method, path, body, want) in &rows {
        for (col, expected) in with_attacks(method, want).iter().enumerate() {
            let got = probe(&s, method, path, c.token(col), body.as_ref(), attack(col)).await;
            let ok = got.0 == expected.0 && (expected.1.is_empty() || got.1 == expected.1);
            if !ok {
                failures.push(format!(
                    "{method} {path} as {}: got {got:?}, want {expected:?}",
                    COLUMNS[col]
                ));
            }
        }
    }
    // Cancels: each success on a workflow of its own.
    let cancel = |id: &str| format!("/v1/workflows/{id}/cancel");
    let cases: Vec<(usize, String, Option<Value>, Want)> = vec![
        (0, cancel(&w), None, U),
        (1, cancel(&w), None, U),
        (2, cancel(&w), None, F),
        (3, cancel(&w), None, N),
        (6, cancel(&w), None, N),
        (4, cancel(&for_admin), None, OK),
        (5, cancel(&for_owner), None, OK),
        (5, cancel(&for_owner), None, (409, "already_finished")),
        (
            0,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            U,
        ),
        (
            1,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            U,
        ),
        (
            2,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            F,
        ),
        (
            3,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            N,
        ),
        (
            6,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            N,
        ),
        (
            4,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": for_admin_old})),
            OK,
        ),
        (
            5,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": for_owner_old})),
            OK,
        ),
    ];
    // Cancels from a rebound Host or a foreign Origin, with the admin key.
    let attacks = [
        (7, cancel(&w), None, (421, "host_not_allowed")),
        (8, cancel(&w), None, (403, "origin_not_allowed")),
        (
            7,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            (421, "host_not_allowed"),
        ),
        (
            8,
            "/tools/cancel_orchestration".into(),
            Some(json!({"task_id": w})),
            (403, "origin_not_allowed"),
        ),
    ];
    for (col, path, body, expected) in cases.iter().chain(&attacks) {
        let got = probe(&s, &post, path, c.token(*col), body.as_ref(), attack(*col)).await;
        if !(got.0 == expected.0 && (expected.1.is_empty() || got.1 == expected.1)) {
            failures.push(format!(
                "POST {path} as {}: got {got:?}, want {expected:?}",
                COLUMNS[*col]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The matrix's own workflow is still running: nobody but its owner/admin cancelled it.
    assert_eq!(
        s.get_as(&c.owner, &format!("/v1/workflows/{w}")).await.body["status"],
        "running"
    );

    // No token anywhere the server writes or shows.
    let health = s.get("/health").await.body.to_string();
    let metrics = s.get_as(&c.admin, "/metrics").await.body.to_string();
    let log = s.log();
    assert!(!log.is_empty());
    for k in [&c.ro, &c.wo, &c.admin, &c.owner, &c.other] {
        for (what, text) in [("log", &log), ("/health", &health), ("/metrics", &metrics)] {
            assert!(
                !text.contains(&k.token),
                "{}'s token appears in {what}",
                k.name
            );
            // Not even a prefix long enough to matter.
            assert!(
                !text.contains(&k.token[5..21]),
                "part of {}'s token in {what}",
                k.name
            );
        }
    }
}

//! Archival: finished workflows move to object storage (a local
//! directory; S3 on a real S3-compatible server, moto, on loopback), reads go
//! through to the archive on every content route with `X-Served-From: archive`
//! and return what they returned before, analytics keep their figures, a pass
//! killed with SIGKILL loses nothing, and a broken archive never panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::archiving::*;
use crate::common::pg::PgDb;
use crate::common::{free_port, research, server, sqlite_value, Builder, Server, SEC};

/// Every object file under `dir`, relative paths.
pub(crate) fn objects(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "zst") {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Equal, numbers within a relative 1e-9: sums may add rows in another order
/// once archiving rewrote them.
fn assert_same_figures(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{path}: got {g}, want {w}"
            );
        }
        (Value::Object(g), Value::Object(w)) => {
            let mut gk: Vec<_> = g.keys().collect();
            let mut wk: Vec<_> = w.keys().collect();
            gk.sort();
            wk.sort();
            assert_eq!(gk, wk, "{path}: keys differ");
            for (k, v) in w {
                assert_same_figures(&g[k], v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: lengths differ");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_same_figures(g, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

async fn analytics(s: &Server) -> Value {
    let mut out = Vec::new();
    for path in [
        "/v1/analytics/workflows",
        "/v1/analytics/costs",
        "/v1/analytics/performance",
        "/analytics/workflows",
        "/analytics/costs",
        "/analytics/performance",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        out.push(r.body);
    }
    Value::Array(out)
}

/// `sqlite_value` on the store in the data directory `dir`.
fn sqlite(dir: &Path, sql: &str) -> String {
    sqlite_value(&dir.join("orchestrator.db"), sql)
}

#[tokio::test]
async fn local_directory_archive_reads_through_every_route_with_the_same_answers() {
    let mut s = local(server()).start();
    let dir = s.dir.clone();
    let ids = finished_workflows(&s, 4).await;
    let mut before = BTreeMap::new();
    for id in &ids {
        let (r, from) = routes(&s, id).await;
        assert!(from.iter().all(|f| !f.ends_with("archive")), "{from:?}");
        before.insert(id.clone(), r);
    }
    let stats_before = analytics(&s).await;
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);

    let dry = run_archive(&dir, &[], &["--older-than", "0s", "--dry-run"]);
    assert_eq!(count(&dry, "candidates"), 4, "{dry}");
    assert_eq!(count(&dry, "archived"), 0, "{dry}");
    assert_eq!(objects(&dir.join("archive")).len(), 0);
    // Nothing is old enough for the default 90 days.
    let none = run_archive(&dir, &[], &[]);
    assert_eq!(count(&none, "archived"), 0, "{none}");

    let out = run_archive(&dir, &[], &["--older-than", "0s"]);
    assert_eq!(count(&out, "archived"), 4, "{out}");
    assert!(out.contains("store size before: "), "{out}");
    // Space comes back: a new database vacuums incrementally, and the pass left
    // no free page behind.
    assert_eq!(
        sqlite(&dir, "PRAGMA auto_vacuum"),
        "2",
        "incremental auto-vacuum"
    );
    assert_eq!(sqlite(&dir, "PRAGMA freelist_count"), "0", "{out}");
    let files = objects(&dir.join("archive"));
    assert_eq!(files.len(), 4, "{files:?}");
    for id in &ids {
        let wf = &before[id]["workflow"].1;
        let done =
            chrono::DateTime::parse_from_rfc3339(wf["completed_at"].as_str().unwrap()).unwrap();
        let key = format!("archived/{}/{id}.json.zst", done.format("%Y/%m"));
        assert!(files.contains(&key), "{key} not in {files:?}");
    }
    // Summary rows stay; results, events and deliveries are gone.
    assert_eq!(
        sqlite(
            &dir,
            "SELECT count(*) FROM workflows WHERE archive_key IS NOT NULL"
        ),
        "4"
    );
    assert_eq!(sqlite(&dir, "SELECT count(*) FROM results"), "0");
    assert_eq!(sqlite(&dir, "SELECT count(*) FROM events"), "0");
    // Idempotent: a second pass finds nothing and writes nothing.
    let again = run_archive(&dir, &[], &["--older-than", "0s"]);
    assert_eq!(count(&again, "archived"), 0, "{again}");

    let mut s = local(server()).dir(&dir).start();
    for id in &ids {
        let (after, from) = routes(&s, id).await;
        assert_eq!(
            after, before[id],
            "answers for {id} changed after archiving"
        );
        assert!(
            from.iter().all(|f| f.ends_with(": archive")),
            "not served from the archive: {from:?}"
        );
    }
    assert_same_figures(&analytics(&s).await, &stats_before, "analytics");
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);

    // A corrupt object and a missing one: 503 archive_unavailable naming the key.
    let s = local(server()).dir(&dir).start();
    let corrupt = dir.join("archive").join(&files[0]);
    std::fs::write(&corrupt, b"not zstd at all").unwrap();
    let missing = dir.join("archive").join(&files[1]);
    std::fs::remove_file(&missing).unwrap();
    for (file, route) in [(&files[0], "result"), (&files[1], "events")] {
        let id = file
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".json.zst");
        let r = s.get(&format!("/v1/workflows/{id}/{route}")).await;
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "archive_unavailable");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(file.as_str()), "{msg}");
    }
    let h = s.get("/health").await;
    assert_eq!(h.status, 200, "{:?}", h.body);
}

#[tokio::test]
async fn a_pass_killed_midway_loses_nothing_and_the_next_pass_finishes() {
    // Room for all 300 at once: on a loaded machine they may all still run.
    let mut s = local(server())
        .latency_ms(0)
        .env("MCPO__LIMITS__MAX_ACTIVE", 400)
        .start();
    let dir = s.dir.clone();
    let mut ids = Vec::new();
    for chunk in 0..30 {
        let creates = (0..10).map(|i| s.create(research(&format!("kill {chunk} {i}"), 3)));
        ids.extend(futures::future::join_all(creates).await);
    }
    for id in &ids {
        s.wait_status(id, "completed", 60 * SEC).await;
    }
    let sample: Vec<String> = ids.iter().step_by(37).cloned().collect();
    let mut before = BTreeMap::new();
    for id in &sample {
        before.insert(id.clone(), routes(&s, id).await.0);
    }
    let stats_before = analytics(&s).await;
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);

    // Small batches: many commits, so the kill lands between two of them.
    let env = [("MCPO__ARCHIVE__BATCH", "5".to_string())];
    let mut child: Child = archive_cmd(&dir, &env, &["--older-than", "0s"])
        .spawn()
        .expect("spawn archive");
    let t = Instant::now();
    while objects(&dir.join("archive")).len() < 40 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pass finished before it could be killed"
        );
        assert!(t.elapsed() < 60 * SEC, "no objects written");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert!(
        std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL),
        "{status:?}"
    );
    let marked: u64 = sqlite(
        &dir,
        "SELECT count(*) FROM workflows WHERE archive_key IS NOT NULL",
    )
    .parse()
    .unwrap();
    assert!(
        marked < 300,
        "the pass was not interrupted ({marked} archived)"
    );
    // Nothing lost: each workflow is whole in the store or marked with its object.
    assert_eq!(
        sqlite(
            &dir,
            "SELECT count(*) FROM workflows w WHERE archive_key IS NULL
               AND NOT EXISTS (SELECT 1 FROM results r WHERE r.workflow_id = w.id)"
        ),
        "0"
    );
    let files = objects(&dir.join("archive"));
    let c = rusqlite::Connection::open(dir.join("orchestrator.db")).unwrap();
    let mut stmt = c
        .prepare("SELECT archive_key FROM workflows WHERE archive_key IS NOT NULL")
        .unwrap();
    let keys: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for k in &keys {
        assert!(files.contains(k), "{k} marked but its object is missing");
    }

    let out = run_archive(&dir, &env, &["--older-than", "0s"]);
    assert_eq!(count(&out, "archived"), 300 - marked, "{out}");
    assert_eq!(
        sqlite(
            &dir,
            "SELECT count(*) FROM workflows WHERE archive_key IS NULL"
        ),
        "0"
    );
    // One object per workflow: none twice, none left over.
    assert_eq!(objects(&dir.join("archive")).len(), 300);
    let s = local(server()).dir(&dir).start();
    for id in &sample {
        let (after, from) = routes(&s, id).await;
        assert_eq!(after, before[id], "answers for {id} changed");
        assert!(from.iter().all(|f| f.ends_with(": archive")), "{from:?}");
    }
    assert_same_figures(&analytics(&s).await, &stats_before, "analytics");
}

async fn wait_health(s: &Server, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let h = s.get("/health").await.body;
        if f(&h) {
            return h;
        }
        assert!(
            t.elapsed() < 90 * SEC,
            "{what}: {}",
            h["components"]["archive"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn s3_archive_on_moto_degrades_health_while_unreachable_then_archives() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s3 = server()
        .latency_ms(1)
        .env("MCPO__RETENTION__MAX_COMPLETED", 0)
        .env("MCPO__ARCHIVE__URL", "s3://mcpo-archive/test/prefix")
        .env("MCPO__ARCHIVE__AFTER", "0s")
        .env("MCPO__ARCHIVE__INTERVAL", "1s")
        .env("MCPO__ARCHIVE__S3_STORAGE_CLASS", "STANDARD_IA")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
    let s = s3.clone().start();
    let ids = finished_workflows(&s, 2).await;
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), routes(&s, id).await.0);
    }
    // Nothing listens on the endpoint yet: degraded, naming the archive, and
    // nothing deleted.
    let h = wait_health(&s, "archive never reported the outage", |h| {
        h["components"]["archive"]["status"] == "degraded"
    })
    .await;
    assert_eq!(h["status"], "degraded");
    assert!(
        h["components"]["archive"]["error"].as_str().is_some(),
        "{h}"
    );
    assert_eq!(h["components"]["archive"]["archived_total"], 0);
    for id in &ids {
        let (status, from, _) = raw_get(&s, &format!("/v1/workflows/{id}/result"), None).await;
        assert_eq!((status, from.as_str()), (200, "store"));
    }

    // The store comes up (with its bucket): the next pass archives both.
    let _moto = Moto::start(port);
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/mcpo-archive"))
        .send()
        .await
        .expect("create bucket");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let h = wait_health(&s, "archive never recovered", |h| {
        h["components"]["archive"]["status"] == "healthy"
            && h["components"]["archive"]["archived_total"] == 2
    })
    .await;
    assert_eq!(h["status"], "healthy", "{h}");
    // Event logs of workflows finished moments ago are still in this process's
    // memory; a fresh process reads everything through the archive.
    s.signal(libc::SIGTERM);
    let mut s = s;
    s.wait_exit(30 * SEC);
    let s = s3.dir(&s.dir).start();
    for id in &ids {
        let (after, from) = routes(&s, id).await;
        assert_eq!(after, before[id], "answers for {id} changed");
        assert!(from.iter().all(|f| f.ends_with(": archive")), "{from:?}");
        let wf = &before[id]["workflow"].1;
        let done =
            chrono::DateTime::parse_from_rfc3339(wf["completed_at"].as_str().unwrap()).unwrap();
        // The storage class as S3 reports it (a signed HEAD, with boto3 from moto[server]).
        let key = format!(
            "test/prefix/archived/{}/{id}.json.zst",
            done.format("%Y/%m")
        );
        let head = Command::new("python3")
            .args([
                "-c",
                "import sys, boto3; print(boto3.client('s3', endpoint_url=sys.argv[1], \
                 aws_access_key_id='testing', aws_secret_access_key='testing', \
                 region_name='us-east-1').head_object(Bucket='mcpo-archive', Key=sys.argv[2]) \
                 .get('StorageClass'))",
                &endpoint,
                &key,
            ])
            .output()
            .expect("python3");
        assert_eq!(
            String::from_utf8_lossy(&head.stdout).trim(),
            "STANDARD_IA",
            "{}",
            String::from_utf8_lossy(&head.stderr)
        );
    }
}

#[tokio::test]
async fn postgres_archive_keeps_analytics_and_reports_table_sizes() {
    let db = PgDb::new();
    let pg = |b: Builder| local(b).env("MCPO__POSTGRES__URL", &db.url);
    let mut s = pg(server()).start();
    let dir: PathBuf = s.dir.clone();
    let ids = finished_workflows(&s, 3).await;
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), routes(&s, id).await.0);
    }
    let stats_before = analytics(&s).await;
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);
    let env = [("MCPO__POSTGRES__URL", db.url.clone())];
    let out = run_archive(&dir, &env, &["--older-than", "0s"]);
    assert_eq!(count(&out, "archived"), 3, "{out}");
    assert!(
        out.contains("store size before: ") && out.contains("results="),
        "{out}"
    );
    assert_eq!(db.query("SELECT count(*) FROM results"), "0");
    assert_eq!(db.query("SELECT count(*) FROM events"), "0");
    let s = pg(server()).dir(&dir).start();
    for id in &ids {
        let (after, from) = routes(&s, id).await;
        assert_eq!(after, before[id], "answers for {id} changed");
        assert!(from.iter().all(|f| f.ends_with(": archive")), "{from:?}");
    }
    assert_same_figures(&analytics(&s).await, &stats_before, "analytics");
}

#[tokio::test]
async fn s3_archive_with_wrong_credentials_degrades_health_and_deletes_nothing() {
    let port = free_port();
    let _moto = Moto::start_checking_credentials(port);
    let s = server()
        .latency_ms(1)
        .env("MCPO__RETENTION__MAX_COMPLETED", 0)
        .env("MCPO__ARCHIVE__URL", "s3://mcpo-archive/wrong-keys")
        .env("MCPO__ARCHIVE__AFTER", "0s")
        .env("MCPO__ARCHIVE__INTERVAL", "1s")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("AWS_REGION", "us-east-1")
        .start();
    let ids = finished_workflows(&s, 2).await;
    // Refused by the store: degraded, naming the archive, and retried every pass.
    let first = wait_health(&s, "wrong credentials never reported", |h| {
        h["components"]["archive"]["status"] == "degraded"
    })
    .await;
    assert_eq!(first["status"], "degraded", "{first}");
    let error = first["components"]["archive"]["error"]
        .as_str()
        .unwrap_or("");
    assert!(!error.is_empty(), "{first}");
    assert!(
        !error.contains("not-the-secret"),
        "the secret never shows: {error}"
    );
    let passes = first["components"]["archive"]["passes"]
        .as_u64()
        .unwrap_or(0);
    let later = wait_health(&s, "no pass retried", |h| {
        h["components"]["archive"]["passes"].as_u64().unwrap_or(0) > passes
    })
    .await;
    assert_eq!(later["components"]["archive"]["status"], "degraded");
    assert_eq!(later["components"]["archive"]["archived_total"], 0);
    // Nothing deleted: every workflow still whole in the store.
    for id in &ids {
        let (status, from, _) = raw_get(&s, &format!("/v1/workflows/{id}/result"), None).await;
        assert_eq!((status, from.as_str()), (200, "store"));
    }
    assert_eq!(
        sqlite(
            &s.dir,
            "SELECT count(*) FROM workflows WHERE archive_key IS NOT NULL"
        ),
        "0"
    );
}

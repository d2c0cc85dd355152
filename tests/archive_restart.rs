//! Archived with the server stopped, then restarted: the `archive`
//! command moves finished workflows while no server runs; the next start must not
//! bring them back as in-memory records (they have no result or events left in
//! the store), so every read route answers from the archive, exactly as before,
//! and a corrupt object is 503 `archive_unavailable` naming its key while the rest
//! keeps serving. On the local directory and on S3 (moto).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::archiving::{finished_workflows, raw_get, routes, run_archive, Moto};
use crate::common::{free_port, research, server, Builder, SEC};

/// `archived/{yyyy}/{mm}/{id}.json.zst` of a workflow record as the API shows it.
fn key_of(wf: &Value) -> String {
    let done = chrono::DateTime::parse_from_rfc3339(wf["completed_at"].as_str().unwrap_or(""))
        .expect("completed_at");
    let id = wf["id"].as_str().unwrap_or("");
    format!("archived/{}/{id}.json.zst", done.format("%Y/%m"))
}

/// The whole scenario against one archive; `corrupt` overwrites the object at a key.
async fn archived_offline_then_restarted(
    env: Vec<(&str, String)>,
    corrupt: impl AsyncFnOnce(&str),
) {
    // Default retention: finished workflows would be restored into memory.
    let b: Builder = env.iter().fold(
        server()
            .latency_ms(1)
            .env("MCPO__ARCHIVE__ENABLED", "false")
            // The client's pooled connection idles while the object is corrupted
            // (seconds with boto3); the server must not close it just as it is
            // reused.
            .env("MCPO__SERVER__KEEP_ALIVE", "120s"),
        |b, (k, v)| b.env(k, v),
    );
    let mut s = b.clone().start();
    let dir = s.dir.clone();
    let ids = finished_workflows(&s, 4).await;
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), routes(&s, id).await.0);
    }
    s.signal(libc::SIGTERM);
    s.wait_exit(30 * SEC);

    let out = run_archive(&dir, &env, &["--older-than", "0s"]);
    assert!(out.contains("archived: 4 "), "{out}");

    let s = b.dir(&dir).start();
    let (read, broken) = ids.split_at(3);
    for id in read {
        let (after, from) = routes(&s, id).await;
        assert!(
            from.iter().all(|f| f.ends_with(": archive")),
            "{id} not served from the archive after the restart: {from:?}"
        );
        assert_eq!(after, before[id], "answers for {id} changed");
    }

    // A corrupt object: 503 naming the key on every route that needs it.
    let broken = &broken[0];
    let key = key_of(&before[broken]["workflow"].1);
    corrupt(&key).await;
    for route in ["", "/result", "/events"] {
        let r = s.get(&format!("/v1/workflows/{broken}{route}")).await;
        assert_eq!(r.status, 503, "{route}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "archive_unavailable", "{route}");
        let msg = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(&key), "{route}: {msg}");
    }
    let (status, _, body) = raw_get(&s, &format!("/stream/{broken}"), None).await;
    assert_eq!(status, 503, "{body}");
    // Everything else keeps serving.
    for id in read {
        let (after, _) = routes(&s, id).await;
        assert_eq!(after, before[id], "answers for {id} changed");
    }
    let h = s.get("/health").await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let fresh = s.create(research("after the restart", 3)).await;
    s.wait_status(&fresh, "completed", 30 * SEC).await;
}

#[tokio::test]
async fn archived_offline_workflows_are_read_from_the_local_archive_after_a_restart() {
    let dir = crate::common::new_dir();
    let url = format!("file://{}", dir.display());
    let root = dir.clone();
    archived_offline_then_restarted(vec![("MCPO__ARCHIVE__URL", url)], async |key: &str| {
        std::fs::write(Path::new(&root).join(key), b"not zstd at all").expect("corrupt");
    })
    .await;
}

#[tokio::test]
async fn archived_offline_workflows_are_read_from_s3_after_a_restart() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let _moto = Moto::start(port);
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/mcpo-archive"))
        .send()
        .await
        .expect("create bucket");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let env = vec![
        (
            "MCPO__ARCHIVE__URL",
            "s3://mcpo-archive/restart".to_string(),
        ),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    archived_offline_then_restarted(env, async |key: &str| {
        // A signed PUT (boto3 from moto[server]), as any S3 client writes.
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], \
                 aws_access_key_id='testing', aws_secret_access_key='testing', \
                 region_name='us-east-1').put_object(Bucket='mcpo-archive', Key=sys.argv[2], \
                 Body=b'not zstd at all')",
                &endpoint,
                &format!("restart/{key}"),
            ])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await;
}

#[tokio::test]
async fn workflows_archived_while_held_in_memory_leave_it_and_read_from_the_archive() {
    // Default retention: the finished workflows are in memory when the pass runs.
    let s = server()
        .latency_ms(1)
        .env("MCPO__ARCHIVE__AFTER", "0s")
        .env("MCPO__ARCHIVE__INTERVAL", "1s")
        .start();
    let ids = finished_workflows(&s, 2).await;
    let t = std::time::Instant::now();
    while s.get("/health").await.body["components"]["archive"]["archived_total"] != 2 {
        assert!(t.elapsed() < 60 * SEC, "the pass never archived both");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for id in &ids {
        for route in ["", "/result"] {
            let t = std::time::Instant::now();
            loop {
                let (status, from, body) =
                    raw_get(&s, &format!("/v1/workflows/{id}{route}"), None).await;
                assert_eq!(status, 200, "{route}: {body}");
                if from == "archive" {
                    break;
                }
                // The registry drops its copy right after the pass's commit.
                assert_eq!(from, "memory", "{route}");
                assert!(t.elapsed() < 10 * SEC, "{id}{route} still from memory");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

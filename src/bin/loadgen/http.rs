//! `http`: the request rate of one route at a fixed concurrency.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::stats::{client, summary, Tally};

#[derive(clap::Args)]
pub struct HttpLoad {
    #[arg(long, default_value = "http://127.0.0.1:5060")]
    url: String,
    /// `get` (GET /v1/workflows/{id}) or `post` (POST /v1/workflows).
    #[arg(long)]
    op: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Stop after this many successful requests (e.g. to fill a store through the API).
    #[arg(long)]
    requests: Option<u64>,
}

pub async fn http(a: HttpLoad) {
    let c = client();
    let body = json!({"pattern": "research", "task": "http load", "config": {"num_agents": 3}});
    let id = if a.op == "get" {
        let r: Value = c
            .post(format!("{}/v1/workflows", a.url))
            .json(&body)
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        r["id"].as_str().expect("id").to_string()
    } else {
        String::new()
    };
    let end = Instant::now() + a.duration;
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    let max = a.requests;
    let t_start = Instant::now();
    for _ in 0..a.concurrency {
        let (c, url, body, id, op, tally) = (
            c.clone(),
            a.url.clone(),
            body.clone(),
            id.clone(),
            a.op.clone(),
            Arc::clone(&tally),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            while Instant::now() < end && max.is_none_or(|m| tally.done.load(Ordering::Relaxed) < m)
            {
                let t = Instant::now();
                let r = if op == "get" {
                    c.get(format!("{url}/v1/workflows/{id}")).send().await
                } else {
                    c.post(format!("{url}/v1/workflows"))
                        .json(&body)
                        .send()
                        .await
                };
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        local.push(t.elapsed().as_secs_f64() * 1000.0);
                        tally.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) if r.status().as_u16() == 429 => {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        // The first few errors are worth seeing: status and body.
                        if tally.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            let what = match other {
                                Ok(r) => format!(
                                    "HTTP {}: {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                ),
                                Err(e) => e.to_string(),
                            };
                            eprintln!("error: {what}");
                        }
                    }
                }
            }
            if let Ok(mut l) = tally.latencies_ms.lock() {
                l.extend(local);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let done = tally.done.load(Ordering::Relaxed);
    let took = t_start.elapsed().min(a.duration);
    println!(
        "{} {} at concurrency {}: {done} ok in {:.1} s = {:.0} requests/s; refused {}, errors {}",
        a.op.to_uppercase(),
        if a.op == "get" {
            "/v1/workflows/{id}"
        } else {
            "/v1/workflows"
        },
        a.concurrency,
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64(),
        tally.refused.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed)
    );
    let lat = tally
        .latencies_ms
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    println!("{}", summary("latency", lat));
}

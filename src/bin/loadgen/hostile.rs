//! The hostile requests of issue 12, one kind each: huge numbers, 1e20 timeouts,
//! long texts, unknown models, random methods and paths, slow bodies and heads,
//! huge heads, SSE floods, webhook floods, SSRF webhook URLs, 1 MiB bodies. Each
//! knows the answers a bounded server gives it; anything else is reported.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    HugeTimeout,
    HugeNumbers,
    LongText,
    UnknownModel,
    RandomMethod,
    RandomPath,
    SlowBody,
    SlowHead,
    HugeHead,
    SseFlood,
    WebhookFlood,
    SsrfWebhook,
    MaxBody,
    OverBody,
}

pub const KINDS: [Kind; 14] = [
    Kind::HugeTimeout,
    Kind::HugeNumbers,
    Kind::LongText,
    Kind::UnknownModel,
    Kind::RandomMethod,
    Kind::RandomPath,
    Kind::SlowBody,
    Kind::SlowHead,
    Kind::HugeHead,
    Kind::SseFlood,
    Kind::WebhookFlood,
    Kind::SsrfWebhook,
    Kind::MaxBody,
    Kind::OverBody,
];

/// What a hostile request needs: the server, a client, a webhook URL the server
/// may deliver to, and some noise.
pub struct Ctx<'a> {
    pub url: &'a str,
    pub client: &'a reqwest::Client,
    pub webhook_url: &'a str,
    pub noise: u64,
}

impl Ctx<'_> {
    fn word(&self, salt: u64, len: usize) -> String {
        let mut x = self.noise ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (b'A' + (x % 26) as u8) as char
            })
            .collect()
    }

    fn pick<'b, T>(&self, of: &'b [T]) -> &'b T {
        &of[(self.noise % of.len() as u64) as usize]
    }

    async fn post(&self, path: &str, body: &Value) -> Result<u16, Finding> {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .map_err(|source| Finding::Post {
                path: path.to_string(),
                source,
            })?;
        let code = r.status().as_u16();
        let _ = r.bytes().await;
        Ok(code)
    }
}

/// What a hostile request was answered that a bounded server should not answer,
/// or why it could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum Finding {
    #[error("{what}: HTTP {got}, expected one of {want:?}")]
    Status {
        what: String,
        got: u16,
        want: Vec<u16>,
    },
    #[error("{what}: answered {first:?}")]
    Answer { what: String, first: String },
    #[error("create for an attack: HTTP {0}")]
    Create(u16),
    #[error("POST {path}: {source}")]
    Post {
        path: String,
        source: reqwest::Error,
    },
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Method(String),
    #[error("no answer within 60 s")]
    NoAnswer,
}

fn expect(what: &str, got: u16, want: &[u16]) -> Result<(), Finding> {
    if want.contains(&got) {
        Ok(())
    } else {
        Err(Finding::Status {
            what: what.to_string(),
            got,
            want: want.to_vec(),
        })
    }
}

/// Sends one hostile request (or a small burst) of `kind`; `Err` says what was
/// answered that a bounded server should not answer.
pub async fn run(kind: Kind, c: &Ctx<'_>) -> Result<(), Finding> {
    match kind {
        Kind::HugeTimeout => {
            let field = c.pick(&[
                "agent_timeout_secs",
                "synthesis_timeout_secs",
                "final_timeout_secs",
            ]);
            let got = c
                .post(
                    "/v1/workflows",
                    &json!({"pattern": "research", "task": "t", "config": {*field: 1e20}}),
                )
                .await?;
            expect("1e20 timeout", got, &[400])?;
            let got = c
                .post(
                    "/tools/orchestrate_research",
                    &json!({"task": "t", "camina_timeout": 1e20}),
                )
                .await?;
            expect("1e20 camina_timeout", got, &[400])
        }
        Kind::HugeNumbers => {
            let configs = [
                json!({"budget_usd": 1e300}),
                json!({"max_tokens_total": u64::MAX}),
                json!({"num_agents": 1e20}),
                json!({"min_successful_agents": 4_000_000_000u64}),
            ];
            let config = c.pick(&configs);
            let got = c
                .post(
                    "/v1/workflows",
                    &json!({"pattern": "research", "task": "t", "config": config}),
                )
                .await?;
            expect("huge number", got, &[400])?;
            let r = c
                .client
                .get(format!("{}/v1/workflows?limit=1e99", c.url))
                .send()
                .await?;
            expect("limit=1e99", r.status().as_u16(), &[400])
        }
        Kind::LongText => {
            let long = "x".repeat(100_001);
            let got = c
                .post(
                    "/v1/workflows",
                    &json!({"pattern": "research", "task": long}),
                )
                .await?;
            expect("long task", got, &[400])?;
            let got = c
                .post(
                    "/tools/orchestrate_search",
                    &json!({"query": "q", "context": {"notes": "n".repeat(100_000)}}),
                )
                .await?;
            expect("long query with context", got, &[400])?;
            let got = c
                .post(
                    "/v1/workflows",
                    &json!({"pattern": "research", "task": "t", "title": "t".repeat(201)}),
                )
                .await?;
            expect("long title", got, &[400])
        }
        Kind::UnknownModel => {
            let model = c.word(1, 12);
            let got = c
                .post(
                    "/v1/workflows",
                    &json!({"pattern": "research", "task": "t", "config": {"agent_model": model}}),
                )
                .await?;
            expect("unknown model", got, &[400])?;
            let got = c
                .post(
                    "/tools/orchestrate_research",
                    &json!({"task": "t", "primary_model": model}),
                )
                .await?;
            expect("unknown model (old route)", got, &[400])
        }
        Kind::RandomMethod => {
            let method = reqwest::Method::from_bytes(c.word(2, 7).as_bytes())
                .map_err(|e| Finding::Method(e.to_string()))?;
            let path = c.pick(&[
                "/v1/workflows",
                "/health",
                "/tools/orchestrate_research",
                "/nope",
            ]);
            let r = c
                .client
                .request(method, format!("{}{path}", c.url))
                .send()
                .await?;
            expect("random method", r.status().as_u16(), &[404, 405])
        }
        Kind::RandomPath => {
            let r = c
                .client
                .get(format!(
                    "{}/{}/{}?{}={}",
                    c.url,
                    c.word(3, 9),
                    c.word(4, 20),
                    c.word(5, 4),
                    c.word(6, 30)
                ))
                .send()
                .await?;
            expect("random path", r.status().as_u16(), &[404])
        }
        Kind::SlowBody => {
            // The server's own Host: any other is refused (421) before the body is read.
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"pat",
                c.pick(&["/v1/workflows", "/tools/orchestrate_research", "/v1/webhooks"]),
                host_of(c.url)
            );
            let answer = raw(c.url, head.as_bytes()).await?;
            starts("slow body", &answer, "HTTP/1.1 408")
        }
        Kind::SlowHead => {
            let head = format!(
                "GET /health HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
                host_of(c.url)
            );
            let answer = raw(c.url, head.as_bytes()).await?;
            starts("slow head", &answer, "HTTP/1.1 408")
        }
        Kind::HugeHead => {
            let r = c
                .client
                .get(format!("{}/health", c.url))
                .header("X-Padding", "p".repeat(64 * 1024))
                .send()
                .await?;
            expect("64 KiB header", r.status().as_u16(), &[431])
        }
        Kind::SseFlood => sse_flood(c).await,
        Kind::WebhookFlood => webhook_flood(c).await,
        Kind::SsrfWebhook => {
            let target = c.pick(&[
                "https://169.254.169.254/latest/meta-data/",
                "https://10.0.0.1/hook",
                "https://[64:ff9b::a9fe:a9fe]/hook",
                "https://[::ffff:192.168.0.1]/hook",
                "https://100.64.0.1/hook",
                "https://0.0.0.0/hook",
            ]);
            let got = c
                .post(
                    "/v1/workflows",
                    &json!({"pattern": "research", "task": "t", "webhook": {"url": target}}),
                )
                .await?;
            expect("SSRF webhook", got, &[400])?;
            let got = c.post("/v1/webhooks", &json!({"url": target})).await?;
            expect("SSRF global webhook", got, &[400])
        }
        Kind::MaxBody => {
            // At the limits, and valid: it must be admitted and complete.
            let task = "é".repeat(100_000);
            let mut body = serde_json::to_vec(
                &json!({"pattern": "research", "task": task, "config": {"num_agents": 3}}),
            )?;
            body.resize(1024 * 1024, b' ');
            let r = c
                .client
                .post(format!("{}/v1/workflows", c.url))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            expect("1 MiB body", r.status().as_u16(), &[201, 429])
        }
        Kind::OverBody => {
            let r = c
                .client
                .post(format!("{}/v1/workflows", c.url))
                .header("content-type", "application/json")
                .body(vec![b' '; 1024 * 1024 + 1])
                .send()
                .await;
            match r {
                Ok(r) => expect("1 MiB + 1 body", r.status().as_u16(), &[413]),
                // The 413 may arrive, and the connection close, before the body is sent.
                Err(_) => Ok(()),
            }
        }
    }
}

fn starts(what: &str, answer: &str, want: &str) -> Result<(), Finding> {
    if answer.starts_with(want) {
        Ok(())
    } else {
        Err(Finding::Answer {
            what: what.to_string(),
            first: answer.lines().next().unwrap_or("nothing").to_string(),
        })
    }
}

/// Writes `bytes` on a new connection, then waits (at most 60 s) for the answer.
/// `host:port` of the target URL, for a raw request's `Host` header.
fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

async fn raw(url: &str, bytes: &[u8]) -> Result<String, Finding> {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(bytes).await?;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf)).await {
        Ok(Ok(n)) => Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Finding::NoAnswer),
    }
}

/// 120 SSE clients on one workflow (more than a workflow may have): each is served
/// to the end or refused with 429, and the workflow still completes.
async fn sse_flood(c: &Ctx<'_>) -> Result<(), Finding> {
    let id = create(
        c,
        json!({"pattern": "research", "task": "sse flood", "config": {"num_agents": 3}}),
    )
    .await?;
    let Some(id) = id else { return Ok(()) };
    let url = format!("{}/v1/workflows/{id}/events", c.url);
    let statuses: Vec<Result<u16, Finding>> = futures::stream::iter(0..120)
        .map(|_| {
            let (client, url) = (c.client.clone(), url.clone());
            async move {
                let r = client.get(&url).send().await?;
                let code = r.status().as_u16();
                let _ = tokio::time::timeout(Duration::from_secs(60), r.bytes()).await;
                Ok(code)
            }
        })
        .buffer_unordered(120)
        .collect()
        .await;
    for s in statuses {
        expect("SSE flood", s?, &[200, 429])?;
    }
    Ok(())
}

/// 20 webhooks on one workflow through the old route (more than a workflow may
/// have): each is registered or refused with 429.
async fn webhook_flood(c: &Ctx<'_>) -> Result<(), Finding> {
    let id = create(
        c,
        json!({"pattern": "research", "task": "webhook flood", "config": {"num_agents": 3}}),
    )
    .await?;
    let Some(id) = id else { return Ok(()) };
    for i in 0..20 {
        let got = c
            .post(
                "/webhook/register",
                &json!({"task_id": id, "webhook_url": format!("{}?n={i}", c.webhook_url), "secret": "soak-secret-1"}),
            )
            .await?;
        // 429: the workflow has its most subscriptions; 409: it finished already.
        expect("webhook flood", got, &[200, 409, 429])?;
    }
    Ok(())
}

/// A workflow for an attack to aim at; `None` when the server is full (429).
async fn create(c: &Ctx<'_>, body: Value) -> Result<Option<String>, Finding> {
    let r = c
        .client
        .post(format!("{}/v1/workflows", c.url))
        .json(&body)
        .send()
        .await?;
    match r.status().as_u16() {
        201 => {
            let v: Value = r.json().await?;
            Ok(v["id"].as_str().map(str::to_string))
        }
        429 => Ok(None),
        other => Err(Finding::Create(other)),
    }
}

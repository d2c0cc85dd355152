//! A fake OpenAI-compatible chat-completions server on loopback: a real HTTP server
//! (the only fake the suite uses, because the real API is paid). Tests script its
//! behaviour and read back every request it received: its step key
//! (`Idempotency-Key`) and when its answer was fully written.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with a normal answer and this usage.
    Ok {
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// Any status with a JSON error body; optional Retry-After seconds.
    Status { code: u16, retry_after: Option<u64> },
    /// Never answers within `Duration`.
    Hang(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with `"choices": []`.
    EmptyChoices,
    /// 401 whose message echoes the Authorization header (a careless provider).
    EchoAuth,
    /// As `EchoAuth`, after this many characters of other text.
    EchoAuthAfter(usize),
    /// 429 with this raw `Retry-After` header (a number, a date, or garbage).
    RetryAfter(String),
}

#[derive(Clone, Debug)]
pub struct Recorded {
    /// When the request's first bytes arrived.
    pub at: Instant,
    pub authorization: Option<String>,
    /// The `Idempotency-Key` header: the call's step key.
    pub idempotency_key: Option<String>,
    pub body: Value,
    /// When the whole answer had been written to the socket (the client's kernel
    /// had it); None while in flight, or if the write failed.
    pub written: Option<Instant>,
}

impl Recorded {
    /// Function names the request offered (`tools[].function.name`).
    pub fn offered_tools(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `tool` messages the request carried (the tool results), in order.
    pub fn tool_messages(&self) -> Vec<String> {
        self.body["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter(|m| m["role"] == "tool")
                    .map(|m| m["content"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn user_prompt(&self) -> String {
        self.body["messages"][1]["content"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn model(&self) -> String {
        self.body["model"].as_str().unwrap_or("").to_string()
    }

    pub fn is_decomposition(&self) -> bool {
        self.user_prompt().starts_with("Break this task into")
    }

    /// Answered before `t`: the answer was fully written before then. An answer
    /// written after a SIGKILL went into a dead socket and was never received.
    pub fn answered_before(&self, t: Instant) -> bool {
        self.written.is_some_and(|w| w < t)
    }
}

struct State {
    behaviour: Behaviour,
    /// Prompts containing this marker get a 500, whatever the behaviour.
    fail_marker: Option<String>,
    /// Subtasks the decomposition answer lists.
    subtasks: Vec<String>,
    /// Time each call takes before its answer.
    latency: Duration,
    requests: Vec<Recorded>,
    /// How the model uses tools when a request offers some (see `script_tools`).
    tool_rounds: Vec<Vec<(String, Value)>>,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeOpenAi {
    /// A plain HTTP/1.1 server written on tokio's sockets (keep-alive, one
    /// request at a time per connection), so it knows when each answer was
    /// handed to the client's socket — a framework only says when it queued it.
    pub fn start() -> FakeOpenAi {
        let state = Arc::new(Mutex::new(State {
            behaviour: Behaviour::Ok {
                prompt_tokens: 100,
                completion_tokens: 50,
            },
            fail_marker: None,
            subtasks: Vec::new(),
            latency: Duration::ZERO,
            requests: Vec::new(),
            tool_rounds: Vec::new(),
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("fake server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind fake");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, Arc::clone(&shared)));
                }
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake server start");
        FakeOpenAi {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    pub fn set(&self, b: Behaviour) {
        self.state.lock().unwrap().behaviour = b;
    }

    /// Every call takes this long before it is answered.
    pub fn set_latency(&self, d: Duration) {
        self.state.lock().unwrap().latency = d;
    }

    pub fn fail_prompts_containing(&self, marker: &str) {
        self.state.lock().unwrap().fail_marker = Some(marker.to_string());
    }

    /// Tool use like a real model's: in a request that offers tools, turn k
    /// (after k-1 turns that asked for tools) asks for round k's calls — those
    /// whose function the request offers, all in one answer — and once the
    /// rounds are spent (or none of a round's functions is offered) it answers,
    /// quoting the start of each tool result and citing `[1]` — or, for a
    /// decomposition, with the `decompose_into` subtasks, each marked
    /// "(after k tool results)".
    pub fn script_tools(&self, rounds: Vec<Vec<(&str, Value)>>) {
        self.state.lock().unwrap().tool_rounds = rounds
            .into_iter()
            .map(|r| r.into_iter().map(|(f, a)| (f.to_string(), a)).collect())
            .collect();
    }

    pub fn decompose_into(&self, subtasks: &[&str]) {
        self.state.lock().unwrap().subtasks = subtasks.iter().map(|s| s.to_string()).collect();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests whose user prompt mentions `text` (e.g. a workflow's task).
    pub fn requests_for(&self, text: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.user_prompt().contains(text))
            .collect()
    }

    /// Every call by its step key (`Idempotency-Key`), in arrival order.
    pub fn calls_by_step_key(&self) -> HashMap<String, Vec<Recorded>> {
        let mut out: HashMap<String, Vec<Recorded>> = HashMap::new();
        for r in self.requests() {
            if let Some(k) = r.idempotency_key.clone() {
                out.entry(k).or_default().push(r);
            }
        }
        out
    }
}

/// One connection: requests one after another until the client closes it.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let Some((head_len, headers, path, arrived)) = read_head(&mut stream, &mut buf).await
        else {
            return;
        };
        let len: usize = header(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_len + len {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body: Vec<u8> = buf.drain(..head_len + len).skip(head_len).collect();
        let (status, extra, payload, index) = if path == "/v1/chat/completions" {
            handle(&state, &headers, &body, arrived).await
        } else {
            (
                404,
                Vec::new(),
                json!({"error": {"message": "not found"}}).to_string(),
                None,
            )
        };
        let text = payload;
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reason(status),
            text.len()
        );
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&text);
        let written =
            stream.write_all(out.as_bytes()).await.is_ok() && stream.flush().await.is_ok();
        if let (true, Some(i)) = (written, index) {
            state.lock().unwrap().requests[i].written = Some(Instant::now());
        }
    }
}

/// Reads until a whole request head is buffered; (head length, headers, path,
/// when its first bytes arrived).
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(usize, Vec<(String, String)>, String, Instant)> {
    let mut arrived = (!buf.is_empty()).then(Instant::now);
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut slots);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let headers = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let path = req.path.unwrap_or("").to_string();
            return Some((n, headers, path, arrived.unwrap_or_else(Instant::now)));
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {
                arrived.get_or_insert_with(Instant::now);
            }
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// Status, extra headers, body text, and the index of the recorded request.
type Answer = (u16, Vec<(String, String)>, String, Option<usize>);

async fn handle(
    state: &Mutex<State>,
    headers: &[(String, String)],
    body: &[u8],
    arrived: Instant,
) -> Answer {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let auth = header(headers, "authorization").map(str::to_string);
    let rec = Recorded {
        at: arrived,
        authorization: auth.clone(),
        idempotency_key: header(headers, "idempotency-key").map(str::to_string),
        body: parsed,
        written: None,
    };
    let (behaviour, failing, subtasks, latency, index, tool_rounds) = {
        let mut s = state.lock().unwrap();
        let failing = s
            .fail_marker
            .as_ref()
            .is_some_and(|m| rec.user_prompt().contains(m.as_str()));
        s.requests.push(rec.clone());
        (
            s.behaviour.clone(),
            failing,
            s.subtasks.clone(),
            s.latency,
            s.requests.len() - 1,
            s.tool_rounds.clone(),
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let index = Some(index);
    if failing {
        let body = json!({"error": {"message": "scripted failure"}});
        return (500, Vec::new(), body.to_string(), index);
    }
    match behaviour {
        Behaviour::Ok {
            prompt_tokens,
            completion_tokens,
        } => {
            let turn = tool_turn(
                &rec,
                &tool_rounds,
                &subtasks,
                prompt_tokens,
                completion_tokens,
            );
            if let Some(answer) = turn {
                return (200, Vec::new(), answer.to_string(), index);
            }
            let content = if rec.is_decomposition() && !subtasks.is_empty() {
                serde_json::to_string(&subtasks).unwrap()
            } else {
                format!(
                    "Fake answer about: {}",
                    rec.user_prompt().lines().last().unwrap_or("")
                )
            };
            let answer = json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": rec.model(),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            });
            (200, Vec::new(), answer.to_string(), index)
        }
        Behaviour::Status { code, retry_after } => {
            let extra = retry_after
                .map(|s| vec![("Retry-After".to_string(), s.to_string())])
                .unwrap_or_default();
            let body =
                json!({"error": {"message": format!("scripted status {code}"), "type": "test"}});
            (code, extra, body.to_string(), index)
        }
        Behaviour::Hang(d) => {
            tokio::time::sleep(d).await;
            (200, Vec::new(), json!({"choices": []}).to_string(), index)
        }
        Behaviour::Malformed => (
            200,
            Vec::new(),
            "{\"choices\": [ this is not json".into(),
            index,
        ),
        Behaviour::EmptyChoices => (
            200,
            Vec::new(),
            json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0}})
                .to_string(),
            index,
        ),
        Behaviour::EchoAuth => (
            401,
            Vec::new(),
            json!({"error": {"message": format!("invalid key: {}", auth.unwrap_or_default())}})
                .to_string(),
            index,
        ),
        Behaviour::EchoAuthAfter(n) => (
            401,
            Vec::new(),
            json!({"error": {
                "message": format!("{}{}", "x".repeat(n), auth.unwrap_or_default())
            }})
            .to_string(),
            index,
        ),
        Behaviour::RetryAfter(v) => (
            429,
            vec![("Retry-After".to_string(), v.to_string())],
            json!({"error": {"message": "scripted rate limit"}}).to_string(),
            index,
        ),
    }
}

/// A turn of a tool loop (see `FakeOpenAi::script_tools`); None for a request
/// that is not part of one.
fn tool_turn(
    rec: &Recorded,
    rounds: &[Vec<(String, Value)>],
    subtasks: &[String],
    prompt_tokens: u64,
    completion_tokens: u64,
) -> Option<Value> {
    let offered = rec.offered_tools();
    let results = rec.tool_messages();
    if offered.is_empty() && results.is_empty() {
        return None;
    }
    let done = rec.body["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["tool_calls"].is_array()).count())
        .unwrap_or(0);
    let calls: Vec<Value> = rounds
        .get(done)
        .map(|r| {
            r.iter()
                .filter(|(f, _)| offered.contains(f))
                .enumerate()
                .map(|(i, (f, a))| {
                    json!({"id": format!("call_{done}_{i}"), "type": "function",
                           "function": {"name": f, "arguments": a.to_string()}})
                })
                .collect()
        })
        .unwrap_or_default();
    let message = if calls.is_empty() && rec.is_decomposition() && !subtasks.is_empty() {
        // A decomposer with tools answers with the subtasks, marked with what
        // it read, so a test sees they come from the turn after the tools.
        let marked: Vec<String> = subtasks
            .iter()
            .map(|s| format!("{s} (after {} tool results)", results.len()))
            .collect();
        json!({"role": "assistant", "content": serde_json::to_string(&marked).unwrap()})
    } else if calls.is_empty() {
        let quoted: Vec<String> = results
            .iter()
            .map(|r| r.chars().take(300).collect::<String>())
            .collect();
        json!({"role": "assistant", "content": format!(
            "Answer from {} tool results, citing [1]: {}", results.len(), quoted.join(" | "))})
    } else {
        json!({"role": "assistant", "content": null, "tool_calls": calls})
    };
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    Some(json!({
        "id": "chatcmpl-fake-tools",
        "object": "chat.completion",
        "model": rec.model(),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }))
}

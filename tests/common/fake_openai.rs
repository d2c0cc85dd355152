//! A fake OpenAI-compatible chat-completions server on loopback: a real HTTP server
//! (the only fake the suite uses, because the real API is paid). Tests script its
//! behaviour and read back every request it received.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

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
    pub at: Instant,
    pub authorization: Option<String>,
    pub body: Value,
}

impl Recorded {
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
}

struct State {
    behaviour: Behaviour,
    /// Prompts containing this marker get a 500, whatever the behaviour.
    fail_marker: Option<String>,
    /// Subtasks the decomposition answer lists.
    subtasks: Vec<String>,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeOpenAi {
    pub fn start() -> FakeOpenAi {
        let state = Arc::new(Mutex::new(State {
            behaviour: Behaviour::Ok {
                prompt_tokens: 100,
                completion_tokens: 50,
            },
            fail_marker: None,
            subtasks: Vec::new(),
            requests: Vec::new(),
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let data = web::Data::new(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/v1/chat/completions", web::post().to(handle))
                })
                .workers(1)
                .disable_signals()
                .bind("127.0.0.1:0")
                .expect("bind fake");
                let addr = server.addrs()[0];
                tx.send(addr).expect("send addr");
                let _ = server.run().await;
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

    pub fn fail_prompts_containing(&self, marker: &str) {
        self.state.lock().unwrap().fail_marker = Some(marker.to_string());
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
}

async fn handle(
    state: web::Data<Arc<Mutex<State>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let rec = Recorded {
        at: Instant::now(),
        authorization: auth.clone(),
        body: parsed,
    };
    let (behaviour, failing, subtasks) = {
        let mut s = state.lock().unwrap();
        let failing = s
            .fail_marker
            .as_ref()
            .is_some_and(|m| rec.user_prompt().contains(m.as_str()));
        s.requests.push(rec.clone());
        (s.behaviour.clone(), failing, s.subtasks.clone())
    };
    if failing {
        return HttpResponse::InternalServerError()
            .json(json!({"error": {"message": "scripted failure"}}));
    }
    match behaviour {
        Behaviour::Ok {
            prompt_tokens,
            completion_tokens,
        } => {
            let content = if rec.is_decomposition() && !subtasks.is_empty() {
                serde_json::to_string(&subtasks).unwrap()
            } else {
                format!(
                    "Fake answer about: {}",
                    rec.user_prompt().lines().last().unwrap_or("")
                )
            };
            HttpResponse::Ok().json(json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": rec.model(),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            }))
        }
        Behaviour::Status { code, retry_after } => {
            let mut r = HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap());
            if let Some(s) = retry_after {
                r.insert_header(("Retry-After", s.to_string()));
            }
            r.json(json!({"error": {"message": format!("scripted status {code}"), "type": "test"}}))
        }
        Behaviour::Hang(d) => {
            tokio::time::sleep(d).await;
            HttpResponse::Ok().json(json!({"choices": []}))
        }
        Behaviour::Malformed => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"choices\": [ this is not json"),
        Behaviour::EmptyChoices => HttpResponse::Ok()
            .json(json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0}})),
        Behaviour::EchoAuth => HttpResponse::Unauthorized().json(
            json!({"error": {"message": format!("invalid key: {}", auth.unwrap_or_default())}}),
        ),
        Behaviour::EchoAuthAfter(n) => HttpResponse::Unauthorized().json(json!({"error": {
            "message": format!("{}{}", "x".repeat(n), auth.unwrap_or_default())
        }})),
        Behaviour::RetryAfter(v) => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", v))
            .json(json!({"error": {"message": "scripted rate limit"}})),
    }
}

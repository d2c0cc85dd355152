//! A webhook receiver on loopback that records every delivery and answers as the
//! test scripts it (status codes in order, a delay).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    /// The sender's port: the same port on two deliveries = one reused connection.
    pub peer_port: u16,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct State {
    /// Status codes for the next requests, then `default`.
    script: VecDeque<u16>,
    default: u16,
    delay: Duration,
    /// Held: requests are recorded but not answered until `release`.
    held: bool,
    /// Requests answered so far.
    answered: usize,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            default: 200,
            delay: Duration::ZERO,
            held: false,
            answered: 0,
            received: Vec::new(),
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let data = web::Data::new(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(handle))
                })
                .workers(1)
                .disable_signals()
                .bind("127.0.0.1:0")
                .expect("bind receiver");
                tx.send(server.addrs()[0]).expect("addr");
                let _ = server.run().await;
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver start");
        Receiver {
            url: format!("http://{addr}/hook"),
            port: addr.port(),
            state,
        }
    }

    pub fn answer(&self, codes: &[u16], then: u16) {
        let mut s = self.state.lock().unwrap();
        s.script = codes.iter().copied().collect();
        s.default = then;
    }

    pub fn delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    /// Records requests but answers none until `release`: a receiver that is as
    /// slow as a test needs, without a duration to tune.
    pub fn hold(&self) {
        self.state.lock().unwrap().held = true;
    }

    pub fn release(&self) {
        self.state.lock().unwrap().held = false;
    }

    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.state.lock().unwrap().answered
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let t = Instant::now();
        loop {
            let r = self.received();
            if r.len() >= n {
                return r;
            }
            assert!(
                t.elapsed() < within,
                "receiver got {} of {n} requests",
                r.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    state: web::Data<Arc<Mutex<State>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (code, delay) = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            at: Instant::now(),
            peer_port: req.peer_addr().map_or(0, |a| a.port()),
            path: req.path().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.to_vec(),
        });
        (s.script.pop_front().unwrap_or(s.default), s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    while state.lock().unwrap().held {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    state.lock().unwrap().answered += 1;
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).body("ok")
}

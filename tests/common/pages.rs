//! A web site on loopback for the tool tests: HTML pages by path that a real
//! fetch tool server downloads, a count of requests per path, and paths held
//! unanswered until the test releases them (a page as slow as a test needs).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Default)]
struct State {
    pages: HashMap<String, String>,
    hits: HashMap<String, usize>,
    held: HashSet<String>,
}

#[derive(Clone)]
pub struct Pages {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl Pages {
    pub fn start() -> Pages {
        let state = Arc::new(Mutex::new(State::default()));
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
                .expect("bind pages");
                tx.send(server.addrs()[0]).expect("addr");
                let _ = server.run().await;
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("pages start");
        Pages {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// Serves `html` at `path`; returns the page's URL.
    pub fn page(&self, path: &str, html: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.pages.insert(path.to_string(), html.to_string());
        format!("{}{path}", self.base)
    }

    /// Requests to `path` wait (unanswered) until `release`.
    pub fn hold(&self, path: &str) {
        self.state.lock().unwrap().held.insert(path.to_string());
    }

    pub fn release(&self, path: &str) {
        self.state.lock().unwrap().held.remove(path);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `path` was requested at least `n` times.
    pub async fn wait_hits(&self, path: &str, n: usize, within: Duration) {
        let t = std::time::Instant::now();
        while self.hits(path) < n {
            assert!(
                t.elapsed() < within,
                "{path} was requested {} times, not {n}",
                self.hits(path)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A simple article page: a title, a heading and paragraphs (what an HTML
/// extractor keeps).
pub fn article(title: &str, paragraphs: &[&str]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!DOCTYPE html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>\n{body}</article></body></html>"
    )
}

async fn handle(state: web::Data<Arc<Mutex<State>>>, req: HttpRequest) -> HttpResponse {
    let path = req.path().to_string();
    let page = {
        let mut s = state.lock().unwrap();
        *s.hits.entry(path.clone()).or_default() += 1;
        s.pages.get(&path).cloned()
    };
    while state.lock().unwrap().held.contains(&path) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match page {
        Some(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        None => HttpResponse::NotFound().body("not found"),
    }
}

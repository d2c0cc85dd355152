//! `Idempotency-Key` on creates (`POST /v1/workflows`, `/tools/orchestrate_*`):
//! the same key with the same request within `idempotency.ttl` returns the
//! workflow the first request created; a different request is refused.
//!
//! Keys live in the primary store (written by the registry with the workflow, so
//! they survive restarts) and in a bounded in-memory index that also serialises
//! concurrent requests carrying one key: the first claims it, the others wait for
//! its outcome. A claim released without a workflow (400, 429, 503 before
//! admission) leaves no trace, so a retry goes through; a workflow admitted but
//! not acknowledged (503 after `ack_timeout`) keeps the key, so the retry gets it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::api::body::{parse_json, read_body};
use crate::clock::now;
use crate::domain::IdempotencyRecord;
use crate::error::ApiError;
use crate::metric_names::IDEMPOTENCY_KEYS;
use crate::store::Store;
use crate::AppState;

pub use crate::error::IDEMPOTENCY_HEADER as HEADER;
/// Set to `true` on an answer that returns an earlier request's workflow.
pub const REPLAYED: &str = "Idempotent-Replayed";
pub const MAX_KEY_CHARS: usize = 255;

/// The request's key: absent, or 1–255 printable ASCII characters (else 400).
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::validation(
            HEADER,
            format!(
                "the {HEADER} header {why}; use 1 to {MAX_KEY_CHARS} printable ASCII characters"
            ),
        )
    };
    let bytes = v.as_bytes();
    if bytes.is_empty() {
        return Err(bad("is empty"));
    }
    if bytes.len() > MAX_KEY_CHARS {
        return Err(bad(&format!("is {} characters long", bytes.len())));
    }
    if !bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(bad("contains a character that is not printable ASCII"));
    }
    // All printable ASCII: valid UTF-8.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Hex SHA-256 of the route and the body; a JSON body is hashed in canonical
/// form (keys sorted, no whitespace), so the same request written differently is
/// still the same request.
pub fn request_hash(route: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => h.update(canonical(v).to_string().as_bytes()),
        Err(_) => h.update(body),
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

type Id = (String, String);

enum Slot {
    /// A request holding this key is being admitted; waiters watch for its end.
    Claimed {
        hash: String,
        done: watch::Receiver<()>,
    },
    Done(Done),
}

#[derive(Clone)]
struct Done {
    hash: String,
    workflow_id: String,
    /// The change to wait for before acknowledging (created by this process).
    seq: Option<u64>,
    at: Instant,
}

struct Inner {
    slots: HashMap<Id, Slot>,
    /// Done keys, oldest first, for expiry and the cap.
    order: VecDeque<(Id, Instant)>,
}

/// The in-memory side: claims in progress and recent outcomes.
pub struct Index {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_cached: usize,
}

/// What a create with a key does next.
pub enum Begin {
    /// A new request: create, then `Claim::finish` with the workflow.
    Create(Claim),
    /// A retry: answer with this workflow.
    Replay {
        workflow_id: String,
        seq: Option<u64>,
    },
}

enum Check {
    Replay(Done),
    Conflict,
    Wait(watch::Receiver<()>),
    Claimed(watch::Sender<()>),
}

impl Index {
    pub fn new(ttl: Duration, max_cached: usize) -> Index {
        Index {
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                order: VecDeque::new(),
            }),
            ttl,
            max_cached: max_cached.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another request panicked mid-update; the
        // map itself is still consistent enough to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, id: &Id, hash: &str) -> Check {
        let mut inner = self.lock();
        match inner.slots.get(id) {
            Some(Slot::Done(d)) if d.at.elapsed() < self.ttl => {
                if d.hash == hash {
                    Check::Replay(d.clone())
                } else {
                    Check::Conflict
                }
            }
            Some(Slot::Claimed { hash: h, .. }) if h != hash => Check::Conflict,
            Some(Slot::Claimed { done, .. }) => Check::Wait(done.clone()),
            _ => {
                let (tx, rx) = watch::channel(());
                inner.slots.insert(
                    id.clone(),
                    Slot::Claimed {
                        hash: hash.to_string(),
                        done: rx,
                    },
                );
                Check::Claimed(tx)
            }
        }
    }

    fn finish(&self, id: Id, done: Done) {
        let mut inner = self.lock();
        let at = done.at;
        inner.slots.insert(id.clone(), Slot::Done(done));
        inner.order.push_back((id, at));
        // Expired keys leave memory; past the cap the oldest go too (they stay in
        // the store, which answers for them).
        while let Some((old, at)) = inner.order.front().cloned() {
            let over = inner.order.len() > self.max_cached;
            if !over && at.elapsed() < self.ttl {
                break;
            }
            inner.order.pop_front();
            if matches!(inner.slots.get(&old), Some(Slot::Done(d)) if d.at == at) {
                inner.slots.remove(&old);
            }
        }
        metrics::gauge!(IDEMPOTENCY_KEYS).set(inner.order.len() as f64);
    }

    fn release(&self, id: &Id) {
        let mut inner = self.lock();
        if matches!(inner.slots.get(id), Some(Slot::Claimed { .. })) {
            inner.slots.remove(id);
        }
    }

    /// Looks the key up (memory, then store) and either claims it for a new
    /// create, or says which workflow answers the retry. `wait` bounds how long a
    /// request waits for a concurrent one holding the same key.
    pub async fn begin(
        self: &Arc<Self>,
        store: &dyn Store,
        scope: &str,
        key: String,
        hash: String,
        wait: Duration,
    ) -> Result<Begin, ApiError> {
        let id: Id = (scope.to_string(), key);
        loop {
            match self.check(&id, &hash) {
                Check::Replay(d) => {
                    return Ok(Begin::Replay {
                        workflow_id: d.workflow_id,
                        seq: d.seq,
                    })
                }
                Check::Conflict => return Err(ApiError::IdempotencyConflict(id.1)),
                Check::Wait(mut rx) => {
                    // Ends when the other request finishes or gives the key up.
                    if tokio::time::timeout(wait, rx.changed()).await.is_err() {
                        return Err(ApiError::StoreUnavailable(format!(
                            "another request with this {HEADER} is still being admitted; retry shortly"
                        )));
                    }
                }
                Check::Claimed(tx) => {
                    let claim = Claim {
                        index: Arc::clone(self),
                        id: Some(id.clone()),
                        hash: hash.clone(),
                        _done: tx,
                    };
                    let since = now()
                        - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(1));
                    // On a store error the claim drops and the key is free again.
                    return match store.find_idempotency_key(scope, &id.1, since).await? {
                        None => Ok(Begin::Create(claim)),
                        Some(rec) => {
                            let same = rec.request_hash == hash;
                            let workflow_id = rec.workflow_id.clone();
                            claim.remember(rec.request_hash, rec.workflow_id, None);
                            if same {
                                Ok(Begin::Replay {
                                    workflow_id,
                                    seq: None,
                                })
                            } else {
                                Err(ApiError::IdempotencyConflict(id.1))
                            }
                        }
                    };
                }
            }
        }
    }
}

/// A create's body, raw (for `request_hash`) and parsed, after checking the
/// request's `Idempotency-Key` (a bad key is 400 before anything else).
pub async fn keyed_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<(actix_web::web::Bytes, T), ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let raw = read_body(payload, &state.config.server, declared)
        .await?
        .freeze();
    key_of(req)?;
    let parsed = parse_json(&raw)?;
    Ok((raw, parsed))
}

/// For a create handler: None without a key; else claim it or find the replay.
/// `route` and `body` identify the request (see `request_hash`).
/// `scope` is the caller's owner name ("" when auth is off): keys of different
/// owners never meet.
pub async fn begin_for(
    state: &AppState,
    req: &HttpRequest,
    scope: &str,
    route: &str,
    body: &[u8],
) -> Result<Option<Begin>, ApiError> {
    let Some(key) = key_of(req)? else {
        return Ok(None);
    };
    let hash = request_hash(route, body);
    let wait = state.config.ack_timeout();
    state
        .idempotency
        .begin(state.store.as_ref(), scope, key, hash, wait)
        .await
        .map(Some)
}

/// A key held by one create request. Dropped without `finish`, it is released.
pub struct Claim {
    index: Arc<Index>,
    id: Option<Id>,
    hash: String,
    /// Dropped with the claim: wakes requests waiting on the same key.
    _done: watch::Sender<()>,
}

impl Claim {
    /// The record the registry stores with the workflow it creates.
    pub fn record(&self) -> IdempotencyRecord {
        let (scope, key) = self.id.clone().unwrap_or_default();
        IdempotencyRecord {
            scope,
            key,
            request_hash: self.hash.clone(),
            workflow_id: String::new(),
            created_at: now(),
        }
    }

    /// The workflow exists (acknowledged or not): retries get it from now on.
    pub fn finish(self, workflow_id: String, seq: u64) {
        let hash = self.hash.clone();
        self.remember(hash, workflow_id, Some(seq));
    }

    fn remember(mut self, hash: String, workflow_id: String, seq: Option<u64>) {
        if let Some(id) = self.id.take() {
            let done = Done {
                hash,
                workflow_id,
                seq,
                at: Instant::now(),
            };
            self.index.finish(id, done);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(id) = &self.id {
            self.index.release(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        let req = |v: &str| {
            TestRequest::default()
                .insert_header((HEADER, v))
                .to_http_request()
        };
        assert_eq!(
            key_of(&req("abc-123_:/")).unwrap().as_deref(),
            Some("abc-123_:/")
        );
        assert!(key_of(&TestRequest::default().to_http_request())
            .unwrap()
            .is_none());
        assert!(key_of(&req(&"k".repeat(255))).is_ok());
        for bad in ["", &"k".repeat(256), "tab\there"] {
            match key_of(&req(bad)) {
                Err(ApiError::Validation { field, .. }) => assert_eq!(field, HEADER),
                other => panic!("{bad:?} accepted: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn same_request_in_another_form_hashes_the_same() {
        let a = request_hash("/v1/workflows", br#"{"task": "x", "pattern": "search"}"#);
        let b = request_hash("/v1/workflows", br#"{"pattern":"search","task":"x"}"#);
        let c = request_hash("/v1/workflows", br#"{"pattern":"search","task":"y"}"#);
        let d = request_hash(
            "/tools/orchestrate_search",
            br#"{"pattern":"search","task":"x"}"#,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn the_cap_drops_the_oldest_keys_from_memory() {
        let index = Arc::new(Index::new(Duration::from_secs(60), 2));
        for k in ["a", "b", "c"] {
            let id: Id = (String::new(), k.into());
            let Check::Claimed(tx) = index.check(&id, "h") else {
                panic!("fresh key not claimed");
            };
            let claim = Claim {
                index: Arc::clone(&index),
                id: Some(id),
                hash: "h".into(),
                _done: tx,
            };
            claim.finish(format!("wf_{k}"), 1);
        }
        let id = |k: &str| (String::new(), k.to_string());
        assert!(matches!(index.check(&id("c"), "h"), Check::Replay(_)));
        assert!(matches!(index.check(&id("b"), "other"), Check::Conflict));
        // "a" left memory: a new claim (the store is asked next).
        assert!(matches!(index.check(&id("a"), "h"), Check::Claimed(_)));
    }
}

//! Persistence actors and the shared view of their health. The `PersistHealth`
//! watermark ("committed up to change N") is how sync durability, read barriers
//! and `/health` see a writer without sending it messages.

pub mod redis;
pub mod redis_schema;
pub mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

pub use redis::{RedisLink, RedisPersister};
pub use writer::StoreWriter;

pub struct PersistHealth {
    pub name: &'static str,
    /// Highest change seq the registry has emitted (written by the registry).
    emitted: AtomicU64,
    committed: watch::Sender<u64>,
    queue_len: AtomicUsize,
    pub max_queue: usize,
    failures: AtomicU64,
    restarts: AtomicU64,
    batches: AtomicU64,
    changes: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// Why a wait for the store ended without the write being committed.
#[derive(Debug)]
pub struct NotCommitted(pub String);

impl PersistHealth {
    pub fn new(name: &'static str, max_queue: usize) -> PersistHealth {
        PersistHealth {
            name,
            emitted: AtomicU64::new(0),
            committed: watch::channel(0).0,
            queue_len: AtomicUsize::new(0),
            max_queue,
            failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    pub fn set_emitted(&self, seq: u64) {
        self.emitted.store(seq, Ordering::Release);
    }

    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Acquire)
    }

    pub fn committed(&self) -> u64 {
        *self.committed.borrow()
    }

    /// A batch of `changes` committed in one transaction, up to change `seq`.
    fn record_batch(&self, changes: usize, seq: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.changes.fetch_add(changes as u64, Ordering::Relaxed);
        self.set_committed(seq);
    }

    /// (transactions committed, changes committed) since start.
    pub fn written(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.changes.load(Ordering::Relaxed),
        )
    }

    fn set_committed(&self, seq: u64) {
        self.committed.send_if_modified(|c| {
            let newer = seq > *c;
            if newer {
                *c = seq;
            }
            newer
        });
        self.failing.store(false, Ordering::Release);
    }

    fn set_queue_len(&self, n: usize) {
        self.queue_len.store(n, Ordering::Release);
    }

    pub fn queue_len(&self) -> usize {
        self.queue_len.load(Ordering::Acquire)
    }

    /// New work is refused while this holds: nothing is ever dropped.
    pub fn is_full(&self) -> bool {
        self.queue_len() >= self.max_queue
    }

    fn record_failure(&self, e: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Release);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e.to_string());
        }
    }

    fn record_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// True from a failed write until the next successful one.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// The committed watermark as it moves (the registry publishes events to
    /// streams only once they are committed).
    pub fn watch_committed(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Waits until change `seq` is committed, at most `timeout`.
    pub async fn wait_committed(&self, seq: u64, timeout: Duration) -> Result<(), NotCommitted> {
        let mut rx = self.committed.subscribe();
        let reached = async { rx.wait_for(|c| *c >= seq).await.map(|_| ()) };
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(NotCommitted(format!("{} writer is gone", self.name))),
            Err(_) => Err(NotCommitted(format!(
                "{} did not commit within {:?}{}",
                self.name,
                timeout,
                self.last_error()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// Waits until everything emitted so far is committed: reads after this see
    /// every change made before the call.
    pub async fn barrier(&self, timeout: Duration) -> Result<(), NotCommitted> {
        self.wait_committed(self.emitted(), timeout).await
    }
}

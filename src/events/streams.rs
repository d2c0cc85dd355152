//! Caps on open Server-Sent-Events streams: `limits.max_sse_streams` in total,
//! `limits.max_sse_streams_per_workflow` per workflow and each key's share of the
//! total (`auth.max_share`), v1, the old `/stream` route and MCP's waits together.
//! A stream holds a `StreamPermit` for as long as its response body lives, so a
//! client that goes away frees its place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth::Shares;
use crate::config::LimitsConfig;
use crate::error::ApiError;

pub struct StreamLimits {
    max_total: usize,
    max_per_workflow: usize,
    shares: Shares,
    open: Mutex<Open>,
    refused: AtomicU64,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Only workflows with an open stream: at most `max_total` entries.
    per_workflow: HashMap<String, usize>,
    /// Only keys with an open stream (None: no key); keys come from the config.
    per_key: HashMap<Option<Arc<str>>, usize>,
}

/// One open stream; dropping it closes its place.
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    workflow: String,
    key: Option<Arc<str>>,
}

impl StreamLimits {
    pub fn new(cfg: &LimitsConfig, shares: Shares) -> StreamLimits {
        StreamLimits {
            max_total: cfg.max_sse_streams,
            max_per_workflow: cfg.max_sse_streams_per_workflow,
            shares,
            open: Mutex::new(Open::default()),
            refused: AtomicU64::new(0),
        }
    }

    /// A place for one more stream of `workflow` opened by `key`, or 429
    /// `too_many_streams`.
    pub fn acquire(
        self: &Arc<Self>,
        workflow: &str,
        key: Option<&str>,
    ) -> Result<StreamPermit, ApiError> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| ApiError::Internal("stream limits poisoned".into()))?;
        let mine = open.per_workflow.get(workflow).copied().unwrap_or(0);
        let key: Option<Arc<str>> = key.map(Arc::from);
        let by_key = open.per_key.get(&key).copied().unwrap_or(0);
        let share = self.shares.limit(key.as_deref(), self.max_total);
        let refusal = if open.total >= self.max_total {
            Some(ApiError::TooManyStreams {
                open: open.total,
                limit: self.max_total,
                key: "limits.max_sse_streams",
                scope: "in total".into(),
            })
        } else if mine >= self.max_per_workflow {
            Some(ApiError::TooManyStreams {
                open: mine,
                limit: self.max_per_workflow,
                key: "limits.max_sse_streams_per_workflow",
                scope: format!("for workflow '{workflow}'"),
            })
        } else if by_key >= share {
            self.shares.refused(key.as_deref(), "sse_streams");
            Some(ApiError::TooManyStreams {
                open: by_key,
                limit: share,
                key: "auth.max_share of limits.max_sse_streams",
                scope: Shares::scope(key.as_deref()),
            })
        } else {
            None
        };
        if let Some(e) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        open.total += 1;
        *open.per_workflow.entry(workflow.to_string()).or_insert(0) += 1;
        *open.per_key.entry(key.clone()).or_insert(0) += 1;
        Ok(StreamPermit {
            limits: Arc::clone(self),
            workflow: workflow.to_string(),
            key,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.lock().map(|o| o.total).unwrap_or(0)
    }

    /// Streams refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.per_workflow.get_mut(&self.workflow) {
                *n -= 1;
                if *n == 0 {
                    open.per_workflow.remove(&self.workflow);
                }
            }
            if let Some(n) = open.per_key.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    open.per_key.remove(&self.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_workflow: usize, shares: Shares) -> Arc<StreamLimits> {
        let cfg = LimitsConfig {
            max_sse_streams: total,
            max_sse_streams_per_workflow: per_workflow,
            ..Default::default()
        };
        Arc::new(StreamLimits::new(&cfg, shares))
    }

    fn lone() -> Shares {
        Shares::new(&crate::config::AuthConfig::default())
    }

    #[test]
    fn a_key_holds_at_most_its_share_and_others_still_get_in() {
        let mut auth = crate::config::AuthConfig::default();
        for name in ["a", "b"] {
            auth.keys.push(crate::config::test_key(name));
        }
        let l = limits(4, 4, Shares::new(&auth));
        let _a = [
            l.acquire("w1", Some("a")).unwrap(),
            l.acquire("w2", Some("a")).unwrap(),
        ];
        let e = l.acquire("w3", Some("a")).err().unwrap();
        assert_eq!(e.code(), "too_many_streams");
        assert!(e.to_string().contains("auth.max_share"), "{e}");
        let b = l.acquire("w1", Some("b")).unwrap();
        drop(b);
        assert!(!l
            .open
            .lock()
            .unwrap()
            .per_key
            .contains_key(&Some(Arc::from("b"))));
    }

    #[test]
    fn caps_per_workflow_and_in_total_and_frees_on_drop() {
        let l = limits(3, 2, lone());
        let a1 = l.acquire("a", None).unwrap();
        let _a2 = l.acquire("a", None).unwrap();
        let e = l.acquire("a", None).err().unwrap();
        assert_eq!(e.code(), "too_many_streams");
        assert!(e
            .to_string()
            .contains("limits.max_sse_streams_per_workflow"));
        let _b1 = l.acquire("b", None).unwrap();
        let e = l.acquire("c", None).err().unwrap();
        assert!(e.to_string().contains("(limits.max_sse_streams)"), "{e}");
        assert_eq!((l.open(), l.refused()), (3, 2));
        drop(a1);
        let _c1 = l.acquire("c", None).unwrap();
        assert_eq!(l.open(), 3);
        drop(_a2);
        assert!(!l.open.lock().unwrap().per_workflow.contains_key("a"));
    }
}

//! Caps on open Server-Sent-Events streams: `limits.max_sse_streams` in total and
//! `limits.max_sse_streams_per_workflow` per workflow, v1 and the old `/stream`
//! route together. A stream holds a `StreamPermit` for as long as its response
//! body lives, so a client that goes away frees its place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::ApiError;

pub struct StreamLimits {
    max_total: usize,
    max_per_workflow: usize,
    open: Mutex<Open>,
    refused: AtomicU64,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Only workflows with an open stream: at most `max_total` entries.
    per_workflow: HashMap<String, usize>,
}

/// One open stream; dropping it closes its place.
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    workflow: String,
}

impl StreamLimits {
    pub fn new(max_total: usize, max_per_workflow: usize) -> StreamLimits {
        StreamLimits {
            max_total,
            max_per_workflow,
            open: Mutex::new(Open::default()),
            refused: AtomicU64::new(0),
        }
    }

    /// A place for one more stream of `workflow`, or 429 `too_many_streams`.
    pub fn acquire(self: &Arc<Self>, workflow: &str) -> Result<StreamPermit, ApiError> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| ApiError::Internal("stream limits poisoned".into()))?;
        let mine = open.per_workflow.get(workflow).copied().unwrap_or(0);
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
        } else {
            None
        };
        if let Some(e) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        open.total += 1;
        *open.per_workflow.entry(workflow.to_string()).or_insert(0) += 1;
        Ok(StreamPermit {
            limits: Arc::clone(self),
            workflow: workflow.to_string(),
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_workflow_and_in_total_and_frees_on_drop() {
        let l = Arc::new(StreamLimits::new(3, 2));
        let a1 = l.acquire("a").unwrap();
        let _a2 = l.acquire("a").unwrap();
        let e = l.acquire("a").err().unwrap();
        assert_eq!(e.code(), "too_many_streams");
        assert!(e
            .to_string()
            .contains("limits.max_sse_streams_per_workflow"));
        let _b1 = l.acquire("b").unwrap();
        let e = l.acquire("c").err().unwrap();
        assert!(e.to_string().contains("(limits.max_sse_streams)"), "{e}");
        assert_eq!((l.open(), l.refused()), (3, 2));
        drop(a1);
        let _c1 = l.acquire("c").unwrap();
        assert_eq!(l.open(), 3);
        drop(_a2);
        assert!(!l.open.lock().unwrap().per_workflow.contains_key("a"));
    }
}

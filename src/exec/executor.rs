//! Runs workflow futures on a small pool of dedicated arbiters (threads), apart from
//! the HTTP workers and the registry. Each run can be aborted at any await point,
//! which also drops its in-flight provider calls.

use std::sync::atomic::{AtomicUsize, Ordering};

use actix::prelude::*;
use futures::future::{abortable, AbortHandle};

use super::{drive, Run};

pub struct Executor {
    arbiters: Vec<Arbiter>,
    next: AtomicUsize,
}

impl Executor {
    pub fn new(threads: usize) -> Executor {
        let n = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        Executor {
            arbiters: (0..n).map(|_| Arbiter::new()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn spawn(&self, run: Run) -> AbortHandle {
        let (fut, handle) = abortable(drive(run));
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        let spawned = self.arbiters[i].spawn(async move {
            let _ = fut.await;
        });
        if !spawned {
            tracing::error!("executor arbiter {i} is gone; workflow not started");
        }
        handle
    }

    pub fn stop(&self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

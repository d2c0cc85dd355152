//! Runs workflow futures on a small pool of dedicated arbiters (threads), apart from
//! the HTTP workers and the registry. Each run can be aborted at any await point,
//! which also drops its in-flight provider calls. An arbiter found stopped is
//! replaced before a run is placed on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use actix::prelude::*;
use futures::future::{abortable, AbortHandle};

use super::{supervised, Run};

pub struct Executor {
    arbiters: Mutex<Vec<Arbiter>>,
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
            arbiters: Mutex::new((0..n).map(|_| Arbiter::new()).collect()),
            next: AtomicUsize::new(0),
        }
    }

    /// Starts the run on the next arbiter. `None` when no executor thread could
    /// take it (the caller fails the workflow; the run's `RunEnded` follows too).
    pub fn spawn(&self, run: Run) -> Option<AbortHandle> {
        // Boxed here: a run's future is large, and every wrapper below would
        // otherwise move (copy) all of it.
        let (fut, handle) = abortable(Box::pin(supervised(run)));
        let Ok(mut arbiters) = self.arbiters.lock() else {
            return None;
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % arbiters.len().max(1);
        let slot = arbiters.get_mut(i)?;
        // A stopped arbiter refuses new work: replace it.
        if !slot.spawn(async {}) {
            tracing::error!("executor thread {i} is gone; starting a new one");
            *slot = Arbiter::new();
        }
        let spawned = slot.spawn(async move {
            let _ = fut.await;
        });
        spawned.then_some(handle)
    }

    pub fn stop(&self) {
        if let Ok(arbiters) = self.arbiters.lock() {
            for a in arbiters.iter() {
                a.stop();
            }
        }
    }
}

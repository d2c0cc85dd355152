//! A sleep accurate to about 0.1 ms for the simulated provider. tokio's timer has
//! 1 ms ticks and rounds deadlines up, so a "50 ms" simulated call took 50–52 ms;
//! the benchmarks count everything beyond the simulated latencies as orchestration
//! overhead, so the simulator must take exactly what it claims. One thread holds
//! the deadlines and wakes the sleepers through oneshot channels.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Wake-up time, a unique id (ties), and whom to wake.
type Sleeper = (Instant, u64, oneshot::Sender<()>);

fn timer() -> Option<&'static Sender<Sleeper>> {
    static TIMER: OnceLock<Option<Sender<Sleeper>>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (tx, rx) = channel::<Sleeper>();
            std::thread::Builder::new()
                .name("precise-timer".into())
                .spawn(move || {
                    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
                    let mut waiting = HashMap::new();
                    loop {
                        let next = match heap.peek() {
                            Some(Reverse((at, _))) => {
                                rx.recv_timeout(at.saturating_duration_since(Instant::now()))
                            }
                            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        };
                        match next {
                            Ok((at, id, tx)) => {
                                heap.push(Reverse((at, id)));
                                waiting.insert(id, tx);
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                        let now = Instant::now();
                        while let Some(Reverse((at, id))) = heap.peek().copied() {
                            if at > now {
                                break;
                            }
                            heap.pop();
                            if let Some(tx) = waiting.remove(&id) {
                                let _ = tx.send(());
                            }
                        }
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Sleeps for `d`, to within about 0.1 ms; falls back to tokio's timer if the
/// timer thread cannot run.
pub async fn sleep_precisely(d: Duration) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let at = Instant::now() + d;
    let (tx, rx) = oneshot::channel();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    match timer() {
        Some(timer) if timer.send((at, id, tx)).is_ok() => {
            let _ = rx.await;
        }
        _ => tokio::time::sleep_until(at.into()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_after_the_deadline_in_order() {
        let t0 = Instant::now();
        let (a, b) = tokio::join!(
            async {
                sleep_precisely(Duration::from_millis(30)).await;
                Instant::now()
            },
            async {
                sleep_precisely(Duration::from_millis(10)).await;
                Instant::now()
            }
        );
        assert!(a - t0 >= Duration::from_millis(30));
        assert!(b - t0 >= Duration::from_millis(10));
        assert!(b < a, "the shorter sleep must wake first");
    }
}

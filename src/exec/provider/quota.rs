//! Requests-per-minute and tokens-per-minute quotas shared by every workflow that
//! uses a provider, as `governor` rate limiters (GCRA). Callers take turns through
//! a fair lock, so they are served in arrival order and nobody is refused; each
//! learns how long it waited.
//!
//! Requests are spaced evenly (`60 s / requests_per_minute` apart, no burst).
//! Tokens are a bucket of one minute's worth that refills continuously, as
//! providers count them; a call takes its estimated tokens before it is sent, and
//! the difference to the usage the provider reports is charged to (or credited
//! to) the next call.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota as Rate, RateLimiter};

const MINUTE: Duration = Duration::from_secs(60);

/// On std's monotonic clock, the one tokio sleeps by: governor's default (quanta,
/// a calibrated TSC) ran measurably fast on a loaded virtual machine, letting calls
/// through early.
type Limiter = RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<Instant>>;

fn limiter(q: Rate) -> Limiter {
    RateLimiter::direct_with_clock(q, MonotonicClock)
}

pub struct Quota {
    requests: Option<Limiter>,
    tokens: Option<(Limiter, u32)>,
    /// Whose turn it is; tokio's mutex queues waiters in arrival order.
    turn: tokio::sync::Mutex<()>,
    /// Tokens the next call must take on top of its estimate (negative: credit),
    /// within one bucket either way: an absurd usage report costs a minute at most.
    owed: Mutex<i64>,
}

impl Quota {
    pub fn new(rpm: Option<u32>, tpm: Option<u32>) -> Option<Quota> {
        let rpm = rpm.and_then(NonZeroU32::new);
        let tpm = tpm.and_then(NonZeroU32::new);
        if rpm.is_none() && tpm.is_none() {
            return None;
        }
        let requests = rpm
            .and_then(|r| Rate::with_period(MINUTE / r.get()))
            .map(|q| limiter(q.allow_burst(NonZeroU32::MIN)));
        let tokens = tpm.map(|t| (limiter(Rate::per_minute(t)), t.get()));
        Some(Quota {
            requests,
            tokens,
            turn: tokio::sync::Mutex::new(()),
            owed: Mutex::new(0),
        })
    }

    /// Waits, in arrival order, until one request of about `tokens` tokens may be
    /// sent; returns how long that took.
    pub async fn acquire(&self, tokens: u64) -> Duration {
        let t0 = Instant::now();
        let _turn = self.turn.lock().await;
        if let Some(r) = &self.requests {
            take(r, NonZeroU32::MIN).await;
        }
        if let Some((l, burst)) = &self.tokens {
            let owed = self
                .owed
                .lock()
                .map(|mut o| std::mem::take(&mut *o))
                .unwrap_or(0);
            let want = i64::try_from(tokens)
                .unwrap_or(i64::MAX)
                .saturating_add(owed);
            // More than a whole bucket waits for a full one; the rest is owed.
            let n = want.clamp(0, i64::from(*burst));
            self.charge(want - n);
            if let Some(n) = u32::try_from(n).ok().and_then(NonZeroU32::new) {
                take(l, n).await;
            }
        }
        t0.elapsed()
    }

    /// Corrects the token reservation once the provider reported real usage.
    pub fn settle(&self, estimated: u64, actual: u64) {
        let diff = i64::try_from(actual)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(estimated).unwrap_or(i64::MAX));
        self.charge(diff);
    }

    /// Adds to what the next call owes, kept within one bucket either way.
    fn charge(&self, tokens: i64) {
        if let (Some((_, burst)), Ok(mut owed)) = (&self.tokens, self.owed.lock()) {
            let b = i64::from(*burst);
            *owed = owed.saturating_add(tokens).clamp(-b, b);
        }
    }

    #[cfg(test)]
    fn owed(&self) -> i64 {
        self.owed.lock().map(|o| *o).unwrap_or(0)
    }
}

/// Takes `n` cells, sleeping until the limiter has them.
async fn take(l: &Limiter, n: NonZeroU32) {
    loop {
        match l.check_n(n) {
            Ok(Ok(())) | Err(_) => return,
            Ok(Err(not_until)) => {
                tokio::time::sleep(not_until.wait_time_from(l.clock().now())).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never early (the quota's promise); late only by what a loaded machine adds.
    fn near(got: Duration, want_ms: u64) -> bool {
        let want = Duration::from_millis(want_ms);
        got + Duration::from_millis(2) >= want && got <= want + Duration::from_millis(400)
    }

    #[tokio::test]
    async fn absurd_token_counts_cap_the_debt_at_one_bucket() {
        let q = Quota::new(None, Some(6000)).unwrap();
        q.settle(0, u64::MAX);
        assert_eq!(q.owed(), 6000);
        q.settle(u64::MAX, 0);
        assert_eq!(q.owed(), -6000);
    }

    #[test]
    fn no_limits_means_no_quota() {
        assert!(Quota::new(None, None).is_none());
    }

    #[tokio::test]
    async fn requests_are_spaced_in_arrival_order() {
        let q = std::sync::Arc::new(Quota::new(Some(600), None).unwrap()); // one per 100 ms
        let t0 = Instant::now();
        let mut calls = Vec::new();
        for i in 0..4u64 {
            let q = std::sync::Arc::clone(&q);
            calls.push(tokio::spawn(async move {
                q.acquire(10).await;
                (i, t0.elapsed())
            }));
            // Arrive in a known order.
            tokio::task::yield_now().await;
        }
        let mut done = Vec::new();
        for c in calls {
            done.push(c.await.unwrap());
        }
        for (i, at) in &done {
            assert!(near(*at, 100 * i), "{i}: {at:?}");
        }
        assert!(done.windows(2).all(|w| w[0].1 < w[1].1), "arrival order");
    }

    #[tokio::test]
    async fn tokens_per_minute_refill_and_usage_is_settled() {
        let q = Quota::new(None, Some(6000)).unwrap(); // 100 tokens per second
        let t0 = Instant::now();
        // A full minute's bucket to start with.
        q.acquire(5900).await;
        assert!(near(t0.elapsed(), 0));
        // 100 left: 150 more wait for 50 to refill (0.5 s).
        q.acquire(150).await;
        assert!(near(t0.elapsed(), 500));
        // That call really used 250: the next one pays the extra 100 too.
        q.settle(150, 250);
        q.acquire(50).await;
        assert!(near(t0.elapsed(), 2000));
        // A credit: usage below the estimate shortens the next wait.
        q.settle(100, 0);
        q.acquire(150).await;
        assert!(near(t0.elapsed(), 2500));
    }
}

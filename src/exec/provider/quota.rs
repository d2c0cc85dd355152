//! Requests-per-minute and tokens-per-minute quotas shared by every workflow that
//! uses a provider. Each call reserves the next free slot (virtual scheduling), so
//! callers queue in arrival order and nobody is refused; the wait is reported.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Quota {
    rpm: Option<u32>,
    tpm: Option<u32>,
    next: Mutex<Slots>,
}

struct Slots {
    request: Instant,
    token: Instant,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Quota {
    pub fn new(rpm: Option<u32>, tpm: Option<u32>) -> Option<Quota> {
        if rpm.is_none() && tpm.is_none() {
            return None;
        }
        let now = Instant::now();
        Some(Quota {
            rpm,
            tpm,
            next: Mutex::new(Slots {
                request: now,
                token: now,
            }),
        })
    }

    /// Reserves room for one request of about `tokens` tokens; returns how long to
    /// wait before sending it.
    pub fn reserve(&self, tokens: u64) -> Duration {
        let now = Instant::now();
        let Ok(mut s) = self.next.lock() else {
            return Duration::ZERO;
        };
        let mut start = now;
        if let Some(rpm) = self.rpm {
            let slot = s.request.max(now);
            start = start.max(slot);
            s.request = slot + MINUTE / rpm;
        }
        if let Some(tpm) = self.tpm {
            let slot = s.token.max(now);
            start = start.max(slot);
            s.token = slot + per_tokens(tokens, tpm);
        }
        start - now
    }

    /// Corrects the token reservation once the provider reported real usage.
    pub fn settle(&self, estimated: u64, actual: u64) {
        let (Some(tpm), Ok(mut s)) = (self.tpm, self.next.lock()) else {
            return;
        };
        if actual > estimated {
            s.token += per_tokens(actual - estimated, tpm);
        } else {
            let credit = per_tokens(estimated - actual, tpm);
            let floor = Instant::now();
            s.token = s.token.checked_sub(credit).map_or(floor, |t| t.max(floor));
        }
    }
}

/// The quota time `tokens` take. Token counts come from the provider's answer, so
/// one absurd count is capped at an hour of debt rather than panicking.
fn per_tokens(tokens: u64, tpm: u32) -> Duration {
    const MAX_DEBT: Duration = Duration::from_secs(3600);
    Duration::try_from_secs_f64(60.0 * tokens as f64 / f64::from(tpm))
        .map_or(MAX_DEBT, |d| d.min(MAX_DEBT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_token_counts_cap_the_wait() {
        assert_eq!(per_tokens(u64::MAX, 1), Duration::from_secs(3600));
        assert_eq!(per_tokens(100, 6000), Duration::from_secs(1));
    }

    #[test]
    fn no_limits_means_no_quota() {
        assert!(Quota::new(None, None).is_none());
    }

    #[test]
    fn requests_are_spaced_in_arrival_order() {
        let q = Quota::new(Some(600), None).unwrap(); // one per 100 ms
        let waits: Vec<Duration> = (0..4).map(|_| q.reserve(10)).collect();
        assert!(waits[0] < Duration::from_millis(5));
        for (i, w) in waits.iter().enumerate() {
            let want = Duration::from_millis(100 * i as u64);
            assert!(w.abs_diff(want) < Duration::from_millis(5), "{i}: {w:?}");
        }
    }

    #[test]
    fn tokens_per_minute_spaces_by_size() {
        let q = Quota::new(None, Some(6000)).unwrap(); // 100 tokens per second
        assert!(q.reserve(50) < Duration::from_millis(5));
        let w = q.reserve(50);
        assert!(
            w.abs_diff(Duration::from_millis(500)) < Duration::from_millis(5),
            "{w:?}"
        );
        // Real usage was larger: the next caller waits longer.
        q.settle(50, 150);
        let w = q.reserve(10);
        assert!(
            w.abs_diff(Duration::from_millis(2000)) < Duration::from_millis(10),
            "{w:?}"
        );
    }
}

//! `[idempotency]`: how long an `Idempotency-Key` of a create is remembered.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// A retry with the same key within this time gets the original workflow.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Keys kept in memory at most (the oldest leave first; all stay in the store).
    pub max_cached: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            ttl: Duration::from_secs(24 * 3600),
            max_cached: 100_000,
        }
    }
}

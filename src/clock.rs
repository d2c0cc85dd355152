//! The process's one wall clock. The domain reads none (its crate's
//! `tests/reads_no_clock.rs` checks): handlers and actors take the time here and
//! pass it into the core as `now`.

use chrono::{DateTime, SubsecRound, Utc};

/// Timestamps are UTC with microsecond precision so they survive a store round trip
/// unchanged (SQLite and PostgreSQL both keep microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

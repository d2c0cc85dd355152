//! A create request's `Idempotency-Key`, as stored: which workflow it created and
//! a hash of the request, so a retry with the same key and body finds the same
//! workflow and a different body is refused.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The owner the key belongs to ("" when auth is off).
    pub scope: String,
    pub key: String,
    /// Hex SHA-256 of the route and the canonical JSON body.
    pub request_hash: String,
    pub workflow_id: String,
    pub created_at: DateTime<Utc>,
}

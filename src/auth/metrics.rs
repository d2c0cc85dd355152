//! Per-key metric names. Every `key` label value comes from the configured key
//! names (never from a request), so the number of series stays bounded.

use metrics::{describe_counter, describe_gauge};

/// Counter: requests by `key` and `outcome` (accepted | rate_limited).
pub const KEY_REQUESTS: &str = "auth_key_requests_total";
/// Counter: requests refused before a key was known, by `reason`
/// (missing | invalid | malformed).
pub const AUTH_FAILURES: &str = "auth_failures_total";
/// Counter: creates refused by a key's quota, by `key` and `reason`
/// (quota_exceeded | spend_limit_reached).
pub const KEY_REJECTIONS: &str = "auth_key_rejections_total";
/// Gauge: pending + running workflows a key owns.
pub const KEY_ACTIVE: &str = "auth_key_active_workflows";
/// Gauge: USD spent since UTC midnight by a key's workflows created today.
pub const KEY_SPEND: &str = "auth_key_spend_today_usd";

pub fn describe() {
    describe_counter!(KEY_REQUESTS, "Authenticated requests by key and outcome");
    describe_counter!(
        AUTH_FAILURES,
        "Requests refused for a missing or invalid key"
    );
    describe_counter!(KEY_REJECTIONS, "Creates refused by a key's quota");
    describe_gauge!(KEY_ACTIVE, "Pending and running workflows a key owns");
    describe_gauge!(KEY_SPEND, "USD spent today by a key's workflows");
}

//! Cluster metric names (no label from a request: the `instance` label is
//! global, set from the configuration).

use metrics::{describe_counter, describe_gauge};

/// Gauge: unfinished workflows this instance holds leases on.
pub const LEASES_HELD: &str = "cluster_leases_held";
/// Gauge: local SSE streams following workflows that run on other instances
/// (capped by `limits.max_sse_streams`).
pub const STREAMS_FOLLOWING: &str = "cluster_streams_following";
/// Counter: workflows claimed from instances that stopped renewing their leases.
pub const WORKFLOWS_CLAIMED: &str = "cluster_workflows_claimed_total";
/// Counter: pending webhook deliveries claimed from such instances.
pub const DELIVERIES_CLAIMED: &str = "cluster_deliveries_claimed_total";
/// Counter: workflows whose lease this instance lost (its run stopped, writes refused).
pub const LEASES_LOST: &str = "cluster_leases_lost_total";
/// Counter: heartbeat/claim passes that failed (PostgreSQL unreachable).
pub const PASS_FAILURES: &str = "cluster_pass_failures_total";

pub fn describe() {
    describe_gauge!(
        LEASES_HELD,
        "Unfinished workflows this instance holds leases on"
    );
    describe_gauge!(
        STREAMS_FOLLOWING,
        "SSE streams following workflows running on other instances"
    );
    describe_counter!(
        WORKFLOWS_CLAIMED,
        "Workflows claimed from instances that stopped renewing their leases"
    );
    describe_counter!(
        DELIVERIES_CLAIMED,
        "Pending webhook deliveries claimed from such instances"
    );
    describe_counter!(LEASES_LOST, "Leases this instance lost to another instance");
    describe_counter!(
        PASS_FAILURES,
        "Cluster heartbeat and claim passes that failed"
    );
}

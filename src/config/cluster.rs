//! `[cluster]`: several instances on one PostgreSQL. Active whenever
//! `postgres.url` is set (one instance is a cluster of one); SQLite is always a
//! single instance behind a file lock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This instance's name in the instance table, leases and the `instance`
    /// metric label. Empty: `<hostname>-<pid>`. Must be unique among the live
    /// instances sharing the database.
    pub instance_id: String,
    /// How long a lease on a running workflow lasts without renewal. The owner
    /// renews every third of it; another instance resumes the workflow once it
    /// expires (within 2 × lease_ttl of the owner's death).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// The address other instances and operators see for this one in
    /// `/health` (`components.cluster.members`). Empty: `server.bind`.
    pub advertise_address: String,
    /// Orphaned workflows (or webhook deliveries) one instance claims per pass.
    pub claim_batch: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            instance_id: String::new(),
            lease_ttl: Duration::from_secs(10),
            advertise_address: String::new(),
            claim_batch: 200,
        }
    }
}

/// Longest instance id: it is a metric label value and a column.
pub const MAX_INSTANCE_ID: usize = 64;

impl ClusterConfig {
    /// The configured id, or `<hostname>-<pid>`.
    pub fn effective_instance_id(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        // Only characters the id allows (a hostname may hold others), at most
        // MAX_INSTANCE_ID of them.
        format!("{host}-{}", std::process::id())
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                    true => c,
                    false => '-',
                },
            )
            .take(MAX_INSTANCE_ID)
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let id = &self.instance_id;
        if id.len() > MAX_INSTANCE_ID
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(ConfigError(format!(
                "cluster.instance_id: '{id}' must be at most {MAX_INSTANCE_ID} characters of A-Z a-z 0-9 - _ . :"
            )));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.lease_ttl) {
            return Err(ConfigError(
                "cluster.lease_ttl: must be between 1s and 1h".into(),
            ));
        }
        if !(1..=10_000).contains(&self.claim_batch) {
            return Err(ConfigError(
                "cluster.claim_batch: must be between 1 and 10000".into(),
            ));
        }
        if self.advertise_address.len() > 256 {
            return Err(ConfigError(
                "cluster.advertise_address: must be at most 256 characters".into(),
            ));
        }
        Ok(())
    }

    /// How often the heartbeat renews the instance row and its leases.
    pub fn heartbeat_every(&self) -> Duration {
        self.lease_ttl / 3
    }
}

//! `[archive]`: where finished workflows go once they are old, and how often the
//! archiver looks for them (src/archive/).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Run archive passes in the server (`mcp-orchestrator archive` works either way).
    pub enabled: bool,
    /// `file:///absolute/dir` or `s3://bucket/prefix`; empty = an `archive/`
    /// directory beside the SQLite file. S3 credentials, region and endpoint come
    /// from the standard `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).
    pub url: String,
    /// Finished workflows whose completion is older than this are archived.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Time between two passes in the server.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Workflows archived per store transaction at most.
    pub batch: usize,
    /// S3 storage class of archived objects (e.g. `GLACIER_IR`); empty = the
    /// bucket's default (standard).
    pub s3_storage_class: String,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            url: String::new(),
            after: Duration::from_secs(90 * 24 * 3600),
            interval: Duration::from_secs(3600),
            batch: 500,
            s3_storage_class: String::new(),
        }
    }
}

impl ArchiveConfig {
    /// The archive URL in effect: the configured one, or `file://` + the
    /// `archive` directory beside `sqlite_path` (made absolute).
    pub fn effective_url(&self, sqlite_path: &Path) -> String {
        if !self.url.is_empty() {
            return self.url.clone();
        }
        let dir = sqlite_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        format!("file://{}", dir.join("archive").display())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.is_empty()
            || self.url.starts_with("file:///")
            || self.url.starts_with("s3://"))
        {
            return Err(ConfigError(format!(
                "archive.url: '{}' must be file:///absolute/path or s3://bucket/prefix",
                self.url
            )));
        }
        if self.url.starts_with("s3://") && self.url.trim_start_matches("s3://").is_empty() {
            return Err(ConfigError("archive.url: s3:// needs a bucket".into()));
        }
        if self.batch == 0 || self.batch > 100_000 {
            return Err(ConfigError(
                "archive.batch: must be between 1 and 100000".into(),
            ));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(ConfigError("archive.interval: must be at least 1s".into()));
        }
        Ok(())
    }
}

//! Archival: finished workflows older than `archive.after` move to object storage
//! (a local directory or S3, through `object_store`). A pass (`pass.rs`) writes
//! one object per workflow (`object.rs`), reads it back and verifies it, and only
//! then lets the store replace the workflow's bulky rows by a summary row. The
//! `Archiver` actor (`actor.rs`) runs a pass every `archive.interval`; the
//! `archive` command runs one. Reads of archived workflows come back through
//! `Archive::read` (API: `X-Served-From: archive`).

pub mod actor;
pub mod object;
pub mod pass;

use std::collections::VecDeque;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    Attribute, Attributes, ClientConfigKey, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig,
};

pub use actor::{ArchiveHealth, Archiver};
pub use object::ArchivedWorkflow;

use crate::config::ArchiveConfig;
use crate::domain::Workflow;

/// Decoded objects kept for reads that come in pairs (record, then result).
const CACHE: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive object '{0}' is missing")]
    Missing(String),
    #[error("archive object '{key}' is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("archive store: {0}")]
    Store(String),
}

/// `archive.url` names a store that cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("archive.url '{url}': {reason}")]
pub struct BadArchiveUrl {
    pub url: String,
    pub reason: String,
}

impl ArchiveError {
    /// A short reason, without the key (callers name it themselves).
    pub fn reason(&self) -> String {
        match self {
            ArchiveError::Missing(_) => "the object is missing".into(),
            ArchiveError::Corrupt { reason, .. } => format!("the object is corrupt: {reason}"),
            ArchiveError::Store(e) => e.clone(),
        }
    }
}

/// The archive's object store, rooted at the configured prefix.
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    /// The URL in effect, for health and the CLI (no credentials in it).
    pub url: String,
    storage_class: Option<String>,
    cache: Mutex<VecDeque<(String, Arc<ArchivedWorkflow>)>>,
    pub health: Arc<ArchiveHealth>,
}

impl Archive {
    /// Builds the store for `archive.url` (no I/O beyond creating a local
    /// directory). Errors name the key.
    pub fn open(cfg: &ArchiveConfig, sqlite_path: &FsPath) -> Result<Archive, BadArchiveUrl> {
        let url = cfg.effective_url(sqlite_path);
        let bad = |e: &dyn std::fmt::Display| BadArchiveUrl {
            url: url.clone(),
            reason: e.to_string(),
        };
        let (store, storage_class): (Arc<dyn ObjectStore>, _) =
            if let Some(dir) = url.strip_prefix("file://") {
                std::fs::create_dir_all(dir).map_err(|e| bad(&e))?;
                let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e))?;
                (Arc::new(fs), None)
            } else {
                let rest = url.trim_start_matches("s3://");
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                // Bounded: a pass against an unreachable store fails within about a
                // minute (health says so) instead of retrying for minutes.
                let s3 = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        "5s",
                    )
                    .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "30s")
                    .with_retry(RetryConfig {
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                        ..Default::default()
                    })
                    .build()
                    .map_err(|e| bad(&e))?;
                let store: Arc<dyn ObjectStore> = match prefix.trim_matches('/') {
                    "" => Arc::new(s3),
                    p => Arc::new(PrefixStore::new(s3, p)),
                };
                let class = Some(cfg.s3_storage_class.clone()).filter(|c| !c.is_empty());
                (store, class)
            };
        Ok(Archive {
            store,
            url,
            storage_class,
            cache: Mutex::new(VecDeque::new()),
            health: Arc::new(ArchiveHealth::default()),
        })
    }

    /// `archived/{yyyy}/{mm}/{id}.json.zst`, by completion (creation if unset).
    pub fn key_for(wf: &Workflow) -> String {
        let t = wf.completed_at.unwrap_or(wf.created_at);
        format!("archived/{}/{}.json.zst", t.format("%Y/%m"), wf.id)
    }

    /// Writes `bytes` at `key`, reads it back and checks it is byte for byte what
    /// was written and decodes as workflow `id`. Rewriting the same key is
    /// harmless: a pass that died after writing writes it again.
    pub async fn put_verified(
        &self,
        key: &str,
        id: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let path = Path::from(key);
        let mut opts = PutOptions::default();
        if let Some(class) = &self.storage_class {
            let mut attrs = Attributes::new();
            attrs.insert(Attribute::StorageClass, class.clone().into());
            opts.attributes = attrs;
        }
        let payload = PutPayload::from(bytes.clone());
        self.store
            .put_opts(&path, payload, opts)
            .await
            .map_err(|e| ArchiveError::Store(format!("writing '{key}': {e}")))?;
        let back = self.fetch(key).await?;
        if back != bytes {
            return Err(ArchiveError::Corrupt {
                key: key.into(),
                reason: "read back differs from what was written".into(),
            });
        }
        let decoded = ArchivedWorkflow::decode(&back).map_err(|e| ArchiveError::Corrupt {
            key: key.into(),
            reason: e.to_string(),
        })?;
        if decoded.workflow.id != id {
            return Err(ArchiveError::Corrupt {
                key: key.into(),
                reason: format!("holds workflow '{}'", decoded.workflow.id),
            });
        }
        Ok(())
    }

    async fn fetch(&self, key: &str) -> Result<Vec<u8>, ArchiveError> {
        let path = Path::from(key);
        let got = match self.store.get(&path).await {
            Ok(g) => g.bytes().await,
            Err(e) => Err(e),
        };
        match got {
            Ok(b) => Ok(b.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(ArchiveError::Missing(key.into())),
            Err(e) => Err(ArchiveError::Store(format!("reading '{key}': {e}"))),
        }
    }

    /// The archived workflow at `key` (recently read ones from a small cache).
    pub async fn read(&self, key: &str) -> Result<Arc<ArchivedWorkflow>, ArchiveError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((_, a)) = cache.iter().find(|(k, _)| k == key) {
                return Ok(Arc::clone(a));
            }
        }
        let bytes = self.fetch(key).await?;
        let key_owned = key.to_string();
        let decoded = tokio::task::spawn_blocking(move || ArchivedWorkflow::decode(&bytes))
            .await
            .map_err(|e| ArchiveError::Store(e.to_string()))?
            .map_err(|e| ArchiveError::Corrupt {
                key: key_owned,
                reason: e.to_string(),
            })?;
        let a = Arc::new(decoded);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE {
                cache.pop_front();
            }
            cache.push_back((key.to_string(), Arc::clone(&a)));
        }
        Ok(a)
    }
}

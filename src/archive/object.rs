//! One archived workflow: its record, result, events, deliveries and generated
//! documents (bytes in base64) as one JSON document in one zstd frame (`zstd -d`
//! opens it). Objects written before documents existed have none (`default`).

use std::io::Read;

use serde::{Deserialize, Serialize};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::domain::{Delivery, Event, StoredDocument, Workflow, WorkflowResult};

/// Changes when the document's shape does; readers refuse what they don't know.
pub const FORMAT: u32 = 1;
const LEVEL: i32 = 3;
/// A corrupt or hostile object must not exhaust memory when decompressed.
const MAX_DECODED: u64 = 256 * 1024 * 1024;

/// Why an object cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("document '{name}' is not base64: {source}")]
    NotBase64 {
        name: String,
        source: base64::DecodeError,
    },
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("{0}")]
    Compress(std::io::Error),
    #[error("not a zstd frame: {0}")]
    NotZstd(std::io::Error),
    #[error("not an archived workflow: {0}")]
    NotArchived(serde_json::Error),
    #[error("unknown archive format {0}")]
    UnknownFormat(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedWorkflow {
    pub format: u32,
    pub workflow: Workflow,
    pub result: Option<WorkflowResult>,
    pub events: Vec<Event>,
    pub deliveries: Vec<Delivery>,
    #[serde(default)]
    pub documents: Vec<ArchivedDocument>,
}

/// A generated document inside an archive object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedDocument {
    pub name: String,
    pub format: String,
    pub sha256: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub body: String,
}

impl ArchivedDocument {
    pub fn of(d: &StoredDocument) -> ArchivedDocument {
        ArchivedDocument {
            name: d.name.clone(),
            format: d.format.clone(),
            sha256: d.sha256.clone(),
            body: BASE64.encode(&d.body),
        }
    }

    /// The bytes, or why not (a corrupt object).
    pub fn bytes(&self) -> Result<Vec<u8>, ObjectError> {
        BASE64
            .decode(&self.body)
            .map_err(|source| ObjectError::NotBase64 {
                name: self.name.clone(),
                source,
            })
    }
}

impl ArchivedWorkflow {
    pub fn encode(&self) -> Result<Vec<u8>, ObjectError> {
        let json = serde_json::to_vec(self).map_err(ObjectError::Json)?;
        zstd::bulk::compress(&json, LEVEL).map_err(ObjectError::Compress)
    }

    pub fn decode(bytes: &[u8]) -> Result<ArchivedWorkflow, ObjectError> {
        let mut json = Vec::new();
        zstd::stream::read::Decoder::new(bytes)
            .and_then(|d| d.take(MAX_DECODED).read_to_end(&mut json))
            .map_err(ObjectError::NotZstd)?;
        let a: ArchivedWorkflow =
            serde_json::from_slice(&json).map_err(ObjectError::NotArchived)?;
        if a.format != FORMAT {
            return Err(ObjectError::UnknownFormat(a.format));
        }
        Ok(a)
    }
}

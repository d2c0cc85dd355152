//! `[documents]`: the report formats a workflow gets when it names none, and the
//! size limit of each generated document.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// `document_formats` of a workflow that names none: markdown, pdf, docx.
    pub default_formats: Vec<String>,
    /// A generated document larger than this fails (that document only).
    pub max_bytes: u64,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            default_formats: vec!["markdown".into()],
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

impl DocumentsConfig {
    /// What types alone cannot say; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Its messages name the field (`documents.document_formats[1]: …`).
        crate::domain::document::check_formats("documents.", &self.default_formats).map_err(
            |(_, message)| {
                ConfigError(
                    message.replace("documents.document_formats", "documents.default_formats"),
                )
            },
        )?;
        if !(1024..=256 * 1024 * 1024).contains(&self.max_bytes) {
            return Err(ConfigError(format!(
                "documents.max_bytes: must be between 1024 and {} (256 MiB), got {}",
                256 * 1024 * 1024,
                self.max_bytes
            )));
        }
        Ok(())
    }
}

//! Report documents: one model of the report (`model.rs`), rendered as Markdown
//! (`markdown.rs`), PDF (`pdf/`, with krilla) and DOCX (`docx.rs`, with
//! docx-rs). Pure: no I/O, no actors; the run's documents step
//! (`exec::patterns::documents`) calls `generate` and commits what it returns.
//!
//! Why these crates (December 2026): krilla 0.8 (Typst's PDF writer, released
//! monthly) subsets and embeds OpenType/CFF fonts with ToUnicode maps, so the
//! text is real text, and shapes with rustybuzz; it leaves layout to us, which
//! is a page of code here. printpdf 0.8 moved to an HTML layout engine (many
//! more crates), and genpdf (last release 2021, on printpdf 0.3 and rusttype)
//! is unmaintained. docx-rs 0.4 is the maintained DOCX writer (styles, tables,
//! numbering); without its `image` feature it adds only zip and quick-xml.
//! pulldown-cmark reads the agents' Markdown into blocks.

pub mod docx;
mod error;
pub mod markdown;
pub mod model;
pub mod pdf;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::domain::{DocFormat, Document, StoredDocument};
pub use error::RenderError;
pub use model::{Report, ReportInput};

/// The report in one format.
pub fn render(format: DocFormat, report: &Report) -> Result<Vec<u8>, RenderError> {
    match format {
        DocFormat::Markdown => Ok(markdown::render(report).into_bytes()),
        DocFormat::Pdf => pdf::render(report),
        DocFormat::Docx => docx::render(report),
    }
}

/// One format's outcome: the result's entry, the bytes to store (None when it
/// failed) and how long it took.
pub struct Generated {
    pub format: DocFormat,
    pub document: Document,
    pub stored: Option<StoredDocument>,
    pub seconds: f64,
}

/// Renders each format on its own: one that fails (an error, a panic in a
/// renderer, more than `max_bytes`) fails only its document.
pub fn generate(
    workflow_id: &str,
    report: &Report,
    formats: &[DocFormat],
    max_bytes: u64,
) -> Vec<Generated> {
    formats
        .iter()
        .map(|&format| {
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| render(format, report)))
                .unwrap_or(Err(RenderError::Panicked))
                .and_then(|bytes| {
                    if bytes.len() as u64 > max_bytes {
                        Err(RenderError::TooLarge {
                            size: bytes.len(),
                            max: max_bytes,
                        })
                    } else {
                        Ok(bytes)
                    }
                });
            let name = format.file_name().to_string();
            let (document, stored) = match outcome {
                Ok(body) => {
                    let sha256 = hex::encode(Sha256::digest(&body));
                    let content = if format.is_text() {
                        String::from_utf8_lossy(&body).into_owned()
                    } else {
                        String::new()
                    };
                    let doc = Document {
                        name: name.clone(),
                        format: format.as_str().into(),
                        content,
                        bytes: body.len() as u64,
                        sha256: sha256.clone(),
                        error: None,
                    };
                    let stored = StoredDocument {
                        workflow_id: workflow_id.to_string(),
                        name,
                        format: format.as_str().into(),
                        sha256,
                        body,
                    };
                    (doc, Some(stored))
                }
                Err(e) => {
                    let doc = Document {
                        name,
                        format: format.as_str().into(),
                        content: String::new(),
                        bytes: 0,
                        sha256: String::new(),
                        error: Some(e.to_string()),
                    };
                    (doc, None)
                }
            };
            Generated {
                format,
                document,
                stored,
                seconds: started.elapsed().as_secs_f64(),
            }
        })
        .collect()
}

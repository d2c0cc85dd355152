//! Report documents: the formats a workflow may ask for (`document_formats`),
//! what the result says about each generated document, and the documents step
//! (`wf_…/documents`) whose answer is committed with the documents' bytes.

use serde::{Deserialize, Serialize};

/// A format of the report. The names are the `document_formats` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocFormat {
    Markdown,
    Pdf,
    Docx,
}

impl DocFormat {
    pub const ALL: [DocFormat; 3] = [DocFormat::Markdown, DocFormat::Pdf, DocFormat::Docx];

    pub fn parse(s: &str) -> Option<DocFormat> {
        match s {
            "markdown" => Some(DocFormat::Markdown),
            "pdf" => Some(DocFormat::Pdf),
            "docx" => Some(DocFormat::Docx),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocFormat::Markdown => "markdown",
            DocFormat::Pdf => "pdf",
            DocFormat::Docx => "docx",
        }
    }

    /// The document's name in a workflow (and its download filename).
    pub fn file_name(self) -> &'static str {
        match self {
            DocFormat::Markdown => "report.md",
            DocFormat::Pdf => "report.pdf",
            DocFormat::Docx => "report.docx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            DocFormat::Markdown => "text/markdown; charset=utf-8",
            DocFormat::Pdf => "application/pdf",
            DocFormat::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
        }
    }

    /// Text formats are also inline in the result (`content`).
    pub fn is_text(self) -> bool {
        self == DocFormat::Markdown
    }
}

/// Checks a `document_formats` list: known names, no repeats, at least one.
/// The error is `(field, message)` with the field relative to `prefix`.
pub fn check_formats(prefix: &str, formats: &[String]) -> Result<(), (String, String)> {
    let field = format!("{prefix}document_formats");
    if formats.is_empty() {
        return Err((
            field.clone(),
            format!("{field} must name at least one format: markdown, pdf, docx"),
        ));
    }
    for (i, f) in formats.iter().enumerate() {
        let name = format!("{field}[{i}]");
        if DocFormat::parse(f).is_none() {
            let shown: String = f.chars().take(32).collect();
            let msg =
                format!("{name}: unknown document format '{shown}'; known: markdown, pdf, docx");
            return Err((name, msg));
        }
        if formats[..i].contains(f) {
            let msg = format!("{name}: document format '{f}' is listed twice");
            return Err((name, msg));
        }
    }
    Ok(())
}

/// One document of a result. The bytes themselves are stored beside the result
/// (`documents` table, archive object); a text document is inline too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// `report.md`, `report.pdf`, `report.docx`.
    pub name: String,
    pub format: String,
    /// The document itself for a text format (the Markdown report); empty for
    /// binary formats and for a document that failed.
    #[serde(default)]
    pub content: String,
    /// Size in bytes (0 when it failed).
    #[serde(default)]
    pub bytes: u64,
    /// Hex SHA-256 of the bytes (empty when it failed, and in results stored
    /// before documents had bytes of their own).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// Why this document could not be generated; the others are unaffected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Document {
    pub fn doc_format(&self) -> Option<DocFormat> {
        DocFormat::parse(&self.format)
    }

    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// `wf_…/documents`: the documents step's key.
pub fn documents_key(workflow_id: &str) -> String {
    format!("{workflow_id}/documents")
}

/// The documents step's answer: what was generated (and what failed), committed
/// in the same transaction as the documents' bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentsAnswer {
    pub step_key: String,
    pub documents: Vec<Document>,
}

/// A generated document's bytes, as stored (one row per workflow and name).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    pub workflow_id: String,
    pub name: String,
    pub format: String,
    pub sha256: String,
    pub body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(list: &[&str]) -> Option<String> {
        let v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        check_formats("config.", &v).err().map(|(f, _)| f)
    }

    #[test]
    fn formats_are_checked_and_the_field_named() {
        assert_eq!(field(&["markdown", "pdf", "docx"]), None);
        assert_eq!(
            field(&["markdown", "odt"]).as_deref(),
            Some("config.document_formats[1]")
        );
        assert_eq!(
            field(&["pdf", "pdf"]).as_deref(),
            Some("config.document_formats[1]")
        );
        assert_eq!(field(&[]).as_deref(), Some("config.document_formats"));
        assert_eq!(DocFormat::Pdf.file_name(), "report.pdf");
        assert_eq!(documents_key("wf_1"), "wf_1/documents");
    }
}

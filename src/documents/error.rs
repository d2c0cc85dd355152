//! Why one document could not be generated: the text becomes its `error`, and
//! the other formats are unaffected.

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("font {name}: {reason}")]
    Font { name: &'static str, reason: String },
    #[error("font {0} cannot be used")]
    FontUnusable(&'static str),
    #[error("bad page size")]
    PageSize,
    #[error("PDF: {0}")]
    Pdf(String),
    #[error("DOCX: {0}")]
    Docx(String),
    #[error("the renderer panicked")]
    Panicked,
    #[error("{size} bytes, more than documents.max_bytes ({max})")]
    TooLarge { size: usize, max: u64 },
}

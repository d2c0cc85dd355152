-- How a document's body is stored: NULL = as generated; 'codec' = compressed
-- (store::codec's tagged value: zstd), when that is smaller. The Markdown report
-- every workflow gets by default compresses ~3x; PDF and DOCX, already
-- compressed, stay as they are. `bytes` and `sha256` are the document's own.
ALTER TABLE documents ADD COLUMN encoding TEXT;

-- Report documents (report.md, report.pdf, report.docx): the bytes of each
-- generated document, written in the same transaction as the documents step's
-- answer (wf_…/documents). The first version under a name stays (ON CONFLICT DO
-- NOTHING), like the step answer that lists it. Rows leave when the workflow is
-- archived (the archive object holds them then). Bodies are TOASTed.
CREATE TABLE documents (
    workflow_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    format       TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    body         BYTEA NOT NULL,
    PRIMARY KEY (workflow_id, name)
);

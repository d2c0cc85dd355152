-- Events as a rowid table with a (workflow_id, seq) index instead of WITHOUT
-- ROWID: an event row carries an answer (often over 1 KB), and a WITHOUT ROWID
-- table keeps whole rows in its b-tree's cells, interior ones included, so every
-- insert and delete moved more bytes than the index's short keys do now.
CREATE TABLE events_v9 (
    workflow_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    ts_us       INTEGER NOT NULL,
    data        TEXT NOT NULL
);
INSERT INTO events_v9 (workflow_id, seq, type, ts_us, data)
    SELECT workflow_id, seq, type, ts_us, data FROM events ORDER BY workflow_id, seq;
DROP TABLE events;
ALTER TABLE events_v9 RENAME TO events;
CREATE UNIQUE INDEX events_workflow_seq ON events (workflow_id, seq);

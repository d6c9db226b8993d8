-- Panoptes schema, version 12: when each appearance face was last written, for search indexes.

-- Every engine keeps an in-memory search index of the stored appearance faces (`crate::search`) and
-- follows the table by reading the rows written since its last read. Written by which transaction,
-- not when: a row whose transaction commits late would be missed by a clock or a sequence, but not
-- by "every transaction not finished at my last read" (`pg_snapshot_xmin`).
ALTER TABLE appearance_faces ADD COLUMN written_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX appearance_faces_written_idx ON appearance_faces (written_xid);

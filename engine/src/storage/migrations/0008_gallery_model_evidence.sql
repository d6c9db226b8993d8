-- Panoptes schema, version 8: the embedding model whose gallery serves, the switch to another, and the
-- evidence behind each appearance's identity.

-- One row: the model every engine on this database compares faces with (active), and the model the
-- gallery is being re-embedded for (target; equal to active when no switch is under way).
CREATE TABLE gallery_model (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    active_name     text NOT NULL,
    active_version  text NOT NULL,
    target_name     text NOT NULL,
    target_version  text NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now(),
    changed_by      text NOT NULL
);

-- The photo a kept copy is of, named on the copy itself, so that re-embedding it with another model
-- does not depend on the first model's embedding row.
ALTER TABLE person_photos ADD COLUMN source_sha256 text;
UPDATE person_photos pp SET source_sha256 = fe.source_sha256 FROM face_embeddings fe WHERE fe.id = pp.embedding_id;
CREATE INDEX person_photos_source_idx ON person_photos (person_id, source_sha256);

-- Kept photos a model could not embed (it found no face, or several): reported by person, not retried.
CREATE TABLE reembed_failures (
    photo_id       bigint NOT NULL REFERENCES person_photos (id) ON DELETE CASCADE,
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    reason         text NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (photo_id, model_name, model_version)
);

-- Why an appearance is who it is: the runner-up person and score, how many embeddings decided, and
-- the decision (matched, unknown, ambiguous: two people too close to tell apart).
ALTER TABLE detections
    ADD COLUMN runner_up_person_id bigint REFERENCES persons (id) ON DELETE SET NULL,
    ADD COLUMN runner_up_score     real,
    ADD COLUMN embeddings          integer,
    ADD COLUMN decision            text CHECK (decision IN ('matched', 'unknown', 'ambiguous'));

-- Panoptes schema, version 11: an operator's review of appearances, negatives, and the audit trail.

-- Set while an appearance stands as an operator reviewed it: the engine's later writes of the same
-- appearance (it may still be going on) keep the reviewed person.
ALTER TABLE detections ADD COLUMN review text CHECK (review IN ('confirmed', 'rejected'));

-- The review standing on an appearance, with what undoing it needs: the person the engine had named
-- before, and the enrolled face (embedding and photo) a confirmation added. Undoing deletes it.
CREATE TABLE detection_reviews (
    detection_id        bigint PRIMARY KEY REFERENCES detections (id) ON DELETE CASCADE,
    action              text NOT NULL CHECK (action IN ('confirm', 'reject')),
    person_id           bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    previous_person_id  bigint REFERENCES persons (id) ON DELETE SET NULL,
    previous_decision   text,
    embedding_id        bigint REFERENCES face_embeddings (id) ON DELETE SET NULL,
    negative_id         bigint,
    reviewed_by         text NOT NULL CHECK (length(reviewed_by) BETWEEN 1 AND 200),
    reviewed_at         timestamptz NOT NULL DEFAULT now()
);

-- Faces an operator rejected as not this person. Part of the person's gallery: kept as long as the
-- person (not the appearance, which expires as an unknown face), deleted by undoing or with the
-- person. Ids come from the embeddings' sequence, so one signature covers the gallery's two sets.
CREATE TABLE person_negatives (
    id             bigint PRIMARY KEY DEFAULT nextval('face_embeddings_id_seq'),
    person_id      bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    detection_id   bigint NOT NULL,
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    vector         real[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, detection_id)
);
CREATE INDEX person_negatives_model_idx ON person_negatives (model_name, model_version);

-- Who did what to the engine's judgement, and when (kept `storage.audit_retention_days`). Names no
-- face: the actor (an API key's name), the action, its target and a few numbers.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action  text NOT NULL,
    target  text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);

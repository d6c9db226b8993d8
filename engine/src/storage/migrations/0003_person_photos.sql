-- Panoptes schema, version 3: a compressed copy (JPEG ≤ 200 KB) of every enrolled photo, so persons can
-- be re-enrolled when the embedding model changes without asking for their photos again.
CREATE TABLE person_photos (
    id            bigserial PRIMARY KEY,
    person_id     bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    embedding_id  bigint REFERENCES face_embeddings (id) ON DELETE SET NULL,
    jpeg          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX person_photos_person_idx ON person_photos (person_id);

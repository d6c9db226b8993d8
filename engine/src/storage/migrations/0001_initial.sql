-- Panoptes schema, version 1.
CREATE TABLE persons (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX persons_lower_name_idx ON persons (lower(name) text_pattern_ops);

-- One row per enrolled face. Vectors of different models (name + version) are never compared.
CREATE TABLE face_embeddings (
    id             bigserial PRIMARY KEY,
    person_id      bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    vector         real[] NOT NULL,
    source_sha256  text NOT NULL,
    face_box       real[4],
    det_score      real,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, model_name, model_version, source_sha256)
);
CREATE INDEX face_embeddings_model_idx ON face_embeddings (model_name, model_version);

CREATE TABLE cameras (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    url           text NOT NULL,
    analysis_fps  real NOT NULL DEFAULT 5 CHECK (analysis_fps > 0 AND analysis_fps <= 60),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- History outlives the camera or person it names: deleting either keeps the rows, unlinked.
CREATE TABLE detections (
    id             bigserial PRIMARY KEY,
    camera_id      bigint REFERENCES cameras (id) ON DELETE SET NULL,
    detected_at    timestamptz NOT NULL,
    person_id      bigint REFERENCES persons (id) ON DELETE SET NULL,
    score          real NOT NULL,
    det_score      real,
    box_x          real NOT NULL,
    box_y          real NOT NULL,
    box_w          real NOT NULL,
    box_h          real NOT NULL,
    snapshot_path  text
);
-- Newest-first keyset pagination, overall, per camera and per person.
CREATE INDEX detections_time_idx ON detections (detected_at DESC, id DESC);
CREATE INDEX detections_camera_time_idx ON detections (camera_id, detected_at DESC, id DESC);
CREATE INDEX detections_person_time_idx ON detections (person_id, detected_at DESC, id DESC) WHERE person_id IS NOT NULL;

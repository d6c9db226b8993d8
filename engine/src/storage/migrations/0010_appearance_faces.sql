-- Panoptes schema, version 10: the embedding of every appearance's best face.

-- Every appearance keeps the embedding of its best embedded face, tagged with the model that made
-- it, so that it can be judged again (review), searched and grouped. Biometric data: it goes with
-- its detection row, and sooner under `storage.appearance_face_retention_days` (the row stays).
CREATE TABLE appearance_faces (
    detection_id   bigint PRIMARY KEY REFERENCES detections (id) ON DELETE CASCADE,
    detected_at    timestamptz NOT NULL,
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    vector         real[] NOT NULL,
    quality        real NOT NULL
);
CREATE INDEX appearance_faces_time_idx ON appearance_faces (detected_at, detection_id);
CREATE INDEX appearance_faces_model_idx ON appearance_faces (model_name, model_version);

-- Panoptes schema, version 9: retention and erasure of biometric data.

-- Unknown faces are kept for less time than recognised ones: their own index, per camera and in time
-- order, so expiring them visits no row that stays.
CREATE INDEX detections_unknown_camera_time_idx ON detections (camera_id, detected_at DESC, id DESC)
    WHERE person_id IS NULL;

-- A record of every person erased, for accountability. It holds no name, no photo, no vector: only the
-- number the person had, what was removed (counts), which API key (or "cli:<user>") asked, and when.
CREATE TABLE erasures (
    id            bigserial PRIMARY KEY,
    person_id     bigint NOT NULL,
    scope         text NOT NULL CHECK (scope IN ('biometrics', 'all')),
    removed       jsonb NOT NULL,
    requested_by  text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    erased_at     timestamptz NOT NULL DEFAULT now()
);

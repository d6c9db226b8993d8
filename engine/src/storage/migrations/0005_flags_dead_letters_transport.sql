-- Panoptes schema, version 5.

-- Things that happen once in a database's life. 'demo_camera_offered': the demo camera was added (or
-- the database already had cameras), so it is never added again, even after the operator deletes it.
CREATE TABLE engine_flags (
    name    text PRIMARY KEY,
    set_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO engine_flags (name) SELECT 'demo_camera_offered' WHERE (SELECT is_called FROM cameras_id_seq);

-- Detections the database refused for good (e.g. their camera or person was deleted between the match
-- and the write): kept here with the reason instead of blocking the rows behind them.
CREATE TABLE detections_dead_letter (
    id         bigserial PRIMARY KEY,
    detection  jsonb NOT NULL,
    error      text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);

-- RTP over the RTSP connection (tcp) or over UDP, per camera.
ALTER TABLE cameras ADD COLUMN transport text NOT NULL DEFAULT 'tcp' CHECK (transport IN ('tcp', 'udp'));

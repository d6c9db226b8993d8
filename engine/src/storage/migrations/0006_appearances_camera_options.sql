-- Panoptes schema, version 6: a detection row is one appearance (a tracked face), written when its
-- identity is settled and completed when the track ends; cameras get options of their own.
ALTER TABLE detections
    ADD COLUMN last_seen_at timestamptz,
    ADD COLUMN frames       integer NOT NULL DEFAULT 1 CHECK (frames >= 1),
    ADD COLUMN best_score   real;
UPDATE detections SET last_seen_at = detected_at, best_score = score;

-- {"motion_mask": [{"x":…, "y":…, "width":…, "height":…}, …]} (fractions of the frame), and room for more.
ALTER TABLE cameras ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;

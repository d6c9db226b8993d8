-- A camera's substream (issue 25): decoding, the motion gate, detection and tracking run on it; the
-- main stream (url) is read at its keyframes for the faces recognised and kept. NULL: one stream.
ALTER TABLE cameras ADD COLUMN detect_url text CHECK (detect_url IS NULL OR detect_url <> '');

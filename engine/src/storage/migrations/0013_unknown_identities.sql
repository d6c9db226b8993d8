-- Panoptes schema, version 13: unknown identities.

-- Unknown appearances grouped by face into persistent identities (`crate::unknowns`): the same
-- stranger on another camera or another day joins the identity they were given. An identity is
-- named by an operator (it becomes a person, or part of one). It holds no face of its own: its faces
-- are its appearances' (`appearance_faces`), and it goes when the last of them does (retention).
CREATE TABLE unknown_identities (
    id               bigserial PRIMARY KEY,
    model_name       text NOT NULL,
    model_version    text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    named_person_id  bigint REFERENCES persons (id) ON DELETE SET NULL,
    named_by         text,
    named_at         timestamptz
);

ALTER TABLE detections ADD COLUMN unknown_id bigint REFERENCES unknown_identities (id) ON DELETE SET NULL;
CREATE INDEX detections_unknown_id_idx ON detections (unknown_id, detected_at) WHERE unknown_id IS NOT NULL;
-- The grouping's queue: ended unknown appearances not yet given an identity.
CREATE INDEX detections_ungrouped_idx ON detections (id)
    WHERE person_id IS NULL AND unknown_id IS NULL AND last_seen_at IS NOT NULL;

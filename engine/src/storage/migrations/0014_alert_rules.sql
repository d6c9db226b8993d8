-- Panoptes schema, version 14: alert rules and persons' groups.

-- Alert rules set through the API (`crate::alerts`); the config file's rules are not stored. The
-- rule itself is kept as the JSON the API takes, so that a new condition needs no migration.
CREATE TABLE alert_rules (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    spec        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL
);
CREATE UNIQUE INDEX alert_rules_name_idx ON alert_rules (lower(name));

-- Names rules can pick persons by ("staff", "vip").
ALTER TABLE persons ADD COLUMN groups text[] NOT NULL DEFAULT '{}';

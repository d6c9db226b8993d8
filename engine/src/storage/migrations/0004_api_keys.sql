-- Panoptes schema, version 4: API keys created through the API. Only the SHA-256 digest of each key is
-- kept (keys are 256 random bits, so a fast digest is enough: there is nothing to guess); the key itself
-- is shown once, to whoever created it.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('admin', 'viewer')),
    key_sha256  bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);

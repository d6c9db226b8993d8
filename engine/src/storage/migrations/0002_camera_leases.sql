-- Panoptes schema, version 2: camera ownership when several engines share one database.
-- Each engine heartbeats its row; a camera is analysed by the node holding its unexpired lease.
CREATE TABLE engine_nodes (
    node_id       text PRIMARY KEY,
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE camera_leases (
    camera_id   bigint PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    node_id     text NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX camera_leases_node_idx ON camera_leases (node_id);

-- Panoptes schema, version 7: each engine node says how much it can carry; cameras are shared in
-- proportion (a node with twice the capacity holds about twice the cameras).
ALTER TABLE engine_nodes ADD COLUMN capacity real NOT NULL DEFAULT 1 CHECK (capacity > 0);

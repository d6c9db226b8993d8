#!/usr/bin/env bash
# Retention at scale: 1,000,000 expired detections (100 to ~106 days old, half of them recognised
# persons, on 10 cameras; 10,000 of them with a snapshot on disk, 20,000 files) and 100,000 recent ones,
# in a database of its own (panoptes_retention). `panoptes serve` starts; its first retention sweep
# (at start) deletes the expired rows, 1,000 per statement, while wrk loads GET /api/v1/detections
# (?limit=50, newest first: what the console's Appearances page asks) for WINDOW seconds. Reports the
# sweep's duration and rate (its log line), the latency of GET /detections during the sweep, and the
# same load again once the sweep is over (the baseline).
# Usage: bench/retention.sh [window seconds=30] [connections=8]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-30}; conns=${2:-8}
command -v wrk >/dev/null || { sudo=; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -q wrk >/dev/null; }
./scripts/setup.sh >/dev/null
cargo build --release -q
base=$(scripts/pg url); admin="${base%/*}/postgres"; db="${base%/*}/panoptes_retention"
psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_retention' -c 'CREATE DATABASE panoptes_retention'
PANOPTES_DATABASE_URL="$db" ./target/release/panoptes migrate >/dev/null
snapshots=$(mktemp -d /tmp/panoptes-retention-snapshots.XXXXXX)
log=$(mktemp /tmp/panoptes-retention.XXXXXX.log)

echo "== inserting 1,000,000 expired and 100,000 recent detections"
psql -q "$db" <<'SQL'
INSERT INTO cameras (name, url, analysis_fps, enabled)
  SELECT 'cam-' || i, 'rtsp://192.0.2.1/stream' || i, 5, false FROM generate_series(1, 10) i;
INSERT INTO persons (name) SELECT 'person ' || i FROM generate_series(1, 100) i;
-- Expired: 100 days back and older, one every 0.5 s; every 100th with a snapshot stem.
INSERT INTO detections (camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h, snapshot_path)
  SELECT 1 + i % 10, t, CASE WHEN i % 2 = 0 THEN 1 + i % 100 END, 0.6, 0.9, 100, 100, 120, 120,
         CASE WHEN i % 100 = 0 THEN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD') || '/cam-' || (1 + i % 10) || '/'
                                    || to_char(t AT TIME ZONE 'UTC', 'HH24MISS.MS') || '-' || i END
  FROM (SELECT i, now() - interval '100 days' - make_interval(secs => i * 0.5) AS t
        FROM generate_series(1, 1000000) i) s;
-- Recent: the last ~6 days, what GET /detections pages through.
INSERT INTO detections (camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h)
  SELECT 1 + i % 10, now() - make_interval(secs => i * 5), CASE WHEN i % 2 = 0 THEN 1 + i % 100 END,
         0.6, 0.9, 100, 100, 120, 120
  FROM generate_series(1, 100000) i;
ANALYZE;
SQL
echo "== writing 20,000 snapshot files"
psql -qtA "$db" -c "SELECT snapshot_path FROM detections WHERE snapshot_path IS NOT NULL" | python3 -c '
import os, sys
root = sys.argv[1]
jpeg = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
for stem in sys.stdin.read().split():
    os.makedirs(os.path.join(root, os.path.dirname(stem)), exist_ok=True)
    for kind in ("face", "frame"):
        with open(os.path.join(root, f"{stem}.{kind}.jpg"), "wb") as f:
            f.write(jpeg)
' "$snapshots"
find "$snapshots" -type f | wc -l

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PANOPTES_DATABASE_URL="$db" PANOPTES_API__LISTEN="127.0.0.1:$port" PANOPTES_STREAMING__DEMO_CLIP='""' \
  PANOPTES_SNAPSHOTS__DIR="\"$snapshots\"" \
  PANOPTES_API__RATE_LIMIT_PER_SECOND=1000000 PANOPTES_API__RATE_LIMIT_BURST=1000000 RUST_LOG=info,ort=warn \
  ./target/release/panoptes serve >"$log" 2>&1 &
pid=$!; trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$snapshots"' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.5; done
deleted() { curl -sf "http://127.0.0.1:$port/metrics" | awk '/^panoptes_retention_deleted_total\{kind="detections"\}/ {print $2}'; }
echo "== $(date -u +%FT%TZ) $(nproc) cores; the sweep runs; wrk -t2 -c$conns -d${window}s GET /api/v1/detections?limit=50"
echo "deleted when the load starts: $(deleted)"
wrk -t2 -c"$conns" -d"${window}s" --latency "http://127.0.0.1:$port/api/v1/detections?limit=50" \
  | grep -E "Requests/sec|Latency |50%|90%|99%|Non-2xx|errors"
during=$(deleted)
echo "deleted when the load ends: $during (the whole window ran during the sweep if below 1000000)"
for _ in $(seq 1200); do [ "$(deleted)" = 1000000 ] && break; sleep 0.5; done
grep "deleted expired detections" "$log" | tail -1 | sed -E 's/\x1b\[[0-9;]*m//g'
echo "left: $(psql -qtA "$db" -c 'SELECT count(*) FROM detections') rows (the 100,000 recent ones), $(find "$snapshots" -type f | wc -l) snapshot files"
echo "-- the same load with no sweep running (baseline)"
wrk -t2 -c"$conns" -d"${window}s" --latency "http://127.0.0.1:$port/api/v1/detections?limit=50" \
  | grep -E "Requests/sec|Latency |50%|90%|99%|Non-2xx|errors"

#!/usr/bin/env bash
# wrk against a local engine: GET /api/v1/cameras with 100 cameras configured, and
# GET /api/v1/detections?limit=50 over 1,000,000 stored detections; then enrollment latency of a
# 600 px selfie. Uses its own database (panoptes_apibench) on the private cluster.
# Usage: load/api-bench.sh [seconds=20] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}; conns=${2:-64}
command -v wrk >/dev/null || { sudo=; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -q wrk >/dev/null; }
./scripts/setup.sh >/dev/null
cargo build --release -q
base=$(scripts/pg url); admin="${base%/*}/postgres"; db="${base%/*}/panoptes_apibench"
psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_apibench' -c 'CREATE DATABASE panoptes_apibench'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PANOPTES_DATABASE_URL="$db" ./target/release/panoptes migrate >/dev/null
psql -q "$db" <<'SQL'
INSERT INTO cameras (name, url, analysis_fps, enabled)
  SELECT 'cam-' || i, 'rtsp://viewer:secret@10.0.' || (i / 250) || '.' || (i % 250) || ':554/stream1', 5, false
  FROM generate_series(1, 100) i;
INSERT INTO detections (camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h)
  SELECT 1 + (i % 100), now() - make_interval(secs => i * 0.5), NULL, 0.3 + (i % 60) / 100.0, 0.9, 100, 100, 120, 120
  FROM generate_series(1, 1000000) i;
ANALYZE;
SQL
PANOPTES_DATABASE_URL="$db" PANOPTES_API__LISTEN="127.0.0.1:$port" PANOPTES_STREAMING__DEMO_CLIP='""' \
  PANOPTES_API__RATE_LIMIT_PER_SECOND=1000000 PANOPTES_API__RATE_LIMIT_BURST=1000000 RUST_LOG=warn \
  ./target/release/panoptes serve >/tmp/panoptes-apibench.log 2>&1 &
pid=$!; trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
echo "== $(date -u +%FT%TZ) $(nproc) cores, wrk -t2 -c$conns -d${secs}s"
for path in "/api/v1/cameras" "/api/v1/detections?limit=50"; do
  echo "-- GET $path"
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$path" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|errors"
done
echo "-- enrollment of a 600 px selfie (20 sequential requests)"
python3 - "$port" <<'PY'
import io, json, subprocess, sys, time, statistics, urllib.request, uuid
port = sys.argv[1]
subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "tests/data/photos/obama.jpg", "-vf", "scale=600:-2", "/tmp/selfie600.jpg"], check=True)
photo = open("/tmp/selfie600.jpg", "rb").read()
times = []
for i in range(20):
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench {i}\r\n"
            f"--{b}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"s.jpg\"\r\n\r\n").encode() + photo + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/persons", body, {"Content-Type": f"multipart/form-data; boundary={b}"})
    t = time.perf_counter(); urllib.request.urlopen(req).read(); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"enroll 600 px: p50 {statistics.median(times):.0f} ms, p95 {times[int(len(times)*0.95)-1]:.0f} ms, max {times[-1]:.0f} ms")
PY

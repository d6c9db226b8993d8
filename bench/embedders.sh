#!/usr/bin/env bash
# The built-in embedders side by side, for choosing `pipeline.embedder`: recognition on the labelled
# pairs (`panoptes eval recognition`), enrollment and identify latency through the API (a 600 px
# selfie and a 720p photo, 20 sequential requests each, on a fresh database), and the per-camera cost
# of `panoptes bench` on the corridor and walk-through clips (2 cameras, 5 analysed fps, 30 s; the
# walk-through with no warm-up, so that Obama's first walk and its appearance fall in the window).
# Usage: bench/embedders.sh [sface mobilefacenet]
set -euo pipefail
cd "$(dirname "$0")/.."
embedders=("${@:-sface}"); [ $# -gt 0 ] || embedders=(sface mobilefacenet)
./scripts/setup.sh >/dev/null
cargo build --release -q
base=$(scripts/pg url); admin="${base%/*}/postgres"
echo "== $(date -u +%FT%TZ) $(nproc) cores"
for e in "${embedders[@]}"; do
  export PANOPTES_PIPELINE__EMBEDDER=$e
  echo "### $e: panoptes eval recognition"
  ./target/release/panoptes eval recognition 2>/dev/null | grep -E "at threshold|TAR at|ROC|scores"

  echo "### $e: API latency (sequential)"
  db="${base%/*}/panoptes_embedbench"
  psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_embedbench' -c 'CREATE DATABASE panoptes_embedbench'
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PANOPTES_DATABASE_URL="$db" PANOPTES_API__LISTEN="127.0.0.1:$port" PANOPTES_STREAMING__DEMO_CLIP='""' \
    PANOPTES_API__RATE_LIMIT_PER_SECOND=1000000 PANOPTES_API__RATE_LIMIT_BURST=1000000 RUST_LOG=warn \
    ./target/release/panoptes serve >/tmp/panoptes-embedbench.log 2>&1 &
  pid=$!
  for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
  python3 - "$port" <<'PY'
import subprocess, sys, time, statistics, urllib.request, uuid
port = sys.argv[1]
subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "tests/data/photos/obama.jpg", "-vf", "scale=600:-2", "/tmp/selfie600.jpg"], check=True)
subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", "tests/data/photos/obama2.jpg", "-vf", "scale=1280:720:force_original_aspect_ratio=decrease", "/tmp/photo720.jpg"], check=True)
def post(path, field, photo, extra=""):
    b = uuid.uuid4().hex
    body = (extra.replace("BOUNDARY", b) + f"--{b}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"p.jpg\"\r\n\r\n").encode() + photo + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, {"Content-Type": f"multipart/form-data; boundary={b}"})
    t = time.perf_counter(); urllib.request.urlopen(req).read(); return (time.perf_counter() - t) * 1000
def report(what, times):
    times.sort()
    print(f"{what}: p50 {statistics.median(times):.0f} ms, p95 {times[int(len(times)*0.95)-1]:.0f} ms, max {times[-1]:.0f} ms")
selfie, photo = open("/tmp/selfie600.jpg", "rb").read(), open("/tmp/photo720.jpg", "rb").read()
report("enroll 600 px", [post("/api/v1/persons", "photos", selfie, f"--BOUNDARY\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench {i}\r\n") for i in range(20)])
post("/api/v1/identify", "photo", photo)  # warm-up
report("identify 720p", [post("/api/v1/identify", "photo", photo) for _ in range(20)])
PY
  kill $pid; wait $pid 2>/dev/null || true

  for clip in corridor:5 walkthrough:0; do
    echo "### $e: panoptes bench, ${clip%:*}"
    PANOPTES_DATABASE_URL="$base" ./target/release/panoptes bench --cameras 2 --fps 10 --analysis-fps 5 --seconds 30 \
      --warmup "${clip#*:}" --video ".local/demo/${clip%:*}.h264" --enroll tests/data/photos/obama.jpg 2>/dev/null
  done
done

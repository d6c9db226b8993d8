#!/usr/bin/env bash
# Soak: a release engine with N file cameras (a person comes and goes every 2.5 s on each, so
# detections keep flowing) plus locust at moderate load, for a while. Reports RSS and open file
# descriptors after warm-up and at the end, failed requests, and whether every detection event the
# engine emitted is stored (rows in PostgreSQL = panoptes_detection_events_total). RSS and fds are
# also sampled every minute (.local/soak/samples.csv), so growth shows as a trend, not two points.
# Own database (panoptes_soak) on the private cluster.
# Usage: scripts/soak.sh [minutes=10] [cameras=16] [users=50]
set -euo pipefail
cd "$(dirname "$0")/.."
mins=${1:-10}; cams=${2:-16}; users=${3:-50}
./scripts/setup.sh >/dev/null
venv=.local/venv-load
[ -x "$venv/bin/locust" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "locust==2.*"; }
cargo build --release -q
mkdir -p .local/soak load/reports
clip="$PWD/.local/soak/comings-and-goings.h264"
[ -s "$clip" ] || ffmpeg -v error -y -loop 1 -t 1.5 -i tests/data/photos/obama2.jpg -loop 1 -t 1 -i tests/data/photos/obama2.jpg \
  -filter_complex "[0]crop=iw/3:ih/3:0:ih*2/3,scale=1280:720,setsar=1[a];[1]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1[b];[a][b]concat=n=2:v=1,fps=10[v]" \
  -map "[v]" -c:v libx264 -profile:v baseline -g 5 -pix_fmt yuv420p "$clip"

base=$(scripts/pg url); admin="${base%/*}/postgres"; db="${base%/*}/panoptes_soak"
psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_soak' -c 'CREATE DATABASE panoptes_soak'
PANOPTES_DATABASE_URL="$db" ./target/release/panoptes migrate >/dev/null
PANOPTES_DATABASE_URL="$db" ./target/release/panoptes enroll --name "Barack Obama" tests/data/photos/obama.jpg >/dev/null
psql -q "$db" -c "INSERT INTO cameras (name, url, analysis_fps, enabled)
  SELECT 'soak-' || i, '$clip', 5, true FROM generate_series(1, $cams) i"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key="soak-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PANOPTES_DATABASE_URL="$db" PANOPTES_API__LISTEN="\"127.0.0.1:$port\"" \
  PANOPTES_API__KEYS="[{name=\"soak\", role=\"admin\", key=\"$key\"}]" \
  PANOPTES_API__RATE_LIMIT_PER_SECOND=100000 PANOPTES_API__RATE_LIMIT_BURST=100000 \
  PANOPTES_STREAMING__DEMO_CLIP='""' PANOPTES_STREAMING__COOLDOWN_SECS=1 PANOPTES_TRACKING__LOST_SECS=0.3 \
  PANOPTES_SNAPSHOTS__DIR="\"$PWD/.local/soak/snapshots\"" RUST_LOG=warn \
  ./target/release/panoptes serve >.local/soak/engine.log 2>&1 &
pid=$!; trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
metric() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'; }

sleep 60 # warm-up: every camera connected, buffers and pools at their working size
rss0=$(rss); fds0=$(fds); t0=$(date -u +%FT%TZ)
echo "minute,rss_mb,fds" >.local/soak/samples.csv
( i=0; while kill -0 "$pid" 2>/dev/null; do echo "$i,$(rss),$(fds)" >>.local/soak/samples.csv; sleep 60; i=$((i + 1)); done ) &
sampler=$!; trap 'kill $sampler $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
PANOPTES_API_KEY="$key" PANOPTES_SSE_SECONDS=30 "$venv/bin/locust" -f load/locustfile.py --headless -u "$users" \
  -r 10 -t "${mins}m" --host "http://127.0.0.1:$port" --csv load/reports/soak --only-summary --loglevel WARNING \
  >.local/soak/locust.log 2>&1 || true
rss1=$(rss); fds1=$(fds); kill $sampler 2>/dev/null || true

# Stop the cameras, let the pipeline and the sink settle, then compare emitted with stored.
psql -q "$db" -c "UPDATE cameras SET enabled = false"
for _ in $(seq 30); do sleep 1; [ "$(metric panoptes_sink_buffered_events)" = 0 ] && break; done
sleep 3
emitted=$(metric panoptes_detection_events_total); stored=$(psql -qtA "$db" -c "SELECT count(*) FROM detections")
overflow=$(metric panoptes_sink_overflow_total); dropped=$(metric panoptes_detection_events_dropped_total)
sheds=$(metric panoptes_scheduler_sheds_total); restarts=$(metric panoptes_actor_restarts_total)
python3 - "$t0" "$mins" "$cams" "$users" "$rss0" "$rss1" "$fds0" "$fds1" "$emitted" "$stored" "$overflow" "$dropped" "$sheds" "$restarts" <<'PY'
import csv, sys
t0, mins, cams, users, rss0, rss1, fds0, fds1, emitted, stored, overflow, dropped, sheds, restarts = sys.argv[1:]
rows = {r["Name"]: r for r in csv.DictReader(open("load/reports/soak_stats.csv"))}
agg = rows["Aggregated"]
exc = sum(int(r["Count"]) for r in csv.DictReader(open("load/reports/soak_exceptions.csv")))
print(f"== soak from {t0}: {mins} min, {cams} file cameras, {users} locust users")
print(f"RSS after warm-up {rss0} MB, at the end {rss1} MB; open fds {fds0} -> {fds1}")
samples = list(csv.DictReader(open(".local/soak/samples.csv")))
if samples:
    r = [int(x["rss_mb"]) for x in samples]; f = [int(x["fds"]) for x in samples]
    half = len(r) // 2
    print(f"sampled every minute ({len(r)}): RSS min {min(r)} max {max(r)} MB, first half max {max(r[:half] or r)}"
          f" / second half max {max(r[half:])} MB; fds min {min(f)} max {max(f)}")
print(f"requests {agg['Request Count']}, failed {agg['Failure Count']}, task exceptions {exc}, "
      f"{float(agg['Requests/s']):.1f} req/s, p95 {agg['95%']} ms")
print(f"detection events emitted {emitted}, stored {stored}, sink overflow {overflow}, dropped before the sink {dropped}")
print(f"load-shedding changes {sheds}, restarts after a panic {restarts}")
ok = int(float(emitted)) == int(stored) and int(agg["Failure Count"]) == 0 and exc == 0
print("RESULT:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY

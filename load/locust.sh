#!/usr/bin/env bash
# locust, headless, against a Panoptes engine this script starts (release build, its own database
# panoptes_locust on the private cluster: 50 cameras of which the demo camera streams, 200,000
# detections, 20 enrolled persons). Writes load/reports/locust-<users>.{html,_stats.csv,...} and
# prints the engine's CPU and RSS over the run.
# Usage: load/locust.sh [users=100] [seconds=60] [spawn_rate=users/5]
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100}; secs=${2:-60}; rate=${3:-$(( users / 5 > 0 ? users / 5 : 1 ))}
./scripts/setup.sh >/dev/null
venv=.local/venv-load
[ -x "$venv/bin/locust" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "locust==2.*"; }
cargo build --release -q

# Selfie-sized copies of real photos (one face each) for enrollment.
mkdir -p .local/load load/reports
for p in obama obama3 biden; do
  [ -f ".local/load/selfie-$p.jpg" ] || ffmpeg -v error -y -i "tests/data/photos/$p.jpg" -vf scale=600:-2 ".local/load/selfie-$p.jpg"
done

base=$(scripts/pg url); admin="${base%/*}/postgres"; db="${base%/*}/panoptes_locust"
psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_locust' -c 'CREATE DATABASE panoptes_locust'
PANOPTES_DATABASE_URL="$db" ./target/release/panoptes migrate >/dev/null
for i in $(seq 20); do
  PANOPTES_DATABASE_URL="$db" ./target/release/panoptes enroll --name "Person $i" tests/data/photos/obama.jpg >/dev/null
done
psql -q "$db" <<'SQL'
INSERT INTO cameras (name, url, analysis_fps, enabled)
  SELECT 'cam-' || i, 'rtsp://viewer:secret@10.0.0.' || i || ':554/stream1', 5, false FROM generate_series(1, 49) i;
INSERT INTO detections (camera_id, detected_at, person_id, score, det_score, box_x, box_y, box_w, box_h)
  SELECT 1 + (i % 49), now() - make_interval(secs => i * 2), NULL, 0.3 + (i % 60) / 100.0, 0.9, 100, 100, 120, 120
  FROM generate_series(1, 200000) i;
ANALYZE;
SQL

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key="load-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# One key for every simulated user: its rate limit is raised so the limiter does not shape the test.
PANOPTES_DATABASE_URL="$db" PANOPTES_API__LISTEN="\"127.0.0.1:$port\"" \
  PANOPTES_API__KEYS="[{name=\"load\", role=\"admin\", key=\"$key\"}]" \
  PANOPTES_API__RATE_LIMIT_PER_SECOND=100000 PANOPTES_API__RATE_LIMIT_BURST=100000 \
  PANOPTES_SNAPSHOTS__DIR="\"$PWD/.local/load/snapshots\"" RUST_LOG=warn \
  ./target/release/panoptes serve >.local/load/engine.log 2>&1 &
pid=$!; trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
cpu0=$(cpu); t0=$(date +%s.%N)
( while kill -0 $pid 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$pid/status"; sleep 1; done ) >.local/load/rss.txt &
sampler=$!
PANOPTES_API_KEY="$key" "$venv/bin/locust" -f load/locustfile.py --headless -u "$users" -r "$rate" -t "${secs}s" \
  --host "http://127.0.0.1:$port" --csv "load/reports/locust-$users" --html "load/reports/locust-$users.html" \
  --only-summary --loglevel WARNING || true
cpu1=$(cpu); t1=$(date +%s.%N); kill $sampler 2>/dev/null || true
rss_max=$(sort -n .local/load/rss.txt | tail -1)
echo "== $(date -u +%FT%TZ) $(nproc) cores, $users users, ${secs}s"
python3 - "$cpu0" "$cpu1" "$t0" "$t1" "$ticks" "$rss_max" "load/reports/locust-$users" <<'PY'
import csv, sys
c0, c1, t0, t1, ticks, rss = (float(x) for x in sys.argv[1:7])
report = sys.argv[7]
# Exceptions inside a task (a bug in the scenario or an unexpected response shape) are failures too.
exceptions = sum(int(r["Count"]) for r in csv.DictReader(open(f"{report}_exceptions.csv")))
print(f"engine CPU {(c1 - c0) / ticks / (t1 - t0) * 100:.0f}% of one core, peak RSS {rss / 1024:.0f} MB, "
      f"task exceptions {exceptions}")
print(f"{'endpoint':34} {'reqs':>7} {'fail':>5} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} (ms)")
for r in csv.DictReader(open(f"{report}_stats.csv")):
    print(f"{r['Type'] + ' ' + r['Name']:34.34} {r['Request Count']:>7} {r['Failure Count']:>5} "
          f"{float(r['Requests/s']):7.1f} {r['50%']:>6} {r['95%']:>6} {r['99%']:>6}")
PY

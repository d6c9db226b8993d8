#!/usr/bin/env bash
# The control plane at scale: NODES `panoptes serve` processes on one database with CAMERAS camera
# rows, all enabled, each pointing at an RTSP address nobody answers (127.0.0.1:9: refused at once),
# so every camera is a live pipeline in backoff — leases, scheduler ticks, status, API — without
# video. After a minute: per node the cameras it holds, CPU over 30 s, RSS, threads and database
# connections; memory per idle camera (against one node with no cameras); then `GET /api/v1/cameras`
# latency (wrk, 10 s, 8 connections) on one node, and each node's scheduler tick by phase
# (panoptes_scheduler_tick_seconds). Own database (panoptes_controlplane).
# Usage: bench/control-plane.sh [nodes=3] [cameras=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-3}; cams=${2:-1000}
command -v wrk >/dev/null || { sudo=; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -q wrk >/dev/null; }
./scripts/setup.sh >/dev/null
cargo build --release -q
base=$(scripts/pg url); admin="${base%/*}/postgres"; db="${base%/*}/panoptes_controlplane"
pgport=$(echo "$base" | sed -E 's#.*:([0-9]+)/.*#\1#')
psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_controlplane' -c 'CREATE DATABASE panoptes_controlplane'
PANOPTES_DATABASE_URL="$db" ./target/release/panoptes migrate >/dev/null

pids=(); ports=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
start() { # node-id -> starts a node, records pid and port
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  PANOPTES_DATABASE_URL="$db" PANOPTES_API__LISTEN="127.0.0.1:$port" PANOPTES_STREAMING__DEMO_CLIP='""' \
    PANOPTES_STREAMING__NODE_ID="\"$1\"" PANOPTES_API__RATE_LIMIT_PER_SECOND=1000000 \
    PANOPTES_API__RATE_LIMIT_BURST=1000000 RUST_LOG=warn ./target/release/panoptes serve >".local/controlplane-$1.log" 2>&1 &
  pids+=($!); ports+=("$port")
  for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
}
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
tck=$(getconf CLK_TCK)

# One node with no cameras: the baseline for memory per idle camera.
start baseline; sleep 20; rss_empty=$(rss "${pids[0]}"); kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=(); ports=()

psql -q "$db" -c "INSERT INTO cameras (name, url, analysis_fps, enabled)
  SELECT 'idle-' || i, 'rtsp://127.0.0.1:9/idle-' || i, 5, true FROM generate_series(1, $cams) i"
for i in $(seq "$nodes"); do start "node-$i"; done
sleep 60
declare -a c0; for i in "${!pids[@]}"; do c0[$i]=$(cpu "${pids[$i]}"); done
sleep 30
echo "== $(date -u +%FT%TZ) $(nproc) cores: $nodes nodes, $cams enabled cameras (RTSP refused: all in backoff)"
echo "one node with no cameras: RSS $rss_empty MB"
for i in "${!pids[@]}"; do
  p=${pids[$i]}; node="node-$((i + 1))"
  held=$(psql -qtA "$db" -c "SELECT count(*) FROM camera_leases WHERE node_id = '$node'")
  conns=$(ss -tnp 2>/dev/null | grep "pid=$p," | grep -c "127.0.0.1:$pgport " || true)
  threads=$(awk '/Threads/ {print $2}' "/proc/$p/status")
  used=$(( $(cpu "$p") - ${c0[$i]} ))
  r=$(rss "$p")
  awk -v n="$node" -v h="$held" -v u="$used" -v t="$tck" -v r="$r" -v e="$rss_empty" -v th="$threads" -v c="$conns" 'BEGIN {
    printf "%s: %d cameras, %.1f %% of a core, RSS %d MB (%.2f MB per idle camera), %d threads, %d database connections\n",
      n, h, 100 * u / t / 30, r, (h > 0 ? (r - e) / h : 0), th, c }'
  # The scheduler's own timing (panoptes_scheduler_tick_seconds): mean and the bucket holding p99.
  curl -sf "http://127.0.0.1:${ports[$i]}/metrics" | awk -v n="$node" '
    /^panoptes_scheduler_tick_seconds_bucket/ { match($0, /phase="[a-z]+"/); ph = substr($0, RSTART + 7, RLENGTH - 8)
      match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5); k = ph SUBSEP (++nb[ph]); bl[k] = le; bc[k] = $NF }
    /^panoptes_scheduler_tick_seconds_sum/ { match($0, /phase="[a-z]+"/); sum[substr($0, RSTART + 7, RLENGTH - 8)] = $NF }
    /^panoptes_scheduler_tick_seconds_count/ { match($0, /phase="[a-z]+"/); cnt[substr($0, RSTART + 7, RLENGTH - 8)] = $NF }
    END { line = n ": scheduler tick"
      for (ph in cnt) { p99 = "?"; for (j = 1; j <= nb[ph]; j++) if (bc[ph, j] >= 0.99 * cnt[ph]) { p99 = bl[ph, j]; break }
        line = line sprintf(", %s mean %.1f ms p99 <= %s s (%d ticks)", ph, 1000 * sum[ph] / cnt[ph], p99, cnt[ph]) }
      print line }'
done
echo "GET /api/v1/cameras ($cams rows) on node-1, wrk -t2 -c8 -d10s:"
wrk -t2 -c8 -d10s --latency "http://127.0.0.1:${ports[0]}/api/v1/cameras" | grep -E "Requests/sec|50%|99%|Latency "

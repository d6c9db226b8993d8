#!/usr/bin/env bash
# Panoptes against the Python reference pipeline (bench/baseline), on the same clip, the same
# models and thresholds, the same camera count, rate and duration, the same person enrolled; prints
# both, the ratios, and Panoptes' decode-only floor of the clip (what decoding alone costs).
# Usage: bench/compare.sh [cameras=2] [seconds=30] [clip=.local/demo/corridor.h264]
set -euo pipefail
cd "$(dirname "$0")/.."
cams=${1:-2}; secs=${2:-30}; clip=${3:-.local/demo/corridor.h264}
./scripts/setup.sh >/dev/null
bench/baseline/setup.sh
cargo build --release -q
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

echo "== $(date -u +%FT%TZ) $(nproc) cores, $cams camera(s) × 10 fps, 5 analysed fps, ${secs}s, $clip"
bench=(./target/release/panoptes bench --cameras "$cams" --fps 10 --analysis-fps 5 --seconds "$secs" --video "$clip")
"${bench[@]}" --enroll tests/data/photos/obama.jpg | tee "$out/panoptes.txt"
"${bench[@]}" --decode-only | tee "$out/floor.txt"

# One process per camera, as users run the scripts; ONNX Runtime threads split the cores between them.
threads=$(( $(nproc) / cams > 0 ? $(nproc) / cams : 1 ))
pids=()
for i in $(seq "$cams"); do
  .local/venv-baseline/bin/python bench/baseline/pipeline.py --video "$clip" --fps 10 --analysis-fps 5 \
    --seconds "$secs" --threads "$threads" --enroll tests/data/photos/obama.jpg >"$out/baseline-$i.json" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

python3 - "$out" "$cams" "$secs" <<'PY'
import glob, json, re, sys
out, cams, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
text = open(f"{out}/panoptes.txt").read()
floor = open(f"{out}/floor.txt").read()
num = lambda pat, t=text: float(re.search(pat, t).group(1))
# Every sampled frame gets a decision: the detector's, or the motion gate's "nothing moved".
p_decided = num(r"\((\d+) decided")
p_cpu_per_frame = num(r"CPU: ([\d.]+) CPU-s per decided frame")
p_core = num(r"([\d.]+) % of one core per camera")
f_core = num(r"([\d.]+) % of one core per camera", floor)
p_p95 = num(r"p95 (\d+) ms")
p_rss_total = num(r"RSS: (\d+) MB total")
runs = [json.loads(open(f).read()) for f in sorted(glob.glob(f"{out}/baseline-*.json"))]
b_analysed = sum(r["analysed"] for r in runs)
b_cpu = sum(r["cpu_s"] for r in runs)
b_p95 = max(r["latency_p95_ms"] for r in runs)
b_rss = sum(r["peak_rss_mb"] for r in runs) / len(runs)
b_core = b_cpu / secs / cams * 100
p_fpcs, b_fpcs = 1 / p_cpu_per_frame, b_analysed / b_cpu
rows = [
    ("sampled frames decided", f"{p_decided:.0f}", f"{b_analysed:.0f}", ""),
    ("decided frames per CPU-second", f"{p_fpcs:.1f}", f"{b_fpcs:.1f}", f"{p_fpcs / b_fpcs:.1f}x"),
    ("% of a core per camera", f"{p_core:.1f}", f"{b_core:.1f}", f"1/{b_core / max(p_core, 0.01):.1f}"),
    ("  decode-only floor (%)", f"{f_core:.1f}", "", f"full {p_core / max(f_core, 0.01):.2f}x floor"),
    ("capture→decision p95 (ms)", f"{p_p95:.0f}", f"{b_p95:.0f}", f"{b_p95 / max(p_p95, 1):.1f}x lower"),
    ("RSS per camera (MB)", f"{p_rss_total / cams:.0f}", f"{b_rss:.0f}", f"1/{b_rss / (p_rss_total / cams):.1f}"),
]
print(f"\n{'':32} {'panoptes':>10} {'baseline':>10} {'ratio':>12}")
for r in rows:
    print(f"{r[0]:32} {r[1]:>10} {r[2]:>10} {r[3]:>12}")
print("(panoptes RSS per camera = the whole process, models included, divided by the cameras;"
      " baseline = each camera's process; a decided frame is a sampled frame the detector ran on or the"
      " motion gate found unchanged — the reference runs its detector on every one)")
for i, r in enumerate(runs, 1):
    print(f"baseline camera {i}: {json.dumps(r)}")
PY

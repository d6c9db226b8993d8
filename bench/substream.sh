#!/usr/bin/env bash
# Issue 25, what a main stream + substream camera costs by the main stream's GOP: `panoptes bench` (full
# pipeline, 10 fps analysed at ANALYSIS_FPS, default 5 as a camera's default) on the 1080p walk-through re-encoded with a fixed GOP of 10, 20, 40
# and 80 frames (1, 2, 4, 8 s; Main profile, B-frames, 4 Mbit/s, no scene-cut keyframes) and its 640×360
# rendition as the substream (GOP 20, 500 kbit/s), each run three ways: main only (--video MAIN: every
# frame decoded and detected at 1080p), substream only (--video SUB: the floor, once) and main +
# substream (--video MAIN --detect-video SUB: detection on the substream, main keyframes decoded for
# recognition, so a longer GOP should cost less). Prints % of one core per camera and main+sub / main,
# then the decoding floor of the same three at GOP 20 (--decode-only: every unit of the analysed stream
# decoded, main keyframes decoded, nothing analysed) to show where the rest goes.
# Usage: bench/substream.sh [extra bench args, e.g. --cameras 4]
#   SECONDS_PER_RUN=30 (measuring window per run), ANALYSIS_FPS=5, PANOPTES=target/release/panoptes (set: no build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PANOPTES:-target/release/panoptes}
secs=${SECONDS_PER_RUN:-30}
afps=${ANALYSIS_FPS:-5}
./scripts/setup.sh >/dev/null
[ -n "${PANOPTES:-}" ] || cargo build --release -q
extra=("$@")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/panoptes-substream.XXXXXX")
echo "clips and each run's full output: $tmp"

src=.local/demo/walkthrough-1080p.h264
sub="$tmp/sub-g20.h264"
ffmpeg -v error -y -r 10 -i "$src" -vf "scale=640:360:flags=area" \
  -c:v libx264 -profile:v main -bf 2 -g 20 -keyint_min 20 -sc_threshold 0 -b:v 500k -maxrate 500k -bufsize 500k \
  -pix_fmt yuv420p "$sub"
gops=(10 20 40 80)
for g in "${gops[@]}"; do
  ffmpeg -v error -y -r 10 -i "$src" \
    -c:v libx264 -profile:v main -bf 2 -g "$g" -keyint_min "$g" -sc_threshold 0 -b:v 4000k -maxrate 4000k -bufsize 4000k \
    -pix_fmt yuv420p "$tmp/main-g$g.h264"
done

# One bench run, its output in $tmp/NAME.txt; prints its "% of one core per camera" (nothing if it failed).
core_of() { # name bench-args...
  local log="$tmp/$1.txt"; shift
  "$bin" bench --fps 10 --analysis-fps "$afps" --seconds "$secs" --warmup 5 "$@" "${extra[@]}" >"$log" 2>&1 \
    || echo "substream.sh: bench failed, see $log" >&2
  sed -n 's/.* \([0-9.]*\) % of one core per camera.*/\1/p' "$log"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

echo "== $(date -u +%FT%TZ) $(nproc) cores, ${secs}s per run after 5 s of warm-up, 10 fps analysed at $afps fps${extra[*]:+, ${extra[*]}}"
s=$(core_of sub --video "$sub")
echo
echo "| GOP | main only | substream only | main + substream | ratio (main+sub / main) |"
echo "|---|---|---|---|---|"
for g in "${gops[@]}"; do
  m=$(core_of "main-g$g" --video "$tmp/main-g$g.h264")
  ms=$(core_of "main-g$g+sub" --video "$tmp/main-g$g.h264" --detect-video "$sub")
  echo "| $g ($((g / 10)) s) | ${m:-failed} | ${s:-failed} | ${ms:-failed} | $(ratio "$ms" "$m") |"
done
echo
echo "Decoding floor at GOP 20 (--decode-only): main only $(core_of d-main --decode-only --video "$tmp/main-g20.h264"), \
substream only $(core_of d-sub --decode-only --video "$sub"), \
main + substream $(core_of d-main+sub --decode-only --video "$tmp/main-g20.h264" --detect-video "$sub")"
echo
echo "Figures: % of one core per camera (panoptes bench's CPU line). Logs: $tmp"

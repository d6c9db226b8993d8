#!/usr/bin/env bash
# Decoding cost per camera by codec, resolution and decoder backend: `panoptes bench --decode-only`
# (every frame decoded, nothing analysed) on camera-like clips — sensor noise so P-frames carry data,
# Main profile with B-frames, 10 fps, a camera encoder's bitrate (720p 1.5 Mbit/s, 1080p 3 Mbit/s) —
# made here from a test photo, in H.264 (libx264) and H.265 (libx265), as MP4 files.
# openh264 decodes H.264 only. Usage: bench/codecs.sh [cameras=4] [seconds=20]
set -euo pipefail
cd "$(dirname "$0")/.."
cams=${1:-4}; secs=${2:-20}
./scripts/setup.sh >/dev/null
cargo build --release -q
dir=.local/demo/codecs; mkdir -p "$dir"
make_clip() { # name size bitrate encoder-args...
  local out="$dir/$1.mp4" size=$2 rate=$3; shift 3
  [ -s "$out" ] && return
  ffmpeg -v error -y -loop 1 -t 20 -i tests/data/photos/obama2.jpg \
    -vf "scale=$size:force_original_aspect_ratio=decrease,pad=$size:(ow-iw)/2:(oh-ih)/2,noise=alls=3:allf=t,fps=10" \
    -b:v "$rate" -maxrate "$rate" -bufsize "$rate" -pix_fmt yuv420p "$@" "$out.tmp.mp4"
  mv "$out.tmp.mp4" "$out"
}
make_clip h264-720p 1280:720 1500k -c:v libx264 -profile:v main -bf 2 -g 20
make_clip h264-1080p 1920:1080 3000k -c:v libx264 -profile:v main -bf 2 -g 20
make_clip h265-720p 1280:720 1500k -c:v libx265 -x265-params log-level=error:keyint=20:bframes=2
make_clip h265-1080p 1920:1080 3000k -c:v libx265 -x265-params log-level=error:keyint=20:bframes=2

echo "== $(date -u +%FT%TZ) $(nproc) cores, $cams camera(s) per run, ${secs}s, decode only"
printf '%-12s %-9s %10s %14s\n' clip decoder "% of core" "frames/CPU-s"
for clip in h264-720p h264-1080p h265-720p h265-1080p; do
  for decoder in libav openh264; do
    [[ $clip == h265* && $decoder == openh264 ]] && continue
    out=$(./target/release/panoptes bench --decode-only --decoder "$decoder" --cameras "$cams" --seconds "$secs" \
      --video "$dir/$clip.mp4" 2>/dev/null)
    core=$(sed -n 's/.* \([0-9.]*\) % of one core per camera.*/\1/p' <<<"$out")
    printf '%-12s %-9s %10s %14.0f\n' "$clip" "$decoder" "$core" "$(python3 -c "print(10 / ($core / 100))")"
  done
done

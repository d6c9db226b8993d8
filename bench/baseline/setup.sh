#!/usr/bin/env bash
# The Python reference pipeline's own environment (.local/venv-baseline), from PyPI: the same ONNX
# Runtime version the engine loads, OpenCV (FFmpeg-backed decode), numpy. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.local/venv-baseline
ort="${ORT_VERSION:-1.32.0}"
if [ ! -f "$venv/.ready-$ort" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "onnxruntime==$ort" "opencv-python-headless==4.*" "numpy<3"
  touch "$venv/.ready-$ort"
fi

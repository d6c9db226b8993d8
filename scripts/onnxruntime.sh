#!/usr/bin/env bash
# Puts ONNX Runtime's shared library, taken from PyPI's `onnxruntime` wheel, under .local/onnxruntime/.
# The engine loads it at start (config models.onnxruntime or ORT_DYLIB_PATH); ort's download feature is off.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${ORT_VERSION:-1.32.0}"
DEST="$ROOT/.local/onnxruntime"
LIB="$DEST/libonnxruntime.so"
if [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$VERSION" ] && [ -f "$LIB" ]; then
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --python-version 3.11 --implementation cp -d "$tmp" "onnxruntime==$VERSION"
mkdir -p "$DEST"
python3 - "$tmp" "$DEST" "$VERSION" <<'PY'
import glob, shutil, sys, zipfile
tmp, dest, version = sys.argv[1:]
whl = glob.glob(f"{tmp}/onnxruntime-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = f"onnxruntime/capi/libonnxruntime.so.{version}"
    with z.open(name) as src, open(f"{dest}/libonnxruntime.so", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
echo "$VERSION" > "$DEST/VERSION"
echo "onnxruntime: $LIB ($VERSION)"

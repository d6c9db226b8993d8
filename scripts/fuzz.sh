#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/) for a bounded time each: the H.264 path from a camera's
# elementary stream to the decoder, enrollment image decoding, and the API's JSON bodies.
#   scripts/fuzz.sh [seconds per target, default 120] [target ...]
# A crash leaves its input in fuzz/artifacts/TARGET/ and makes this script fail; once fixed, keep the
# input in fuzz/regressions/TARGET/ (replayed by ./scripts/test.sh). Not part of the suite: the
# instrumented build alone takes ~10 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
secs="${1:-120}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(h264_access_units enrollment_image api_json_body)

scripts/setup.sh >/dev/null # nasm for openh264, a C++ compiler for libFuzzer
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# cargo-fuzz passes rustc flags that only nightly accepts (-Zsanitizer=address and the coverage
# passes); this project's machines have the stable toolchain only. RUSTC_BOOTSTRAP=1 lets stable
# rustc accept them, as rustc's own build does.
export RUSTC_BOOTSTRAP=1
# Known, deliberate leaks in dependencies (each explained in the file).
export LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp"
mkdir -p fuzz/logs
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo "== $t: ${secs} s (log: fuzz/logs/$t.log)"
  if ! cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1; then
    failed=1
    grep -E "ERROR|SUMMARY|panicked|Direct leak|Test unit written" "fuzz/logs/$t.log" | head -n 20 || true
  fi
  grep -E "^Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "fuzz/logs/$t.log" || true
  if [ -n "$(ls -A "fuzz/artifacts/$t")" ]; then
    echo "!! $t: inputs that broke it are in fuzz/artifacts/$t/"
    failed=1
  fi
done
exit "$failed"

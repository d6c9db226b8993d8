#!/usr/bin/env bash
# Set up everything (idempotent) and run the engine on the embedded defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh
exec cargo run --release -- serve "$@"

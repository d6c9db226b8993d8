#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up (packages, ONNX Runtime, models, PostgreSQL), then
# every unit and integration test on the real components. `.ci/run` calls exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# The suite's own cluster, apart from the one scripts/run.sh keeps (.local/pg, fsync on): its
# databases are throwaway, so it runs without fsync.
export PANOPTES_PG_DIR="${PANOPTES_PG_DIR:-$ROOT/.local/pg-test}" PANOPTES_PG_FSYNC="${PANOPTES_PG_FSYNC:-off}"
PANOPTES_DATABASE_URL= scripts/setup.sh

# Tests create and use their own databases on the private cluster (they need CREATE DATABASE rights).
url="$(scripts/pg start)"
export PANOPTES_TEST_DATABASE_URL="${PANOPTES_TEST_DATABASE_URL:-${url%/*}/postgres}"
# Databases left by earlier runs.
psql "$PANOPTES_TEST_DATABASE_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'panoptes_test_%'" \
  | while read -r db; do [ -n "$db" ] && psql "$PANOPTES_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" ; done

# A test run is a clean build on CI: incremental caches would only cost disk there.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace --locked "$@"

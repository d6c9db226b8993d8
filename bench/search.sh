#!/usr/bin/env bash
# Search by face at 100,000 and 1,000,000 stored appearance faces: the index alone, then the whole
# search against PostgreSQL (the faces written to a database of their own, panoptes_search_bench, read
# into an index as an engine does at start, then searched: p50/p95 per search, index memory), and the
# cost of grouping a new unknown appearance into the unknown identities online.
# See engine/benches/search.rs for the faces and the queries.
# Usage: bench/search.sh [sizes=100000,1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-100000,1000000}
./scripts/setup.sh >/dev/null
base=$(scripts/pg url); admin="${base%/*}/postgres"; db="${base%/*}/panoptes_search_bench"
psql -q "$admin" -c 'DROP DATABASE IF EXISTS panoptes_search_bench' -c 'CREATE DATABASE panoptes_search_bench'
PANOPTES_BENCH_DATABASE_URL="$db" cargo bench -q -p panoptes-engine --bench search -- "$sizes"
psql -q "$admin" -c 'DROP DATABASE panoptes_search_bench'

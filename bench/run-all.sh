#!/usr/bin/env bash
# run-all.sh BUILD_DIR [scale] - run every benchmark and print its figures.
set -euo pipefail
build=${1:-build}
scale=${2:-1}
echo "# bench_actors (one shard, $(nproc) cores)"
"$build/bench/bench_actors" "$scale"

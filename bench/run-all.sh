#!/usr/bin/env bash
# run-all.sh BUILD_DIR [scale] - run every benchmark and print its figures.
set -euo pipefail
build=${1:-build}
scale=${2:-1}
# Pinned to one CPU (SKICK_BENCH_CPU, default 0; empty: no pinning): the cores
# of a virtual machine need not be equally fast, see bench/compare/README.md.
cpu=${SKICK_BENCH_CPU-0}
pin=()
if [ -n "$cpu" ] && command -v taskset >/dev/null; then pin=(taskset -c "$cpu"); fi
echo "# bench_actors (one shard, $(nproc) cores${cpu:+, pinned to CPU $cpu})"
"${pin[@]}" "$build/bench/bench_actors" "$scale"
# The cost of the metrics on the hot paths: metrics off with an idle second
# thread, then on and scraped once a second by that thread (compare the two
# blocks; bench_actors.c says why the thread). SKICK_BENCH_METRICS_COST=0 skips it.
if [ "${SKICK_BENCH_METRICS_COST:-1}" = 1 ]; then
    echo "# bench_actors, metrics off (a second thread, idle)"
    SKICK_BENCH_METRICS=0 "${pin[@]}" "$build/bench/bench_actors" "$scale"
    echo "# bench_actors, metrics on (scraped once a second)"
    SKICK_BENCH_METRICS=1 "${pin[@]}" "$build/bench/bench_actors" "$scale"
fi
# Opt-in: SKICK_BENCH_COMPARE=1 also runs the same figures with CAF 0.17 and
# Erlang/OTP (one scheduler thread each) side by side: bench/compare/README.md.
if [ "${SKICK_BENCH_COMPARE:-0}" = 1 ]; then "$(dirname "${BASH_SOURCE[0]}")/compare/run.sh" "$@"; fi
# Websocket front: skick-node next to a bare civetweb echo server (bench/ws_bench.sh).
if [ "${SKICK_BENCH_WS:-1}" = 1 ]; then "$(dirname "${BASH_SOURCE[0]}")/ws_bench.sh" "$build"; fi
# Slow clients: a bystander's round trips next to clients that never read,
# and the memory a stalled client costs (bench/slow_clients.py).
if [ "${SKICK_BENCH_SLOW:-1}" = 1 ]; then
    /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/slow_clients.py" "$build"
fi
# Cluster: cross-shard one-way and round trips through skick-broker next to raw
# ZeroMQ, websockets split over a front and a back shard (bench/cluster_bench.sh).
if [ "${SKICK_BENCH_CLUSTER:-1}" = 1 ]; then
    if [ -x "$build/broker/skick-broker" ]; then
        "$(dirname "${BASH_SOURCE[0]}")/cluster_bench.sh" "$build"
    else
        echo "# cluster benchmarks skipped: $build/broker/skick-broker not built"
    fi
fi
# Hashes: one shard's round trips with the Redis backend next to redis-benchmark
# against the same redis-server (bench/hash_bench.sh).
if [ "${SKICK_BENCH_HASH:-1}" = 1 ]; then "$(dirname "${BASH_SOURCE[0]}")/hash_bench.sh" "$build"; fi

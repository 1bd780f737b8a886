#!/usr/bin/env bash
# hash_bench.sh BUILD_DIR - hash round trips per second from one shard with the
# Redis backend, next to redis-benchmark against the same redis-server.
#
# Starts a redis-server on a free loopback port (--save '' --appendonly no), runs
# BUILD_DIR/bench/hash_bench (one shard, skick_hash_set/get from 1 and from 100
# coroutines on one pipelined connection), then `redis-benchmark -t set,get -P 1
# -q` with -c 1 and with -c 100 (100 connections) against the same server, and
# prints the ratios skick/redis-benchmark. Goals (issue 10): >= 0.7 at 100 in
# flight; at 1, a round trip within 1.3 x redis-benchmark's (ratio >= 0.77).
#
# Environment: SKICK_HASH_BENCH_N (default 100000) round trips per figure;
# SKICK_HASH_PIN="S C" pins redis-server to CPU S and the clients to CPU C.
set -euo pipefail
build=${1:?usage: hash_bench.sh BUILD_DIR}
n=${SKICK_HASH_BENCH_N:-100000}
for t in redis-server redis-benchmark; do
    command -v "$t" >/dev/null || { echo "# hash benchmarks skipped: $t missing"; exit 0; }
done
srv_pin=() cli_pin=()
if [ -n "${SKICK_HASH_PIN:-}" ]; then
    read -r s c <<<"$SKICK_HASH_PIN"
    srv_pin=(taskset -c "$s") cli_pin=(taskset -c "$c")
fi
tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${srv_pin[@]}" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" &
rpid=$!
trap 'kill $rpid 2>/dev/null; wait $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

echo "# hash round trips/s from one shard (Redis backend, one connection), n=$n"
SKICK_HASH_BENCH_N=$n "${cli_pin[@]}" timeout 300 "$build/bench/hash_bench" --back \
    --log-level warning --hash "redis://127.0.0.1:$port" 2>"$tmp/bench.log" | tee "$tmp/skick"
echo "# redis-benchmark -t set,get -P 1 -n $n -q, 1 and 100 connections"
for c in 1 100; do
    "${cli_pin[@]}" redis-benchmark -p "$port" -t set,get -P 1 -n "$n" -c "$c" -q 2>/dev/null |
        tr '\r' '\n' | awk -v c="$c" '/requests per second/ {
            split($0, a, ":"); op = tolower(a[1]); sub(/^ */, "", a[2]);
            printf "rb_%s_c%d %.0f\n", op, c, a[2] + 0 }'
done | tee "$tmp/rb"
echo "# ratios skick / redis-benchmark (goal: >= 0.70 at c100, >= 0.77 at c1)"
awk 'FNR == NR { s[$1] = $2; next } { k = $1; sub(/^rb_/, "hash_", k);
     if (k in s) printf "ratio_%s %.2f\n", substr(k, 6), s[k] / $2 }' "$tmp/skick" "$tmp/rb"
if grep -q errors "$tmp/skick"; then echo "# hash_bench had errors: $(cat "$tmp/bench.log")"; exit 1; fi

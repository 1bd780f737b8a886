#!/usr/bin/env bash
# tools_bench.sh BUILD_DIR - command start latency through tools.so's command
# executor next to posix_spawn in a loop (docs/tools.md).
#
# Starts a broker and one back shard with BUILD_DIR/tools/tools.so allowing
# /usr/bin/*, then BUILD_DIR/bench/tools_bench: N runs of /usr/bin/true from a
# client (to the end: {"exit":0}), N posix_spawn + waitpid of it here, and N
# control requests (what the broker and the client cost alone).
# Environment: SKICK_TOOLS_BENCH_N (default 1000).
set -euo pipefail
build=$(cd "${1:?usage: tools_bench.sh BUILD_DIR}" && pwd)
n=${SKICK_TOOLS_BENCH_N:-1000}
tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/broker/skick-broker" --bind "tcp://127.0.0.1:$port" --control "ipc://$tmp/control" \
    >"$tmp/broker.log" 2>&1 &
bpid=$!
SKICK_LOG_LEVEL=warning SKICK_TOOLS_ALLOW='/usr/bin/*' "$build/node/skick-node" \
    --broker "tcp://127.0.0.1:$port" --back --app "$build/tools/tools.so" >"$tmp/node.log" 2>&1 &
npid=$!
trap 'kill $npid $bpid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
addr=
for _ in $(seq 100); do
    addr=$("$build/cli/skickctl" --control "ipc://$tmp/control" --json services command 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[0]["address"] if r else "")' \
        2>/dev/null || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "# tools bench: no command actor"; cat "$tmp/node.log"; exit 1; }
echo "# command start latency, n=$n (ms; a run is client -> broker -> shard -> child -> exit back)"
"$build/bench/tools_bench" "ipc://$tmp/control" "$addr" "$n"

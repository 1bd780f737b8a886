#!/usr/bin/env bash
#  run-demo.sh - run one shard with the three example modules (make demo)
#
#  Usage: examples/run-demo.sh BUILD_DIR
#  Runs BUILD_DIR/node/skick-node in the foreground with the accumulator,
#  worker_pool and services modules at log level info, and exits with its
#  status (0 after Ctrl-C: the shard stops cleanly).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=${1%/}
node="$build/node/skick-node"
modules=(hello accumulator worker_pool services)

s_missing() {
    echo "run-demo: $1 is missing; build first: cmake --build $build" >&2
    exit 2
}

[ -x "$node" ] || s_missing "$node"
args=()
for m in "${modules[@]}"; do
    so="$build/examples/$m.so"
    [ -e "$so" ] || s_missing "$so"
    args+=(--app "$so")
done

cat <<EOF
Skick demo: one standalone shard (no broker, no cluster) running the example modules
  hello        websocket sessions: hello, curious (a SocketQuery), logarithm (a handshake
               sequence), chat (sessions meeting through a service)
  accumulator  an accumulator and a caller adding to it every 2 s, a seller and a
               bargainer haggling over three turns
  worker_pool  a supervisor replacing the workers that fail on every 7th job
  services     two clocks behind the "clock" service, a client using them and the
               "visits" hash; one clock retires after three seconds
Connect: open http://127.0.0.1:8000/ in a browser (the demo page), or a websocket
client to ws://127.0.0.1:8000/ and send {"session_type": "hello"}.
Logs follow at level info. Stop with Ctrl-C: on_stop hooks run, the exit status is 0.

EOF

export SKICK_LOG_LEVEL=info
exec "$node" "${args[@]}" --www "$(dirname "$0")/www"

#!/usr/bin/env bash
#  run-demo.sh - the example application on a small cluster (make demo)
#
#  Usage: examples/run-demo.sh BUILD_DIR
#  Starts, with BUILD_DIR/cli/skickctl up, a broker, one front shard (the
#  websockets, no application code) and one back shard running the example
#  modules, then follows their logs. Ctrl-C stops the cluster cleanly
#  (skickctl down) and exits 0. SKICK_DEMO_STANDALONE=1 runs the same
#  modules in one standalone skick-node instead (no broker). The cluster
#  runs with CURVE (keys in BUILD_DIR/demo-run/keys, made by skickctl up);
#  SKICK_DEMO_INSECURE=1 runs it without (every process then warns that the
#  cluster is open to every local user).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "${1%/}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
ctl="$build/cli/skickctl"
node="$build/node/skick-node"
modules=(hello accumulator worker_pool services)
run_dir="$build/demo-run"

s_missing() {
    echo "run-demo: $1 is missing; build first: cmake --build $build" >&2
    exit 2
}

[ -x "$ctl" ] || s_missing "$ctl"
[ -x "$node" ] || s_missing "$node"
apps=()
for m in "${modules[@]}"; do
    so="$build/examples/$m.so"
    [ -e "$so" ] || s_missing "$so"
    apps+=(--app "$so")
done

cat <<EOF
Skick demo: the example modules on a cluster of three processes
  skick-broker  routes actor messages between shards, keeps the directory
  front-1       a front shard: websockets and the demo page, no application code
  back-1        a back shard running the modules:
    hello        websocket sessions: hello, curious (a SocketQuery), logarithm (a
                 handshake sequence), chat (sessions meeting through a service)
    accumulator  an accumulator and a caller adding to it every 2 s, a seller and a
                 bargainer haggling over three turns
    worker_pool  a supervisor replacing the workers that fail on every 7th job
    services     two clocks behind the "clock" service, a client using them and the
                 "visits" hash; one clock retires after three seconds

EOF

export SKICK_LOG_LEVEL=info
if [ "${SKICK_DEMO_STANDALONE:-0}" = 1 ]; then
    echo "Standalone: one skick-node. Open http://127.0.0.1:8000/; Ctrl-C stops it."
    exec "$node" "${apps[@]}" --www "$here/www" --cluster-view
fi

export SKICK_RUN_DIR="$run_dir"
if [ -e "$run_dir/cluster.json" ]; then
    "$ctl" down >/dev/null 2>&1 || true # a demo left running before
fi
security=()
if [ "${SKICK_DEMO_INSECURE:-0}" = 1 ]; then security=(--insecure); fi
# --cluster-view: the page's live panel (GET /skick/cluster.json; off by default)
"$ctl" up "${security[@]}" --front 1 --back 1 "${apps[@]}" --www "$here/www" \
    --node-arg --cluster-view

s_down() {
    trap - INT TERM EXIT
    if [ -n "${follower:-}" ]; then kill "$follower" 2>/dev/null || true; fi
    echo
    echo "run-demo: stopping the cluster (skickctl down)"
    "$ctl" down
    exit 0
}
trap s_down INT TERM EXIT

cat <<EOF

Connect: open http://127.0.0.1:8000/ in a browser (the demo page), or a websocket
client to ws://127.0.0.1:8000/ and send {"session_type": "hello"}.
Look inside from another terminal:
  export SKICK_RUN_DIR=$run_dir
  $ctl ps            (also: actors, services, sessions, stats, logs)
  $ctl ask ADDRESS '{"action": "get_tally"}'   (an accumulator's address from 'actors')
Following the logs below. Stop with Ctrl-C: the cluster stops cleanly.

EOF
"$ctl" logs -f -n 5 &
follower=$!
wait "$follower"

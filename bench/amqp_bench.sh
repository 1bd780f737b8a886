#!/usr/bin/env bash
# amqp_bench.sh BUILD_DIR - skick-amqp-bridge next to raw RabbitMQ, in one run
#
# Starts a private rabbitmq-server on loopback (DEPS.md section 5), a
# skick-broker, a back shard with tests/integration/amqp_test_app.so (its
# sink is the service amqp-test) and skick-amqp-bridge, then runs
# BUILD_DIR/bench/amqp_bench: messages/s from an AMQP publisher with confirms
# to the actor through the bridge next to a raw librabbitmq publisher and
# consumer pair, and RPC round trips p50/p99 through the bridge next to a raw
# AMQP RPC (client -> queue -> responder -> reply queue), with the ratios.
# Not run by ctest (figures, not assertions).
#
# Environment: SKICK_AMQP_BENCH_N (default 20000) messages,
# SKICK_AMQP_BENCH_M (default 2000) round trips, SKICK_AMQP_BENCH_PERF=FILE
# records the bridge with `perf record -g` into FILE for the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: amqp_bench.sh BUILD_DIR}" && pwd)
n=${SKICK_AMQP_BENCH_N:-20000}
m=${SKICK_AMQP_BENCH_M:-2000}
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "# amqp benchmarks skipped: no rabbitmq-server"; exit 0; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
B=$(mktemp -d)
port=$(free_port) dist=$(free_port) epmd=$(free_port) bport=$(free_port)
export HOME=$B RABBITMQ_NODENAME=skickbench$port@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$dist \
    ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$epmd \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_CONFIG_FILE=$B/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$B/enabled_plugins \
    RABBITMQ_MNESIA_BASE=$B/mnesia RABBITMQ_LOG_BASE=$B/log RABBITMQ_PID_FILE=$B/beam.pid \
    RABBITMQ_CONF_ENV_FILE=$B/rabbitmq-env.conf
mkdir -p "$B/log"; : >"$B/rabbitmq-env.conf"; echo '[].' >"$B/enabled_plugins"
printf 'listeners.tcp.default = 127.0.0.1:%s\nlog.console = false\nvm_memory_high_watermark.absolute = 1GB\n' \
    "$port" >"$B/rabbitmq.conf"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for p in $(ss -ltnpH "sport = :$epmd" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$B"
}
trap cleanup EXIT
/usr/lib/rabbitmq/bin/rabbitmq-server >"$B/stdout.log" 2>&1 & pids+=($!)
/usr/lib/rabbitmq/bin/rabbitmqctl wait --timeout 120 "$B/beam.pid" >/dev/null
url=amqp://guest:guest@127.0.0.1:$port
export SKICK_LOG_LEVEL=warning
"$build/broker/skick-broker" --bind "tcp://127.0.0.1:$bport" --control "ipc://$B/control" \
    --insecure >"$B/broker.log" 2>&1 & pids+=($!)
"$build/node/skick-node" --broker "tcp://127.0.0.1:$bport" --back \
    --app "$build/tests/integration/amqp_test_app.so" --app "$build/bench/cluster_bench_app.so" \
    >"$B/back.log" 2>&1 & pids+=($!)
SKICK_AMQP_URL=$url "$build/bridge/skick-amqp-bridge" --broker "tcp://127.0.0.1:$bport" \
    --app "$build/bench/cluster_bench_app.so" >"$B/bridge.log" 2>&1 & pids+=($!)
bridge_pid=$!
sleep 3 # joined, connected, the directory shared
if [ -n "${SKICK_AMQP_BENCH_PERF:-}" ]; then
    perf record -g -q -o "$SKICK_AMQP_BENCH_PERF" -p "$bridge_pid" 2>/dev/null & pids+=($!)
fi
echo "# skick-amqp-bridge vs raw RabbitMQ 3.10 (loopback), n=$n messages, m=$m round trips"
timeout 300 "$build/bench/amqp_bench" 127.0.0.1 "$port" "$n" "$m" | tee "$B/amqp.out"
# The RPC goal's yardstick: a skick_call round trip from the bridge's shard to
# the back shard (cluster_bench_app's pinger and ponger), in the same run.
PYTHONPATH="$here/../tests/integration" timeout 120 /usr/bin/python3 - "ipc://$B/control" \
    "$m" "$B/amqp.out" <<'PY'
import re, sys, time
import skick_proto as sp
cl = sp.Client(sys.argv[1])
ps = cl.request("ps")["result"]
bridge = next(s["shard"] for s in ps if "bridge" in s["roles"])
back = next(s["shard"] for s in ps if "back" in s["roles"] and "bridge" not in s["roles"])
def ask(addr, msg, timeout=120):
    kind, r = cl.ask(addr, msg, timeout)
    if kind != "reply":
        raise SystemExit("amqp_bench: %s: %s %s" % (msg["action"], kind, r))
    return r
spawn = lambda s, t: ask("%s:%s" % (s, s), {"action": "spawn", "type": t})["address"]
pinger, ponger = spawn(bridge, "bench_pinger"), spawn(back, "bench_ponger")
r = ask(pinger, {"action": "ping_run", "to": ponger, "m": int(sys.argv[2]), "warmup": 200})
x50, x99 = r["p50_us"] / 1000, r["p99_us"] / 1000
print("cross-shard skick_call (bridge shard -> back shard): p50 %.3f ms  p99 %.3f ms" % (x50, x99))
out = open(sys.argv[3]).read()
raw50 = float(re.search(r"raw AMQP RPC.*?p50 ([0-9.]+) ms", out).group(1))
br50 = float(re.search(r"RPC through the bridge.*?p50 ([0-9.]+) ms", out).group(1))
print("RPC p50 goal: bridge %.3f <= raw %.3f + cross-shard %.3f = %.3f ms: %s"
      % (br50, raw50, x50, raw50 + x50, "met" if br50 <= raw50 + x50 else "not met"))
PY

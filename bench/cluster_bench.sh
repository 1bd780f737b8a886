#!/usr/bin/env bash
# cluster_bench.sh BUILD_DIR - cluster figures next to a raw ZeroMQ reference, in one run.
#
#   1. raw_zmq_bench (bench/raw_zmq_bench.c): one-way DEALER->ROUTER and
#      DEALER->broker ROUTER->DEALER, round trips through a broker ROUTER
#      (and directly, and with plain TCP); every role a process, tcp loopback.
#   2. skick-broker + two back shards loading cluster_bench_app.so
#      (bench/cluster_bench_app.c). A client on the broker's control socket
#      (tests/integration/skick_proto.py, python3-zmq) spawns a source and a
#      pinger on shard A, a sink and a ponger on shard B, and asks them:
#        - cross-shard one-way: the source skick_sends N messages (~100-byte
#          JSON bodies) to the sink; rate = received / (last arrival - first
#          send), for several yield settings (skick_sleep(self, 0) every Y
#          sends, 0 = never) and, for comparison, to a sink on the source's own
#          shard; messages lost (EFULL at the broker) and each process's CPU
#          time per message are printed too;
#        - cross-shard request/reply: the pinger makes M sequential skick_call
#          round trips to the ponger (after a warm-up); p50/p99 measured in
#          the pinger; and the same to a ponger on its own shard.
#      Every figure is taken inside the shards (CLOCK_MONOTONIC).
#   2b. the same cross-shard one-way (yield/0) and request/reply with CURVE on
#      every link (a second broker and two back shards; keys per role made by
#      skickctl keygen --allow --role), so that the cost of CURVE is measured
#      in the same run (SKICK_CB_CURVE=0 skips it).
#   3. websockets (bench/ws_load, --mode skick, examples/hello.so "greet"):
#      a front shard with no application plus a back shard with hello.so on
#      the same broker (sessions live on the back shard: every round trip
#      crosses the broker twice), next to a standalone skick-node with hello.so.
#      Both with --rate 0 (no per-connection rate limit).
#   Then a table: raw vs cluster, with the ratios and the targets of the issue
#   (cross-shard one-way >= 40 % of raw brokered one-way; cross-shard round
#   trip p50 <= 1.5 x the raw broker round trip).
#
# No pinning: the machine's cores are shared by the broker, the shards and
# the load; the output says how many there are.
#
# Environment: SKICK_CB_MESSAGES (cluster one-way messages, default 200000),
# SKICK_CB_RAW_MESSAGES (raw one-way messages, default 1000000),
# SKICK_CB_SAMPLES (round trips measured, default 20000, after
# SKICK_CB_WARMUP, default 2000), SKICK_CB_YIELDS (default "0 4096 256"),
# SKICK_CB_SIZE (message bytes, default 100), SKICK_CB_WS_SECONDS (default 5),
# SKICK_CB_WS_CONNS (default "1 10 100"), SKICK_CB_WS=0 skips the websocket
# part, SKICK_CB_CURVE=0 skips the CURVE part, SKICK_CB_KEEP=1 keeps the logs
# directory.
# Every wait is bounded; the trap stops every process started here on exit.
# Exit status: 0, 1 if a part failed (figures printed anyway), 2 if a program
# is missing.
set -euo pipefail

build=${1:?usage: cluster_bench.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
broker=$build/broker/skick-broker
node=$build/node/skick-node
skickctl=$build/cli/skickctl
app=$build/bench/cluster_bench_app.so
raw=$build/bench/raw_zmq_bench
load=$build/bench/ws_load
hello=$build/examples/hello.so
py=/usr/bin/python3
n_msgs=${SKICK_CB_MESSAGES:-200000}
n_raw=${SKICK_CB_RAW_MESSAGES:-1000000}
samples=${SKICK_CB_SAMPLES:-20000}
warmup=${SKICK_CB_WARMUP:-2000}
yields=${SKICK_CB_YIELDS:-0 4096 256}
size=${SKICK_CB_SIZE:-100}
ws_secs=${SKICK_CB_WS_SECONDS:-5}
ws_conns=${SKICK_CB_WS_CONNS:-1 10 100}

for f in "$broker" "$node" "$app" "$raw"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "cluster_bench: $f missing (build it first)" >&2; exit 2; }
done
"$py" -c 'import zmq' 2>/dev/null || { echo "cluster_bench: $py has no zmq (python3-zmq)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/skick-cluster-bench.XXXXXX)
pids=() failed=0
declare -A fig

# run_fg CMD...: run a bounded command in the background and wait for it, so
# that a signal reaches the trap at once (bash defers traps while a foreground
# command runs) and the trap can stop it.
fg_pid=""
run_fg() {
    local rc=0
    "$@" &
    fg_pid=$!
    wait "$fg_pid" || rc=$?
    fg_pid=""
    return "$rc"
}
stop_all() {
    local p i
    [ -z "$fg_pid" ] || pids+=("$fg_pid")
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}
cleanup() {
    stop_all
    if [ "${SKICK_CB_KEEP:-0}" = 1 ]; then echo "# logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
# free_ports N: a base port p with p .. p+N-1 not listening now
free_ports() {
    local p k ok
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000)) ok=1
        for ((k = 0; k < $1; k++)); do listening $((p + k)) && ok=0; done
        [ "$ok" = 1 ] && { echo "$p"; return 0; }
    done
    return 1
}
# start NAME CMD...: run in the background, log in $tmp/NAME.log
start() {
    local name=$1
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
}
alive() { kill -0 "$1" 2>/dev/null; }
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = "^[0-9]+([.][0-9]*)?$"
        if (a ~ n && b ~ n && b > 0) printf "%.2f", a / b; else print "-" }'
}
show_logs() {
    local f
    for f in "$tmp"/*.log; do echo "--- $(basename "$f"):"; tail -5 "$f"; done >&2
}

echo "# cluster benchmarks: $(nproc) cores, no pinning (broker, shards and load share them);" \
     "${size}-byte messages, tcp loopback; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. the raw reference --------------------------------------------------
echo "# raw ZeroMQ reference (raw_zmq_bench --messages $n_raw --samples $samples --warmup $warmup)"
if ! run_fg timeout 600 "$raw" --messages "$n_raw" --samples "$samples" --warmup "$warmup" \
        --size "$size" >"$tmp/raw.out" 2>"$tmp/raw.err"; then
    failed=1
    echo "cluster_bench: raw_zmq_bench failed:" >&2
    head -5 "$tmp/raw.err" >&2
fi
cat "$tmp/raw.out"

# ---- 2. broker + two back shards -------------------------------------------
# start_broker NAME ENDPOINT CONTROL [ARGS]: start a broker, wait until it
# serves; sets broker_pid (exits on failure)
start_broker() {
    local name=$1 ep=$2 ctl=$3
    shift 3
    start "$name" "$broker" --bind "$ep" --control "$ctl" --log-level notice "$@"
    broker_pid=${pids[-1]}
    for _ in $(seq 100); do
        grep -q serving "$tmp/$name.log" 2>/dev/null && break
        alive "$broker_pid" || break
        sleep 0.1
    done
    if ! grep -q serving "$tmp/$name.log"; then
        echo "cluster_bench: the broker ($name) did not start" >&2
        show_logs
        exit 1
    fi
}
port=$(free_ports 3) || { echo "cluster_bench: no free ports" >&2; exit 1; }
endpoint=tcp://127.0.0.1:$port
control=ipc://$tmp/control
start_broker broker "$endpoint" "$control"
start back-a "$node" --broker "$endpoint" --back --app "$app" --log-level notice
start back-b "$node" --broker "$endpoint" --back --app "$app" --log-level notice

cat >"$tmp/driver.py" <<'PYEOF'
"""The client side of cluster_bench.sh: asks the bench actors, prints figures."""
import json
import os
import sys
import time

sys.path.insert(0, sys.argv[1])
import skick_proto as sp  # noqa: E402

control, what = sys.argv[2], sys.argv[3]
args = json.loads(sys.argv[4])
curve = None
if args.get("curve"):  # [broker.cert, client.cert_secret]
    curve = (sp.read_cert(args["curve"][0])[0],) + sp.read_cert(args["curve"][1])
cl = sp.Client(control, timeout=10, curve=curve)


def ps():
    r = cl.request("ps")
    return r["result"] if r.get("ok") else []


def wait_shards(pred, n, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        shards = [s for s in ps() if pred(s)]
        d = cl.request("directory")
        if len(shards) >= n and d.get("ok") and all(s["shard"] in d["result"] for s in shards):
            time.sleep(0.5)  # every shard has the others' entries by now
            return shards
        time.sleep(0.1)
    raise SystemExit("cluster_bench: the shards did not join: %s" % ps())


def ask_beating(address, msg, timeout):
    """skick_proto's Client.ask, plus a HEARTBEAT every second while waiting:
    the broker forgets a client silent for 30 s (a long ping_run)."""
    cid = os.urandom(16).hex()
    cl.send(address, dict(msg, cid=cid, sender=cl.address))
    deadline = time.time() + timeout
    beat = time.time() + 1.0
    while time.time() < deadline:
        if time.time() >= beat:
            cl._send("HEARTBEAT", {})
            beat = time.time() + 1.0
        e = cl.recv(min(1.0, max(0.0, deadline - time.time())))
        if e is None:
            continue
        b = e["body"] or {}
        if e["kind"] == "ACTOR" and b.get("cid") == cid:
            if b.get("action") == "receive_reply":
                if not b.get("last"):
                    cl.send(sp.e_sender(e), {"action": "end_conversation", "cid": cid})
                return "reply", b.get("message")
            if b.get("action") == "end_conversation":
                return "end", b
        if e["kind"] == "DEAD_LETTER" and b.get("cid") == cid:
            return "dead", b
    raise TimeoutError("no answer from %s to %s" % (address, msg.get("action")))


def ask(address, msg, timeout=60.0):
    kind, r = ask_beating(address, msg, timeout)
    if kind != "reply":
        raise SystemExit("cluster_bench: %s to %s: %s %s" % (msg.get("action"), address, kind, r))
    if isinstance(r, dict) and "error" in r:
        raise SystemExit("cluster_bench: %s to %s: %s" % (msg.get("action"), address, r))
    return r


def spawn(shard, type_):
    return ask(sp.addr(shard, shard), {"action": "spawn", "type": type_})["address"]


def shard_stats(shard):
    r = cl.request("stats", shard=shard)
    return r["result"] if r.get("ok") else {}


TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """CPU seconds (user + system, every thread) of a process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def cpu_all(pids):
    return {k: cpu_s(v) for k, v in pids.items()}


def out_cpu(prefix, before, after, n, per):
    for k in before:
        if before[k] is not None and after[k] is not None and n > 0:
            out("%s_%s_cpu_us_per_%s" % (prefix, k, per), (after[k] - before[k]) * 1e6 / n)


def out(name, value):
    if isinstance(value, float):
        value = "%.1f" % value
    print("%s %s" % (name, value), flush=True)


def blast(label, source, sink, src_shard, n, y, size, yield_ms=0, pids=None):
    ask(sink, {"action": "reset"})
    c_before = cpu_all(pids or {})
    before = shard_stats(src_shard)
    b_before = cl.request("stats")["result"]
    r = ask(source, {"action": "blast", "to": sink, "n": n, "yield_every": y, "size": size,
                          "yield_ms": yield_ms},
            timeout=120)
    # wait for the sink: until it has everything sent, or nothing new for 2 s
    last, still = -1, time.time()
    deadline = time.time() + 600
    while time.time() < deadline:
        s = ask(sink, {"action": "stats"})
        if s["count"] >= r["sent"]:
            break
        if s["count"] != last:
            last, still = s["count"], time.time()
        elif time.time() - still > 2.0:
            break
        time.sleep(0.05)
    c_after = cpu_all(pids or {})
    after = shard_stats(src_shard)
    b_after = cl.request("stats")["result"]
    e2e = (s["last_ns"] - r["t0_ns"]) / 1e9
    steady = (s["last_ns"] - s["first_ns"]) / 1e9
    send_s = (r["t1_ns"] - r["t0_ns"]) / 1e9
    p = "cluster_oneway_%s" % label
    out(p + "_sent", r["sent"])
    out(p + "_failed", r["failed"])
    if r["failed"]:
        out(p + "_first_error", r["first_error"])
    out(p + "_received", s["count"])
    out(p + "_out_of_order", s["out_of_order"])
    out(p + "_body_bytes", r["body_bytes"])
    out(p + "_msgs_per_s", s["count"] / e2e if e2e > 0 else 0.0)
    out(p + "_sink_msgs_per_s", (s["count"] - 1) / steady if steady > 0 else 0.0)
    out(p + "_send_loop_msgs_per_s", r["sent"] / send_s if send_s > 0 else 0.0)
    out_cpu(p, c_before, c_after, s["count"], "msg")
    for k in ("dead_letters", "remote_dead", "gaps"):
        if k in after and k in before:
            out(p + "_source_shard_" + k, after[k] - before[k])
    for k in ("dead_letters", "gaps"):
        if k in b_after and k in b_before:
            out(p + "_broker_" + k, b_after[k] - b_before[k])


def ping(label, pinger, ponger, m, warmup, pids=None):
    c_before = cpu_all(pids or {})
    r = ask(pinger, {"action": "ping_run", "to": ponger, "m": m, "warmup": warmup},
            timeout=600)
    c_after = cpu_all(pids or {})
    p = "cluster_rt_%s" % label
    out_cpu(p, c_before, c_after, m + warmup, "rt")
    for k in ("samples", "errors", "p50_us", "p90_us", "p99_us", "mean_us", "min_us", "max_us"):
        if k in r:
            out(p + "_" + k, r[k])
    if r.get("errors"):
        out(p + "_first_error", r["first_error"])


if what == "actors":
    backs = wait_shards(lambda s: "back" in s["roles"], 2)
    a, b = (int(s["shard"], 16) for s in backs[:2])
    source, pinger = spawn(a, "bench_source"), spawn(a, "bench_pinger")
    sink, ponger = spawn(b, "bench_sink"), spawn(b, "bench_ponger")
    local_sink, local_ponger = spawn(a, "bench_sink"), spawn(a, "bench_ponger")
    out("cluster_source_shard", "%016x" % a)
    out("cluster_sink_shard", "%016x" % b)
    pid = {int(s["shard"], 16): s["pid"] for s in backs}
    cross = {"source_shard": pid[a], "broker": args["broker_pid"], "sink_shard": pid[b]}
    n, size = args["n"], args["size"]
    # a short unmeasured blast first: connections, allocator, page faults
    blast("warmup", source, sink, a, min(n, 20000), 0, size)
    for y in args["yields"]:
        blast("cross_y%d" % y, source, sink, a, n, y, size, pids=cross)
    # same shard: the sink only runs when the source really yields (sleep 1 ms
    # every 512 sends; the mailbox holds 1024)
    blast("local", source, local_sink, a, n, 512, size, yield_ms=1, pids={"shard": pid[a]})
    ping("cross", pinger, ponger, args["samples"], args["warmup"],
         pids={"pinger_shard": pid[a], "broker": args["broker_pid"], "ponger_shard": pid[b]})
    ping("local", pinger, local_ponger, args["samples"], args["warmup"], pids={"shard": pid[a]})
elif what == "ws":
    # the front shard must know a back shard that offers the "hello" session
    def offers_hello(s):
        return "back" in s["roles"] and any(x.endswith("hello.so") for x in s.get("apps", []))
    wait_shards(offers_hello, 1)
    wait_shards(lambda s: s["roles"] == ["front"], 1)
    out("cluster_ws_ready", 1)
cl.close()
PYEOF

pyargs=$(printf '{"n": %d, "size": %d, "samples": %d, "warmup": %d, "yields": [%s], "broker_pid": %d}' \
    "$n_msgs" "$size" "$samples" "$warmup" "$(echo $yields | tr ' ' ',')" "$broker_pid")
echo "# cross-shard actors (skick-broker + 2 back shards with cluster_bench_app.so," \
     "N=$n_msgs, M=$samples after $warmup)"
if ! run_fg timeout 1800 "$py" "$tmp/driver.py" "$here/../tests/integration" "$control" actors \
        "$pyargs" >"$tmp/cluster.out" 2>"$tmp/cluster.err"; then
    failed=1
    echo "cluster_bench: the cross-shard part failed:" >&2
    tail -5 "$tmp/cluster.err" >&2
    show_logs
fi
grep -v '^cluster_oneway_warmup' "$tmp/cluster.out" || true

# ---- 2b. the same with CURVE on every link ---------------------------------
curve_ok=0
if [ "${SKICK_CB_CURVE:-1}" = 1 ] && [ -x "$skickctl" ]; then
    keys=$tmp/keys allow=$tmp/keys/allow
    for k in broker:- node:shard client:client; do
        if [ "${k#*:}" = - ]; then kg=(); else kg=(--allow "$allow" --role "${k#*:}"); fi
        "$skickctl" keygen "${kg[@]}" "$keys" "${k%%:*}" >/dev/null
    done
    cport=$(free_ports 3) || { echo "cluster_bench: no free ports" >&2; exit 1; }
    cendpoint=tcp://127.0.0.1:$cport
    ccontrol=ipc://$tmp/control-curve
    start_broker broker-curve "$cendpoint" "$ccontrol" --curve-secret "$keys/broker.cert_secret" \
        --curve-allow "$allow"
    cbroker_pid=$broker_pid
    for s in a b; do
        start "back-curve-$s" "$node" --broker "$cendpoint" --back --app "$app" --log-level notice \
            --curve-secret "$keys/node.cert_secret" --curve-server "$keys/broker.cert"
    done
    cargs=$(printf '{"n": %d, "size": %d, "samples": %d, "warmup": %d, "yields": [%s], "broker_pid": %d, "curve": ["%s", "%s"]}' \
        "$n_msgs" "$size" "$samples" "$warmup" "${yields%% *}" "$cbroker_pid" \
        "$keys/broker.cert" "$keys/client.cert_secret")
    echo "# the same with CURVE on every link (yield/${yields%% *} one-way and round trips)"
    if run_fg timeout 1800 "$py" "$tmp/driver.py" "$here/../tests/integration" "$ccontrol" actors \
            "$cargs" >"$tmp/curve.out" 2>"$tmp/curve.err"; then
        curve_ok=1
        grep -v '^cluster_oneway_warmup' "$tmp/curve.out" | sed 's/^cluster_/curve_/'
    else
        failed=1
        echo "cluster_bench: the CURVE part failed:" >&2
        tail -5 "$tmp/curve.err" >&2
        show_logs
    fi
else
    echo "# CURVE part skipped (SKICK_CB_CURVE=0, or $skickctl missing)"
fi

# the raw round trips once more, after the cluster's: the machine's noise shows
echo "# raw ZeroMQ round trips again (raw_zmq_bench --only rt), after the cluster's"
if ! run_fg timeout 600 "$raw" --only rt --samples "$samples" --warmup "$warmup" --size "$size" \
        >"$tmp/raw2.out" 2>"$tmp/raw2.err"; then
    failed=1
    echo "cluster_bench: raw_zmq_bench (again) failed:" >&2
    head -5 "$tmp/raw2.err" >&2
fi
sed -n 's/^raw_rt_/raw_again_rt_/p' "$tmp/raw2.out"

# ---- 3. websockets: front/back split next to a single shard ----------------
ws_run() { # ws_run MODE(split|single) PORT : one ws_load run per connection count
    local mode=$1 p=$2 c o
    for c in $ws_conns; do
        o=$tmp/ws_${mode}_$c.out
        if ! run_fg timeout $((ws_secs + 90)) "$load" --port "$p" --mode skick --connections "$c" \
                --seconds "$ws_secs" >"$o" 2>"$tmp/ws.err"; then
            failed=1
            echo "cluster_bench: ws_load ($mode, $c connections) failed:" >&2
            head -5 "$tmp/ws.err" >&2
        fi
        fig[ws,$mode,$c,rate]=$(value "ws_skick_c${c}_round_trips_per_s" "$o")
        fig[ws,$mode,$c,p50]=$(value "ws_skick_c${c}_p50_us" "$o")
        fig[ws,$mode,$c,p99]=$(value "ws_skick_c${c}_p99_us" "$o")
        echo "ws_${mode}_c${c}_round_trips_per_s ${fig[ws,$mode,$c,rate]:-nan}"
        echo "ws_${mode}_c${c}_p50_us ${fig[ws,$mode,$c,p50]:-nan}"
        echo "ws_${mode}_c${c}_p99_us ${fig[ws,$mode,$c,p99]:-nan}"
    done
}
wait_listen() { # wait_listen PID PORT
    for _ in $(seq 100); do
        alive "$1" || return 1
        listening "$2" && { sleep 0.2; return 0; }
        sleep 0.1
    done
    return 1
}
ws_ok=0
if [ "${SKICK_CB_WS:-1}" = 1 ] && [ -x "$load" ] && [ -f "$hello" ]; then
    ws_ok=1
    echo "# websockets: ws_load --mode skick (hello.so greet), ${ws_secs} s per run, --rate 0"
    wsport=$(free_ports 1)
    start front "$node" --broker "$endpoint" --front --port "$wsport" --rate 0 --log-level notice
    front_pid=${pids[-1]}
    start back-hello "$node" --broker "$endpoint" --back --app "$hello" --log-level notice
    if wait_listen "$front_pid" "$wsport" &&
        run_fg timeout 60 "$py" "$tmp/driver.py" "$here/../tests/integration" "$control" ws '{}' \
            >/dev/null 2>"$tmp/ws-ready.err"; then
        ws_run split "$wsport"
    else
        failed=1
        echo "cluster_bench: the front/back websocket cluster did not come up" >&2
        cat "$tmp/ws-ready.err" >&2
        show_logs
    fi
    wsport2=$(free_ports 1)
    start single "$node" --app "$hello" --port "$wsport2" --rate 0 --log-level warning
    if wait_listen "${pids[-1]}" "$wsport2"; then
        ws_run single "$wsport2"
    else
        failed=1
        echo "cluster_bench: the single websocket shard did not start" >&2
        show_logs
    fi
else
    echo "# websockets skipped (SKICK_CB_WS=0, or $load / $hello missing)"
fi

# ---- the table -------------------------------------------------------------
r() { value "$1" "$tmp/raw.out"; }
c() { value "$1" "$tmp/cluster.out"; }
row() { printf '# %-46s %11s %11s %7s %7s\n' "$@"; }
raw_ow=$(r raw_oneway_broker_msgs_per_s) raw_direct=$(r raw_oneway_direct_msgs_per_s)
echo "# summary ($(nproc) cores, no pinning; ${size}-byte messages; raw = raw_zmq_bench," \
     "cluster = skick-broker + shards; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
row "one-way, msgs/s" raw cluster "/raw" "/direct"
row "raw DEALER->ROUTER (direct)" "$raw_direct" - - -
for y in $yields; do
    v=$(c "cluster_oneway_cross_y${y}_msgs_per_s")
    row "via broker ROUTER, cross-shard, yield/$y" "$raw_ow" "$v" "$(ratio "$v" "$raw_ow")" \
        "$(ratio "$v" "$raw_direct")"
done
v=$(c cluster_oneway_local_msgs_per_s)
row "same shard, no broker (sleep 1 ms / 512)" - "$v" - -
lost=""
for y in $yields; do
    lost+=" yield/$y: $(awk -v s="$(c "cluster_oneway_cross_y${y}_sent")" \
        -v r="$(c "cluster_oneway_cross_y${y}_received")" 'BEGIN { print s - r }')"
done
echo "#   cross-shard messages not received (dead letters, EFULL at the broker):$lost"
echo "#   target: cross-shard >= 0.40 x raw (/raw: the same brokered shape; /direct: the"
echo "#   issue's DEALER->ROUTER figure)"
row "CPU us per message (yield/${yields%% *})" raw cluster ratio ""
for k in sender:source_shard broker:broker receiver:sink_shard; do
    rv=$(r "raw_oneway_broker_${k%%:*}_cpu_us_per_msg")
    v=$(c "cluster_oneway_cross_y${yields%% *}_${k#*:}_cpu_us_per_msg")
    row "  ${k%%:*} / ${k#*:}" "$rv" "$v" "$(ratio "$v" "$rv")" ""
done
row "request/reply round trip, us" raw cluster ratio "again"
for q in p50 p99; do
    v=$(c "cluster_rt_cross_${q}_us")
    rv=$(r "raw_rt_broker_${q}_us")
    rv2=$(value "raw_rt_broker_${q}_us" "$tmp/raw2.out")
    row "via broker ROUTER, $q (cluster: skick_call)" "$rv" "$v" "$(ratio "$v" "$rv")" \
        "$(ratio "$v" "$rv2")"
done
echo "#   (ratio: against the raw figure before the cluster's; again: against the one after)"
row "CPU us per round trip" raw cluster ratio ""
for k in client:pinger_shard broker:broker echo:ponger_shard; do
    rv=$(r "raw_rt_broker_${k%%:*}_cpu_us_per_rt")
    v=$(c "cluster_rt_cross_${k#*:}_cpu_us_per_rt")
    row "  ${k%%:*} / ${k#*:}" "$rv" "$v" "$(ratio "$v" "$rv")" ""
done
for q in p50 p99; do
    row "raw direct DEALER<->ROUTER / same-shard call, $q" "$(r "raw_rt_direct_${q}_us")" \
        "$(c "cluster_rt_local_${q}_us")" - ""
done
row "raw plain TCP relay, p50 / p99" "$(r raw_rt_tcp_relay_p50_us)" \
    "$(r raw_rt_tcp_relay_p99_us)" - ""
row "raw plain TCP direct, p50 / p99" "$(r raw_rt_tcp_direct_p50_us)" \
    "$(r raw_rt_tcp_direct_p99_us)" - ""
echo "#   target: cross-shard p50 <= 1.5 x raw broker p50"
if [ "$curve_ok" = 1 ]; then
    cv() { value "$1" "$tmp/curve.out"; }
    y0=${yields%% *}
    row "CURVE cost (same run)" plain CURVE ratio ""
    v=$(c "cluster_oneway_cross_y${y0}_msgs_per_s") cvv=$(cv "cluster_oneway_cross_y${y0}_msgs_per_s")
    row "cross-shard one-way, msgs/s (yield/$y0)" "$v" "$cvv" "$(ratio "$cvv" "$v")" ""
    for q in p50 p99; do
        v=$(c "cluster_rt_cross_${q}_us") cvv=$(cv "cluster_rt_cross_${q}_us")
        row "cross-shard call round trip, $q us" "$v" "$cvv" "$(ratio "$cvv" "$v")" ""
    done
    for k in source_shard broker sink_shard; do
        v=$(c "cluster_oneway_cross_y${y0}_${k}_cpu_us_per_msg")
        cvv=$(cv "cluster_oneway_cross_y${y0}_${k}_cpu_us_per_msg")
        row "  CPU us per message, $k" "$v" "$cvv" "$(ratio "$cvv" "$v")" ""
    done
fi
if [ "$ws_ok" = 1 ]; then
    echo "# websocket round trips (ws_load --mode skick, hello.so greet): single shard vs" \
         "front shard + back shard through the broker"
    printf '# %-6s %12s %12s %7s %11s %11s %11s %11s\n' conns "single rt/s" "split rt/s" \
        ratio "single p50" "split p50" "single p99" "split p99"
    for n in $ws_conns; do
        printf '# %-6s %12s %12s %7s %11s %11s %11s %11s\n' "$n" "${fig[ws,single,$n,rate]:--}" \
            "${fig[ws,split,$n,rate]:--}" \
            "$(ratio "${fig[ws,split,$n,rate]:-}" "${fig[ws,single,$n,rate]:-}")" \
            "${fig[ws,single,$n,p50]:--}" "${fig[ws,split,$n,p50]:--}" \
            "${fig[ws,single,$n,p99]:--}" "${fig[ws,split,$n,p99]:--}"
    done
fi
exit "$failed"

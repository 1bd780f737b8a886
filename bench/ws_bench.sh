#!/usr/bin/env bash
# ws_bench.sh BUILD_DIR - websocket figures: the bare civetweb echo server next to
# Skick's websocket front (skick-node --port with examples/hello.so).
#
# Builds nothing: needs BUILD_DIR/bench/{ws_load,ws_echo_server} and, for the Skick
# half, BUILD_DIR/node/skick-node with --port and BUILD_DIR/examples/hello.so.
# For each server and 1, 10, 100 connections: round trips/s, p50/p99 latency and
# server CPU per round trip (utime+stime from /proc/PID/stat before and after the
# run, all threads; 10 ms ticks, so a 5 s run is good to a few per cent). Then
# setups/s at 100 connections and server RSS per idle session (a fresh server:
# VmRSS with 1000 idle sessions minus VmRSS with none, over 1000). Last, a table of
# the ratios skick/echo.
#
# The skick half runs twice at 1, 10 and 100 connections: as is (a front shard
# always counts its metrics) and with /metrics scraped once a second during the
# runs (the "_scraped" figures), so that the cost of a scrape shows.
#
# Environment: SKICK_WS_SECONDS (default 5) per run; SKICK_WS_IDLE (default 1000)
# idle sessions; SKICK_WS_PIN="S C" pins the server to CPU S and the client to CPU
# C (default: no pinning; both use about one core at 10+ connections).
# Every wait is bounded; the trap stops whatever server is running on exit.
# Exit status 1 if a run had client errors (the figures are printed anyway).
set -euo pipefail

build=${1:?usage: ws_bench.sh BUILD_DIR}
load=$build/bench/ws_load
echo_srv=$build/bench/ws_echo_server
node=$build/node/skick-node
app=$build/examples/hello.so
secs=${SKICK_WS_SECONDS:-5}
idle_n=${SKICK_WS_IDLE:-1000}
conns=(1 10 100)
tick=$(getconf CLK_TCK)
srv_pin=() cli_pin=()
if [ -n "${SKICK_WS_PIN:-}" ]; then
    read -r s c <<<"$SKICK_WS_PIN"
    srv_pin=(taskset -c "$s") cli_pin=(taskset -c "$c")
fi
for f in "$load" "$echo_srv"; do
    [ -x "$f" ] || { echo "ws_bench: $f missing (build ws_load, ws_echo_server)" >&2; exit 2; }
done

tmp=$(mktemp -d)
server_pid="" port="" failed=0
declare -A fig     # fig[mode,conns,what]

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# start_server CMD... : the word PORT in CMD is replaced by a free port; waits
# (at most 10 s) until the port listens. Tries 5 ports.
start_server() {
    local try i args a
    for try in 1 2 3 4 5; do
        port=$((18000 + RANDOM % 2000))
        listening "$port" && continue
        args=()
        for a in "$@"; do [ "$a" = PORT ] && args+=("$port") || args+=("$a"); done
        "${srv_pin[@]}" "${args[@]}" >"$tmp/server.log" 2>&1 &
        server_pid=$!
        for i in $(seq 100); do
            kill -0 "$server_pid" 2>/dev/null || break
            if listening "$port"; then sleep 0.2; return 0; fi
            sleep 0.1
        done
        stop_server
    done
    echo "ws_bench: cannot start $1; its log:" >&2
    cat "$tmp/server.log" >&2
    return 1
}

# Empty output if the process is gone.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || true; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# server_alive: false (and the end of its log shown) if the server died.
server_alive() {
    [ -n "$server_pid" ] || return 1
    kill -0 "$server_pid" 2>/dev/null && return 0
    local rc=0
    wait "$server_pid" 2>/dev/null || rc=$?
    server_pid="" failed=1
    echo "ws_bench: the server died (status $rc); the end of its log:" >&2
    tail -5 "$tmp/server.log" >&2
    return 1
}
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# run_load OUT ARGS... : ws_load against the server, bounded; 1 if it failed.
run_load() {
    local out=$1 rc=0
    shift
    timeout $((secs + 90)) "${cli_pin[@]}" "$load" --port "$port" "$@" >"$out" \
        2>"$tmp/load.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "ws_bench: ws_load $* failed (status $rc):" >&2
        head -5 "$tmp/load.err" >&2
    fi
    return 0
}

# measure MODE N : one throughput run; prints ws_load's figures plus server CPU/rt.
measure() {
    local mode=$1 n=$2 out=$tmp/run.out t0 t1 rts cpu
    t0=$(cpu_ticks "$server_pid")
    run_load "$out" --mode "$mode" --connections "$n" --seconds "$secs"
    t1=$(cpu_ticks "$server_pid")
    server_alive || t1=""
    grep -v '^ws_client_errors 0$' "$out" || true
    rts=$(value "ws_${mode}_c${n}_round_trips" "$out")
    cpu=$(awk -v a="$t0" -v b="$t1" -v t="$tick" -v r="${rts:-0}" 'BEGIN {
        if (r > 0 && a != "" && b != "") printf "%.1f", (b - a) * 1e6 / t / r
        else print "nan" }')
    echo "ws_${mode}_c${n}_server_cpu_us_per_rt $cpu"
    fig[$mode,$n,rate]=$(value "ws_${mode}_c${n}_round_trips_per_s" "$out")
    fig[$mode,$n,p50]=$(value "ws_${mode}_c${n}_p50_us" "$out")
    fig[$mode,$n,p99]=$(value "ws_${mode}_c${n}_p99_us" "$out")
    fig[$mode,$n,cpu]=$cpu
}

# idle_rss MODE : on the fresh server just started, KB of RSS per idle session.
idle_rss() {
    local mode=$1 before after lpid i est hold=$((5 + idle_n / 500))
    sleep 0.5
    before=$(rss_kb "$server_pid")
    timeout $((hold + 60)) "${cli_pin[@]}" "$load" --port "$port" --mode "$mode" --idle \
        --connections "$idle_n" --seconds "$hold" >"$tmp/idle.out" 2>"$tmp/load.err" &
    lpid=$!
    for i in $(seq 200); do      # until every connection is up, at most 20 s
        est=$(ss -Htn state established "( dport = :$port )" 2>/dev/null | wc -l)
        [ "$est" -ge "$idle_n" ] && break
        kill -0 "$lpid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 2                      # the hello handshakes after the TCP connects
    after=$(rss_kb "$server_pid")
    server_alive || after=""
    if ! wait "$lpid"; then
        failed=1
        echo "ws_bench: idle run failed" >&2
        head -5 "$tmp/load.err" >&2
    fi
    grep -v '^ws_client_errors 0$' "$tmp/idle.out" || true
    fig[$mode,idle]=$(awk -v a="$after" -v b="$before" -v n="$idle_n" \
        'BEGIN { if (a != "" && b != "") printf "%.1f", (a - b) / n; else print "nan" }')
    echo "ws_${mode}_server_rss_kb_per_idle_session ${fig[$mode,idle]}"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = "^[0-9]+([.][0-9]*)?$"
        if (a ~ n && b ~ n && b > 0) printf "%.2f", a / b; else print "-" }'
}

echo "# bare civetweb echo server (ws_echo_server, tcp_nodelay=1), ${secs} s per run"
start_server "$echo_srv" --port PORT
for n in "${conns[@]}"; do measure echo "$n"; done
stop_server
start_server "$echo_srv" --port PORT
idle_rss echo
stop_server

# (the help read once: grep -q on a pipe would end it early, and pipefail
# would count skick-node's SIGPIPE as a failure)
node_help=$([ -x "$node" ] && "$node" --help 2>&1 || true)
if grep -q -- --port <<<"$node_help" && [ -f "$app" ]; then
    extra=(--log-level warning)
    if grep -q -- --rate <<<"$node_help"; then extra+=(--rate 0); fi
    echo "# skick-node --app hello.so ${extra[*]}, ${secs} s per run"
    start_server "$node" --app "$app" --port PORT "${extra[@]}"
    for n in "${conns[@]}"; do measure skick "$n"; done
    # /metrics once a second meanwhile (plain bash: no curl needed)
    ( while sleep 1; do
        exec 3<>"/dev/tcp/127.0.0.1/$port" || continue
        printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
        cat <&3 >/dev/null
        exec 3>&-
    done ) & scraper=$!
    for n in "${conns[@]}"; do
        measure skick "$n" | sed 's/^ws_skick_c\([0-9]*\)_/ws_skick_scraped_c\1_/'
    done
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
    run_load "$tmp/setup.out" --mode skick --setup-only --connections 100
    grep -v '^ws_client_errors 0$' "$tmp/setup.out" || true
    stop_server
    start_server "$node" --app "$app" --port PORT "${extra[@]}"
    idle_rss skick
    stop_server
    echo "# ratios skick/echo"
    printf '# %-6s %14s %8s %8s %14s\n' conns round_trips/s p50 p99 server_cpu/rt
    for n in "${conns[@]}"; do
        printf '# %-6s %14s %8s %8s %14s\n' "$n" \
            "$(ratio "${fig[skick,$n,rate]}" "${fig[echo,$n,rate]}")" \
            "$(ratio "${fig[skick,$n,p50]}" "${fig[echo,$n,p50]}")" \
            "$(ratio "${fig[skick,$n,p99]}" "${fig[echo,$n,p99]}")" \
            "$(ratio "${fig[skick,$n,cpu]}" "${fig[echo,$n,cpu]}")"
    done
    printf '# %-6s %14s (server RSS per idle session)\n' idle \
        "$(ratio "${fig[skick,idle]}" "${fig[echo,idle]}")"
elif grep -q -- --port <<<"$node_help"; then
    echo "skick websocket front available, but $app is missing: skick half skipped"
else
    echo "skick websocket front not available yet"
fi
exit "$failed"

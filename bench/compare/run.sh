#!/usr/bin/env bash
# run.sh BUILD_DIR [scale] - bench_actors side by side with CAF 0.17 and
# Erlang/OTP, each on one scheduler thread, and a table of the ratios.
#
# Installs libcaf-dev, erlang-base (and g++) from Debian's archive only if
# they are missing, builds caf_bench (plain g++ -O2) and erlang_bench.beam
# into BUILD_DIR/bench/compare/, then runs bench_actors, caf_bench and
# erlang_bench one after the other. Raw outputs are kept beside the binaries
# (skick.txt, caf.txt, erlang.txt, table.txt).
#
# All three run pinned to the same CPU (taskset), because the cores of a
# virtual machine need not be equally fast: SKICK_BENCH_CPU=N picks the CPU
# (default 0), SKICK_BENCH_CPU= (empty) turns pinning off.
# See bench/compare/README.md for what is measured and the caveats.
set -euo pipefail
build=${1:-build}
scale=${2:-1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$build/bench/compare"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# ---- dependencies (only if missing) ----------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
have_pkg libcaf-dev || missing+=(libcaf-dev)
have_pkg erlang-base || missing+=(erlang-base)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "# installing ${missing[*]}" >&2
    apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    if ! "${apt[@]}" install -y "${missing[@]}" >&2; then
        # A fresh machine may have no package lists yet.
        "${apt[@]}" update >&2 || true
        "${apt[@]}" install -y "${missing[@]}" >&2 ||
            echo "# could not install ${missing[*]}: those columns will read n/a" >&2
    fi
fi

pin=()
cpu=${SKICK_BENCH_CPU-0}
if [ -n "$cpu" ] && command -v taskset >/dev/null; then
    pin=(taskset -c "$cpu")
fi

# ---- build ----------------------------------------------------------------
if [ ! -x "$build/bench/bench_actors" ]; then
    cmake --build "$build" -j"$(nproc)" --target bench_actors >&2
fi
caf_ok=0
if have_pkg libcaf-dev && command -v g++ >/dev/null; then
    if [ ! -x "$out/caf_bench" ] || [ "$here/caf_bench.cpp" -nt "$out/caf_bench" ]; then
        echo "# building caf_bench" >&2
        g++ -O2 -std=c++17 -o "$out/caf_bench" "$here/caf_bench.cpp" -lcaf_core -pthread
    fi
    caf_ok=1
fi
erl_ok=0
if command -v erlc >/dev/null && command -v erl >/dev/null; then
    if [ ! -f "$out/erlang_bench.beam" ] || [ "$here/erlang_bench.erl" -nt "$out/erlang_bench.beam" ]; then
        erlc -o "$out" "$here/erlang_bench.erl"
    fi
    erl_ok=1
fi

# ---- run, one after the other -----------------------------------------------
echo "# side by side: scale $scale, one scheduler thread each${pin:+, pinned to CPU $cpu} ($(nproc) cores)"
echo "# skick: $build/bench/bench_actors $scale"
"${pin[@]}" "$build/bench/bench_actors" "$scale" | tee "$out/skick.txt"
: >"$out/caf.txt"
if [ "$caf_ok" = 1 ]; then
    echo "# caf $(dpkg-query -W -f='${Version}' libcaf-dev): caf_bench $scale (scheduler.max-threads=1)"
    "${pin[@]}" "$out/caf_bench" "$scale" | tee "$out/caf.txt"
else
    echo "# caf: not available (libcaf-dev or g++ missing)"
fi
: >"$out/erlang.txt"
if [ "$erl_ok" = 1 ]; then
    echo "# erlang OTP $(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().'): erl +S 1 -run erlang_bench main $scale"
    ERL_CRASH_DUMP="$out/erl_crash.dump" "${pin[@]}" erl +S 1 -noshell -pa "$out" \
        -run erlang_bench main "$scale" | tee "$out/erlang.txt"
else
    echo "# erlang: not available (erlang-base missing)"
fi

# ---- table ----------------------------------------------------------------
awk -v S="$out/skick.txt" -v C="$out/caf.txt" -v E="$out/erlang.txt" '
function load(f, arr,   line, k) {
    while ((getline line < f) > 0) {
        split(line, k, " ")
        if (k[1] != "" && k[1] !~ /^#/) arr[k[1]] = k[2]
    }
    close(f)
}
function num(v) { return v == "" ? "n/a" : sprintf("%.0f", v) }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
# label; skick key; caf key; erlang key; 1 if smaller is better
function row(label, sk, ck, ek, inv,   s, c, e) {
    s = sv[sk]; c = cv[ck]; e = ev[ek]
    if (inv)
        printf "%-34s %12s %12s %12s %10s %10s\n", label, num(s), num(c), num(e), ratio(c, s), ratio(e, s)
    else
        printf "%-34s %12s %12s %12s %10s %10s\n", label, num(s), num(c), num(e), ratio(s, c), ratio(s, e)
}
BEGIN {
    load(S, sv); load(C, cv); load(E, ev)
    print ""
    print "# ratios: rates are skick/other; the two bytes-per-idle-actor rows are"
    print "# other/skick. Either way a ratio > 1 is better for Skick."
    printf "%-34s %12s %12s %12s %10s %10s\n", "figure", "skick", "caf", "erlang", "skick/caf", "skick/erl"
    row("pingpong msgs/s (skick forward)", "pingpong_forward_msgs_per_s", "caf_pingpong_msgs_per_s", "erlang_pingpong_msgs_per_s", 0)
    row("pingpong msgs/s (skick fresh)", "pingpong_fresh_msgs_per_s", "caf_pingpong_msgs_per_s", "erlang_pingpong_msgs_per_s", 0)
    row("ring 1000 hops/s", "ring_1000_hops_per_s", "caf_ring_1000_hops_per_s", "erlang_ring_1000_hops_per_s", 0)
    row("spawn actors/s", "spawn_actors_per_s", "caf_spawn_actors_per_s", "erlang_spawn_actors_per_s", 0)
    row("idle actor heap bytes (inv)", "idle_actor_heap_bytes", "caf_idle_actor_heap_bytes", "erlang_idle_actor_heap_bytes", 1)
    row("idle actor RSS bytes (inv)", "idle_actor_rss_bytes", "caf_idle_actor_rss_bytes", "erlang_idle_actor_rss_bytes", 1)
    row("call round trips/s (5 s timeout)", "call_round_trips_per_s", "caf_call_round_trips_per_s", "erlang_call_round_trips_per_s", 0)
    row("call, no timeout / bare ref (*)", "call_round_trips_per_s", "caf_call_no_timeout_round_trips_per_s", "erlang_call_raw_round_trips_per_s", 0)
    print "# pingpong: CAF and Erlang build a new message per hop (there is no"
    print "#   forward variant); Skick forward reuses the JSON object, fresh builds one."
    print "# call: skick_call (5000 ms) vs request(..., 5s).then vs gen_server:call(.., 5000)."
    print "# (*) Skick still uses skick_call with its timeout; CAF request(.., infinite),"
    print "#   Erlang a bare make_ref/send/receive with no monitor."
    print "# heap: mallinfo2 delta (Skick, CAF); erlang:memory(processes) delta (Erlang)."
}' | tee "$out/table.txt"

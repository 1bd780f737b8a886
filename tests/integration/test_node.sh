#!/usr/bin/env bash
#  test_node.sh - drive the real skick-node process and the linked example
#
#  Usage: bash tests/integration/test_node.sh BUILD_DIR
#
#  Starts real processes from BUILD_DIR (node/skick-node, examples/*.so,
#  examples/skick-example-linked) and checks what a user and a service
#  manager see: exit statuses, messages, logs, a clean stop on SIGTERM.
#  Works for the sanitizer build too: a sanitizer report makes a check fail
#  (every run's log is searched for one, and LeakSanitizer also changes the
#  exit status at the clean exit). Each check prints "ok - ..." or
#  "not ok - ..."; the last line is "N passed, M failed"; the exit status is
#  non-zero when anything failed. Every process started is killed on exit.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
node="$build/node/skick-node"
examples="$build/examples"
modules=(--app "$examples/accumulator.so" --app "$examples/worker_pool.so"
         --app "$examples/services.so")
evidence_s=10 # how long to wait for log evidence
stop_s=10     # how long a clean stop may take

# ctest may run us with SKICK_LOG_LEVEL=error; the checks read info lines.
export SKICK_LOG_LEVEL=info

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skick-it.XXXXXX") || exit 2
started=() # pids of processes we started and have not reaped

s_cleanup() {
    local p
    for p in "${started[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap s_cleanup EXIT
trap 'exit 130' INT TERM HUP

passed=0
failed=0

s_ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}

s_not_ok() {
    failed=$((failed + 1))
    echo "not ok - $1"
}

#  s_check NAME COMMAND...: pass when COMMAND succeeds.
s_check() {
    local name=$1
    shift
    if "$@"; then s_ok "$name"; else s_not_ok "$name"; fi
}

#  s_show FILE: print the end of a log as diagnostics.
s_show() {
    echo "# last lines of $(basename "$1"):"
    tail -n 15 "$1" | cut -c1-200 | sed 's/^/#   /'
}

#  s_alive PID: whether PID runs (a zombie, exited but not reaped, does not).
s_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

#  s_forget PID: drop PID from the processes to kill at exit.
s_forget() {
    local p keep=()
    for p in "${started[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    started=("${keep[@]}")
}

#  s_wait_log PID LOG SECONDS PATTERN...: wait until LOG matches every
#  extended regular expression; fails early if PID ends.
s_wait_log() {
    local pid=$1 log=$2 secs=$3 i p all
    shift 3
    for ((i = 0; i <= secs * 10; i++)); do
        all=1
        for p in "$@"; do
            grep -Eq -- "$p" "$log" || { all=0; break; }
        done
        [ $all = 1 ] && return 0
        s_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

#  s_stop PID SECONDS: SIGTERM, then wait up to SECONDS for the exit. Sets
#  status to the exit status (or 137 after a forced kill). Fails on timeout.
status=-1
s_stop() {
    local pid=$1 secs=$2 i rc=0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do
        s_alive "$pid" || break
        sleep 0.1
    done
    if s_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        rc=1
    fi
    wait "$pid"
    status=$?
    s_forget "$pid"
    return $rc
}

#  s_clean_log LOG: no sanitizer report in LOG.
s_clean_log() {
    ! grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: ' "$1"
}

#  s_run NAME EXPECTED_STATUS COMMAND...: run to completion with stdout and
#  stderr in $tmp/NAME.out and .err; pass when the status is as expected.
s_run() {
    local name=$1 want=$2 rc
    shift 2
    timeout -k 2 10 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    rc=$?
    if [ "$rc" = "$want" ]; then
        s_ok "$name: exit status $want"
    else
        s_not_ok "$name: exit status $rc, expected $want"
        s_show "$tmp/$name.err"
    fi
}

for f in "$node" "$examples/skick-example-linked" "$examples/accumulator.so" \
         "$examples/worker_pool.so" "$examples/services.so"; do
    if [ ! -e "$f" ]; then
        echo "Bail out! $f is missing (build $build first)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# ---- 1. usage --------------------------------------------------------------------

s_run help 0 "$node" --help
s_check "help: mentions --app" grep -q -- '--app' "$tmp/help.out"
s_run bad-option 2 "$node" --no-such-option
s_check "bad-option: usage on stderr" grep -q -- 'Usage:' "$tmp/bad-option.err"

# ---- 2. a module that cannot start -------------------------------------------------

s_run missing-app 1 "$node" --app /nonexistent.so
s_check "missing-app: stderr names the file and the problem" \
    grep -Eq 'cannot load .*/nonexistent\.so' "$tmp/missing-app.err"

# The same module from a second path registers its types twice.
cp "$examples/accumulator.so" "$tmp/accumulator-copy.so"
s_run duplicate-type 1 "$node" --app "$examples/accumulator.so" --app "$tmp/accumulator-copy.so"
s_check "duplicate-type: stderr names the type registered twice" \
    grep -Eq "actor type '[a-z_]+' is registered by both" "$tmp/duplicate-type.err"

# ---- 3. the three example modules in one shard ---------------------------------------

log="$tmp/node.log"
"$node" --back "${modules[@]}" >"$tmp/node.out" 2>"$log" &
pid=$!
started+=("$pid")
tally='info caller [0-9a-f]{16}:[0-9a-f]{16}: tally is [0-9]+'
replaced='info supervisor [0-9a-f:]+: worker [0-9a-f:]+ failed .*; replaced by [0-9a-f]{16}:'
retired='info client [0-9a-f:]+: after the retirement [0-9]+ of [0-9]+ lookups .* 0 the dead one'
before=$failed
s_wait_log "$pid" "$log" "$evidence_s" "$tally" "$replaced" "$retired"
s_check "node: still running after the modules started" s_alive "$pid"
s_check "node: the caller logged a tally (accumulator module)" grep -Eq -- "$tally" "$log"
s_check "node: a failed worker was replaced (worker_pool module)" grep -Eq -- "$replaced" "$log"
s_check "node: a retired clock was never handed out (services module)" \
    grep -Eq -- "$retired" "$log"
if [ "$failed" != "$before" ]; then s_show "$log"; fi
s_check "node: stops within ${stop_s} s of SIGTERM" s_stop "$pid" "$stop_s"
s_check "node: exit status 0 after SIGTERM (was $status)" [ "$status" = 0 ]
s_check "node: on_stop hooks ran (accumulator's final tally)" \
    grep -Eq 'info accumulator [0-9a-f:]+: final tally [0-9]+' "$log"
s_check "node: the shard reported its stop" grep -q 'notice shard: shard stopped' "$log"
s_check "node: no sanitizer report" s_clean_log "$log"

# ---- 4. the linked program ------------------------------------------------------------

log="$tmp/linked.log"
"$examples/skick-example-linked" --back >"$tmp/linked.out" 2>"$log" &
pid=$!
started+=("$pid")
hello='info greeter [0-9a-f:]+: hello from the linked program'
s_wait_log "$pid" "$log" "$evidence_s" "$hello"
s_check "linked: its module's actor runs" grep -Eq -- "$hello" "$log"
s_check "linked: stops within ${stop_s} s of SIGTERM" s_stop "$pid" "$stop_s"
s_check "linked: exit status 0 after SIGTERM (was $status)" [ "$status" = 0 ]
s_check "linked: the application's on_stop hook ran" \
    grep -q 'linked application stopping' "$log"
s_check "linked: the actor's on_stop hook ran" grep -Eq 'greeter [0-9a-f:]+: goodbye' "$log"
s_check "linked: the shard reported its stop" grep -q 'notice shard: shard stopped' "$log"
s_check "linked: no sanitizer report" s_clean_log "$log"

# ---- 5. --list-types ---------------------------------------------------------------------

s_run list-types 0 "$node" --list-types "${modules[@]}"
for pair in accumulator:accumulator caller:accumulator seller:accumulator \
            bargainer:accumulator worker:worker_pool supervisor:worker_pool \
            clock:services client:services; do
    s_check "list-types: ${pair%%:*} from module ${pair##*:}" \
        grep -qx "${pair%%:*}"$'\t'"${pair##*:}" "$tmp/list-types.out"
done
s_check "list-types: no sanitizer report" s_clean_log "$tmp/list-types.err"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# run.sh - fuzz each libFuzzer target for a bounded time (docs/fuzzing.md)
#
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
#   (make fuzz: FUZZ_SECONDS per target; make test: FUZZ_TEST_SECONDS)
# Runs the targets one after the other, each from its checked-in seeds and
# regressions plus what earlier runs found (BUILD_DIR/fuzz/corpus/TARGET,
# kept between runs). Prints one summary line per target. A target that
# finds a failure fails the run: its log, the broken invariant and the path
# of the crashing input are printed, with how to replay it and keep it as a
# regression. Exit status: 0, or 1 when any target failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -lt 2 ]]; then
    echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
secs=$2
shift 2
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(json schema envelope broker session)
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export SKICK_LOG_LEVEL=silent
failed=0
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$t
    work=$build/fuzz/corpus/$t
    art=$build/fuzz/artifacts/$t
    log=$build/fuzz/$t.log
    mkdir -p "$work" "$art"
    if [[ ! -x $bin ]]; then
        echo "fuzz $t: no $bin (build with make build-fuzz)"
        failed=1
        continue
    fi
    dict=()
    if [[ -f $here/dict/$t.dict ]]; then
        dict=(-dict="$here/dict/$t.dict")
    fi
    FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}" "$bin" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$art/" "${dict[@]}" \
        "$work" "$here/corpus/$t" "$here/regressions/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
    summary="fuzz $t: ${runs:-0} runs in $secs s (${rate:-0}/s), cov ${cov:-?} edges, ft ${ft:-?} features, corpus ${corp:-?}"
    if [[ $rc -eq 0 ]]; then
        echo "$summary: ok"
        continue
    fi
    failed=1
    crash=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -1)
    echo "$summary: FAILED (exit $rc)"
    grep -E -A2 'fuzz invariant broken|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' \
        "$log" | head -20 | sed 's/^/    /'
    echo "    log: $log"
    if [[ -n $crash ]]; then
        echo "    crashing input: $crash"
        echo "    replay it: $bin $crash"
        echo "    keep it as a regression: cp $crash $here/regressions/$t/ (then fix the bug)"
    fi
done
exit $failed

#!/usr/bin/env bash
# Runs each libFuzzer target for a set time over its committed seed corpus
# (test/fuzz/corpus/<target>, read only) plus a working corpus kept under
# the build directory, and prints the executions per target. Any crash,
# sanitizer report, leak or timeout fails the run; the reproducer is left
# as BIN_DIR/crash-<target>-*.
# usage: run-fuzz.sh BIN_DIR SECONDS TARGET...
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$1 secs=$2
shift 2
status=0
for t in "$@"; do
    work=$bin/corpus/$t
    mkdir -p "$work"
    log=$bin/fuzz_$t.log
    rc=0
    "$bin/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$bin/crash-$t-" \
        "$work" "test/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; log: $log" >&2
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 >&2 || true
    else
        echo "fuzz $t: ${execs:-?} executions in ${secs}s, ${cov:-cov: ?}, corpus $(find "$work" -type f | wc -l) files"
    fi
done
exit "$status"

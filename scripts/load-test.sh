#!/usr/bin/env bash
# The load test of issue 8: WORKERS separate lua5.4 processes, each running
# OPS transactions that save a JSON record through the ORM, bump two shared
# counter rows (deadlocks happen and are retried) and read the record back;
# then every expected row must be present exactly once and no worker may
# have seen an unexpected error.
# usage: load-test.sh [WORKERS] [OPS] [COUNTERS]   (default 8 1000 4)
# Needs AR_MYSQL_* (run it through scripts/with-test-server.sh, as
# `make test-load` does) and LUA_PATH/LUA_CPATH with the library and core.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
workers=${1:-8}
ops=${2:-1000}
counters=${3:-4}
lua=${LUA:-lua5.4}

"$lua" spec/reliability/load_check.lua setup "$counters"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$SECONDS
pids=()
for ((w = 1; w <= workers; w++)); do
    "$lua" spec/reliability/load_worker.lua "$w" "$ops" "$counters" >"$out/$w.out" 2>"$out/$w.err" &
    pids+=("$!")
done

failed=0
for ((w = 1; w <= workers; w++)); do
    rc=0
    wait "${pids[w - 1]}" || rc=$?
    cat "$out/$w.out"
    if ((rc != 0)); then
        echo "load: worker $w exited with status $rc" >&2
        head -n 20 "$out/$w.err" >&2
        failed=1
    fi
done
elapsed=$((SECONDS - start))

awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } }
     END { printf "load: %d workers, saved=%d verified=%d attempts=%d deadlocks=%d lock_timeouts=%d unexpected=%d\n",
           NR, s["saved"], s["verified"], s["attempts"], s["deadlocks"], s["lock_timeouts"], s["unexpected"] }' \
    "$out"/*.out
echo "load: $((workers * ops)) transactions in ${elapsed}s"

"$lua" spec/reliability/load_check.lua verify "$workers" "$ops" "$counters" || failed=1
exit "$failed"

#!/usr/bin/env bash
# bench/callgrind.sh -- client-side instruction counts (valgrind callgrind) of
# the timed region of each workload, per implementation: a stable second
# measure next to bench/run.sh's wall-clock times on a noisy machine.
#
# For each workload and implementation it runs the program twice under
# callgrind: once in full and once with BENCH_SETUP_ONLY=1 (connect, untimed
# setup, stop before the clock starts); the difference is the instructions the
# client executes in the timed region.  The server is not instrumented (it is
# another process), so these count only what the client costs: the floor's
# count is libmariadb's share, the rest is ours.
#
# Usage: against a server in AR_MYSQL_* (data from `floor setup`, which
# bench/run.sh does; BENCH_SETUP=1 here runs it first):
#   LUA_CPATH=... LUA_PATH=... bench/callgrind.sh [W1 W3 ...]
# Output files stay in build/bench/cg/ for callgrind_annotate.
#
# W8 (issue 13): the floor is sysbench's own client process (bench/sysbench.sh
# callgrind: BENCH_W8_TXNS transactions minus a 10-transaction run, scaled to
# BENCH_W8_TXNS), against the Lua programs' timed regions (orm, core, luasql);
# sbtest1 must exist (bench/sysbench.sh prepare, which BENCH_SETUP=1 runs).
# W8p (not in the default list): W8's point select alone, 10,000 times through
# the builder (orm) and through db:execute (orm W8e), the C core as the floor.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LUA=${LUA:-lua5.4}
BUILD="$ROOT/build/bench"
CG="$BUILD/cg"
mkdir -p "$CG"
[[ -n "${AR_MYSQL_PORT:-}" ]] || export MYSQL_UNIX_PORT="${AR_MYSQL_SOCKET:-}"
# shellcheck disable=SC2046
${CC:-cc} -O2 -g -std=c11 -Wall -Wextra -Werror $(mariadb_config --cflags) \
    -o "$BUILD/floor" bench/floor.c $(mariadb_config --libs)
WORKLOADS=${*:-"W1 W2 W3 W4 W5 W6 W7 W8"}
if [[ -n "${BENCH_SETUP:-}" ]]; then
    "$BUILD/floor" setup
    if [[ " $WORKLOADS " == *" W8 "* ]]; then bash bench/sysbench.sh prepare; fi
fi
W8_TXNS=${BENCH_W8_TXNS:-1000}
declare -A CALLS=([B1]=10000 [B3]=5000 [W1]=5000 [W3]=10000 [W5]=5000 [W7]=1000 [W8]=$W8_TXNS [W8p]=10000)

ir() {  # out-file -> total Ir
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}
count() {  # impl wl -> timed-region Ir
    local impl=$1 wl=$2 cmd full base
    if [[ $impl:$wl == floor:W8 ]]; then  # sysbench's own client, startup removed
        CG_DIR="$CG" bash bench/sysbench.sh callgrind | awk '{ print $1 }'
        return
    fi
    [[ $impl:$wl == floor:W8p ]] && impl=core  # the point select's floor: the C core
    [[ $impl:$wl == orm_execute:W8p ]] && { impl=orm; wl=W8e; }
    case $impl in
        floor)  cmd=("$BUILD/floor" "$wl") ;;
        orm)    cmd=("$LUA" bench/orm.lua "$wl") ;;
        core)   cmd=("$LUA" bench/core.lua "$wl") ;;
        luasql) cmd=("$LUA" bench/luasql.lua "$wl") ;;
    esac
    export BENCH_NONCE=$(( RANDOM % 1000 ))
    valgrind --tool=callgrind --callgrind-out-file="$CG/$impl.$wl.full" "${cmd[@]}" >/dev/null 2>"$CG/$impl.$wl.err"
    BENCH_SETUP_ONLY=1 valgrind --tool=callgrind --callgrind-out-file="$CG/$impl.$wl.setup" "${cmd[@]}" \
        >/dev/null 2>>"$CG/$impl.$wl.err"
    full=$(ir "$CG/$impl.$wl.full"); base=$(ir "$CG/$impl.$wl.setup")
    echo $(( full - base ))
}

printf 'workload|floor Ir|impl|impl Ir|ratio|Ir per call over floor\n' > "$CG/table"
for wl in $WORKLOADS; do
    case $wl in
        B*) impls="core luasql" ;;
        W2|W3|W4|W7) impls="orm luasql" ;;
        W8) impls="orm core luasql" ;;
        W8p) impls="orm orm_execute" ;;
        *) impls="orm" ;;
    esac
    f=$(count floor "$wl")
    echo "  $wl floor: $f Ir" >&2
    for impl in $impls; do
        c=$(count "$impl" "$wl")
        echo "  $wl $impl: $c Ir" >&2
        awk -v wl="$wl" -v f="$f" -v c="$c" -v impl="$impl" -v n="${CALLS[$wl]:-0}" 'BEGIN {
            per = "-"
            if (n > 0) per = sprintf("%+.0f", (c - f) / n)
            printf "%s|%.1fM|%s|%.1fM|%.1fx|%s\n", wl, f / 1e6, impl, c / 1e6, c / f, per }' >> "$CG/table"
    done
done
column -t -s '|' -o ' | ' "$CG/table"

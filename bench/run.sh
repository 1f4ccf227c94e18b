#!/usr/bin/env bash
# bench/run.sh -- the "core" benchmark (driver level, no ORM).
#
# Builds the C floor (build/bench/floor), fills the schema once
# (`floor setup`), then for each workload runs floor, core (our C core) and
# LuaSQL, BENCH_REPS times each (interleaved), keeps the best time, and prints
#   workload | floor s | core s | ratio | luasql s | ratio
# plus, for B1 and B3, the client time per call above the floor in µs.
#
# Connection: AR_MYSQL_HOST, AR_MYSQL_PORT, AR_MYSQL_SOCKET, AR_MYSQL_USER,
# AR_MYSQL_PASSWORD, AR_MYSQL_DATABASE.  If neither AR_MYSQL_HOST nor
# AR_MYSQL_SOCKET is set, re-runs itself under scripts/with-test-server.sh
# (private throwaway MariaDB).  Transport, for every implementation: TCP
# host:port if AR_MYSQL_PORT is set, else the unix socket AR_MYSQL_SOCKET.
#
# Knobs (environment):
#   BENCH_REPS=3                 repetitions per implementation and workload
#   BENCH_WORKLOADS="B1 B2 B3"   which workloads
#   BENCH_TRANSPORT=socket|tcp   force a transport (socket: ignore AR_MYSQL_PORT)
#   BENCH_SKIP_SETUP=1           reuse existing users/posts data
#   BENCH_CPU=0                  pin the client processes to this CPU (taskset);
#                                the private server started via the re-exec
#                                below is pinned too, any other server you pin
#                                yourself (taskset -a -p -c N PID) -- on small
#                                VMs a cross-CPU wakeup costs ~100+ us per round
#                                trip, which swamps client overheads
#   LUA=lua5.4                   Lua interpreter
#   CC=cc                        C compiler for the floor
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ -z "${AR_MYSQL_HOST:-}" && -z "${AR_MYSQL_SOCKET:-}" ]]; then
    if [[ -n "${AR_BENCH_REEXEC:-}" ]]; then
        echo "run.sh: scripts/with-test-server.sh did not export AR_MYSQL_HOST/AR_MYSQL_SOCKET" >&2
        exit 1
    fi
    if [[ ! -x scripts/with-test-server.sh && ! -f scripts/with-test-server.sh ]]; then
        echo "run.sh: no AR_MYSQL_* connection settings and scripts/with-test-server.sh is missing" >&2
        exit 1
    fi
    export AR_BENCH_REEXEC=1
    exec bash scripts/with-test-server.sh bash "$ROOT/bench/run.sh" "$@"
fi

REPS=${BENCH_REPS:-3}
WORKLOADS=${BENCH_WORKLOADS:-"B1 B2 B3"}
LUA=${LUA:-lua5.4}
CC=${CC:-cc}
BUILD="$ROOT/build/bench"
CORE_SO="$ROOT/build/activerecord/backend/mysql/core.so"
mkdir -p "$BUILD"
PIN=()
if [[ -n "${BENCH_CPU:-}" ]]; then
    PIN=(taskset -c "$BENCH_CPU")
    # Pin the server too, but only the private one this script started
    # through scripts/with-test-server.sh (DIR/server.pid next to DIR/mysql.sock).
    srv_pidfile="$(dirname "${AR_MYSQL_SOCKET:-/nonexistent/x}")/server.pid"
    if [[ -n "${AR_BENCH_REEXEC:-}" && -r "$srv_pidfile" ]]; then
        taskset -a -p -c "$BENCH_CPU" "$(cat "$srv_pidfile")" >/dev/null
        echo "== pinned the private test server (pid $(cat "$srv_pidfile")) to CPU $BENCH_CPU"
    else
        echo "== BENCH_CPU=$BENCH_CPU: clients pinned; pin the server's threads to the same CPU yourself"
    fi
fi

case "${BENCH_TRANSPORT:-}" in
    socket) unset AR_MYSQL_PORT ;;
    tcp)    [[ -n "${AR_MYSQL_PORT:-}" ]] || { echo "run.sh: BENCH_TRANSPORT=tcp needs AR_MYSQL_PORT" >&2; exit 1; } ;;
    "")     ;;
    *)      echo "run.sh: BENCH_TRANSPORT must be socket or tcp" >&2; exit 1 ;;
esac
if [[ -n "${AR_MYSQL_PORT:-}" ]]; then
    TRANSPORT="tcp ${AR_MYSQL_HOST:-127.0.0.1}:${AR_MYSQL_PORT}"
else
    [[ -n "${AR_MYSQL_SOCKET:-}" ]] || { echo "run.sh: need AR_MYSQL_PORT or AR_MYSQL_SOCKET" >&2; exit 1; }
    TRANSPORT="socket ${AR_MYSQL_SOCKET}"
    # LuaSQL cannot pass a socket path; libmariadb falls back to $MYSQL_UNIX_PORT.
    export MYSQL_UNIX_PORT="$AR_MYSQL_SOCKET"
fi

# ---- build the floor -------------------------------------------------------
echo "== building build/bench/floor"
# shellcheck disable=SC2046
$CC -O2 -std=c11 -Wall -Wextra -Werror $(mariadb_config --cflags) \
    -o "$BUILD/floor" bench/floor.c $(mariadb_config --libs)

export LUA_CPATH="$ROOT/build/?.so;;"
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"

IMPLS="floor luasql"
HAVE_CORE=0
CORE_NOTE=""
if [[ -f "$CORE_SO" ]]; then
    if err=$("$LUA" -e 'require("activerecord.backend.mysql.core")' 2>&1); then
        HAVE_CORE=1
        IMPLS="floor core luasql"
    else
        CORE_NOTE="core column skipped: $CORE_SO does not load: $err"
    fi
else
    CORE_NOTE="core column skipped: $CORE_SO not built (run make)"
fi

# ---- setup -------------------------------------------------------------------
if [[ -z "${BENCH_SKIP_SETUP:-}" ]]; then
    echo "== setup (drop/create users, posts; 50,000 users)"
    "$BUILD/floor" setup
fi

run_impl() {  # impl workload -> prints seconds on stdout; checksum line kept in $BUILD/check.<impl>.<wl>
    local impl=$1 wl=$2 out
    case $impl in
        floor)  out=$("${PIN[@]}" "$BUILD/floor" "$wl" 2>"$BUILD/err.$impl.$wl") ;;
        core)   out=$("${PIN[@]}" "$LUA" bench/core.lua "$wl" 2>"$BUILD/err.$impl.$wl") ;;
        luasql) out=$("${PIN[@]}" "$LUA" bench/luasql.lua "$wl" 2>"$BUILD/err.$impl.$wl") ;;
    esac || { echo "FAIL"; return 0; }
    grep -m1 "^# $wl check" "$BUILD/err.$impl.$wl" > "$BUILD/check.$impl.$wl" || true
    awk -v wl="$wl" '$1 == wl { print $2; found=1 } END { if (!found) print "FAIL" }' <<<"$out"
}

RAW="$BUILD/raw.tsv"
printf 'workload\timpl\trep\tseconds\n' > "$RAW"
echo "== running: workloads [$WORKLOADS], impls [$IMPLS], $REPS reps, transport $TRANSPORT${BENCH_CPU:+, clients pinned to CPU $BENCH_CPU}"
[[ -n "$CORE_NOTE" ]] && echo "   NOTE: $CORE_NOTE"

declare -A BEST
for wl in $WORKLOADS; do
    for ((rep = 1; rep <= REPS; rep++)); do
        for impl in $IMPLS; do
            t=$(run_impl "$impl" "$wl")
            printf '%s\t%s\t%d\t%s\n' "$wl" "$impl" "$rep" "$t" >> "$RAW"
            printf '   %s %-6s rep %d: %s\n' "$wl" "$impl" "$rep" "$t"
            if [[ "$t" == FAIL ]]; then
                echo "   !! $impl $wl failed:" >&2
                sed 's/^/      /' "$BUILD/err.$impl.$wl" | tail -n 5 >&2
                continue
            fi
            prev=${BEST[$wl.$impl]:-}
            if [[ -z "$prev" ]] || awk -v a="$t" -v b="$prev" 'BEGIN { exit !(a < b) }'; then
                BEST[$wl.$impl]=$t
            fi
        done
    done
    # cross-check: same rows / checksums in every implementation
    ref=""
    for impl in $IMPLS; do
        f="$BUILD/check.$impl.$wl"
        [[ -s "$f" ]] || continue
        sig=$(grep -oE '(rows|namebal_len|id_sum|inserted|last_id)=[0-9]+' "$f" | tr '\n' ' ')
        if [[ -z "$ref" ]]; then ref=$sig; refimpl=$impl
        elif [[ "$sig" != "$ref" ]]; then
            echo "   !! $wl checksum mismatch: $refimpl [$ref] vs $impl [$sig]" >&2
        fi
    done
    if [[ $HAVE_CORE == 1 && -s "$BUILD/check.core.$wl" ]] && grep -q 'types\[' "$BUILD/check.core.$wl"; then
        echo "   core value types: $(grep -oE 'types\[[^]]*\]' "$BUILD/check.core.$wl")"
    fi
done

# ---- report ------------------------------------------------------------------
declare -A NAME=([B1]="B1 pk_lookup" [B2]="B2 fetch_all" [B3]="B3 insert_one")
declare -A CALLS=([B1]=10000 [B3]=5000)

echo
echo "Core benchmark: best of $REPS, seconds (ratio = impl / floor); transport: $TRANSPORT${BENCH_CPU:+; clients on CPU $BENCH_CPU}"
[[ -n "$CORE_NOTE" ]] && echo "NOTE: $CORE_NOTE"
{
    printf 'workload|floor s|core s|ratio|luasql s|ratio|core us/call over floor|luasql us/call over floor\n'
    for wl in $WORKLOADS; do
        f=${BEST[$wl.floor]:-FAIL}
        if [[ $HAVE_CORE == 1 ]]; then c=${BEST[$wl.core]:-FAIL}; else c=skipped; fi
        l=${BEST[$wl.luasql]:-FAIL}
        awk -v name="${NAME[$wl]:-$wl}" -v f="$f" -v c="$c" -v l="$l" -v n="${CALLS[$wl]:-0}" '
            function num(x) { return x ~ /^[0-9.]+([eE][-+]?[0-9]+)?$/ }
            function secs(x) { return num(x) ? sprintf("%.4f", x) : x }
            function ratio(x) { return (num(x) && num(f) && f > 0) ? sprintf("%.2fx", x / f) : "-" }
            function over(x) { return (n > 0 && num(x) && num(f)) ? sprintf("%+.1f", (x - f) / n * 1e6) : "-" }
            BEGIN {
                printf "%s|%s|%s|%s|%s|%s|%s|%s\n", name, secs(f), secs(c), ratio(c),
                       secs(l), ratio(l), over(c), over(l)
            }'
    done
} | column -t -s '|' -o ' | '
echo "(B2: core returns typed values and decodes the JSON profile into Lua tables;"
echo " LuaSQL returns every value as text. Per-call columns: (t_impl - t_floor) / n * 1e6.)"
echo
echo "raw timings: $RAW"

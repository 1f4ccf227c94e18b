#!/usr/bin/env bash
# bench/run.sh -- the benchmarks against the C floor, in one run:
#   core suite (issue 2): B1-B3, driver level: floor | core (our C core) | LuaSQL
#   orm suite  (issue 7): W1-W7 of design section 7: floor | orm | LuaSQL (W2-W4, W7)
#              (issue 13): W8, sysbench's oltp_read_write transaction: sysbench
#              itself as the floor (bench/sysbench.sh) | orm | core | LuaSQL
#
# Builds the C floor (build/bench/floor), fills the schema once
# (`floor setup`: 50,000 users, 10 posts each for users 1..1,000), then for
# each workload runs every implementation BENCH_REPS times, alternating
# (floor, orm, luasql, then the reverse order, ...), each run a fresh process
# that times only the workload.  Prints, per suite, a table with the MEDIAN
# seconds of each implementation, its ratio to the floor's median, the ratio
# of the best runs, the client time per call above the floor in µs (for the
# one-statement-per-call workloads), and for the ORM suite the issue's target
# and the reference ratios of the established ORMs and of LuaSQL.
#
# Connection: AR_MYSQL_HOST, AR_MYSQL_PORT, AR_MYSQL_SOCKET, AR_MYSQL_USER,
# AR_MYSQL_PASSWORD, AR_MYSQL_DATABASE.  If neither AR_MYSQL_HOST nor
# AR_MYSQL_SOCKET is set, re-runs itself under scripts/with-test-server.sh
# (private throwaway MariaDB).  Transport, for every implementation: TCP
# host:port if AR_MYSQL_PORT is set, else the unix socket AR_MYSQL_SOCKET.
#
# Knobs (environment):
#   BENCH_SUITE=all              core | orm | all
#   BENCH_REPS=5                 repetitions per implementation and workload
#                                (the issue's targets: median of >= 5 runs)
#   BENCH_WORKLOADS="B1 W3 ..."  which workloads (default: those of the suite)
#   BENCH_ARRAY=1                also run the floor's W2 with MariaDB array
#                                binding (W2a) and print it as a note (default 1)
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

REPS=${BENCH_REPS:-5}
SUITE=${BENCH_SUITE:-all}
case $SUITE in
    core) DEFAULT_WL="B1 B2 B3" ;;
    orm)  DEFAULT_WL="W1 W2 W3 W4 W5 W6 W7 W8" ;;
    all)  DEFAULT_WL="B1 B2 B3 W1 W2 W3 W4 W5 W6 W7 W8" ;;
    *)    echo "run.sh: BENCH_SUITE must be core, orm or all" >&2; exit 1 ;;
esac
WORKLOADS=${BENCH_WORKLOADS:-$DEFAULT_WL}
ARRAY=${BENCH_ARRAY:-1}
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

HAVE_CORE=0
CORE_NOTE=""
if [[ -f "$CORE_SO" ]]; then
    if err=$("$LUA" -e 'require("activerecord.backend.mysql.core")' 2>&1); then
        HAVE_CORE=1
    else
        CORE_NOTE="core and orm columns skipped: $CORE_SO does not load: $err"
    fi
else
    CORE_NOTE="core and orm columns skipped: $CORE_SO not built (run make)"
fi

HAVE_SYSBENCH=0
command -v "${SYSBENCH:-sysbench}" >/dev/null && HAVE_SYSBENCH=1
W8_TXNS=${BENCH_W8_TXNS:-1000}

# implementations of a workload, in run order
impls_for() {
    local wl=$1 l="floor"
    case $wl in
        W8) l=""  # floor = sysbench (bench/sysbench.sh)
            [[ $HAVE_SYSBENCH == 1 ]] && l+="floor"
            [[ $HAVE_CORE == 1 ]] && l+=" orm core"
            l+=" luasql" ;;
        B*) [[ $HAVE_CORE == 1 ]] && l+=" core"; l+=" luasql" ;;
        W*) [[ $HAVE_CORE == 1 ]] && l+=" orm"
            case $wl in W2|W3|W4|W7) l+=" luasql" ;; esac
            [[ $wl == W2 && $ARRAY == 1 ]] && l+=" floor_array" ;;
    esac
    echo "$l"
}

# ---- setup -------------------------------------------------------------------
if [[ -z "${BENCH_SKIP_SETUP:-}" ]]; then
    echo "== setup (drop/create users, posts; 50,000 users, 10,000 posts)"
    "$BUILD/floor" setup
    if [[ " $WORKLOADS " == *" W8 "* && $HAVE_SYSBENCH == 1 ]]; then
        echo "== setup W8 (sysbench prepare: sbtest1, ${BENCH_W8_TABLE_SIZE:-10000} rows)"
        bash bench/sysbench.sh prepare
    fi
fi
if [[ " $WORKLOADS " == *" W8 "* && $HAVE_SYSBENCH == 0 ]]; then
    echo "   NOTE: sysbench not installed: W8 runs without its floor (apt-get install sysbench)"
fi

# W5: every run writes new scores (BENCH_NONCE changes per run; run_impl runs
# in a subshell, so the counter advances out here)
NONCE=$(( $(date +%s) % 1000 ))
run_impl() {  # impl workload -> prints seconds on stdout; checksum line kept in $BUILD/check.<impl>.<wl>
    local impl=$1 wl=$2 out mode=$2
    local floor_cmd=("$BUILD/floor" "$wl")
    [[ $wl == W8 ]] && floor_cmd=(bash bench/sysbench.sh run "$W8_TXNS")  # W8's floor: sysbench
    case $impl in
        floor)       out=$("${PIN[@]}" "${floor_cmd[@]}" 2>"$BUILD/err.$impl.$wl") ;;
        floor_array) mode=${wl}a
                     out=$("${PIN[@]}" "$BUILD/floor" "$mode" 2>"$BUILD/err.$impl.$wl") ;;
        core)        out=$("${PIN[@]}" "$LUA" bench/core.lua "$wl" 2>"$BUILD/err.$impl.$wl") ;;
        orm)         out=$("${PIN[@]}" "$LUA" bench/orm.lua "$wl" 2>"$BUILD/err.$impl.$wl") ;;
        luasql)      out=$("${PIN[@]}" "$LUA" bench/luasql.lua "$wl" 2>"$BUILD/err.$impl.$wl") ;;
    esac || { echo "FAIL"; return 0; }
    grep -m1 "^# $mode check" "$BUILD/err.$impl.$wl" > "$BUILD/check.$impl.$wl" || true
    awk -v wl="$mode" '$1 == wl { print $2; found=1 } END { if (!found) print "FAIL" }' <<<"$out"
}

RAW="$BUILD/raw.tsv"
printf 'workload\timpl\trep\tseconds\n' > "$RAW"
echo "== running: suite $SUITE, workloads [$WORKLOADS], $REPS reps (alternating), transport $TRANSPORT${BENCH_CPU:+, clients pinned to CPU $BENCH_CPU}"
if [[ -n "$CORE_NOTE" ]]; then echo "   NOTE: $CORE_NOTE"; fi

reverse() { local out="" w; for w in $1; do out="$w $out"; done; echo "$out"; }

for wl in $WORKLOADS; do
    impls=$(impls_for "$wl")
    for ((rep = 1; rep <= REPS; rep++)); do
        order=$impls
        (( rep % 2 == 0 )) && order=$(reverse "$impls")
        for impl in $order; do
            NONCE=$(( (NONCE + 1) % 1000 ))
            export BENCH_NONCE=$NONCE
            t=$(run_impl "$impl" "$wl")
            printf '%s\t%s\t%d\t%s\n' "$wl" "$impl" "$rep" "$t" >> "$RAW"
            printf '   %s %-11s rep %d: %s\n' "$wl" "$impl" "$rep" "$t"
            if [[ "$t" == FAIL ]]; then
                echo "   !! $impl $wl failed:" >&2
                sed 's/^/      /' "$BUILD/err.$impl.$wl" | tail -n 5 >&2
            fi
        done
    done
    # cross-check: same rows / checksums in every implementation
    ref=""
    for impl in $impls; do
        f="$BUILD/check.$impl.$wl"
        [[ -s "$f" ]] || continue
        sig=$(grep -oE '(rows|namebal_len|id_sum|inserted|last_id|users|posts|title_len|updated)=[0-9]+' "$f" | tr '\n' ' ') || true
        [[ -n "$sig" ]] || continue  # nothing comparable (W8's sysbench draws its own ids)
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
# median and best per workload/impl, from the raw timings
SUMMARY="$BUILD/summary.tsv"
awk -F'\t' 'NR > 1 && $4 ~ /^[0-9.]+$/ { k = $1 "\t" $2; n[k]++; v[k, n[k]] = $4 }
    END {
        for (k in n) {
            m = n[k]
            for (i = 1; i <= m; i++) a[i] = v[k, i] + 0
            for (i = 2; i <= m; i++) { x = a[i]; j = i - 1; while (j >= 1 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x }
            med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
            printf "%s\t%.6f\t%.6f\t%d\n", k, med, a[1], m
        }
    }' "$RAW" | sort > "$SUMMARY"

stat() {  # workload impl median|best -> seconds or "-"
    awk -F'\t' -v w="$1" -v i="$2" -v s="$3" '$1 == w && $2 == i { print (s == "best" ? $4 : $3); f = 1 }
        END { if (!f) print "-" }' "$SUMMARY"
}

declare -A NAME=([B1]="B1 pk_lookup" [B2]="B2 fetch_all" [B3]="B3 insert_one"
                 [W1]="W1 insert_one" [W2]="W2 insert_bulk" [W3]="W3 pk_lookup" [W4]="W4 fetch_all"
                 [W5]="W5 update_one" [W6]="W6 eager_load" [W7]="W7 json_where" [W8]="W8 oltp_read_write")
declare -A CALLS=([B1]=10000 [B3]=5000 [W1]=5000 [W3]=10000 [W5]=5000 [W7]=1000 [W8]=$W8_TXNS)
# W8 (issue 13): >= 0.8x sysbench's transactions per second = at most 1.25x its time
declare -A TARGET=([W1]=1.1 [W2]=1.0 [W3]=1.08 [W4]=2.5 [W5]=1.1 [W6]=1.8 [W7]=1.05 [W8]=1.25)
declare -A REF_ORM=([W1]=2.3 [W2]=5.3 [W3]=1.4 [W4]=10.4 [W5]=1.7 [W6]=2.3 [W7]=1.1)
declare -A REF_LUASQL=([W1]=1.2 [W2]=2.9 [W3]=1.1 [W4]=4.8 [W5]=1.2 [W6]=2.3 [W7]=1.0)

row() {  # name impl -> one table row (median seconds, ratios, us/call)
    local wl=$1 impl=$2 f fb c cb l lb
    f=$(stat "$wl" floor median); fb=$(stat "$wl" floor best)
    c=$(stat "$wl" "$impl" median); cb=$(stat "$wl" "$impl" best)
    l=$(stat "$wl" luasql median); lb=$(stat "$wl" luasql best)
    awk -v name="${NAME[$wl]:-$wl}" -v f="$f" -v fb="$fb" -v c="$c" -v cb="$cb" -v l="$l" -v lb="$lb" \
        -v n="${CALLS[$wl]:-0}" -v tgt="${TARGET[$wl]:-}" -v ro="${REF_ORM[$wl]:-}" \
        -v rl="${REF_LUASQL[$wl]:-}" -v suite="${wl:0:1}" '
        function num(x) { return x ~ /^[0-9.]+([eE][-+]?[0-9]+)?$/ }
        function secs(x) { return num(x) ? sprintf("%.4f", x) : x }
        function ratio(x, y) { return (num(x) && num(y) && y > 0) ? sprintf("%.2fx", x / y) : "-" }
        function over(x) { return (n > 0 && num(x) && num(f)) ? sprintf("%+.1f", (x - f) / n * 1e6) : "-" }
        BEGIN {
            line = sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", name, secs(f), secs(c), ratio(c, f),
                           ratio(cb, fb), secs(l), ratio(l, f), ratio(lb, fb), over(c), over(l))
            if (suite == "W") {
                met = (num(c) && num(f) && tgt != "") ? ((c / f <= tgt + 1e-9) ? "met" : "MISSED") : "-"
                line = line sprintf("|<= %s %s|%s|%s", tgt, met, ro, rl)
            }
            print line
        }'
}

have_suite() { local w; for w in $WORKLOADS; do [[ $w == "$1"* ]] && return 0; done; return 1; }

echo
if have_suite B; then
    echo "Core suite (driver level): median of $REPS alternating runs, seconds; ratio = impl / floor (median), best = ratio of the best runs; transport: $TRANSPORT${BENCH_CPU:+; clients on CPU $BENCH_CPU}"
    if [[ -n "$CORE_NOTE" ]]; then echo "NOTE: $CORE_NOTE"; fi
    {
        printf 'workload|floor s|core s|ratio|best|luasql s|ratio|best|core us/call over floor|luasql us/call over floor\n'
        for wl in $WORKLOADS; do if [[ $wl == B* ]]; then row "$wl" core; fi; done
    } | column -t -s '|' -o ' | '
    echo "(B2: core returns typed values and decodes the JSON profile into Lua tables;"
    echo " LuaSQL returns every value as text. Per-call columns: (t_impl - t_floor) / n * 1e6, medians.)"
    echo
fi
if have_suite W; then
    echo "ORM suite (design section 7): median of $REPS alternating runs, seconds; ratio = impl / floor (median), best = ratio of the best runs; transport: $TRANSPORT${BENCH_CPU:+; clients on CPU $BENCH_CPU}"
    if [[ -n "$CORE_NOTE" ]]; then echo "NOTE: $CORE_NOTE"; fi
    {
        printf 'workload|floor s|orm s|ratio|best|luasql s|ratio|best|orm us/call over floor|luasql us/call over floor|target (issues 7, 13)|ref ORMs|ref LuaSQL\n'
        for wl in $WORKLOADS; do if [[ $wl == W* ]]; then row "$wl" orm; fi; done
    } | column -t -s '|' -o ' | '
    echo "(floor: C on libmariadb, prepared statements, plain structs; W2 floor = one prepared 1,000-row"
    echo " multi-row INSERT executed 50 times. ref ORMs = best of Ruby ActiveRecord 6.1, Sequel 5.63,"
    echo " SQLAlchemy 1.4, peewee 3.14 (issue 7); ref LuaSQL = the issue's LuaSQL figures; LuaSQL runs"
    echo " W2-W4, W7 and W8 here, with hand-built typed tables. Per-call columns: (t_impl - t_floor) / n * 1e6;"
    echo " W8: floor = sysbench's own oltp_read_write, per call = per transaction.)"
    if [[ " $WORKLOADS " == *" W2 "* && $ARRAY == 1 ]]; then
        fa=$(stat W2 floor_array median); f=$(stat W2 floor median)
        awk -v a="$fa" -v f="$f" 'BEGIN { if (a ~ /^[0-9.]+$/ && f > 0)
            printf "W2 floor with MariaDB array binding (STMT_ATTR_ARRAY_SIZE = 1,000, floor W2a): %.4f s median = %.2fx the multi-row floor\n", a, a / f }'
    fi
    if [[ " $WORKLOADS " == *" W8 "* ]]; then
        echo "W8 oltp_read_write ($W8_TXNS transactions, one thread, uniform ids; floor = sysbench itself):"
        echo "transactions per second (median run) and ratio to sysbench's (issue 13 target: orm >= 0.8x)"
        for impl in floor orm core luasql; do
            m=$(stat W8 "$impl" median); f=$(stat W8 floor median)
            awk -v impl="$impl" -v m="$m" -v f="$f" -v n="$W8_TXNS" 'BEGIN {
                if (m !~ /^[0-9.]+$/ || m <= 0) exit
                name = (impl == "floor") ? "sysbench" : impl
                r = (f ~ /^[0-9.]+$/ && f > 0) ? sprintf("%.2fx", f / m) : "-"
                printf "   %-8s %8.1f tps  %s\n", name, n / m, r }'
        done
    fi
    echo
fi
echo "raw timings: $RAW; medians/best: $SUMMARY"

#!/usr/bin/env bash
# bench/sysbench.sh -- W8's floor: sysbench's own oltp_read_write (Debian
# `sysbench`, its C driver on libmariadb, prepared statements), one thread,
# --rand-type=uniform, against the AR_MYSQL_* server, on the table sysbench
# itself creates (sbtest1).  The Lua implementations of W8 (bench/orm.lua,
# bench/core.lua, bench/luasql.lua) run the same transaction on the same
# table with the same id distribution (bench/common.lua: W8_*).
#
# Usage:
#   bench/sysbench.sh prepare      drop and create sbtest1 (sysbench cleanup + prepare)
#   bench/sysbench.sh run [N]      N transactions (default BENCH_W8_TXNS, 1000);
#                                  prints "W8 <seconds>" (N / sysbench's tps) like the
#                                  Lua programs; sysbench's report goes to stderr
#   bench/sysbench.sh callgrind    client instructions per transaction of sysbench's
#                                  own process: N transactions under callgrind minus
#                                  a BENCH_W8_TINY (10) transaction run (startup)
# Sizes: BENCH_W8_TABLE_SIZE (10000 rows), BENCH_W8_TXNS (1000) -- the same
# variables bench/common.lua reads.  Transport as bench/common.lua: TCP
# host:port if AR_MYSQL_PORT is set, else the unix socket AR_MYSQL_SOCKET.
set -euo pipefail
SIZE=${BENCH_W8_TABLE_SIZE:-10000}
TXNS=${BENCH_W8_TXNS:-1000}
SB=${SYSBENCH:-sysbench}
command -v "$SB" >/dev/null || { echo "sysbench.sh: sysbench not installed (apt-get install sysbench)" >&2; exit 3; }

conn=(--db-driver=mysql --mysql-user="${AR_MYSQL_USER:-root}" --mysql-db="${AR_MYSQL_DATABASE:?AR_MYSQL_DATABASE}")
[[ -n "${AR_MYSQL_PASSWORD:-}" ]] && conn+=(--mysql-password="$AR_MYSQL_PASSWORD")
if [[ -n "${AR_MYSQL_PORT:-}" ]]; then
    conn+=(--mysql-host="${AR_MYSQL_HOST:-127.0.0.1}" --mysql-port="$AR_MYSQL_PORT")
else
    conn+=(--mysql-socket="${AR_MYSQL_SOCKET:?AR_MYSQL_PORT or AR_MYSQL_SOCKET}")
fi
common=(oltp_read_write "${conn[@]}" --tables=1 --table-size="$SIZE" --rand-type=uniform --threads=1)

run_args() {  # n -> sysbench run arguments for n transactions
    echo "--events=$1 --time=0 --report-interval=0 --db-ps-mode=auto"
}

case ${1:-run} in
    prepare)
        "$SB" "${common[@]}" cleanup >/dev/null
        "$SB" "${common[@]}" prepare >/dev/null
        echo "sysbench.sh: sbtest1 created with $SIZE rows" >&2
        ;;
    run)
        n=${2:-$TXNS}
        # shellcheck disable=SC2046
        out=$("$SB" "${common[@]}" $(run_args "$n") run)
        printf '%s\n' "$out" >&2
        tps=$(awk '/transactions:/ { gsub(/[(]/, "", $3); print $3; exit }' <<<"$out")
        awk -v n="$n" -v t="$tps" 'BEGIN { if (t > 0) printf "W8 %.6f\n", n / t; else { print "W8 FAIL"; exit 1 } }'
        echo "# W8 check txns=$n (sysbench: own random ids)" >&2
        ;;
    callgrind)
        dir=${CG_DIR:-/tmp}
        tiny=${BENCH_W8_TINY:-10}
        ir() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
        # shellcheck disable=SC2046
        valgrind --tool=callgrind --callgrind-out-file="$dir/sysbench.W8.full" \
            "$SB" "${common[@]}" $(run_args "$TXNS") run >"$dir/sysbench.W8.log" 2>&1
        # shellcheck disable=SC2046
        valgrind --tool=callgrind --callgrind-out-file="$dir/sysbench.W8.setup" \
            "$SB" "${common[@]}" $(run_args "$tiny") run >>"$dir/sysbench.W8.log" 2>&1
        full=$(ir "$dir/sysbench.W8.full"); base=$(ir "$dir/sysbench.W8.setup")
        # per transaction: (full - tiny) / (TXNS - tiny); total scaled to TXNS
        awk -v f="$full" -v b="$base" -v n="$TXNS" -v t="$tiny" \
            'BEGIN { per = (f - b) / (n - t); printf "%d %d\n", per * n, per }'
        ;;
    *)
        echo "usage: bench/sysbench.sh prepare|run [N]|callgrind" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Run CMD against private throwaway clusters (issue 18): a GTID primary with
# two replicas (scripts/replication.sh) and a 3-node Galera cluster
# (scripts/galera.sh), both on loopback in a fresh temp dir, their env.sh
# (AR_REPL_*, AR_GALERA_*) exported to CMD.
# usage: with-cluster.sh CMD [ARG...]
#   AR_CLUSTER_TOPOLOGIES="replication galera" (default) picks which to start.
# When every chosen topology is already named by the environment
# (AR_REPL_DIR, AR_GALERA_DIR), CMD runs against those instead.
# Only what this script started is stopped and removed afterwards, also on
# failure, Ctrl-C or TERM; CMD's exit code is propagated.
set -euo pipefail

PROG=${0##*/}

if (($# == 0)); then
    echo "usage: $PROG CMD [ARG...]" >&2
    exit 2
fi

topologies=${AR_CLUSTER_TOPOLOGIES:-replication galera}
want_repl=0
want_galera=0
for t in $topologies; do
    case $t in
    replication) want_repl=1 ;;
    galera) want_galera=1 ;;
    *)
        echo "$PROG: unknown topology '$t' in AR_CLUSTER_TOPOLOGIES (replication, galera)" >&2
        exit 2
        ;;
    esac
done

if [[ (want_repl -eq 0 || -n ${AR_REPL_DIR:-}) && (want_galera -eq 0 || -n ${AR_GALERA_DIR:-}) ]]; then
    exec "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# Short path: the unix sockets live in it (108-byte limit).
dir=$(mktemp -d /tmp/arc-XXXXXX)
# As root the Galera nodes run as user mysql, which must get through.
chmod 755 "$dir"
child=""
phase=""
repl_pid=""
galera_pid=""
started_repl=0
started_galera=0

# shellcheck disable=SC2317 # only called from traps
cleanup() {
    local rc=$?
    trap - INT TERM
    # A start still under way: end it before cleaning up.
    if [[ -n $galera_pid ]]; then
        kill -TERM "$galera_pid" 2>/dev/null || true
        wait "$galera_pid" 2>/dev/null || true
    fi
    if [[ -n $repl_pid ]]; then
        kill -TERM "$repl_pid" 2>/dev/null || true
        wait "$repl_pid" 2>/dev/null || true
        cat "$dir/repl-start.log" >&2 2>/dev/null || true
        rm -f "$dir/repl-start.log"
    fi
    if ((started_galera)); then
        "$here/galera.sh" clean "$dir/galera" >&2 ||
            echo "$PROG: could not clean $dir/galera" >&2
    fi
    if ((started_repl)); then
        "$here/replication.sh" clean "$dir/repl" >&2 ||
            echo "$PROG: could not clean $dir/repl" >&2
    fi
    rmdir "$dir" 2>/dev/null || echo "$PROG: left $dir behind" >&2
    # Last, where a summary that keeps only the tail of the output shows it.
    if ((rc != 0)) && [[ -n $phase ]]; then
        echo "$PROG: $phase failed (exit $rc); its messages are above" >&2
    fi
    exit "$rc"
}
# shellcheck disable=SC2317 # only called from traps
on_signal() {
    # A terminal's Ctrl-C already reached CMD (same process group); a TERM
    # sent to us alone (e.g. by timeout) must be passed on.
    if [[ -n $child ]]; then
        if [[ $1 == TERM ]]; then kill -TERM "$child" 2>/dev/null || true; fi
        wait "$child" 2>/dev/null || true
    fi
    exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

seconds_since() {
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# Both start at once (replication takes ~3 s, Galera ~20 s): replication in
# the background, its messages kept in a log shown if it fails.
repl_pid=""
if ((want_repl)); then
    # Marked as started first: a half-started topology is cleaned up too.
    started_repl=1
    # Directly, no subshell: $! is the script itself, which TERM stops.
    "$here/replication.sh" start "$dir/repl" >/dev/null 2>"$dir/repl-start.log" &
    repl_pid=$!
fi
if ((want_galera)); then
    t0=$EPOCHREALTIME
    phase="starting galera (scripts/galera.sh start)"
    started_galera=1
    # In the background too, so a TERM or Ctrl-C is handled at once (bash
    # defers traps while a foreground command runs).
    # A cluster that did not come up (its messages shown) is wiped and set
    # up once more from nothing: a start is 20 s, a red run is worse.
    for attempt in 1 2; do
        "$here/galera.sh" start "$dir/galera" >/dev/null &
        galera_pid=$!
        rc=0
        wait "$galera_pid" || rc=$?
        galera_pid=""
        ((rc == 0)) && break
        ((attempt == 2)) && exit "$rc"
        echo "$PROG: galera did not come up (exit $rc); wiping it and starting once more" >&2
        "$here/galera.sh" clean "$dir/galera" >&2 || exit "$rc"
    done
    # shellcheck source=/dev/null
    . "$dir/galera/env.sh"
    # shellcheck disable=SC2153 # set by env.sh
    echo "$PROG: galera up in $(seconds_since "$t0") s: nodes on 127.0.0.1 ports $AR_GALERA_PORTS" \
        "($dir/galera)" >&2
fi
if ((want_repl)); then
    phase="starting replication (scripts/replication.sh start)"
    rc=0
    wait "$repl_pid" || rc=$?
    repl_pid=""
    cat "$dir/repl-start.log" >&2
    rm -f "$dir/repl-start.log"
    ((rc == 0)) || exit "$rc"
    # shellcheck source=/dev/null
    . "$dir/repl/env.sh"
    # shellcheck disable=SC2153 # set by env.sh
    echo "$PROG: replication: primary 127.0.0.1:$AR_REPL_PRIMARY_PORT," \
        "replicas 127.0.0.1:$AR_REPL_REPLICA_PORT and :$AR_REPL_REPLICA2_PORT ($dir/repl)" >&2
fi

phase=""
# CMD runs in the background so our traps fire at once (bash defers traps
# while a foreground command runs). Background jobs would get SIGINT ignored
# and stdin from /dev/null: undo both.
(
    trap - INT QUIT
    exec "$@"
) <&0 &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"

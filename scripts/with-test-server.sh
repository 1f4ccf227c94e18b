#!/usr/bin/env bash
# Run CMD against a private throwaway MariaDB server, unless the caller
# already points us at one (AR_MYSQL_HOST or AR_MYSQL_SOCKET set).
# usage: with-test-server.sh CMD [ARG...]
# The server is always stopped and removed afterwards; CMD's exit code is
# propagated.
set -euo pipefail

if (($# == 0)); then
    echo "usage: ${0##*/} CMD [ARG...]" >&2
    exit 2
fi

if [[ -n ${AR_MYSQL_HOST:-} || -n ${AR_MYSQL_SOCKET:-} ]]; then
    exec "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
server=$here/mariadb-server.sh
# Short path: the unix socket lives in it (108-byte limit).
dir=$(mktemp -d /tmp/ar-XXXXXX)
child=""

# shellcheck disable=SC2317 # only called from traps
cleanup() {
    "$server" destroy "$dir" >&2 || echo "${0##*/}: could not destroy $dir" >&2
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

"$server" start "$dir" >/dev/null
# shellcheck source=/dev/null
. "$dir/env.sh"
# shellcheck disable=SC2153 # set by env.sh
echo "${0##*/}: test server on 127.0.0.1:$AR_MYSQL_PORT ($dir)" >&2

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

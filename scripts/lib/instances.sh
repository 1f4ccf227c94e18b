# shellcheck shell=bash
# scripts/lib/instances.sh -- shell helpers shared by the server scripts
# (mariadb-server.sh, replication.sh, galera.sh): messages, finding
# binaries, pid files that name only our own servers, starting and waiting
# for a server to be gone, free ports, the error log. Sourced after PROG is
# set; not run on its own.

die() {
    echo "$PROG: $*" >&2
    exit 1
}

note() {
    echo "$PROG: $*" >&2
}

# Debian puts mariadbd in /usr/sbin, which non-login shells may not have.
find_bin() {
    local name d
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
            if [[ -x $d/$name ]]; then
                echo "$d/$name"
                return 0
            fi
        done
    done
    return 1
}

need_bin() {
    find_bin "$@" || die "cannot find any of: $* (is mariadb-server installed?)"
}

# Absolute, symlink-free path, so the pid check below matches the command line.
abs_dir() {
    (cd "$1" && pwd -P)
}

read_pid() {
    local pid=""
    if [[ -r $1/server.pid ]]; then read -r pid <"$1/server.pid" || true; fi
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

# True only if PID is a live (non-zombie) mariadbd started with ND's my.cnf (never a --wsrep-recover run):
# guards against signalling an unrelated process that reused the pid.
is_our_server() {
    local pid=$1 nd=$2 stat cmdline
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"--defaults-file=$nd/my.cnf"* && $cmdline != *--wsrep-recover* ]]
}

# True once pid has finished dying: reaped, or its main thread a zombie
# with no other thread left. A SIGKILLed mariadbd closes its sockets in the
# last thread to exit, and that may be the main thread itself: after its
# memory is gone (/proc/PID/cmdline reads empty, so is_our_server already
# says no) it still shows R while it closes them. A client then still sends
# a statement into a socket that closes unread: 2013 "lost during query",
# not the 2006 "gone away" of a link seen closed before anything was sent.
process_gone() {
    local pid=$1 stat task
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ ${stat:0:1} == Z ]] || return 1
    for task in /proc/"$pid"/task/*; do
        [[ -e $task && ${task##*/} != "$pid" ]] && return 1
    done
    return 0
}

# Wait up to $3 seconds for the server of instance dir $1 (pid $2) to be
# gone (process_gone). Only called for a pid is_our_server vouched for.
wait_gone() {
    local pid=$2 limit=$3 deadline
    deadline=$((SECONDS + limit))
    until process_gone "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.02
    done
}

port_in_use() {
    local ss
    if ss=$(find_bin ss); then
        # Capture instead of piping to grep -q: no SIGPIPE under pipefail.
        [[ -n $("$ss" -Hltn "sport = :$1") ]]
    else
        # Fallback: a successful connect means something listens there.
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# A free port in 20000-60000, other than the ones given as arguments.
pick_port() {
    local port i taken
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + ((RANDOM << 15) | RANDOM) % 40001))
        for taken in "$@"; do
            [[ $port != "$taken" ]] || continue 2
        done
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "no free TCP port found in 20000-60000"
}

log_size() {
    if [[ -f $1/error.log ]]; then wc -c <"$1/error.log"; else echo 0; fi
}

bind_failed_since() {
    # Process substitution, not a pipe: grep -q exiting early is no error.
    grep -qiE "Bind on TCP/IP port|Address already in use|has been taken" \
        < <(tail -c "+$(($2 + 1))" "$1/error.log" 2>/dev/null)
}

# launch_server DIR [mariadbd options...]: starts mariadbd with DIR/my.cnf in
# its own session (a kill of the group takes its SST helpers too) and writes
# the pid we started to DIR/server.pid (a Galera joiner writes its own
# pid-file only after SST).
launch_server() {
    local dir=$1 mariadbd fd
    shift
    mariadbd=$(need_bin mariadbd mysqld)
    # A stale lock from a SIGKILLed server could name a reused pid.
    rm -f "$dir/mysql.sock.lock"
    (
        cd /
        # Close inherited fds (>2) so callers' pipes, e.g. $(...) or | tee,
        # do not stay open for the server's whole life.
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec setsid "$mariadbd" --defaults-file="$dir/my.cnf" "$@"
    ) </dev/null >>"$dir/mariadbd.out" 2>&1 &
    echo "$!" >"$dir/server.pid"
}

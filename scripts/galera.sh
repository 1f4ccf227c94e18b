#!/usr/bin/env bash
# A private 3-node MariaDB Galera cluster (galera-4) on loopback for the
# cluster specs (issue 18). Never touches /etc/mysql or the system server:
# everything lives under DIR (DIR/node1..3: datadir, my.cnf, socket, pid,
# logs); keep DIR short (unix socket paths must stay under 108 bytes).
#
#   galera.sh start DIR      set up (or restart) the cluster; writes DIR/env.sh
#   galera.sh stop DIR       stop every node started here (SIGTERM), data kept
#   galera.sh status DIR     exit 0 when all 3 nodes run and are Synced
#   galera.sh clean DIR      stop + rm -rf DIR
#   galera.sh start DIR N    start node N (1..3) and wait until it is Synced
#   galera.sh stop DIR N     stop node N (SIGTERM)
#   galera.sh kill DIR N     SIGKILL node N (and its SST helpers)
#   galera.sh status DIR N   exit 0 when node N runs and is Synced
#
# Each node listens on 127.0.0.1 on four random free ports (SQL, gcomm, IST,
# SST). As root the nodes run as user mysql (rsync SST fails as root: its
# rsync daemon drops to `nobody`), so DIR must be reachable by mysql.
# The first start bootstraps node1 and joins node2 and node3 one at a time by
# rsync SST. A whole-cluster restart bootstraps the node whose grastate.dat
# says safe_to_bootstrap: 1 (or, after a crash of all, the one with the
# highest recovered seqno). A node that was killed is restarted from its
# recovered position (mariadbd --wsrep-recover, then
# --wsrep_start_position=uuid:seqno), so it rejoins by IST, not a full SST.
# A lone surviving node left non-Primary (2 of 3 killed) is made Primary
# again (pc.bootstrap=YES) before another node joins it.
#
# Failure detection is faster than Galera's defaults (keepalive PT1S, suspect
# PT5S, inactive PT15S, install PT7.5S): evs.suspect_timeout=PT2S,
# evs.inactive_timeout=PT4S, evs.install_timeout=PT4S, so a killed node is
# evicted after ~2-3 s; evs.keepalive_period=PT0.5S because Galera wants it
# below suspect_timeout/3 (else the gcomm thread dies at start, logged as
# "parameter 'evs.keepalive_period' ... out of range" or, racing, as "Failed
# to set thread schedparams other:0: ... (No such process)").
#
# Database ar_test and the application user `app` (@127.0.0.1, @localhost:
# ALL on ar_test.*) are created once, on node1 at bootstrap.
set -euo pipefail
# Without job control a background child is not a process-group leader, so
# setsid execs in place instead of forking and $! is mariadbd's own pid.
set +m

PROG=${0##*/}
# shellcheck source=scripts/lib/instances.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/instances.sh"
SYNC_TIMEOUT=${AR_GALERA_SYNC_TIMEOUT:-120} # seconds for a node to reach Synced
STOP_TIMEOUT=60                             # seconds between SIGTERM and SIGKILL
NODES=(1 2 3)

APP_USER=app
APP_PASSWORD=app_pass
DATABASE=ar_test
MARKER=.ar-galera # in DIR: this script made DIR (clean refuses others)
READY=.ready      # in DIR: set-up completed once
EVS_OPTIONS="evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;evs.inactive_timeout=PT4S;evs.install_timeout=PT4S"

usage() {
    cat >&2 <<EOF
usage: $PROG start|stop|status|clean DIR
       $PROG start|stop|kill|status DIR N      (N = 1, 2 or 3)
EOF
    exit 2
}

# galera-4 (the provider) and rsync (the SST method) are not in
# scripts/ensure-deps.sh: installed here, as root, when missing.
ensure_packages() {
    local p status missing=()
    for p in galera-4 rsync; do
        # shellcheck disable=SC2016 # ${Status} is dpkg-query's, not ours
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if ((EUID != 0)); then
        die "missing packages; install them as root with: apt-get install -y ${missing[*]}"
    fi
    note "installing ${missing[*]}"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" >&2
}

find_provider() {
    local f
    for f in /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so \
        /usr/lib/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so; do
        if [[ -r $f ]]; then
            echo "$f"
            return 0
        fi
    done
    die "libgalera_smm.so not found (is galera-4 installed?)"
}

node_dir() {
    echo "$DIR/node$1"
}

node_running() {
    local nd pid
    nd=$(node_dir "$1")
    pid=$(read_pid "$nd") || return 1
    is_our_server "$pid" "$nd"
}

# A free port, not one of the cluster's ports already chosen.
pick_cluster_port() {
    pick_port "${SQL_PORT[@]}" "${GCOMM_PORT[@]}" "${IST_PORT[@]}" "${SST_PORT[@]}"
}

# Ports and the cluster name live in DIR/ports.sh (bash arrays, index = node).
declare -a SQL_PORT=() GCOMM_PORT=() IST_PORT=() SST_PORT=()
CLUSTER_NAME=""

pick_node_ports() {
    local n=$1
    SQL_PORT[n]=0 GCOMM_PORT[n]=0 IST_PORT[n]=0 SST_PORT[n]=0
    # One at a time: each pick avoids the ones before it.
    SQL_PORT[n]=$(pick_cluster_port)
    GCOMM_PORT[n]=$(pick_cluster_port)
    IST_PORT[n]=$(pick_cluster_port)
    SST_PORT[n]=$(pick_cluster_port)
}

# Plain assignments (not declare -p): load_ports sources the file inside a
# function, where declare would make locals.
save_ports() {
    local n
    {
        printf 'SQL_PORT=(); GCOMM_PORT=(); IST_PORT=(); SST_PORT=()\n'
        for n in "${NODES[@]}"; do
            printf 'SQL_PORT[%s]=%s GCOMM_PORT[%s]=%s IST_PORT[%s]=%s SST_PORT[%s]=%s\n' \
                "$n" "${SQL_PORT[n]}" "$n" "${GCOMM_PORT[n]}" "$n" "${IST_PORT[n]}" "$n" "${SST_PORT[n]}"
        done
        printf 'CLUSTER_NAME=%q\n' "$CLUSTER_NAME"
    } >"$DIR/ports.sh"
}

load_ports() {
    [[ -r $DIR/ports.sh ]] || die "no cluster set up in $DIR (run: $PROG start $DIR)"
    # shellcheck source=/dev/null
    . "$DIR/ports.sh"
}

write_cnf() {
    local n=$1 nd m addr=""
    nd=$(node_dir "$n")
    for m in "${NODES[@]}"; do
        addr+="${addr:+,}127.0.0.1:${GCOMM_PORT[m]}"
    done
    {
        echo "# Generated by $PROG; used only via --defaults-file."
        echo "[mysqld]"
        echo "datadir=$nd/data"
        echo "socket=$nd/mysql.sock"
        echo "pid-file=$nd/mariadbd.pid"
        echo "log-error=$nd/error.log"
        # Private tmpdir: a starting mariadbd deletes every #sql* file in
        # its tmpdir, including the temporary tables of other servers
        # sharing /tmp (parallel install-db runs failed on that).
        echo "tmpdir=$nd/tmp"
        echo "port=${SQL_PORT[n]}"
        echo "bind-address=127.0.0.1"
        # rsync SST needs a non-root server (see the header).
        if ((EUID == 0)); then echo "user=mysql"; fi
        echo "skip-name-resolve"
        echo "max_connections=100"
        echo "max_allowed_packet=64M"
        # Small footprint: both topologies run at once on a 2-core CI box.
        echo "innodb_buffer_pool_size=32M"
        echo "innodb_log_file_size=16M"
        echo "innodb_flush_log_at_trx_commit=2"
        echo "innodb_autoinc_lock_mode=2"
        echo "performance_schema=OFF"
        echo "default_storage_engine=InnoDB"
        echo "binlog_format=ROW"
        echo "character-set-server=utf8mb4"
        echo "collation-server=utf8mb4_unicode_ci"
        echo "# Galera"
        echo "wsrep_on=ON"
        echo "wsrep_provider=$PROVIDER"
        echo "wsrep_cluster_name=$CLUSTER_NAME"
        echo "wsrep_cluster_address=gcomm://$addr"
        echo "wsrep_node_name=node$n"
        echo "wsrep_node_address=127.0.0.1:${GCOMM_PORT[n]}"
        echo "wsrep_node_incoming_address=127.0.0.1:${SQL_PORT[n]}"
        echo "wsrep_sst_method=rsync"
        echo "wsrep_sst_receive_address=127.0.0.1:${SST_PORT[n]}"
        echo "wsrep_provider_options=\"gmcast.listen_addr=tcp://127.0.0.1:${GCOMM_PORT[n]};ist.recv_addr=127.0.0.1:${IST_PORT[n]};gcache.size=32M;$EVS_OPTIONS\""
        # Handy for debugging: mariadb --defaults-file=DIR/nodeN/my.cnf
        echo "[client]"
        echo "socket=$nd/mysql.sock"
        echo "user=root"
    } >"$nd/my.cnf"
}

write_all_cnfs() {
    local n
    for n in "${NODES[@]}"; do write_cnf "$n"; done
}

# As root the servers run as mysql: hand the node dirs over.
own_dirs() {
    local n
    ((EUID == 0)) || return 0
    for n in "${NODES[@]}"; do chown -R mysql:mysql "$(node_dir "$n")"; done
}

check_mysql_can_reach() {
    ((EUID == 0)) || return 0
    id mysql >/dev/null 2>&1 || die "no user mysql (is mariadb-server installed?)"
    runuser -u mysql -- test -w "$(node_dir 1)" ||
        die "user mysql cannot write $(node_dir 1): make $DIR and its parents traversable (chmod o+x)"
}

# Start mariadbd in its own session with extra options; record its pid.
launch() {
    local n=$1
    shift
    launch_server "$(node_dir "$n")" "$@"
}

# sql N SQL: runs SQL as root through node N's socket; -N -B output.
sql() {
    local client
    client=$(need_bin mariadb mysql)
    "$client" --no-defaults --connect-timeout=2 -uroot -S "$(node_dir "$1")/mysql.sock" \
        -N -B -e "$2"
}

wsrep_status() {
    sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | cut -f2
}

# The failed node's last lines, then every node's errors (a joiner's SST
# failure is often the donor's): the errors come last, where a CI summary
# that keeps only the tail of the output still shows them.
show_log() {
    local nd m
    nd=$(node_dir "$1")
    echo "$PROG: last lines of $nd/error.log:" >&2
    tail -n 60 "$nd/error.log" >&2 2>/dev/null || true
    for m in "${NODES[@]}"; do
        nd=$(node_dir "$m")
        [[ -f $nd/error.log ]] || continue
        echo "$PROG: errors in node$m's log:" >&2
        grep -E '\[ERROR\]|WSREP_SST: \[ERROR\]|Aborting|signal [0-9]+' "$nd/error.log" 2>/dev/null |
            tail -n 15 >&2 || true
    done
}

# Wait until node N is Synced in a Primary component; 0 = ok, 1 = died,
# 2 = timed out.
wait_synced() {
    local n=$1 nd pid deadline state
    nd=$(node_dir "$n")
    pid=$(read_pid "$nd") || return 1
    deadline=$((SECONDS + SYNC_TIMEOUT))
    while ((SECONDS < deadline)); do
        is_our_server "$pid" "$nd" || return 1
        if [[ -S $nd/mysql.sock ]]; then
            state=$(wsrep_status "$n" wsrep_local_state_comment) || state=""
            if [[ $state == Synced && $(wsrep_status "$n" wsrep_cluster_status) == Primary ]]; then
                return 0
            fi
        fi
        sleep 0.1
    done
    return 2
}


# SIGKILL mariadbd's whole session: the SST script and rsync die with it.
kill_group() {
    local nd=$1 pid=$2
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$nd" "$pid" 30 || die "pid $pid survived SIGKILL"
}

# grastate.dat fields: seqno, safe_to_bootstrap, uuid.
grastate() {
    local f
    f=$(node_dir "$1")/data/grastate.dat
    [[ -r $f ]] || return 1
    sed -n "s/^$2:[[:space:]]*//p" "$f" | head -n1
}

# After a crash grastate.dat has seqno -1: recover the position from InnoDB
# the way galera_recovery does. Echoes uuid:seqno, or nothing.
recover_position() {
    local n=$1 nd mariadbd pos
    nd=$(node_dir "$n")
    mariadbd=$(need_bin mariadbd mysqld)
    rm -f "$nd/recover.log"
    if ! "$mariadbd" --defaults-file="$nd/my.cnf" --wsrep-recover \
        --log-error="$nd/recover.log" >>"$nd/mariadbd.out" 2>&1; then
        note "mariadbd --wsrep-recover failed on node$n:"
        tail -n 40 "$nd/recover.log" >&2 2>/dev/null || true
        return 1
    fi
    pos=$(sed -n 's/.*WSREP: Recovered position: *\([^ ]*\).*/\1/p' "$nd/recover.log" 2>/dev/null |
        tail -n1)
    # 00000000-...:-1 (killed during its SST) tells nothing: let it SST.
    if [[ $pos =~ ^[0-9a-f-]{36}:[0-9]+$ && $pos != 00000000-0000-0000-0000-000000000000:* ]]; then
        echo "$pos"
    fi
}

# The seqno this node last committed (grastate.dat, else recovered).
node_seqno() {
    local n=$1 seqno pos
    seqno=$(grastate "$n" seqno) || seqno=-1
    if [[ $seqno == -1 || -z $seqno ]]; then
        pos=$(recover_position "$n") || pos=""
        seqno=${pos##*:}
        [[ -n $seqno ]] || seqno=-1
    fi
    echo "$seqno"
}

# start_node N [bootstrap]: launch node N (from its recovered position when
# it crashed) and wait until it is Synced; dies with the log on failure.
start_node() {
    local n=$1 mode=${2:-join} nd args=() seqno pos rc off t0
    nd=$(node_dir "$n")
    t0=$EPOCHREALTIME
    if node_running "$n"; then
        note "node$n already running (pid $(read_pid "$nd"))"
    else
        [[ $mode == bootstrap ]] && args+=(--wsrep-new-cluster)
        seqno=$(grastate "$n" seqno) || seqno=""
        if [[ $seqno == -1 ]]; then
            pos=$(recover_position "$n") || pos=""
            if [[ -n $pos ]]; then
                note "node$n crashed; recovered position $pos"
                args+=("--wsrep_start_position=$pos")
            fi
        fi
        off=$(log_size "$nd")
        launch "$n" "${args[@]}"
    fi
    rc=0
    wait_synced "$n" || rc=$?
    if ((rc != 0)); then
        if ((rc == 2)); then
            note "node$n not Synced after ${SYNC_TIMEOUT}s (state: $(wsrep_status "$n" wsrep_local_state_comment || true))"
        else
            note "node$n failed to start"
        fi
        show_log "$n"
        local pid
        if pid=$(read_pid "$nd") && is_our_server "$pid" "$nd"; then kill_group "$nd" "$pid"; fi
        rm -f "$nd/server.pid"
        # Tell the fresh set-up's retry loop about a port taken under us.
        if [[ -n ${off:-} ]] && bind_failed_since "$nd" "$off"; then return 3; fi
        return 1
    fi
    note "node$n Synced ($mode) in $(elapsed "$t0") s"
}

elapsed() {
    local now=$EPOCHREALTIME
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

# stop_node N [SECONDS]: SIGTERM, then SIGKILL after SECONDS (STOP_TIMEOUT).
stop_node() {
    local n=$1 limit=${2:-$STOP_TIMEOUT} nd pid
    nd=$(node_dir "$n")
    [[ -d $nd ]] || return 0
    if pid=$(read_pid "$nd") && is_our_server "$pid" "$nd"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$nd" "$pid" "$limit"; then
            note "node$n ($pid) ignored SIGTERM for ${limit}s; killing"
            kill_group "$nd" "$pid"
        fi
    fi
    rm -f "$nd/server.pid"
}

kill_node() {
    local n=$1 nd pid
    nd=$(node_dir "$n")
    if pid=$(read_pid "$nd") && is_our_server "$pid" "$nd"; then
        kill_group "$nd" "$pid"
    fi
    rm -f "$nd/server.pid"
}

running_nodes() {
    local n
    for n in "${NODES[@]}"; do
        if node_running "$n"; then echo "$n"; fi
    done
}

# Before a node joins, the running nodes must form a Primary component that
# has already evicted the dead ones (cluster size = nodes running): joining
# while a killed node is still counted (evs.suspect_timeout) took twice as
# long, and a Primary view still counting them can turn non-Primary under
# the joiner. A lone survivor of a 2-of-3 crash is non-Primary (every query:
# error 1047); it holds the latest data, so it is bootstrapped in place
# (pc.bootstrap=YES).
ensure_primary() {
    local running=("$@") k=$# n status size deadline majority=""
    deadline=$((SECONDS + 20))
    while :; do
        majority=""
        for n in "${running[@]}"; do
            status=$(wsrep_status "$n" wsrep_cluster_status) || status=""
            size=$(wsrep_status "$n" wsrep_cluster_size) || size=""
            [[ $status == Primary && $size =~ ^[0-9]+$ ]] || continue
            ((size == k)) && return 0
            ((k * 2 > size)) && majority=$n
        done
        if ((k == 1)) && [[ $status == non-Primary ]]; then
            n=${running[0]}
            note "node$n is alone and non-Primary: SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'"
            sql "$n" "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'" ||
                die "pc.bootstrap on node$n failed"
            wait_synced "$n" || die "node$n did not become Primary and Synced"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            # Still counting a dead node, but a majority: join anyway.
            [[ -n $majority ]] && return 0
            die "running nodes (${running[*]}) form no Primary component; stop them and run: $PROG start $DIR"
        fi
        sleep 0.2
    done
}

write_env() {
    {
        printf 'export AR_GALERA_HOST=127.0.0.1\n'
        printf 'export AR_GALERA_PORTS="%s %s %s"\n' "${SQL_PORT[1]}" "${SQL_PORT[2]}" "${SQL_PORT[3]}"
        printf 'export AR_GALERA_USER=%s\n' "$APP_USER"
        printf 'export AR_GALERA_PASSWORD=%s\n' "$APP_PASSWORD"
        printf 'export AR_GALERA_DATABASE=%s\n' "$DATABASE"
        printf 'export AR_GALERA_DIR=%q\n' "$DIR"
    } >"$DIR/env.sh"
}

install_db() {
    local n=$1 nd install
    nd=$(node_dir "$n")
    install=$(need_bin mariadb-install-db mysql_install_db)
    # --defaults-file must come first (else /etc/mysql and its [galera] group
    # are read); --skip-name-resolve avoids DNS on CI.
    "$install" --defaults-file="$nd/my.cnf" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve >"$nd/install.log" 2>&1
}

# A fresh node that failed to start: wiped, installed again, new ports.
reinstall_node() {
    local n=$1 nd
    nd=$(node_dir "$n")
    kill_node "$n"
    rm -rf "${nd:?}/data" "${nd:?}/tmp"
    mkdir -p "$nd/tmp"
    pick_node_ports "$n"
    save_ports
    write_all_cnfs
    own_dirs
    if ! install_db "$n"; then
        note "mariadb-install-db failed for node$n:"
        tail -n 40 "$nd/install.log" >&2
        exit 1
    fi
}

# First start: ports, configs, install-db x3, bootstrap node1, users, joiners.
setup_fresh() {
    local n nd pids=() rc attempt
    for n in "${NODES[@]}"; do
        stop_node "$n"
        nd=$(node_dir "$n")
        rm -rf "${nd:?}"
        mkdir -p "$nd/tmp"
    done
    rm -f "$DIR/env.sh" "$DIR/$READY" "$DIR/ports.sh"
    CLUSTER_NAME="ar-$(basename "$DIR")-$RANDOM"
    for n in "${NODES[@]}"; do pick_node_ports "$n"; done
    save_ports
    write_all_cnfs
    own_dirs
    check_mysql_can_reach

    # The three install-db runs at once (~1 s each).
    for n in "${NODES[@]}"; do
        install_db "$n" &
        pids[n]=$!
    done
    rc=0
    for n in "${NODES[@]}"; do
        if ! wait "${pids[n]}"; then
            note "mariadb-install-db failed for node$n:"
            tail -n 40 "$(node_dir "$n")/install.log" >&2
            show_log "$n"
            rc=1
        fi
    done
    ((rc == 0)) || exit 1

    for n in "${NODES[@]}"; do
        for attempt in 1 2 3 4 5; do
            rc=0
            if ((n == 1)); then start_node 1 bootstrap || rc=$?; else start_node "$n" || rc=$?; fi
            ((rc == 0)) && break
            # A port taken between our check and the bind: new ports for
            # this node, every config rewritten (the gcomm list changes).
            if ((rc == 3 && attempt < 5)); then
                note "node$n: a port was taken; retrying with new ports"
                pick_node_ports "$n"
                save_ports
                write_all_cnfs
                own_dirs
                continue
            fi
            # Any other failure of a fresh node (once on CI a joiner died
            # in its first SST, cause not kept): its log is shown above;
            # one more try from a new datadir on new ports, then give up.
            if ((rc != 3 && attempt < 2)); then
                note "node$n did not come up (attempt $attempt); once more from a new datadir on new ports"
                reinstall_node "$n"
                continue
            fi
            exit 1
        done
        if ((n == 1)); then
            sql 1 "
                CREATE DATABASE $DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
                CREATE USER '$APP_USER'@'127.0.0.1' IDENTIFIED BY '$APP_PASSWORD';
                CREATE USER '$APP_USER'@'localhost' IDENTIFIED BY '$APP_PASSWORD';
                GRANT ALL PRIVILEGES ON $DATABASE.* TO '$APP_USER'@'127.0.0.1';
                GRANT ALL PRIVILEGES ON $DATABASE.* TO '$APP_USER'@'localhost';
            " || die "creating $DATABASE and $APP_USER on node1 failed"
        fi
    done
    : >"$DIR/$READY"
}

# Whole-cluster (re)start with existing data.
restart_all() {
    local running n boot="" best=-1 seqno
    mapfile -t running < <(running_nodes)
    if ((${#running[@]} == 0)); then
        for n in "${NODES[@]}"; do
            if [[ $(grastate "$n" safe_to_bootstrap || true) == 1 ]]; then
                boot=$n
                break
            fi
        done
        if [[ -z $boot ]]; then
            # No clean last node (all crashed): the most advanced one.
            for n in "${NODES[@]}"; do
                seqno=$(node_seqno "$n")
                if ((seqno > best)); then
                    best=$seqno
                    boot=$n
                fi
            done
            [[ -n $boot ]] || boot=1
            note "no node is safe_to_bootstrap; bootstrapping node$boot (seqno $best)"
            sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' \
                "$(node_dir "$boot")/data/grastate.dat"
        fi
        start_node "$boot" bootstrap || exit 1
    else
        ensure_primary "${running[@]}"
    fi
    for n in "${NODES[@]}"; do
        node_running "$n" && continue
        start_node "$n" || exit 1
    done
}

setup_dir() {
    mkdir -p "$1"
    DIR=$(abs_dir "$1")
    if ((${#DIR} + 19 > 107)); then
        die "DIR path too long for a unix socket: $DIR/node1/mysql.sock"
    fi
}

require_setup() {
    [[ -f $DIR/$READY ]] || die "no cluster set up in $DIR (run: $PROG start $DIR)"
    load_ports
}

cmd_start() {
    local t0=$EPOCHREALTIME
    setup_dir "$1"
    if [[ ! -f $DIR/$MARKER && -n $(ls -A "$DIR") ]]; then
        die "refusing to use $DIR: not empty and not made by $PROG"
    fi
    ensure_packages
    PROVIDER=$(find_provider)
    : >"$DIR/$MARKER"
    # The servers run as mysql: DIR itself must let them through.
    ((EUID == 0)) && chmod o+x "$DIR"
    if [[ -f $DIR/$READY ]]; then
        load_ports
        restart_all
    else
        setup_fresh
    fi
    write_env
    note "cluster up in $(elapsed "$t0") s"
    cat "$DIR/env.sh"
}

cmd_start_node() {
    local n=$1 running=() m
    require_setup
    PROVIDER=$(find_provider)
    if node_running "$n"; then
        start_node "$n" || exit 1
        return 0
    fi
    for m in "${NODES[@]}"; do
        ((m != n)) && node_running "$m" && running+=("$m")
    done
    if ((${#running[@]} == 0)); then
        if [[ $(grastate "$n" safe_to_bootstrap || true) == 1 ]]; then
            start_node "$n" bootstrap || exit 1
            return 0
        fi
        die "no other node runs and node$n is not safe_to_bootstrap; restart the whole cluster with: $PROG start $DIR"
    fi
    ensure_primary "${running[@]}"
    # A joiner that died (an SST cut short) gets one more try: its state
    # transfer starts over.
    if ! start_node "$n"; then
        note "node$n did not come up; once more"
        start_node "$n" || exit 1
    fi
}

cmd_stop() {
    local n
    [[ -d $1 ]] || return 0
    DIR=$(abs_dir "$1")
    # One at a time, node1 last: it ends safe_to_bootstrap for the next start.
    for n in 3 2 1; do stop_node "$n"; done
}

cmd_status() {
    local n ok=0
    if [[ ! -d $1 ]]; then
        echo "not set up"
        return 1
    fi
    DIR=$(abs_dir "$1")
    shift
    local nodes=("${NODES[@]}")
    (($# == 0)) || nodes=("$1")
    for n in "${nodes[@]}"; do
        if node_running "$n"; then
            local state size
            state=$(wsrep_status "$n" wsrep_local_state_comment) || state="?"
            size=$(wsrep_status "$n" wsrep_cluster_size) || size="?"
            echo "node$n: running (pid $(read_pid "$(node_dir "$n")"), port" \
                "$(sed -n 's/^port=//p' "$(node_dir "$n")/my.cnf")), $state, cluster size $size"
            [[ $state == Synced ]] || ok=1
        else
            echo "node$n: not running"
            ok=1
        fi
    done
    return "$ok"
}

cmd_clean() {
    local n nd pid
    [[ -d $1 ]] || return 0
    DIR=$(abs_dir "$1")
    # Refuse to wipe a directory this script did not create.
    if [[ $DIR == / || (! -f $DIR/$MARKER && -n $(ls -A "$DIR")) ]]; then
        die "refusing to remove $DIR: not made by $PROG"
    fi
    # All at once (the data goes anyway): SIGTERM to each, then wait.
    for n in "${NODES[@]}"; do
        nd=$(node_dir "$n")
        if pid=$(read_pid "$nd") && is_our_server "$pid" "$nd"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    # A joiner in the middle of its SST ignores SIGTERM: no long wait here.
    for n in "${NODES[@]}"; do stop_node "$n" 10; done
    rm -rf "${DIR:?}"
}

DIR=""
PROVIDER=""
case $# in
2)
    case $1 in
    start | stop | status | clean) "cmd_$1" "$2" ;;
    *) usage ;;
    esac
    ;;
3)
    [[ $3 =~ ^[123]$ ]] || usage
    [[ -d $2 ]] || die "no such directory: $2"
    DIR=$(abs_dir "$2")
    case $1 in
    start) cmd_start_node "$3" ;;
    stop)
        require_setup
        stop_node "$3"
        ;;
    kill)
        require_setup
        kill_node "$3"
        ;;
    status) cmd_status "$2" "$3" ;;
    *) usage ;;
    esac
    ;;
*) usage ;;
esac

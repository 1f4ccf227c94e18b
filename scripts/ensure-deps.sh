#!/usr/bin/env bash
# Make sure the Debian packages needed to build and test are installed.
# usage: ensure-deps.sh [EXTRA-PACKAGE...]
# Optional packages are passed as extras by the targets that need them:
#   lua-ldoc    make docs (the API reference)
#   sysbench    make bench (W8's floor: sysbench's own oltp_read_write)
# Quiet when all are present; installs missing ones as root; otherwise prints
# the apt-get line to run and fails.
set -euo pipefail

pkgs=(
    mariadb-server libmariadb-dev
    lua5.4 liblua5.4-dev lua-cjson lua-busted luarocks lua-sql-mysql
    openssl gcc make pkg-config valgrind
    lua-cqueues lua-luv   # the event-loop adapters (issue 17), for their specs
    "$@"
)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "${0##*/}: dpkg-query not found; this script supports Debian only" >&2
    exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
    # Status is "install ok installed" only for fully installed packages;
    # unknown packages make dpkg-query fail, which also means missing.
    # shellcheck disable=SC2016 # ${Status} is dpkg-query's, not ours
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done

((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
    echo "${0##*/}: missing packages; install them as root with:" >&2
    echo "apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "${0##*/}: installing ${missing[*]}" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

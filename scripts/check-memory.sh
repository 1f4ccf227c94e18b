#!/usr/bin/env bash
# Runs the specs under valgrind (by default the whole suite: the C core's
# own specs and every spec of the Lua layers through the MySQL provider):
# any definite/indirect leak or memory error fails the run. Specs tagged
# `slow` (a million streamed rows, server kills) are skipped here: valgrind
# makes them take minutes and they add no coverage of the C code.
# Usage: scripts/check-memory.sh [spec paths...]
# (busted is run by lua5.4 itself, never with --lua=: that option makes busted
# re-run itself in a child process, which valgrind would not be watching)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  echo "check-memory: valgrind is not installed (apt-get install valgrind)" >&2
  exit 1
fi

log=$(mktemp /tmp/ar-valgrind-XXXXXX.log)
trap 'rm -f "$log"' EXIT
export AR_TESTSUITE_PROVIDER="${AR_TESTSUITE_PROVIDER:-providers.mysql}"
paths=("$@")
if [ "${#paths[@]}" -eq 0 ]; then paths=(spec lua/activerecord/testsuite); fi
status=0
# --trace-children=no: specs may spawn helper processes (mariadb client).
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
  --suppressions=scripts/valgrind.supp --log-file="$log" \
  lua5.4 /usr/bin/busted -o TAP --cpath="${AR_CORE_CPATH:-build/?.so}" \
  --exclude-tags=slow,novalgrind "${paths[@]}" \
  > "$log.tap" || status=$?

passed=$(grep -c '^ok ' "$log.tap" || true)
failed=$(grep -c '^not ok ' "$log.tap" || true)
grep -v 'client switching stacks\|further instances of this message\|to suppress, use: --max-stackframe\|^==[0-9]*== *$' "$log" || true
if [ "$status" -eq 99 ] || grep -q 'ERROR SUMMARY: [1-9]' "$log"; then
  echo "check-memory: valgrind found errors or leaks (see above)" >&2
  grep '^not ok' "$log.tap" || true
  rm -f "$log.tap"
  exit 1
fi
# each failure with busted's diagnostics (the "# ..." lines after it), so a
# CI log says why, not only which
awk '/^not ok/ { show = 1; print; next } /^(ok|not ok) / { show = 0 } show && /^#/ { print }' "$log.tap" || true
rm -f "$log.tap"
echo "check-memory: no leaks or memory errors in $passed specs ($failed failed)"
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]

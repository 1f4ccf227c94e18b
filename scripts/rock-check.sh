#!/usr/bin/env bash
# Check the rockspec end to end: `luarocks make` into a throwaway tree, then
# load the installed modules from outside the checkout and, when a server is
# configured (AR_MYSQL_*, as `make rock-check` arranges), run every example
# against the installed copy.
# usage: rock-check.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
rockspec=rockspec/activerecord-scm-1.rockspec

T=$(mktemp -d /tmp/ar-rock-XXXXXX)
trap 'rm -rf "$T"' EXIT
lr=(luarocks --lua-version=5.4 --tree="$T")

# lua-cjson comes from Debian, not from the rock's dependencies.
"${lr[@]}" make --deps-mode=none "$rockspec"

lr_path=$("${lr[@]}" path --lr-path)
lr_cpath=$("${lr[@]}" path --lr-cpath)

# Lua 5.4 reads LUA_PATH_5_4 in preference to LUA_PATH, so set those and
# drop the rest. The trailing ";;" appends the default system paths (cjson).
# cd / so nothing can be picked up from the checkout via "./?.lua".
cd /
env -u LUA_PATH -u LUA_CPATH \
    LUA_PATH_5_4="$lr_path;;" LUA_CPATH_5_4="$lr_cpath;;" \
    lua5.4 - "$T" <<'LUA'
local tree = arg[1]
local function inside(what, path, file)
   local found = assert(package.searchpath(what, path))
   assert(found:sub(1, #tree + 1) == tree .. "/",
      what .. " resolves outside the rock tree: " .. found)
   if file then
      assert(found:match(file .. "$"), what .. " resolves to " .. found)
   end
   return found
end
local lua_file = inside("activerecord", package.path)
local so_file = inside("activerecord.backend.mysql.core", package.cpath,
   "/activerecord/backend/mysql/core%.so")
assert(require("activerecord"), "require('activerecord') returned nothing")
assert(require("activerecord.backend.mysql.core"),
   "require('activerecord.backend.mysql.core') returned nothing")
require("cjson")
print("rock-check: OK")
print("  " .. lua_file)
print("  " .. so_file)
LUA

# The ar-migrate command, installed (and wrapped by luarocks) in the tree's
# bin; the throwaway tree is not one luarocks knows, hence the paths.
installed() {
  env -u LUA_PATH -u LUA_CPATH \
      LUA_PATH_5_4="$lr_path;;" LUA_CPATH_5_4="$lr_cpath;;" "$T/bin/ar-migrate" "$@"
}
test -x "$T/bin/ar-migrate" || { echo "rock-check: $T/bin/ar-migrate not installed" >&2; exit 1; }
installed --help | grep -q '^usage: ar-migrate' \
  || { echo "rock-check: the installed ar-migrate --help failed" >&2; exit 1; }
installed --dir "$T/migrations" new rock_check > /dev/null
echo "rock-check: ar-migrate installed in $T/bin"

if [ -n "${AR_MYSQL_HOST:-}${AR_MYSQL_SOCKET:-}" ]; then
  # the migration written above, applied and reverted by the installed command
  for command in up status down; do
    installed --dir "$T/migrations" "$command" > /dev/null
  done
  echo "rock-check: ar-migrate new/up/status/down ran from the installed rock"
  for example in "$repo"/examples/*.lua; do
    # the event-loop server serves until stopped: event_loop_load.lua runs it
    [ "$(basename "$example")" = event_loop_server.lua ] && continue
    echo "rock-check: $(basename "$example") from the installed rock"
    env -u LUA_PATH -u LUA_CPATH \
        LUA_PATH_5_4="$lr_path;;" LUA_CPATH_5_4="$lr_cpath;;" \
        lua5.4 "$example" > /dev/null
  done
  echo "rock-check: every example ran from the installed rock"
fi

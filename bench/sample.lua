-- bench/sample.lua -- where an ORM workload's Lua time goes: a Lua VM
-- instruction sampler (a debug.sethook count hook every 100 VM instructions,
-- charging the running Lua function and its file) over the timed region of
-- one bench/orm.lua workload.  C functions are not seen (callgrind is the
-- measure for those); the shares are of Lua VM instructions.
--
-- Usage (from the repo root, env as for bench/orm.lua):
--   LUA_CPATH='build/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' \
--     lua5.4 bench/sample.lua W8 [top-n]
-- Prints the workload's own line, then the top files and functions to stderr.

local dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local wl = assert(arg[1], "usage: bench/sample.lua W<n> [top-n]")
local topn = math.tointeger(tonumber(arg[2] or "")) or 30
local by_fn, by_file, total = {}, {}, 0
local getinfo, sethook = debug.getinfo, debug.sethook

local function hook()
  local info = getinfo(2, "Sn")
  if not info then return end
  local key = info.short_src .. ":" .. tostring(info.linedefined) .. " " .. (info.name or "?")
  by_fn[key] = (by_fn[key] or 0) + 1
  by_file[info.short_src] = (by_file[info.short_src] or 0) + 1
  total = total + 1
end

-- the workloads read the clock exactly twice, at the start and the end of
-- the timed region: the first read turns the hook on, the second off
local common = require("common")
local monotonic_clock = common.monotonic_clock
common.monotonic_clock = function(preferred)
  local clock, reads = monotonic_clock(preferred), 0
  return function()
    reads = reads + 1
    if reads == 1 then sethook(hook, "", 100) else sethook() end
    return clock()
  end
end

-- bench/orm.lua reads its workload names from the global `arg`
local orm = assert(loadfile(dir .. "/orm.lua"))
_G.arg = { [0] = dir .. "/orm.lua", wl }
orm(wl)
sethook()

local function top(t, n, title)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return t[a] > t[b] end)
  io.stderr:write("-- ", title, " (", total, " samples)\n")
  for i = 1, math.min(n, #keys) do
    io.stderr:write(string.format("%5.1f%%  %s\n", 100 * t[keys[i]] / total, keys[i]))
  end
end
top(by_file, 15, "by file")
top(by_fn, topn, "by function")

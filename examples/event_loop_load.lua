-- A load run against examples/event_loop_server.lua: starts the server as a
-- child process (a pool of 10 connections, one OS thread) and fires
-- concurrent HTTP requests at it from cqueues client coroutines, to show
-- requests served concurrently:
--   * 100 concurrent GET /slow (each a SELECT SLEEP(0.05)): about 0.5 s with
--     10 connections, where one at a time takes about 5 s (10 measured
--     one after another give the per-request time);
--   * 50 concurrent POST /counter/<name> (each a locked increment in a
--     transaction): the final count is exactly 50.
-- Prints the figures; exits non-zero when a request fails, the count is
-- wrong, or the concurrent run is not clearly faster than serial.
--
--   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
--     scripts/with-test-server.sh lua5.4 examples/event_loop_load.lua
-- (or against your own server: make db, then the same without with-test-server.sh)
local cqueues = require("cqueues")
local socket = require("cqueues.socket")
local cjson = require("cjson.safe")

local SLOW, SERIAL, POSTS, POOL = 100, 10, 50, 10
local TOTAL = 1 + SLOW + SERIAL + POSTS + 1 + 1 -- requests the server answers before it exits

local here = (arg and arg[0] or "examples/event_loop_load.lua"):match("^(.*)[/\\]") or "."
local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- the server: a child process that exits after TOTAL requests (or 60 s)
local cmd = ("echo $$; LUA_PATH=%s LUA_CPATH=%s AR_EXAMPLE_POOL=%d AR_EXAMPLE_SECONDS=60 exec %s %s 0 %d")
  :format(shell_quote(package.path), shell_quote(package.cpath), POOL, os.getenv("AR_LUA") or "lua5.4",
    shell_quote(here .. "/event_loop_server.lua"), TOTAL)
local server = assert(io.popen(cmd, "r"))
local pid = server:read("l")
local banner = server:read("l")
local port = banner and tonumber(banner:match(":(%d+)/"))
if not port then
  io.stderr:write("event_loop_load: the server did not start: ", tostring(banner), "\n", server:read("a") or "", "\n")
  server:close()
  os.exit(1)
end
print(banner)

local failures = {}
local function fail(msg)
  failures[#failures + 1] = msg
  io.stderr:write("FAIL: ", msg, "\n")
end

-- One HTTP/1.1 request on a connection of its own -> status, decoded body
local function request(method, path, body)
  local con = assert(socket.connect{ host = "127.0.0.1", port = port })
  con:setmode("b", "bf")
  con:settimeout(30)
  body = body or ""
  con:write(("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s")
    :format(method, path, #body, body))
  con:flush()
  local status_line = con:read("*l")
  local status = status_line and tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  local length
  while true do
    local h = con:read("*l")
    if not h or h == "" or h == "\r" then break end
    local n = h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  local text = length and con:read(length)
  con:close()
  return status, text and cjson.decode(text), text
end

local function checked(method, path, body)
  local status, doc, text = request(method, path, body)
  if status ~= 200 then fail(("%s %s: status %s %s"):format(method, path, tostring(status), tostring(text))) end
  return doc
end

-- runs n copies of fn(i) at once; returns the wall time until all finished
local function concurrently(n, fn)
  local cq = cqueues.new()
  local t0 = cqueues.monotime()
  for i = 1, n do cq:wrap(fn, i) end
  local ok, err = cq:loop()
  if not ok then fail(tostring(err)) end
  return cqueues.monotime() - t0
end

local function run()
  checked("GET", "/stats") -- the server is up and its table exists

  -- 10 one after another: the time one request takes
  local serial = concurrently(1, function()
    for _ = 1, SERIAL do checked("GET", "/slow") end
  end)
  local per_request = serial / SERIAL
  print(("%d GET /slow one after another: %.3f s (%.1f ms each; %d would take %.1f s)"):format(SERIAL, serial,
    per_request * 1000, SLOW, per_request * SLOW))

  -- 100 at once
  local ok_count = 0
  local elapsed = concurrently(SLOW, function()
    local doc = checked("GET", "/slow")
    if doc and doc.slept then ok_count = ok_count + 1 end
  end)
  print(("%d concurrent GET /slow (SELECT SLEEP(0.05), pool of %d): %.3f s, %d ok, %.1fx faster than serial")
    :format(SLOW, POOL, elapsed, ok_count, per_request * SLOW / elapsed))
  if ok_count ~= SLOW then fail(("%d of %d /slow requests succeeded"):format(ok_count, SLOW)) end
  -- the floor with 10 connections is SLOW / POOL * 0.05 = 0.5 s; serial is 5 s
  if elapsed > 2.5 or elapsed > per_request * SLOW / 2 then
    fail(("%d concurrent requests took %.3f s: not served concurrently"):format(SLOW, elapsed))
  end

  -- 50 concurrent locked increments of one counter
  local name = ("load-%d-%d"):format(os.time(), math.random(1, 1e6))
  local post_ok = 0
  local post_elapsed = concurrently(POSTS, function()
    local doc = checked("POST", "/counter/" .. name)
    if doc and doc.hits then post_ok = post_ok + 1 end
  end)
  local final = checked("GET", "/counter/" .. name)
  local hits = final and final.hits and (math.tointeger(final.hits) or final.hits)
  print(("%d concurrent POST /counter/%s: %.3f s; the counter reads %s"):format(POSTS, name, post_elapsed,
    tostring(hits)))
  if post_ok ~= POSTS then fail(("%d of %d POSTs succeeded"):format(post_ok, POSTS)) end
  if hits ~= POSTS then fail(("the counter reads %s after %d increments"):format(tostring(hits), POSTS)) end

  local stats = checked("GET", "/stats")
  if stats and stats.pool then
    local p = stats.pool
    print(("server pool: size %d, %d connections opened, %d checkouts waited, %d timeouts"):format(p.size,
      p.created, p.waits, p.timeouts))
    if p.created > POOL then fail(("the pool opened %d connections (size %d)"):format(p.created, POOL)) end
    if p.timeouts > 0 then fail(p.timeouts .. " checkouts timed out") end
  end
end

local ok, err = pcall(run)
if not ok then fail(tostring(err)) end
if #failures > 0 then os.execute("kill " .. pid .. " 2>/dev/null") end
local rest = server:read("a")
local exited = server:close()
io.write(rest)
if #failures == 0 and not exited then fail("the server did not exit cleanly") end
if #failures > 0 then
  print(("load run FAILED (%d problems)"):format(#failures))
  os.exit(1)
end
print("load run ok: requests were served concurrently and every increment counted")

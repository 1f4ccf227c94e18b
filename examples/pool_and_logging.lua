-- The connection pool and the statement log: pool statistics while
-- coroutines compete for two connections, what an exhausted pool does, and a
-- slow-query log built from the `log` hook with `slow_query_seconds`.
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/pool_and_logging.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")

local function connect(extra)
  return ar.connect(ar.config_from_env(extra))
end

local function show_stats(label, s)
  print(("%s: size=%d open=%d in_use=%d idle=%d waits=%d timeouts=%d created=%d closed=%d"):format(label,
    s.size, s.open, s.in_use, s.idle, s.waits, s.timeouts, s.created, s.closed))
end

-- ---- 1. five coroutines, two connections ------------------------------------

-- The C core blocks while it talks to the server, so a pool only waits when a
-- coroutine holds a connection across a yield (here: inside a transaction).
-- `pool.wait` is what checkout calls while every connection is in use; an
-- event loop passes one that yields to its scheduler, as this one does.
local db <close> = connect{
  pool = {
    size = 2,
    wait = function(left)
      if coroutine.isyieldable() then coroutine.yield("waiting") else ar.core.sleep(math.min(left, 0.005)) end
    end,
  },
}
show_stats("after connect", db:pool_stats())

ar.schema.create_table(db, "example_jobs", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("worker", { size = 20, nullable = false })
  t:integer("step", { nullable = false })
end, { force = true })

local workers = {}
for i = 1, 5 do
  workers[i] = coroutine.create(function()
    db:transaction(function(tx)
      tx:execute("INSERT INTO example_jobs (worker, step) VALUES (?, ?)", "w" .. i, 1)
      coroutine.yield("working") -- keeps its connection while suspended
      tx:execute("INSERT INTO example_jobs (worker, step) VALUES (?, ?)", "w" .. i, 2)
    end)
  end)
end

-- A round-robin scheduler: resume every live coroutine until all are done.
local peak = 0
repeat
  local alive = 0
  for _, co in ipairs(workers) do
    if coroutine.status(co) ~= "dead" then
      assert(coroutine.resume(co))
      alive = alive + 1
    end
  end
  peak = math.max(peak, db:pool_stats().in_use)
until alive == 0
show_stats("after 5 coroutines", db:pool_stats())
print(("at most %d connections in use at once; %d rows written by 5 transactions"):format(peak,
  db:query("SELECT COUNT(*) AS n FROM example_jobs")[1].n))

-- ---- 2. an exhausted pool ---------------------------------------------------

local small <close> = connect{ pool = { size = 1, checkout_timeout = 0.2 } }
local holder = coroutine.create(function()
  small:transaction(function() coroutine.yield() end)
end)
assert(coroutine.resume(holder)) -- now holds the only connection, suspended
local started = ar.core.monotime()
local ok, err = pcall(small.query, small, "SELECT 1 AS one")
print(("exhausted pool: %s after %.1f s: %s"):format(ok and "no error" or err.kind,
  ar.core.monotime() - started, ok and "" or err.message))
assert(coroutine.resume(holder)) -- the holder commits and returns its connection
show_stats("small pool", small:pool_stats())
print(("the connection is back: SELECT 1 = %d"):format(small:query("SELECT 1 AS one")[1].one))

-- ---- 3. a slow-query log ----------------------------------------------------

-- `log` sees every statement: { sql, params = n, seconds, rows, affected,
-- error, slow }. Parameter values are not in it unless log_params = true
-- (they may be secrets).
local slow_log, all_events = {}, 0
local logged <close> = connect{
  slow_query_seconds = 0.05,
  log = function(event)
    all_events = all_events + 1
    if event.slow then
      slow_log[#slow_log + 1] = ("[slow] %.2f s  %s  (%d parameter%s)"):format(event.seconds, event.sql,
        event.params, event.params == 1 and "" or "s")
    end
    if event.error then
      print(("[error] %s %d  %s"):format(event.error.kind, event.error.code, event.sql))
    end
  end,
}
logged:query("SELECT COUNT(*) AS n FROM example_jobs")
logged:query("SELECT SLEEP(?) AS slept", 0.1)
logged:query("SELECT worker FROM example_jobs WHERE step = ? LIMIT 1", 2)
pcall(logged.query, logged, "SELECT no_such_column FROM example_jobs")
print(("%d statements logged, %d slow:"):format(all_events, #slow_log))
for _, line in ipairs(slow_log) do print(line) end

-- With log_params the values come too (for development, not for production).
local verbose <close> = connect{
  log_params = true,
  log = function(event)
    if event.values then
      print(("[debug] %s  values: %s"):format(event.sql, table.concat({ tostring(event.values[1]) }, ", ")))
    end
  end,
}
verbose:query("SELECT COUNT(*) AS n FROM example_jobs WHERE worker = ?", "w3")

-- A failing log hook never turns a successful statement into an error.
local broken <close> = connect{ log = function() error("log sink is down") end }
print(("statement with a failing log hook still returns: %d"):format(broken:query("SELECT 42 AS x")[1].x))

ar.schema.drop_table(db, "example_jobs", { if_exists = true })
print("cleaned up")

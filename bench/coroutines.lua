-- bench/coroutines.lua -- coroutine-native queries (issue 17): throughput of
-- primary-key finds (a model's find(id) on a table of 10,000 rows; name and
-- balance read) from 1, 8 and 64 coroutines with pools of 1, 8 and 16
-- connections on ONE OS thread under cqueues and under luv, side by side in
-- the same run with the blocking mode in the same number of OS processes
-- (children of this script, each with one connection, started together and
-- timed over the same window; their finds are summed).
--
-- Every configuration runs for BENCH_CO_SECONDS (default 2), BENCH_CO_REPS
-- times (default 3, the median is reported), after a warm-up
-- (connections open, models loaded); the figure is finds completed in the
-- window per second.
--
--   LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/?.so;;" \
--     scripts/with-test-server.sh lua5.4 bench/coroutines.lua
-- (make bench runs it too, after bench/run.sh's suites)
--   BENCH_CO_SECONDS=2            window per configuration
--   BENCH_CO_LOOPS="cqueues luv"  which event loops
--   BENCH_CO_COUNTS="1 8 64"      coroutines (and processes)
--   BENCH_CO_POOLS="1 8 16"       pool sizes
--   BENCH_CO_REPS=3               runs of each configuration (median reported)
-- Internal: --worker START DURATION SEED runs one blocking process.
local ar = require("activerecord")

local TABLE, ROWS = "bench_coroutines", 10000
local now = ar.core.monotime

local function list(env, default)
  local out = {}
  for w in (os.getenv(env) or default):gmatch("%S+") do out[#out + 1] = math.tointeger(tonumber(w)) or w end
  return out
end

local SECONDS = tonumber(os.getenv("BENCH_CO_SECONDS") or "") or 2
local LOOPS = list("BENCH_CO_LOOPS", "cqueues luv")
local COUNTS = list("BENCH_CO_COUNTS", "1 8 64")
local POOLS = list("BENCH_CO_POOLS", "1 8 16")
local REPS = math.tointeger(tonumber(os.getenv("BENCH_CO_REPS") or "")) or 3

-- ids 1..ROWS, a different deterministic sequence per seed
local function ids(seed)
  local x = seed
  return function()
    x = (x * 1103515245 + 12345) % 2147483648
    return (x >> 4) % ROWS + 1
  end
end

local model_serial = 0
local function model(db)
  model_serial = model_serial + 1
  return ar.Model{
    name = "BenchCoroutineRow" .. model_serial, table = TABLE, backend = db,
    fields = {
      id = { type = "integer", primary_key = true },
      name = "string",
      balance = { type = "decimal" },
    },
  }
end

-- Finds from one coroutine (or process) until `stop`; returns how many
-- completed before it, and a checksum of what they read.
local function find_loop(Row, seed, stop)
  local next_id, n, acc = ids(seed), 0, 0
  while true do
    local r = Row:find(next_id())
    if now() > stop then break end
    n = n + 1
    acc = acc + #r.name + #r.balance
  end
  return n, acc
end

-- ---------------------------------------------------------------------------
-- Worker: one blocking process. It warms up, says "ready", waits for the
-- go file (the parent writes it once every worker is ready: the start time
-- of the common window), then finds until the window closes.
if arg[1] == "--worker" then
  local go, duration, seed = arg[2], tonumber(arg[3]), math.tointeger(tonumber(arg[4]))
  local uv = require("luv") -- only for its blocking sleep while waiting for the go file
  local db = ar.connect(ar.config_from_env{ pool = { size = 1 } })
  local Row = model(db)
  Row:find(1) -- warm: connected, table read, statement prepared
  io.write("ready\n")
  io.stdout:flush()
  local start
  repeat
    local f = io.open(go, "r")
    start = f and tonumber(f:read("a"))
    if f then f:close() end
    if not start then uv.sleep(5) end
  until start
  while now() < start do end -- spin the last moments (sleeping would add wake-up jitter)
  local c0 = os.clock()
  local n = find_loop(Row, seed, start + duration)
  local cpu = os.clock() - c0
  db:close()
  print(("count %d cpu %.6f"):format(n, cpu))
  os.exit(0)
end

-- ---------------------------------------------------------------------------
-- Setup: the table, 10,000 rows (kept between runs).
local function setup()
  local db = ar.connect(ar.config_from_env())
  local have = db:table_exists(TABLE) and db:query("SELECT COUNT(*) AS n FROM " .. TABLE)[1].n
  if have ~= ROWS then
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:execute("CREATE TABLE " .. TABLE .. " (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, "
      .. "balance DECIMAL(12,2) NOT NULL) ENGINE=InnoDB")
    local batch, args = {}, {}
    for i = 1, ROWS do
      batch[#batch + 1] = "(?,?,?)"
      args[#args + 1] = i
      args[#args + 1] = "user_" .. i
      args[#args + 1] = ("%d.%02d"):format(i * 7 % 100000, i % 100)
      if #batch == 1000 then
        db:execute("INSERT INTO " .. TABLE .. " (id, name, balance) VALUES " .. table.concat(batch, ","),
          table.unpack(args))
        batch, args = {}, {}
      end
    end
  end
  db:close()
end

-- ---------------------------------------------------------------------------
-- Coroutines on one thread: `count` coroutines, a pool of `pool`.
local LOOP = {}

function LOOP.cqueues(body)
  local cqueues = require("cqueues")
  local cq = cqueues.new()
  body(function(fn) cq:wrap(fn) end, function(s) cqueues.sleep(s) end)
  assert(cq:loop())
end

function LOOP.luv(body)
  local uv = require("luv")
  local sched = require("activerecord.scheduler.luv")
  body(sched.spawn, sched.sleep)
  uv.run()
end

local function coroutines(loop, count, pool)
  local config = ar.config_from_env{ pool = { size = pool, checkout_timeout = 60 } }
  config.scheduler = loop
  local db = ar.connect(config)
  local Row = model(db)
  local total, ok_count, start, c0, c1, first_error = 0, 0, nil, nil, nil, nil
  local function body(i, sleep)
    Row:find(i) -- warm (opens up to `pool` connections)
    local wait = start - now()
    if wait > 0 then sleep(wait) end
    c0 = c0 or os.clock() -- the first one to start
    local n = find_loop(Row, i, start + SECONDS)
    total = total + n
    ok_count = ok_count + 1
    c1 = os.clock() -- the last one to finish
  end
  LOOP[loop](function(spawn, sleep)
    start = now() + 0.2 + 0.005 * count
    for i = 1, count do
      spawn(function()
        local ok, err = pcall(body, i, sleep)
        if not ok then first_error = first_error or err end
      end)
    end
  end)
  db:close()
  if first_error then error(first_error, 0) end
  assert(ok_count == count, ("%d of %d coroutines finished"):format(ok_count, count))
  return total / SECONDS, (c1 - c0) / total * 1e6
end

-- ---------------------------------------------------------------------------
-- Blocking: `count` processes started together, each one connection.
local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function processes(count)
  local script = arg[0]
  local go = os.tmpname()
  os.remove(go)
  local pipes = {}
  for i = 1, count do
    pipes[i] = assert(io.popen(("LUA_PATH=%s LUA_CPATH=%s %s %s --worker %s %g %d"):format(
      shell_quote(package.path), shell_quote(package.cpath), os.getenv("LUA") or "lua5.4", shell_quote(script),
      shell_quote(go), SECONDS, i), "r"))
  end
  for i = 1, count do -- every worker warmed up
    local line = pipes[i]:read("l")
    assert(line == "ready", ("worker %d did not start: %s"):format(i, tostring(line)))
  end
  local tmp = go .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(("%.6f"):format(now() + 0.1))
  f:close()
  assert(os.rename(tmp, go))
  local total, cpu = 0, 0
  for i = 1, count do
    local out = pipes[i]:read("a")
    local ok = pipes[i]:close()
    local n, c = out:match("count (%d+) cpu ([%d.]+)")
    assert(ok and n, ("worker %d failed: %s"):format(i, out))
    total = total + tonumber(n)
    cpu = cpu + tonumber(c)
  end
  os.remove(go)
  return total / SECONDS, cpu / total * 1e6
end

-- ---------------------------------------------------------------------------
setup()
local cpus = io.popen("nproc 2>/dev/null"):read("l") or "?"
print(("== coroutines: Model:find(id) on %d rows, %g s per configuration x %d reps, %s CPUs, one OS thread per loop")
  :format(ROWS, SECONDS, REPS, cpus))

-- every configuration once per rep, in turn (a slow spell of the machine
-- hits them all alike); the median of the reps is reported
local runs = {} -- runs[key] = { finds/s per rep }
local failed = 0
local function record(key, value)
  runs[key] = runs[key] or {}
  if value then table.insert(runs[key], value) end
end
local function median(key)
  local v = {}
  for i, x in ipairs(runs[key] or {}) do v[i] = x end
  table.sort(v)
  local n = #v
  if n == 0 then return 0 / 0 end
  return n % 2 == 1 and v[(n + 1) // 2] or (v[n // 2] + v[n // 2 + 1]) / 2
end
-- a configuration that fails is reported and left out of the medians
local function attempt(what, fn, ...)
  local ok, a, b = pcall(fn, ...)
  if ok then return a, b end
  failed = failed + 1
  io.write(("   !! %s failed: %s\n"):format(what, tostring(a)))
end
for rep = 1, REPS do
  for _, count in ipairs(COUNTS) do
    local f, us = attempt(count .. " processes", processes, count)
    record("blocking " .. count, f)
    record("cpu blocking " .. count, us)
    if f then
      io.write(("   rep %d  blocking  %2d processes             %9.0f finds/s  %5.1f us CPU/find\n"):format(rep,
        count, f, us))
    end
    for _, loop in ipairs(LOOPS) do
      for _, pool in ipairs(POOLS) do
        local cf, cus = attempt(("%s %d coroutines, pool %d"):format(loop, count, pool), coroutines, loop, count,
          pool)
        record(("%s %d %d"):format(loop, count, pool), cf)
        record(("cpu %s %d %d"):format(loop, count, pool), cus)
        if cf then
          io.write(("   rep %d  %-8s  %2d coroutines, pool %2d  %9.0f finds/s  %5.1f us CPU/find\n"):format(rep,
            loop, count, pool, cf, cus))
        end
      end
    end
  end
end
local function fmt_table(rows)
  local widths = {}
  for _, row in ipairs(rows) do
    for j, cell in ipairs(row) do widths[j] = math.max(widths[j] or 0, #cell) end
  end
  for i, row in ipairs(rows) do
    local cells = {}
    for j = 1, #row do cells[j] = (j <= 2 and "%-" or "%") .. widths[j] .. "s" end
    print(table.concat(cells, " | "):format(table.unpack(row)))
    if i == 1 then
      local rule = {}
      for j = 1, #row do rule[j] = ("-"):rep(widths[j]) end
      print(table.concat(rule, "-|-"))
    end
  end
end

print()
print(("finds/s (median of %d runs of %g s); ratio = coroutines on one thread / blocking processes (same count);")
  :format(REPS, SECONDS))
print("us CPU/find: this client's CPU time per find (all blocking processes summed)")
local head = { "coroutines", "pool" }
for _, loop in ipairs(LOOPS) do head[#head + 1] = loop end
head[#head + 1] = "blocking, N processes"
for _, loop in ipairs(LOOPS) do head[#head + 1] = loop .. " ratio" end
for _, loop in ipairs(LOOPS) do head[#head + 1] = loop .. " us CPU/find" end
head[#head + 1] = "blocking us CPU/find"
local rows = { head }
for _, count in ipairs(COUNTS) do
  local procs = median("blocking " .. count)
  for _, pool in ipairs(POOLS) do
    local row = { tostring(count), tostring(pool) }
    for _, loop in ipairs(LOOPS) do row[#row + 1] = ("%.0f"):format(median(("%s %d %d"):format(loop, count, pool))) end
    row[#row + 1] = ("%.0f"):format(procs)
    for _, loop in ipairs(LOOPS) do
      row[#row + 1] = ("%.2fx"):format(median(("%s %d %d"):format(loop, count, pool)) / procs)
    end
    for _, loop in ipairs(LOOPS) do
      row[#row + 1] = ("%.1f"):format(median(("cpu %s %d %d"):format(loop, count, pool)))
    end
    row[#row + 1] = ("%.1f"):format(median("cpu blocking " .. count))
    rows[#rows + 1] = row
  end
end
fmt_table(rows)
if failed > 0 then print(("(%d runs failed and are left out of the medians)"):format(failed)) end

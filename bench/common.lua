-- bench/common.lua -- shared pieces of the benchmarks (Lua side): the "core"
-- suite B1-B3 (driver level) and the "orm" suite W1-W7 (design section 7).
--
-- Data derivation, LCG, transport rule and sizes must stay identical to
-- bench/floor.c, so that every implementation does exactly the same work.

local M = {}

M.N_USERS     = 50000
M.B1_LOOKUPS  = 10000
M.B3_INSERTS  = 5000

M.COLS = { "id", "name", "email", "age", "score", "balance", "active", "profile", "created_at" }
M.SELECT_COLS = table.concat(M.COLS, ",")
M.B1_SQL = "SELECT " .. M.SELECT_COLS .. " FROM users WHERE id = ?"
M.B2_SQL = "SELECT " .. M.SELECT_COLS .. " FROM users"
M.INSERT_COLS = "name,email,age,score,balance,active,profile,created_at"

-- BENCH_SETUP_ONLY=1: workloads do their untimed setup and return before the
-- clock starts (bench/callgrind.sh subtracts such a run from a full one).
M.SETUP_ONLY = (os.getenv("BENCH_SETUP_ONLY") or "") ~= ""

-- W-suite sizes (design section 7); must match floor.c.
M.W1_INSERTS   = 5000
M.W2_ROWS      = 50000
M.W2_BATCH     = 1000
M.W3_LOOKUPS   = 10000
M.W5_UPDATES   = 5000
M.W6_USERS     = 1000
M.W7_LOOKUPS   = 1000
M.W7_SQL = "SELECT " .. M.SELECT_COLS
  .. " FROM users WHERE JSON_UNQUOTE(JSON_EXTRACT(profile,'$.key')) = ? LIMIT 1"

-- W5: the i-th updated id (distinct for i < 50,000) and its new score.
-- BENCH_NONCE (run.sh sets a fresh one per run) keeps every UPDATE a real
-- change, so no implementation gets the server's "unchanged row" shortcut.
function M.w5_id(i) return (i * 7919) % M.N_USERS + 1 end
function M.w5_nonce()
  local n = math.tointeger(tonumber(os.getenv("BENCH_NONCE") or ""))
  if not n then n = math.floor((os.time() + os.clock() * 1e6) % 1000) end
  return (n % 1000) / 1000.0 + 0.0005
end
function M.w5_score(i, nonce) return (i % 1000) * 1.5 + nonce end

-- W8: sysbench's oltp_read_write transaction (oltp_common.lua): 10 point
-- selects, 4 range selects of 100 ids (simple, SUM, ORDER BY, DISTINCT),
-- an index update (k = k + 1), a non-index update (c), a delete and the
-- insert of the same id, in one transaction.  The table is sysbench's own
-- sbtest1 (`sysbench oltp_read_write prepare`, bench/sysbench.sh); its
-- size and the transaction count must match what bench/sysbench.sh passes
-- to sysbench (both read BENCH_W8_TABLE_SIZE / BENCH_W8_TXNS).
M.W8_TABLE = "sbtest1"
M.W8_TABLE_SIZE = math.tointeger(tonumber(os.getenv("BENCH_W8_TABLE_SIZE") or "")) or 10000
M.W8_TXNS = math.tointeger(tonumber(os.getenv("BENCH_W8_TXNS") or "")) or 1000
M.W8_POINT_SELECTS = 10
M.W8P_SELECTS = 10000    -- W8p / W8e: the point select alone
M.W8_RANGE = 100
M.W8_SQL = {
  point = "SELECT c FROM sbtest1 WHERE id=?",
  simple = "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ?",
  sum = "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?",
  order = "SELECT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c",
  distinct = "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c",
  index_update = "UPDATE sbtest1 SET k=k+1 WHERE id=?",
  non_index_update = "UPDATE sbtest1 SET c=? WHERE id=?",
  delete = "DELETE FROM sbtest1 WHERE id=?",
  insert = "INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)",
}

-- Uniform ids 1..W8_TABLE_SIZE (sysbench --rand-type=uniform) from the LCG
-- above; every Lua implementation draws the same sequence in the same order.
function M.w8_rng(seed)
  local x = seed or 42
  local size = M.W8_TABLE_SIZE
  return function()
    x = (x * 1103515245 + 12345) % 2147483648
    return (x >> 4) % size + 1
  end
end

-- c and pad values shaped like sysbench's (11-digit groups joined by '-':
-- 10 groups = 119 characters, 5 groups = 59), from a pool of W8_POOL built
-- before the clock starts: sysbench makes its strings in C, so the Lua
-- sides should not pay a Lua string builder per transaction either.
local W8_POOL = 4096
function M.w8_pools()
  local c, pad = {}, {}
  local x = 7
  local function group()
    x = (x * 1103515245 + 12345) % 2147483648
    return string.format("%011d", (x * 48271) % 99999999999)
  end
  for i = 1, W8_POOL do
    local g = {}
    for j = 1, 10 do g[j] = group() end
    c[i] = table.concat(g, "-")
    pad[i] = table.concat(g, "-", 1, 5)
  end
  return c, pad
end

-- One transaction's random values, drawn in one fixed order into `t`
-- (reused across transactions): t[1..10] point-select ids, t.r1..t.r4 the
-- range starts (simple, sum, order, distinct), t.ki the index-update id,
-- t.nc/t.ni the non-index update's c and id, t.di the deleted and
-- re-inserted id with t.dk, t.dc, t.dp its k, c and pad.
function M.w8_draw(rnd, cpool, padpool, t)
  for i = 1, M.W8_POINT_SELECTS do t[i] = rnd() end
  t.r1, t.r2, t.r3, t.r4 = rnd(), rnd(), rnd(), rnd()
  t.ki = rnd()
  t.nc, t.ni = cpool[rnd() % W8_POOL + 1], rnd()
  t.di, t.dk = rnd(), rnd()
  t.dc, t.dp = cpool[rnd() % W8_POOL + 1], padpool[rnd() % W8_POOL + 1]
  return t
end

function M.users_ddl(table_name)
  return "CREATE TABLE " .. table_name .. " ("
    .. "id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    .. "name VARCHAR(100) NOT NULL, "
    .. "email VARCHAR(255) NOT NULL, "
    .. "age INT, score DOUBLE, balance DECIMAL(12,2), active TINYINT(1), "
    .. "profile JSON, created_at DATETIME(6)"
    .. ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
end

-- x = (x*1103515245 + 12345) % 2^31, id = x % 50000 + 1, seed 42.
-- Returns an iterator producing the id sequence (integers throughout).
function M.lcg_ids(seed)
  local x = seed or 42
  return function()
    x = (x * 1103515245 + 12345) % 2147483648
    return x % M.N_USERS + 1
  end
end

local fmt = string.format

-- Values of user i (all columns but id), as plain Lua values:
-- name, email, age (int), score (float), balance (string), active (0/1 int),
-- profile (JSON text), created_at ('YYYY-MM-DD hh:mm:ss.ffffff').
function M.user_values(i)
  return
    "user_" .. i,
    "user_" .. i .. "@example.com",
    18 + i % 60,
    (i % 1000) * 1.5 + 0.25,
    fmt("%d.%02d", (i * 7) % 100000, i % 100),
    (i % 3 ~= 0) and 1 or 0,
    fmt('{"theme": "%s", "key": "value_%d", "tags": [1, 2, 3]}',
        (i % 2 == 0) and "dark" or "light", i),
    fmt("2024-%02d-%02d %02d:%02d:%02d.%06d",
        1 + i % 12, 1 + i % 28, i % 24, i % 60, (i // 60) % 60, i % 1000000)
end

-- User i as ORM attributes (typed Lua values, profile as a Lua table):
-- what an application hands to User.new / insert_all.
function M.user_attrs(i)
  local name, email, age, score, balance, active, _, created_at = M.user_values(i)
  return {
    name = name, email = email, age = age, score = score, balance = balance,
    active = active == 1,
    profile = { theme = (i % 2 == 0) and "dark" or "light", key = "value_" .. i, tags = { 1, 2, 3 } },
    created_at = created_at,
  }
end

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

-- Transport rule shared with floor.c: TCP host:port if AR_MYSQL_PORT is set,
-- otherwise the unix socket AR_MYSQL_SOCKET.
function M.conn_params()
  local p = {
    user = env("AR_MYSQL_USER") or "root",
    password = env("AR_MYSQL_PASSWORD"),
    database = env("AR_MYSQL_DATABASE"),
  }
  local port = env("AR_MYSQL_PORT")
  if port then
    p.transport = "tcp"
    p.host = env("AR_MYSQL_HOST") or "127.0.0.1"
    p.port = assert(math.tointeger(tonumber(port)), "bad AR_MYSQL_PORT")
  else
    p.transport = "socket"
    p.socket = env("AR_MYSQL_SOCKET")
    assert(p.socket, "set AR_MYSQL_PORT (TCP) or AR_MYSQL_SOCKET")
    p.host = "localhost"
  end
  return p
end

-- Pick a monotonic clock: preferred function first, then lua-system, then
-- the core module's core.monotime().
function M.monotonic_clock(preferred)
  if preferred then return preferred end
  local ok, sys = pcall(require, "system")
  if ok and type(sys) == "table" and sys.monotime then return sys.monotime end
  local ok2, core = pcall(require, "activerecord.backend.mysql.core")
  if ok2 and type(core) == "table" and core.monotime then return core.monotime end
  error("no monotonic clock available (need lua-system or the core module)")
end

-- Run the workloads named on the command line (default: all of `workloads`),
-- printing "<name> <seconds>" to stdout and a checksum line to stderr.
-- A workload returns seconds, checksum; it may do untimed setup first.
function M.main(args, workloads)
  local names = {}
  for i = 1, #args do names[#names + 1] = args[i] end
  if #names == 0 then
    names = {}
    for k in pairs(workloads) do names[#names + 1] = k end
    table.sort(names)
  end
  for _, name in ipairs(names) do
    local fn = workloads[name]
    if not fn then
      local known = {}
      for k in pairs(workloads) do known[#known + 1] = k end
      table.sort(known)
      io.stderr:write("unknown workload '", tostring(name), "' (want ", table.concat(known, "|"), ")\n")
      os.exit(2)
    end
    collectgarbage("collect")
    local secs, check = fn()
    io.stdout:write(fmt("%s %.6f\n", name, secs))
    io.stdout:flush()
    if check then io.stderr:write("# ", name, " check ", check, "\n") end
  end
end

-- W4's touch of every attribute of every user (instances or plain tables
-- alike), shared so the ORM and LuaSQL runs do exactly the same reads.
-- Returns the count of nil attributes and a checksum of the JSON profile.
function M.touch_users(list, n)
  local nils, acc = 0, 0
  for r = 1, n do
    local u = list[r]
    if u.id == nil then nils = nils + 1 end
    if u.name == nil then nils = nils + 1 end
    if u.email == nil then nils = nils + 1 end
    if u.age == nil then nils = nils + 1 end
    if u.score == nil then nils = nils + 1 end
    if u.balance == nil then nils = nils + 1 end
    if u.active == nil then nils = nils + 1 end
    if u.created_at == nil then nils = nils + 1 end
    local pr = u.profile
    acc = acc + #pr.theme + #pr.key + pr.tags[3]
  end
  return nils, acc
end

return M

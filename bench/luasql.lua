-- bench/luasql.lua -- the benchmark workloads on LuaSQL (lua-sql-mysql), the
-- raw-driver peer we compare against: the core suite B1-B3 and, of the ORM
-- suite (design section 7), W2, W3, W4, W7 and W8 with hand-built tables in
-- place of model instances (LuaSQL has no models).  LuaSQL has no prepared
-- statements, so SQL text is built with conn:escape() for strings and
-- tostring()/%.17g for numbers.  LuaSQL returns every value as text; the W
-- workloads convert them to the types a model would hold (integers, floats,
-- booleans, decoded JSON) by hand.
--
-- Usage (from the repo root):  lua5.4 bench/luasql.lua [B1] [B2] [B3] [W2] [W3] [W4] [W7] [W8]
-- Prints "<name> <seconds>" per workload; checksums go to stderr.
--
-- Socket transport: LuaSQL's connect() takes no socket path; libmariadb then
-- uses $MYSQL_UNIX_PORT, so export MYSQL_UNIX_PORT=$AR_MYSQL_SOCKET
-- (bench/run.sh does this).

local dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local common = require("common")
local luasql = require("luasql.mysql")
local cjson = require("cjson")

local now = common.monotonic_clock()
local fmt, tostring, tonumber = string.format, tostring, tonumber
local COLS = common.COLS
local NCOLS = #COLS

local p = common.conn_params()
if p.transport == "socket" and os.getenv("MYSQL_UNIX_PORT") ~= p.socket then
  error("socket transport with LuaSQL needs MYSQL_UNIX_PORT=" .. p.socket
        .. " in the environment (LuaSQL cannot pass a socket path)")
end

local env = assert(luasql.mysql())
local conn = assert(env:connect(p.database, p.user, p.password,
                                p.transport == "tcp" and p.host or nil,
                                p.transport == "tcp" and p.port or nil))
assert(conn:execute("SET NAMES utf8mb4"))

local W = {}

-- B1: 10,000 pk lookups, one row each; read name and balance.
function W.B1()
  local next_id = common.lcg_ids(42)
  local prefix = "SELECT " .. common.SELECT_COLS .. " FROM users WHERE id = "
  local rows, acc = 0, 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.B1_LOOKUPS do
    local cur = assert(conn:execute(prefix .. tostring(next_id())))
    local row = cur:fetch({}, "a")
    cur:close()
    if row then
      rows = rows + 1
      acc = acc + #row.name + #row.balance
    end
  end
  local t1 = now()
  assert(rows == common.B1_LOOKUPS, "B1: missing rows")
  return t1 - t0, fmt("rows=%d namebal_len=%d", rows, acc)
end

-- B2: all users in one query, a new table per row, every value touched.
function W.B2()
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  local cur = assert(conn:execute(common.B2_SQL))
  local list, n = {}, 0
  local row = cur:fetch({}, "a")
  while row do
    n = n + 1
    list[n] = row
    row = cur:fetch({}, "a")
  end
  cur:close()
  local nils = 0
  for r = 1, n do
    local rw = list[r]
    for c = 1, NCOLS do
      if rw[COLS[c]] == nil then nils = nils + 1 end
    end
  end
  local t1 = now()
  local id_sum = 0
  for r = 1, n do id_sum = id_sum + math.tointeger(tonumber(list[r].id)) end
  assert(n == common.N_USERS, "B2: wrong row count")
  return t1 - t0, fmt("rows=%d id_sum=%d nils=%d", n, id_sum, nils)
end

-- B3: 5,000 single-row INSERTs in one transaction into users_ins_luasql.
function W.B3()
  assert(conn:execute("DROP TABLE IF EXISTS users_ins_luasql"))
  assert(conn:execute(common.users_ddl("users_ins_luasql")))
  local user_values = common.user_values
  local head = "INSERT INTO users_ins_luasql (" .. common.INSERT_COLS .. ") VALUES ("
  local last_id
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  assert(conn:execute("BEGIN"))
  for i = 1, common.B3_INSERTS do
    local name, email, age, score, balance, active, profile, created_at = user_values(i)
    local sql = head
      .. "'" .. conn:escape(name) .. "','" .. conn:escape(email) .. "',"
      .. tostring(age) .. "," .. tostring(score) .. ",'" .. conn:escape(balance) .. "',"
      .. tostring(active) .. ",'" .. conn:escape(profile) .. "','" .. conn:escape(created_at) .. "')"
    local n = assert(conn:execute(sql))
    if n ~= 1 then error("B3: affected rows " .. tostring(n)) end
    last_id = conn:getlastautoid()
  end
  assert(conn:execute("COMMIT"))
  local t1 = now()
  return t1 - t0, fmt("inserted=%d last_id=%s", common.B3_INSERTS, tostring(last_id))
end

-- A users row (all text) -> a hand-built table with the types a model holds.
local decode = cjson.decode
local math_tointeger = math.tointeger
local function user_table(row)
  return {
    id = math_tointeger(tonumber(row.id)),
    name = row.name,
    email = row.email,
    age = math_tointeger(tonumber(row.age)),
    score = tonumber(row.score),
    balance = row.balance,
    active = row.active ~= "0",
    profile = decode(row.profile),
    created_at = row.created_at,
  }
end

-- W2: 50,000 users as multi-row INSERTs of 1,000 rows (escaped SQL text),
-- one transaction, into users_w2_luasql.
function W.W2()
  assert(conn:execute("DROP TABLE IF EXISTS users_w2_luasql"))
  assert(conn:execute(common.users_ddl("users_w2_luasql")))
  local user_values = common.user_values
  local head = "INSERT INTO users_w2_luasql (" .. common.INSERT_COLS .. ") VALUES "
  local esc = function(s) return conn:escape(s) end
  local affected = 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  assert(conn:execute("BEGIN"))
  for base = 1, common.W2_ROWS, common.W2_BATCH do
    local parts = {}
    for i = base, math.min(base + common.W2_BATCH - 1, common.W2_ROWS) do
      local name, email, age, score, balance, active, profile, created_at = user_values(i)
      parts[#parts + 1] = "('" .. esc(name) .. "','" .. esc(email) .. "'," .. age .. ","
        .. fmt("%.17g", score) .. ",'" .. esc(balance) .. "'," .. active .. ",'" .. esc(profile)
        .. "','" .. esc(created_at) .. "')"
    end
    affected = affected + assert(conn:execute(head .. table.concat(parts, ",")))
  end
  assert(conn:execute("COMMIT"))
  local t1 = now()
  return t1 - t0, fmt("inserted=%d", affected)
end

-- W3: 10,000 pk lookups, each row built into a typed table; read name and balance.
function W.W3()
  local next_id = common.lcg_ids(42)
  local prefix = "SELECT " .. common.SELECT_COLS .. " FROM users WHERE id = "
  local rows, acc = 0, 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W3_LOOKUPS do
    local cur = assert(conn:execute(prefix .. tostring(next_id())))
    local row = cur:fetch({}, "a")
    cur:close()
    if row then
      local u = user_table(row)
      rows = rows + 1
      acc = acc + #u.name + #u.balance
    end
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d namebal_len=%d", rows, acc)
end

-- W4: all users into typed tables (JSON decoded), every value touched.
function W.W4()
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  local cur = assert(conn:execute(common.B2_SQL))
  local list, n = {}, 0
  local row = cur:fetch({}, "a")
  while row do
    n = n + 1
    list[n] = user_table(row)
    row = cur:fetch(row, "a")
  end
  cur:close()
  local nils, acc = common.touch_users(list, n)
  local t1 = now()
  local id_sum = 0
  for r = 1, n do id_sum = id_sum + list[r].id end
  return t1 - t0, fmt("rows=%d id_sum=%d nils=%d json_acc=%d", n, id_sum, nils, acc)
end

-- W7: 1,000 JSON lookups (escaped key in the SQL text), each row a typed table.
function W.W7()
  local prefix = "SELECT " .. common.SELECT_COLS
    .. " FROM users WHERE JSON_UNQUOTE(JSON_EXTRACT(profile,'$.key')) = '"
  local rows, id_sum = 0, 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for i = 1, common.W7_LOOKUPS do
    local cur = assert(conn:execute(prefix .. conn:escape("value_" .. i) .. "' LIMIT 1"))
    local row = cur:fetch({}, "a")
    cur:close()
    if row then
      local u = user_table(row)
      rows = rows + 1
      id_sum = id_sum + u.id
    end
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d id_sum=%d", rows, id_sum)
end

-- W8: sysbench's oltp_read_write transaction as SQL text (numbers by
-- tostring, c and pad escaped), W8_TXNS times; every row fetched into a
-- fresh table, as the core and the ORM hand them back.
function W.W8()
  local rnd = common.w8_rng(42)
  local cpool, padpool = common.w8_pools()
  local draw, t = common.w8_draw, {}
  local npoint, span = common.W8_POINT_SELECTS, common.W8_RANGE - 1
  local tbl = common.W8_TABLE
  local function range(what, lo, tail)
    return "SELECT " .. what .. " FROM " .. tbl .. " WHERE id BETWEEN " .. tostring(lo)
      .. " AND " .. tostring(lo + span) .. (tail or "")
  end
  local function select_rows(sql)
    local cur = assert(conn:execute(sql))
    local n = 0
    local row = cur:fetch({}, "a")
    while row do
      n = n + 1
      row = cur:fetch({}, "a")
    end
    cur:close()
    return n
  end
  local rows = 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W8_TXNS do
    draw(rnd, cpool, padpool, t)
    assert(conn:execute("BEGIN"))
    for i = 1, npoint do
      rows = rows + select_rows("SELECT c FROM " .. tbl .. " WHERE id=" .. tostring(t[i]))
    end
    rows = rows + select_rows(range("c", t.r1))
    select_rows(range("SUM(k)", t.r2))
    rows = rows + select_rows(range("c", t.r3, " ORDER BY c"))
    select_rows(range("DISTINCT c", t.r4, " ORDER BY c")) -- its count drifts as c changes: not checked
    assert(conn:execute("UPDATE " .. tbl .. " SET k=k+1 WHERE id=" .. tostring(t.ki)))
    assert(conn:execute("UPDATE " .. tbl .. " SET c='" .. conn:escape(t.nc) .. "' WHERE id=" .. tostring(t.ni)))
    assert(conn:execute("DELETE FROM " .. tbl .. " WHERE id=" .. tostring(t.di)))
    assert(conn:execute("INSERT INTO " .. tbl .. " (id, k, c, pad) VALUES (" .. tostring(t.di) .. ", "
      .. tostring(t.dk) .. ", '" .. conn:escape(t.dc) .. "', '" .. conn:escape(t.dp) .. "')"))
    assert(conn:execute("COMMIT"))
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d txns=%d", rows, common.W8_TXNS)
end

common.main(arg or {}, W)

conn:close()
env:close()

-- bench/core.lua -- the "core" benchmark workloads on OUR C core
-- (activerecord.backend.mysql.core), driver level, no ORM.
--
-- Usage (from the repo root, after `make`):
--   LUA_CPATH='build/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' \
--     lua5.4 bench/core.lua [B1] [B2] [B3] [W8] [W8p]
-- Prints "B<n> <seconds>" per workload; checksums go to stderr.  W8 (the
-- sysbench transaction of the ORM suite) runs here as the core-alone column.
--
-- Core API used: core.connect{host=,port=,socket=,user=,password=,database=},
-- conn:execute(sql, ...) -> { rows = {{col=value,...},...}, columns = {...},
-- affected_rows = n, insert_id = n }, conn:begin(), conn:commit(),
-- conn:close(), core.monotime().  Statements are prepared and cached per
-- connection by the core, so B1/B3 pass `?` parameters.

local dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local common = require("common")
local core = require("activerecord.backend.mysql.core")

local now = common.monotonic_clock(core.monotime)
local fmt, type, math_type = string.format, type, math.type
local COLS = common.COLS
local NCOLS = #COLS

local p = common.conn_params()
local conn = assert(core.connect{
  host = p.host,
  port = p.port,          -- nil in socket mode
  socket = p.socket,      -- nil in TCP mode
  user = p.user,
  password = p.password,
  database = p.database,
})

local function typeof(v)
  return math_type(v) or type(v)
end

local W = {}

-- B1: 10,000 pk lookups, one row each; read name and balance.
function W.B1()
  local next_id = common.lcg_ids(42)
  local sql = common.B1_SQL
  local rows, acc = 0, 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.B1_LOOKUPS do
    local res = conn:execute(sql, next_id())
    local row = res.rows[1]
    if row then
      rows = rows + 1
      acc = acc + #row.name + #row.balance
    end
  end
  local t1 = now()
  assert(rows == common.B1_LOOKUPS, "B1: missing rows")
  return t1 - t0, fmt("rows=%d namebal_len=%d", rows, acc)
end

-- B2: all users in one query, every value of every row touched.
function W.B2()
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  local res = conn:execute(common.B2_SQL)
  local list = res.rows
  local n = #list
  local nils = 0
  for r = 1, n do
    local rw = list[r]
    for c = 1, NCOLS do
      if rw[COLS[c]] == nil then nils = nils + 1 end
    end
  end
  local t1 = now()
  local id_sum = 0
  for r = 1, n do id_sum = id_sum + list[r].id end
  assert(n == common.N_USERS, "B2: wrong row count " .. n)
  local r1 = list[1]
  local types = {}
  for c = 1, NCOLS do types[c] = COLS[c] .. "=" .. typeof(r1[COLS[c]]) end
  return t1 - t0, fmt("rows=%d id_sum=%d nils=%d types[%s]", n, id_sum, nils,
                      table.concat(types, ","))
end

-- B3: 5,000 single-row INSERTs in one transaction into users_ins_core.
function W.B3()
  assert(conn:execute("DROP TABLE IF EXISTS users_ins_core"))
  assert(conn:execute(common.users_ddl("users_ins_core")))
  local user_values = common.user_values
  local sql = "INSERT INTO users_ins_core (" .. common.INSERT_COLS
    .. ") VALUES (?,?,?,?,?,?,?,?)"
  local last_id
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  conn:begin()
  for i = 1, common.B3_INSERTS do
    local res = conn:execute(sql, user_values(i))
    if res.affected_rows ~= 1 then
      error("B3: affected_rows " .. tostring(res.affected_rows))
    end
    last_id = res.insert_id
  end
  conn:commit()
  local t1 = now()
  return t1 - t0, fmt("inserted=%d last_id=%s", common.B3_INSERTS, tostring(last_id))
end

-- W8: sysbench's oltp_read_write transaction (common.W8_SQL), W8_TXNS
-- times, as prepared statements through the core (the same statements
-- sysbench prepares); BEGIN/COMMIT through conn:begin()/conn:commit().
function W.W8()
  local S = common.W8_SQL
  local rnd = common.w8_rng(42)
  local cpool, padpool = common.w8_pools()
  local draw, t = common.w8_draw, {}
  local npoint, span = common.W8_POINT_SELECTS, common.W8_RANGE - 1
  local rows = 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W8_TXNS do
    draw(rnd, cpool, padpool, t)
    conn:begin()
    for i = 1, npoint do rows = rows + #conn:execute(S.point, t[i]).rows end
    rows = rows + #conn:execute(S.simple, t.r1, t.r1 + span).rows
    conn:execute(S.sum, t.r2, t.r2 + span)
    rows = rows + #conn:execute(S.order, t.r3, t.r3 + span).rows
    conn:execute(S.distinct, t.r4, t.r4 + span) -- its count drifts as c changes: not checked
    conn:execute(S.index_update, t.ki)
    conn:execute(S.non_index_update, t.nc, t.ni)
    conn:execute(S.delete, t.di)
    conn:execute(S.insert, t.di, t.dk, t.dc, t.dp)
    conn:commit()
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d txns=%d", rows, common.W8_TXNS)
end

-- W8p: W8's point select alone, W8P_SELECTS times (bench/orm.lua W8p's floor).
function W.W8p()
  local rnd = common.w8_rng(42)
  local sql = common.W8_SQL.point
  local rows = 0
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W8P_SELECTS do
    rows = rows + #conn:execute(sql, rnd()).rows
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d", rows)
end

common.main(arg or {}, W)

conn:close()

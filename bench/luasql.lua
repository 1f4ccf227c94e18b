-- bench/luasql.lua -- the "core" benchmark workloads on LuaSQL (lua-sql-mysql),
-- the peer we compare against.  LuaSQL has no prepared statements, so SQL text
-- is built with conn:escape() for strings and tostring() for numbers.
--
-- Usage (from the repo root):  lua5.4 bench/luasql.lua [B1] [B2] [B3]
-- Prints "B<n> <seconds>" per workload; checksums go to stderr.
--
-- Socket transport: LuaSQL's connect() takes no socket path; libmariadb then
-- uses $MYSQL_UNIX_PORT, so export MYSQL_UNIX_PORT=$AR_MYSQL_SOCKET
-- (bench/run.sh does this).

local dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local common = require("common")
local luasql = require("luasql.mysql")

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

common.main(arg or {}, W)

conn:close()
env:close()

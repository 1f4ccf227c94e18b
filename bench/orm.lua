-- bench/orm.lua -- design section 7 workloads W1-W7, and W8 (sysbench's
-- oltp_read_write transaction, issue 13), through the ORM (activerecord
-- models, queries, relations, bulk API): model instances everywhere, values
-- converted by the model's field types.
--
-- Usage (from the repo root, after `make`):
--   LUA_CPATH='build/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' \
--     lua5.4 bench/orm.lua [W1] ... [W8]
-- Prints "W<n> <seconds>" per workload; checksums go to stderr.  Expects the
-- data `floor setup` creates (50,000 users; 10 posts each for users 1..1,000),
-- and for W8 sysbench's sbtest1 (`bench/sysbench.sh prepare`).
-- Only the workload is timed: table (re)creation for W1/W2 and loading the
-- W5 instances happen before the clock starts.

local dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local common = require("common")
local ar = require("activerecord")

local now = common.monotonic_clock(ar.core.monotime)
local fmt = string.format

local p = common.conn_params()
local db = ar.connect{
  host = p.host,
  port = p.port,          -- nil in socket mode
  socket = p.socket,      -- nil in TCP mode
  user = p.user,
  password = p.password,
  database = p.database,
}
ar.set_default_backend(db)

local function user_fields()
  return {
    id = { type = "integer", primary_key = true },
    name = "string", email = "string", age = "integer", score = "float",
    balance = { type = "decimal", precision = 12, scale = 2 },
    active = "boolean", profile = "json", created_at = "datetime",
  }
end

local User = ar.Model{
  name = "User", table = "users", fields = user_fields(),
  relations = { posts = ar.has_many("Post", { foreign_key = "user_id" }) },
}
ar.Model{
  name = "Post", table = "posts",
  fields = {
    id = { type = "integer", primary_key = true },
    user_id = "integer", title = "string", body = "text", created_at = "datetime",
  },
}
-- W1/W2 write into tables of their own (users stays the 50,000 rows W3-W7 read)
local UserW1 = ar.Model{ name = "UserW1", table = "users_w1_orm", fields = user_fields() }
local UserW2 = ar.Model{ name = "UserW2", table = "users_w2_orm", fields = user_fields() }

local function recreate(tbl)
  db:execute("DROP TABLE IF EXISTS " .. tbl)
  db:execute(common.users_ddl(tbl))
end

local W = {}

-- Models read their table on first use; an app does that at start-up
-- (ar.check_models), so the workloads do it before the clock starts (in the
-- setup-only runs of bench/callgrind.sh too).
local function ready(...)
  ar.check_models{ models = { ... } }
end

-- W1: 5,000 users built and saved one at a time, one transaction.
function W.W1()
  recreate(UserW1.table)
  local user_attrs = common.user_attrs
  local n, last_id = 0, nil
  ready(UserW1)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  db:transaction(function()
    for i = 1, common.W1_INSERTS do
      local u = UserW1.new(user_attrs(i))
      n = n + u:save()
      last_id = u.id
    end
  end)
  local t1 = now()
  return t1 - t0, fmt("inserted=%d last_id=%s", n, tostring(last_id))
end

-- W2: 50,000 users through insert_all, one transaction.
function W.W2()
  recreate(UserW2.table)
  local user_attrs = common.user_attrs
  ready(UserW2)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  local rows = {}
  for i = 1, common.W2_ROWS do rows[i] = user_attrs(i) end
  local res
  db:transaction(function() res = UserW2:insert_all(rows) end)
  local t1 = now()
  return t1 - t0, fmt("inserted=%d", res.affected_rows)
end

-- W3: 10,000 finds by primary key; read name and balance.
function W.W3()
  local next_id = common.lcg_ids(42)
  local rows, acc = 0, 0
  ready(User)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W3_LOOKUPS do
    local u = User:find(next_id())
    if u then
      rows = rows + 1
      acc = acc + #u.name + #u.balance
    end
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d namebal_len=%d", rows, acc)
end

-- W4: every user as a model instance, every attribute touched (JSON decoded).
function W.W4()
  ready(User)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  local list = User:all()
  local n = #list
  local nils, acc = common.touch_users(list, n)
  local t1 = now()
  local id_sum = 0
  for r = 1, n do id_sum = id_sum + list[r].id end
  return t1 - t0, fmt("rows=%d id_sum=%d nils=%d json_acc=%d", n, id_sum, nils, acc)
end

-- W5: 5,000 score updates by primary key through instances, one transaction.
-- The 5,000 instances are loaded before the clock starts.
function W.W5()
  local ids = {}
  for i = 1, common.W5_UPDATES do ids[i] = common.w5_id(i) end
  local by_id = {}
  for c = 1, #ids, 1000 do
    local chunk = table.move(ids, c, math.min(c + 999, #ids), 1, {})
    for _, u in ipairs(User:where{ id = chunk }:all()) do by_id[u.id] = u end
  end
  local nonce = common.w5_nonce()
  local w5_id, w5_score = common.w5_id, common.w5_score
  local affected = 0
  ready(User)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  db:transaction(function()
    for i = 1, common.W5_UPDATES do
      local u = by_id[w5_id(i)]
      u.score = w5_score(i, nonce)
      affected = affected + u:save()
    end
  end)
  local t1 = now()
  return t1 - t0, fmt("updated=%d", affected)
end

-- W6: users 1..1,000 with their posts eagerly loaded; every post title touched.
function W.W6()
  ready(User, "Post")
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  local users = User:query():where(ar.col("id"):le(common.W6_USERS)):with("posts"):all()
  local nposts, title_len = 0, 0
  for i = 1, #users do
    local posts = users[i]:posts()
    for j = 1, #posts do
      nposts = nposts + 1
      title_len = title_len + #posts[j].title
    end
  end
  local t1 = now()
  return t1 - t0, fmt("users=%d posts=%d title_len=%d", #users, nposts, title_len)
end

-- W7: 1,000 lookups by a JSON value (the dialect's json_value, path bound).
function W.W7()
  local jsql, jparams = db.dialect:json_value(db.dialect:quote_identifier("profile"), "$.key")
  local cond = jsql .. " = ?"
  local path = jparams[1]
  local rows, id_sum = 0, 0
  ready(User)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for i = 1, common.W7_LOOKUPS do
    local u = User:where(cond, path, "value_" .. i):limit(1):all()[1]
    if u then
      rows = rows + 1
      id_sum = id_sum + u.id
    end
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d id_sum=%d", rows, id_sum)
end

-- W8: sysbench's oltp_read_write transaction written with models
-- (common.W8_SQL lists the statements sysbench sends), W8_TXNS times on
-- sysbench's own sbtest1 (bench/sysbench.sh prepare), one db:transaction each.
local Sbtest = ar.Model{
  name = "Sbtest", table = common.W8_TABLE,
  fields = {
    id = { type = "integer", primary_key = true },
    k = "integer", c = "string", pad = "string",
  },
}

function W.W8()
  local col = ar.col
  local rnd = common.w8_rng(42)
  local cpool, padpool = common.w8_pools()
  local draw, t = common.w8_draw, {}
  local npoint, span = common.W8_POINT_SELECTS, common.W8_RANGE - 1
  local rows = 0
  local function txn()
    for i = 1, npoint do
      rows = rows + #Sbtest:where{ id = t[i] }:select("c"):all()
    end
    rows = rows + #Sbtest:where(col("id"):between(t.r1, t.r1 + span)):select("c"):all()
    Sbtest:where(col("id"):between(t.r2, t.r2 + span)):sum("k")
    rows = rows + #Sbtest:where(col("id"):between(t.r3, t.r3 + span)):select("c"):order_by("c"):all()
    -- its count drifts as c changes: not checked
    Sbtest:where(col("id"):between(t.r4, t.r4 + span)):select("c"):distinct():order_by("c"):all()
    Sbtest:where{ id = t.ki }:update_all{ k = col("k"):add(1) }
    Sbtest:where{ id = t.ni }:update_all{ c = t.nc }
    Sbtest:where{ id = t.di }:delete_all()
    Sbtest.new{ id = t.di, k = t.dk, c = t.dc, pad = t.dp }:save()
  end
  ready(Sbtest)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W8_TXNS do
    draw(rnd, cpool, padpool, t)
    db:transaction(txn)
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d txns=%d", rows, common.W8_TXNS)
end

-- W8p: W8's point select alone, W8P_SELECTS times through the builder (the
-- issue's "builder point select" figure: callgrind Ir / W8P_SELECTS); W8e:
-- the same SQL through db:execute, for comparison.
function W.W8p()
  local rnd = common.w8_rng(42)
  local rows = 0
  ready(Sbtest)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W8P_SELECTS do
    rows = rows + #Sbtest:where{ id = rnd() }:select("c"):all()
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d", rows)
end

function W.W8e()
  local rnd = common.w8_rng(42)
  local sql = common.W8_SQL.point
  local rows = 0
  ready(Sbtest)
  if common.SETUP_ONLY then return 0, "setup only" end
  local t0 = now()
  for _ = 1, common.W8P_SELECTS do
    rows = rows + #db:execute(sql, rnd()).rows
  end
  local t1 = now()
  return t1 - t0, fmt("rows=%d", rows)
end

common.main(arg or {}, W)

db:close()

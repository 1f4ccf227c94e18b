-- bench/profile.lua -- where the ORM's client time goes, layer by layer.
--
-- For each workload it measures the CLIENT CPU time (os.clock: user + system
-- time of this process, so the server's work and the wait for it are not
-- counted) of the same work done at successive layers:
--   core     the C core alone (conn:execute with the SQL the ORM sends)
--   backend  db:execute (pool checkout/checkin, transaction lookup, pcall)
--   pieces   the ORM's own steps measured apart (query building and SQL
--            compilation, model instances from rows, assignment, validation)
--   orm      the whole ORM call, as bench/orm.lua does it
-- and prints microseconds per call (per row for W2/W4).  Run it against a
-- server holding `floor setup` data; not part of `make bench`.
--   LUA_CPATH='build/?.so;;' LUA_PATH='lua/?.lua;lua/?/init.lua;;' lua5.4 bench/profile.lua [W1 ...]
local dir = (arg and arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
package.path = dir .. "/?.lua;" .. package.path

local common = require("common")
local ar = require("activerecord")
local clock = os.clock
local fmt = string.format
local unpack = table.unpack

local p = common.conn_params()
local db = ar.connect{ host = p.host, port = p.port, socket = p.socket, user = p.user,
                       password = p.password, database = p.database }
ar.set_default_backend(db)

local function user_fields()
  return {
    id = { type = "integer", primary_key = true },
    name = "string", email = "string", age = "integer", score = "float",
    balance = { type = "decimal", precision = 12, scale = 2 },
    active = "boolean", profile = "json", created_at = "datetime",
  }
end
local User = ar.Model{ name = "User", table = "users", fields = user_fields(),
  relations = { posts = ar.has_many("Post", { foreign_key = "user_id" }) } }
ar.Model{ name = "Post", table = "posts", fields = { id = { type = "integer", primary_key = true },
  user_id = "integer", title = "string", body = "text", created_at = "datetime" } }
local UserP = ar.Model{ name = "UserP", table = "users_prof", fields = user_fields() }

local function recreate()
  db:execute("DROP TABLE IF EXISTS users_prof")
  db:execute(common.users_ddl("users_prof"))
end

-- CPU seconds of fn(), after a full GC so earlier garbage is not charged to it.
local function cpu(fn)
  collectgarbage("collect")
  local c0 = clock()
  fn()
  return clock() - c0
end

local function report(wl, n, unit, rows)
  print(fmt("%s (client CPU, us per %s, n = %d)", wl, unit, n))
  for _, r in ipairs(rows) do print(fmt("  %-58s %9.2f", r[1], r[2] / n * 1e6)) end
end

local W = {}

function W.W3()
  local n = common.W3_LOOKUPS
  local sql = "SELECT * FROM `users` WHERE (`id` = ?) LIMIT ?"
  local conn = db.pool:checkout()
  local ids = {}
  local nxt = common.lcg_ids(42)
  for i = 1, n do ids[i] = nxt() end
  local t_core = cpu(function() for i = 1, n do local _ = conn:execute(sql, ids[i], 1).rows[1] end end)
  db.pool:checkin(conn)
  local t_backend = cpu(function() for i = 1, n do local _ = db:execute(sql, ids[i], 1).rows[1] end end)
  local t_build = cpu(function() for i = 1, n do local _ = User:query():where({ id = ids[i] }):limit(1) end end)
  local q = User:query():where({ id = 1 }):limit(1)
  local t_compile = cpu(function()
    for _ = 1, n do local _ = db.compiler.select(db.dialect, q:_final()) end
  end)
  local row = db:execute(sql, 1, 1).rows[1]
  local t_load = cpu(function() for _ = 1, n do local _ = User:_load(row) end end)
  local t_orm = cpu(function()
    for i = 1, n do local u = User:find(ids[i]); local _ = #u.name + #u.balance end
  end)
  report("W3 pk_lookup", n, "lookup", {
    { "core: conn:execute (incl. syscalls)", t_core },
    { "backend: db:execute", t_backend },
    { "  query build: User:query():where{id}:limit(1)", t_build },
    { "  SQL compile: compiler.select", t_compile },
    { "  instance: User:_load(row)", t_load },
    { "orm: User:find(id) + read name, balance", t_orm },
  })
end

function W.W4()
  local n = common.N_USERS
  local rows
  local t_core = cpu(function() rows = db:execute("SELECT * FROM `users`").rows end)
  local insts = {}
  local t_load = cpu(function() for i = 1, #rows do insts[i] = User:_load(rows[i]) end end)
  local function touch(list)
    local acc = 0
    for r = 1, #list do
      local u = list[r]
      local _, _, _, _, _, _, _, _ = u.id, u.name, u.email, u.age, u.score, u.balance, u.active, u.created_at
      local pr = u.profile
      acc = acc + #pr.theme + #pr.key + pr.tags[3]
    end
    return acc
  end
  local t_touch_rows = cpu(function() touch(rows) end)
  local t_touch_inst = cpu(function() touch(insts) end)
  rows, insts = nil, nil
  local t_orm = cpu(function() touch(User:all()) end)
  report("W4 fetch_all", n, "row", {
    { "core+backend: db:execute SELECT * (typed rows, JSON decoded)", t_core },
    { "  instances: User:_load(row) per row", t_load },
    { "  touch every attribute of plain rows", t_touch_rows },
    { "  touch every attribute of instances (__index)", t_touch_inst },
    { "orm: User:all() + touch", t_orm },
  })
end

local function insert_sql()
  return "INSERT INTO `users_prof` (`active`, `balance`, `created_at`, `email`, `name`, `profile`, "
    .. "`score`, `age`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
end

function W.W1()
  local n = common.W1_INSERTS
  local attrs = {}
  for i = 1, n do attrs[i] = common.user_attrs(i) end
  local cjson = require("cjson")
  recreate()
  local conn = db.pool:checkout()
  local sql = insert_sql()
  local t_core = cpu(function()
    conn:begin()
    for i = 1, n do
      local a = attrs[i]
      conn:execute(sql, a.active and 1 or 0, a.balance, a.created_at, a.email, a.name,
        cjson.encode(a.profile), a.score, a.age)
    end
    conn:commit()
  end)
  db.pool:checkin(conn)
  local insts = {}
  local t_new = cpu(function() for i = 1, n do insts[i] = UserP.new(attrs[i]) end end)
  local t_valid = cpu(function() for i = 1, n do insts[i]:valid() end end)
  recreate()
  local t_orm = cpu(function()
    db:transaction(function() for i = 1, n do UserP.new(attrs[i]):save() end end)
  end)
  report("W1 insert_one", n, "insert", {
    { "core: conn:execute INSERT (values pre-converted, JSON encoded)", t_core },
    { "  UserP.new(attrs) (assign + cast per field)", t_new },
    { "  inst:valid()", t_valid },
    { "orm: new + save in db:transaction", t_orm },
  })
end

function W.W5()
  local n = common.W5_UPDATES
  local ids = {}
  for i = 1, n do ids[i] = common.w5_id(i) end
  local function load()
    local by = {}
    for c = 1, n, 1000 do
      for _, u in ipairs(User:where{ id = table.move(ids, c, math.min(c + 999, n), 1, {}) }:all()) do
        by[u.id] = u
      end
    end
    return by
  end
  local nonce = common.w5_nonce()
  local conn = db.pool:checkout()
  local t_core = cpu(function()
    conn:begin()
    for i = 1, n do conn:execute("UPDATE `users` SET `score` = ? WHERE `id` = ?", common.w5_score(i, nonce), ids[i]) end
    conn:commit()
  end)
  db.pool:checkin(conn)
  local by = load()
  local t_assign = cpu(function() for i = 1, n do by[ids[i]].score = common.w5_score(i, nonce) + 1 end end)
  local t_valid = cpu(function() for i = 1, n do by[ids[i]]:valid() end end)
  by = load()
  local t_orm = cpu(function()
    db:transaction(function()
      for i = 1, n do local u = by[ids[i]]; u.score = common.w5_score(i, nonce) + 2; u:save() end
    end)
  end)
  report("W5 update_one", n, "update", {
    { "core: conn:execute UPDATE", t_core },
    { "  u.score = x (assign, dirty tracking)", t_assign },
    { "  u:valid()", t_valid },
    { "orm: assign + save in db:transaction", t_orm },
  })
end

function W.W2()
  local n = common.W2_ROWS
  local attrs = {}
  for i = 1, n do attrs[i] = common.user_attrs(i) end
  local cjson = require("cjson")
  -- the multi-row statement the ORM sends, executed through the core with
  -- pre-converted values (what a perfect ORM would add to the core: nothing)
  recreate()
  local batch = 1000
  local ph = {}
  for i = 1, batch do ph[i] = "(?, ?, ?, ?, ?, ?, ?, ?)" end
  local sql = "INSERT INTO `users_prof` (`active`, `balance`, `created_at`, `email`, `name`, `profile`, "
    .. "`score`, `age`) VALUES " .. table.concat(ph, ", ")
  local conn = db.pool:checkout()
  local t_core = cpu(function()
    conn:begin()
    for base = 1, n, batch do
      local params, k = {}, 0
      for i = base, base + batch - 1 do
        local a = attrs[i]
        params[k + 1], params[k + 2], params[k + 3], params[k + 4] = a.active and 1 or 0, a.balance,
          a.created_at, a.email
        params[k + 5], params[k + 6], params[k + 7], params[k + 8] = a.name, cjson.encode(a.profile),
          a.score, a.age
        k = k + 8
      end
      conn:execute(sql, unpack(params, 1, k))
    end
    conn:commit()
  end)
  db.pool:checkin(conn)
  local insts = {}
  local t_new = cpu(function() for i = 1, n do insts[i] = UserP.new(attrs[i]) end end)
  local t_valid = cpu(function() for i = 1, n do insts[i]:valid() end end)
  insts = nil
  recreate()
  local t_novalid = cpu(function()
    db:transaction(function() UserP:insert_all(attrs, { validate = false, events = false }) end)
  end)
  recreate()
  local t_orm = cpu(function() db:transaction(function() UserP:insert_all(attrs) end) end)
  report("W2 insert_bulk", n, "row", {
    { "core: 50 x 1,000-row INSERT, params pre-converted", t_core },
    { "  UserP.new(attrs) per row", t_new },
    { "  inst:valid() per row", t_valid },
    { "orm: insert_all{ validate = false, events = false }", t_novalid },
    { "orm: insert_all (defaults: validation, events, RETURNING id)", t_orm },
  })
end

function W.W6()
  local reps = 20
  local conn = db.pool:checkout()
  local ids = {}
  for i = 1, common.W6_USERS do ids[i] = i end
  local ph = {}
  for i = 1, #ids do ph[i] = "?" end
  local psql = "SELECT * FROM `posts` WHERE (`user_id` IN (" .. table.concat(ph, ", ") .. "))"
  local t_core = cpu(function()
    for _ = 1, reps do
      conn:execute("SELECT * FROM `users` WHERE (`id` <= ?)", common.W6_USERS)
      conn:execute(psql, unpack(ids))
    end
  end)
  db.pool:checkin(conn)
  local t_orm = cpu(function()
    for _ = 1, reps do
      local users = User:query():where(ar.col("id"):le(common.W6_USERS)):with("posts"):all()
      for i = 1, #users do for _, p2 in ipairs(users[i]:posts()) do local _ = #p2.title end end
    end
  end)
  report("W6 eager_load", reps, "eager load (1,000 users + 10,000 posts)", {
    { "core: the same 2 statements, typed rows", t_core },
    { "orm: with(\"posts\") + touch titles", t_orm },
  })
end

function W.W7()
  local n = common.W7_LOOKUPS
  local conn = db.pool:checkout()
  local sql = "SELECT * FROM `users` WHERE (JSON_UNQUOTE(JSON_EXTRACT(`profile`, ?)) = ?) LIMIT ?"
  local t_core = cpu(function() for i = 1, n do conn:execute(sql, "$.key", "value_" .. i, 1) end end)
  db.pool:checkin(conn)
  local cond = "JSON_UNQUOTE(JSON_EXTRACT(`profile`, ?)) = ?"
  local t_orm = cpu(function()
    for i = 1, n do local _ = User:where(cond, "$.key", "value_" .. i):limit(1):all()[1].id end
  end)
  report("W7 json_where", n, "lookup", {
    { "core: conn:execute", t_core },
    { "orm: User:where(json, ...):limit(1):all()", t_orm },
  })
end

local names = {}
for i = 1, #arg do names[i] = arg[i] end
if #names == 0 then names = { "W1", "W2", "W3", "W4", "W5", "W6", "W7" } end
for _, name in ipairs(names) do W[name]() end
db:execute("DROP TABLE IF EXISTS users_prof")
db:close()

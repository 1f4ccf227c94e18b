-- Neutral fixture schemas of the shared suite, in the schema DSL
-- (activerecord.schema). Each is a function(t, supports) filling a table
-- builder; `supports(name)` asks the backend's capabilities, so a fixture
-- only declares what the server can enforce. A provider compiles them with
-- its dialect (schema.define + dialect:create_table_sql) and its scenario's
-- table options (charset, collation, engine, ...).
local schema = require("activerecord.schema")

local M = {}

-- Creation order: a table comes after those it references.
M.order = { "users", "posts", "comments", "orders", "tags", "post_tags", "nodes", "accounts" }

-- Tables each fixture references (created with it, dropped after it).
M.depends = {
  posts = { "users" },
  comments = { "posts", "users" },
  orders = { "users" },
  post_tags = { "posts", "tags" },
}

M.tables = {}

M.tables.users = function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 100, nullable = false })
  -- 191 characters: the longest utf8mb4 VARCHAR a unique index takes everywhere
  t:string("email", { size = 191, unique = true })
  t:integer("age")
  t:double("score")
  t:decimal("balance", { precision = 12, scale = 2, default = "0.00" })
  t:boolean("active", { nullable = false, default = true })
  t:json("profile")
  t:timestamps()
end

M.tables.posts = function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("user_id", { nullable = false,
    references = { table = "users", on_delete = "cascade" } })
  t:string("title", { size = 200, nullable = false })
  t:text("body")
  t:datetime("created_at", { precision = 6, nullable = false,
    default = schema.raw("CURRENT_TIMESTAMP(6)") })
end

M.tables.comments = function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("post_id", { nullable = false,
    references = { table = "posts", on_delete = "cascade" } })
  t:bigint("user_id", { references = { table = "users", on_delete = "set null" } })
  t:text("body", { nullable = false })
  t:datetime("created_at", { precision = 6, nullable = false,
    default = schema.raw("CURRENT_TIMESTAMP(6)") })
end

M.tables.orders = function(t, supports)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("user_id", { nullable = false, index = true,
    references = { table = "users", on_delete = "cascade" } })
  t:enum("status", { values = { "pending", "paid", "shipped", "cancelled" },
    nullable = false, default = "pending" })
  t:decimal("total", { precision = 12, scale = 2, nullable = false, default = "0.00" })
  t:timestamps()
  -- declared only where the server enforces it (older ones parse and ignore)
  if supports("check_constraints") then
    t:check("orders_total_not_negative", schema.raw("total >= 0"))
  end
end

M.tables.tags = function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 64, nullable = false, unique = true })
end

M.tables.post_tags = function(t)
  t:bigint("post_id", { nullable = false,
    references = { table = "posts", on_delete = "cascade" } })
  t:bigint("tag_id", { nullable = false,
    references = { table = "tags", on_delete = "cascade" } })
  t:primary_key({ "post_id", "tag_id" })
  t:index("tag_id")
end

M.tables.nodes = function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("parent_id", { index = true,
    references = { table = "nodes", on_delete = "cascade" } })
  t:string("name", { size = 100, nullable = false })
  t:integer("position", { nullable = false, default = 0 })
end

M.tables.accounts = function(t)
  t:bigint("id", { primary_key = true })
  t:string("owner", { size = 100, nullable = false })
  t:decimal("balance", { precision = 12, scale = 2, nullable = false, default = "0.00" })
end

-- `names` plus everything they reference, in creation order.
function M.resolve(names)
  local wanted = {}
  local function want(name)
    if wanted[name] then return end
    if not M.tables[name] then
      local known = {}
      for _, n in ipairs(M.order) do known[#known + 1] = n end
      error(("unknown fixture %q (known: %s)"):format(tostring(name), table.concat(known, ", ")), 3)
    end
    wanted[name] = true
    for _, dep in ipairs(M.depends[name] or {}) do want(dep) end
  end
  for _, name in ipairs(names or {}) do want(name) end
  local out = {}
  for _, name in ipairs(M.order) do
    if wanted[name] then out[#out + 1] = name end
  end
  return out
end

-- Fixtures that reference any of `names`, directly or not (they must be
-- dropped before `names` are), plus `names`; in creation order.
function M.with_dependents(names)
  local hit = {}
  for _, name in ipairs(names) do hit[name] = true end
  -- M.order lists a table after what it references: one pass suffices
  for _, name in ipairs(M.order) do
    for _, dep in ipairs(M.depends[name] or {}) do
      if hit[dep] then hit[name] = true end
    end
  end
  local out = {}
  for _, name in ipairs(M.order) do
    if hit[name] then out[#out + 1] = name end
  end
  return out
end

-- The neutral definition of fixture `name` with table options `opts`.
function M.define(name, supports, opts)
  local fn = M.tables[name]
  if not fn then error(("unknown fixture %q"):format(tostring(name)), 2) end
  return schema.define(name, function(t) fn(t, supports) end, opts)
end

-- ---- model-layer fixtures (feature/basic, feature/events) ----------------

-- One column per model field type, each nullable, for round-trip specs;
-- `user_name` is the target of a renamed field (column = "user_name").
M.order[#M.order + 1] = "typed_records"
M.tables.typed_records = function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("int_v")
  t:double("float_v")
  t:decimal("dec_v", { precision = 12, scale = 2 })
  t:decimal("big_dec", { precision = 65, scale = 30 })
  t:string("str_v", { size = 10 })
  t:text("text_v")
  t:boolean("bool_v")
  t:date("date_v")
  t:datetime("dt_v", { precision = 6 })
  t:timestamp("ts_v", { precision = 6, nullable = true })
  t:time("time_v", { precision = 6 })
  t:json("json_v")
  t:enum("enum_v", { values = { "small", "medium", "large" } })
  t:set("set_v", { values = { "red", "green", "blue" } })
  t:blob("bin_v")
  t:uuid("uuid_v")
  t:uuid("uuid_bin", { binary = true })
  t:string("user_name", { size = 100 })
end

return M

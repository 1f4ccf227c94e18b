-- An app whose schema evolves across three migrations (examples/migrations/),
-- with models that read their table instead of repeating it:
--   1. create products            -> a model with no `fields` reflects them
--   2. add price, stock, an index -> a bare "decimal" field takes the column's scale
--   3. create orders (FK, a stored generated total, ON UPDATE timestamp)
--                                 -> the record holds what the server computed
-- then the status, the schema dump, and everything rolled back.
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/schema_evolution.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")

local db <close> = ar.connect(ar.config_from_env())
ar.set_default_backend(db)

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
-- The example keeps its versions apart from the app's schema_migrations.
local mig = ar.migrator(db, here .. "/migrations", { table = "example_schema_migrations" })

-- A clean start, even after an interrupted run.
mig:rollback{ to = 0 }
for _, t in ipairs({ "evo_orders", "evo_products" }) do ar.schema.drop_table(db, t, { if_exists = true }) end

local function names(list, key)
  local out = {}
  for i, x in ipairs(list) do out[i] = key and x[key] or x end
  return table.concat(out, ", ")
end

local pending = {}
for _, s in ipairs(mig:status()) do
  if not s.applied then pending[#pending + 1] = s.name end
end
print(("pending: %d (%s)"):format(#pending, table.concat(pending, ", ")))

-- 1 -------------------------------------------------------------------------
print("applied " .. names(mig:migrate{ to = "20260101000001" }))

-- No fields: the model reads them from the table on first use.
local Product = ar.Model{ name = "Product", table = "evo_products" }
local lamp = Product:create{ name = "lamp" }
local fields = {}
for _, f in ipairs(Product.field_list) do fields[#fields + 1] = f.name .. ":" .. f.type end
print("fields read from the table: " .. table.concat(fields, ", "))
print(("lamp #%d, created_at from the server: %s"):format(lamp.id, tostring(lamp.created_at ~= nil)))

-- 2 and 3 -------------------------------------------------------------------
print("applied " .. names(mig:migrate()))

-- Declared fields: what the declaration leaves out comes from the table.
-- A bare "decimal" takes DECIMAL(10,2)'s scale, a bare "string" VARCHAR(100)'s size.
Product = ar.Model{ name = "Product", table = "evo_products", fields = {
  id = { type = "bigint", primary_key = true }, name = "string", price = "decimal", stock = "integer",
} }
local desk = Product:create{ name = "desk", price = "12.50" }
print(("desk price %s, stock %d (the column default)"):format(desk.price, desk.stock))
local ok, err = pcall(Product.create, Product, { name = ("x"):rep(101), price = "1.005" })
print(("refused before any SQL: %s, %s"):format(tostring(not ok), err.kind))
print("  name: " .. err.errors.name[1])
print("  price: " .. err.errors.price[1])
print(("lamp kept its row: price %s"):format(Product:find(lamp.id).price))

-- Orders read everything from their table, the computed columns included.
local Order = ar.Model{ name = "Order", table = "evo_orders" }
local order = Order:create{ product_id = desk.id, quantity = 3, unit_price = desk.price }
print(("order total computed by the server: %s"):format(order.total))
local stamped = order.updated_at
order.quantity = 4
order:save()
print(("after the update: total %s, updated_at moved on: %s"):format(order.total,
  tostring(order.updated_at ~= stamped)))

-- status and dump ---------------------------------------------------------
for _, s in ipairs(mig:status()) do
  print(("%-4s %s %s"):format(s.applied and "up" or "down", s.version, s.name))
end
local dump = ar.schema.dump(db, { header = false })
local tables = {}
for t in dump:gmatch('m:create_table%("(evo_[%w_]+)"') do tables[#tables + 1] = t end
print("dump creates: " .. table.concat(tables, ", "))

-- rolling back ------------------------------------------------------------
print("rolled back " .. names(mig:rollback()))
print(("evo_orders exists: %s"):format(tostring(db:table_exists("evo_orders"))))
print("rolled back " .. names(mig:rollback{ to = 0 }))
print(("evo_products exists: %s"):format(tostring(db:table_exists("evo_products"))))
db:execute("DROP TABLE IF EXISTS example_schema_migrations")
print("cleaned up")

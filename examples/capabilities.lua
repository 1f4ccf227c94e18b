-- Capabilities: what the connected server supports, grouped by category,
-- and what happens when a feature is missing. A missing feature is a
-- CapabilityError naming the server's flavor and version, raised before any
-- SQL is sent; a few features degrade to an equivalent instead (FOR SHARE is
-- LOCK IN SHARE MODE on MariaDB).
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/capabilities.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")
local Dialect = require("activerecord.backend.mysql.dialect")
local compiler = require("activerecord.backend.mysql.compiler")


local sent = 0
local db <close> = ar.connect(ar.config_from_env{
  log = function() sent = sent + 1 end,
})
ar.set_default_backend(db)

local server = db:server()
print(("server: %s %s (%s)"):format(server.flavor, table.concat(server.version, "."), server.version_string))

-- db:capabilities(): category -> { name -> boolean }.
local grouped = db:capabilities()
local categories = {}
for category in pairs(grouped) do categories[#categories + 1] = category end
table.sort(categories)
local yes_total, no_total = 0, 0
for _, category in ipairs(categories) do
  local yes, no = {}, {}
  for name, supported in pairs(grouped[category]) do
    if supported then yes[#yes + 1] = name else no[#no + 1] = name end
  end
  table.sort(yes)
  table.sort(no)
  yes_total, no_total = yes_total + #yes, no_total + #no
  print(("  %-17s yes: %-66s no: %s"):format(category, table.concat(yes, " "),
    #no > 0 and table.concat(no, " ") or "-"))
end
print(("%d capabilities supported, %d not"):format(yes_total, no_total))

-- supports() takes a capability or a category (meaning its first entry).
print(("supports(\"json\")=%s supports(\"json_table\")=%s supports(\"upsert_alias\")=%s"):format(
  tostring(db:supports("json")), tostring(db:supports("json_table")), tostring(db:supports("upsert_alias"))))

-- A capability this server lacks, asked for explicitly.
local FEATURES = {
  { "upsert_alias", "INSERT ... AS new ON DUPLICATE KEY UPDATE" }, { "lateral", "LATERAL derived tables" },
  { "returning", "INSERT ... RETURNING" }, { "sequences", "CREATE SEQUENCE" },
}
local lacking, feature = "upsert_alias", "INSERT ... AS new ON DUPLICATE KEY UPDATE"
for _, f in ipairs(FEATURES) do
  if not db:supports(f[1]) then lacking, feature = f[1], f[2] break end
end
local ok, err = pcall(db.require_capability, db, lacking, feature)
print(("require_capability(%q): %s: %s"):format(lacking, ok and "supported" or err.kind,
  ok and "" or err.message))

-- A query using a missing feature fails while it compiles: nothing is sent.
ar.schema.create_table(db, "example_sales", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("region", { size = 20, nullable = false })
  t:decimal("amount", { precision = 10, scale = 2, nullable = false })
end, { force = true })
db:execute("INSERT INTO example_sales (region, amount) VALUES ('north', 10.50), ('north', 4.25), ('south', 7.00)")

local rollup = ar.table("example_sales"):select("region", ar.fn.sum("amount"):as("total"),
  ar.grouping("region"):as("is_total")):group_by("region"):with_rollup()
local before = sent
ok, err = pcall(rollup.aggregate, rollup)
if ok then
  print("GROUPING() ran: this server has grouping_function")
else
  print(("GROUPING() refused: %s, statements sent: %d"):format(err.kind, sent - before))
  print(("  %s"):format(err.message))
end

-- Degrading instead of failing: FOR SHARE where the server has it, else
-- LOCK IN SHARE MODE.
local shared = ar.table("example_sales"):where{ region = "north" }:for_share()
print(("for_share() compiles to: %s"):format((shared:to_sql()):match("(%u[%u ]+)$")))

-- What another server would say, without connecting to one: the pure
-- capability function and a dialect for it. Nothing is sent.
for _, target in ipairs({ { "mysql", "5.7.40" }, { "mysql", "8.0.36" }, { "mariadb", "10.4.30" } }) do
  local caps = ar.capabilities_for(target[1], target[2])
  local dialect = Dialect.new{ flavor = target[1], version = target[2], capabilities = caps }
  local ranked = ar.table("example_sales", db)
    :with_cte("regional", ar.table("example_sales"):select("region", ar.fn.sum("amount"):as("total"))
      :group_by("region"))
    :from("regional"):select("region", ar.row_number():over{ order_by = { { "total", "desc" } } }:as("pos"))
  before = sent
  local cok, result = pcall(compiler.select, dialect, ranked)
  print(("%s %s: cte=%s window_functions=%s json_table=%s returning=%s -> CTE + window query: %s"):format(
    target[1], target[2], tostring(caps.cte), tostring(caps.window_functions), tostring(caps.json_table),
    tostring(caps.returning), cok and "compiles" or (result.kind .. " (" .. result.message .. ")")))
  assert(sent == before, "nothing is sent for another server's dialect")
end

-- The same query on this server runs.
local ranked = ar.table("example_sales")
  :with_cte("regional", ar.table("example_sales"):select("region", ar.fn.sum("amount"):as("total"))
    :group_by("region"))
  :from("regional"):select("region", "total", ar.row_number():over{ order_by = { { "total", "desc" } } }:as("pos"))
  :order_by("pos")
if db:supports("cte") and db:supports("window_functions") then
  local rows = ranked:aggregate()
  print(("on this server the CTE + window query runs: %s=%s (#%d), %s=%s (#%d)"):format(rows[1].region,
    rows[1].total, rows[1].pos, rows[2].region, rows[2].total, rows[2].pos))
end

ar.schema.drop_table(db, "example_sales", { if_exists = true })
print("cleaned up")

-- Soak: STATEMENTS primary-key lookups through one pool (Model:find and
-- db:query alternating), printing RSS at intervals; fails when RSS grows by
-- more than LIMIT_KIB after the warm-up (the first tenth).
-- usage: lua5.4 spec/reliability/soak.lua [STATEMENTS] [LIMIT_KIB]
--   (default 1000000 statements, 10240 KiB)   `make soak` runs it.
local ar = require("activerecord")
local core = require("activerecord.backend.mysql.core")
local support = require("support.db")

local total = math.tointeger(tonumber(arg[1])) or 1000000
local limit_kib = tonumber(arg[2]) or 10240
local ROWS = 1000
local interval = math.max(1, total // 20)
local warmup = math.max(1, total // 10)

local db = ar.connect(support.options{ pool = { size = 4 } })
db:execute("DROP TABLE IF EXISTS soak_rows")
db:execute("CREATE TABLE soak_rows (id INT PRIMARY KEY, name VARCHAR(50), score DECIMAL(10,2), "
  .. "doc JSON, at DATETIME(6)) ENGINE=InnoDB")
local Row = ar.Model{ name = "SoakRow", table = "soak_rows", backend = db,
  fields = { id = { type = "integer", primary_key = true }, name = "string",
             score = { type = "decimal", precision = 10, scale = 2 }, doc = "json", at = "datetime" } }
local seed = {}
for i = 1, ROWS do
  seed[i] = { id = i, name = "row" .. i, score = ("%d.%02d"):format(i, i % 100),
              doc = { i = i, tags = { "x", "y" } }, at = "2024-01-02T03:04:05.123456Z" }
end
Row:insert_all(seed)

local function rss_kib()
  collectgarbage("collect")
  return support.rss_kib()
end

local started = core.monotime()
local base, peak
print(("soak: %d statements, RSS at start %d KiB"):format(total, rss_kib()))
for i = 1, total do
  local id = i % ROWS + 1
  if i % 2 == 0 then
    local r = Row:find(id)
    if not r or r.id ~= id or r.doc.i ~= id then error("soak: wrong row for id " .. id) end
  else
    local r = db:query("SELECT id, name FROM soak_rows WHERE id = ?", id)[1]
    if not r or r.id ~= id then error("soak: wrong row for id " .. id) end
  end
  if i % interval == 0 then
    local rss = rss_kib()
    if i >= warmup and not base then base = rss end
    if base then peak = math.max(peak or rss, rss) end
    local rate = i / (core.monotime() - started)
    print(("soak: %7d statements  RSS %6d KiB  Lua heap %6d KiB  %6.0f stmt/s")
      :format(i, rss, math.floor(collectgarbage("count")), rate))
    io.stdout:flush()
  end
end
local final = rss_kib()
local stats = db:pool_stats()
db:execute("DROP TABLE soak_rows")
db:close()
base = base or final
peak = math.max(peak or final, final)
local growth = peak - base
print(("soak: done in %.1f s; RSS after warm-up %d KiB, peak %d KiB, final %d KiB, growth %d KiB "
  .. "(limit %d KiB); pool created=%d replaced=%d"):format(core.monotime() - started, base, peak, final,
  growth, limit_kib, stats.created, stats.replaced))
if growth > limit_kib then
  print("soak: FAILED: RSS grew by " .. growth .. " KiB")
  os.exit(1)
end
print("soak: OK, RSS flat")

-- Setup and verification of the load test (scripts/load-test.sh).
--   lua5.4 spec/reliability/load_check.lua setup COUNTERS
--   lua5.4 spec/reliability/load_check.lua verify WORKERS OPS COUNTERS
-- verify: every (worker, seq) is present exactly once, no stray rows, and
-- the counters add up to exactly two increments per committed transaction
-- (a retried transaction applied twice would show here).
local ar = require("activerecord")
local support = require("support.db")

local mode = arg[1]
local db = ar.connect(support.options{ pool = { size = 1 } })

if mode == "setup" then
  local counters = math.tointeger(tonumber(arg[2])) or 4
  db:execute("DROP TABLE IF EXISTS load_records")
  db:execute("DROP TABLE IF EXISTS load_counters")
  ar.schema.create_table(db, "load_records", function(t)
    t:bigint("id", { primary_key = true, auto_increment = true })
    t:integer("worker", { nullable = false })
    t:integer("seq", { nullable = false })
    t:json("payload")
    t:index({ "worker", "seq" }, { unique = true })
  end)
  ar.schema.create_table(db, "load_counters", function(t)
    t:integer("id", { primary_key = true })
    t:bigint("n", { nullable = false, default = 0 })
  end)
  for i = 1, counters do db:execute("INSERT INTO load_counters (id, n) VALUES (?, 0)", i) end
  print("load: tables ready (" .. counters .. " counter rows)")
elseif mode == "verify" then
  local workers = math.tointeger(tonumber(arg[2]))
  local ops = math.tointeger(tonumber(arg[3]))
  local expected = workers * ops
  local problems = {}
  local total = db:query("SELECT COUNT(*) AS n FROM load_records")[1].n
  local distinct = db:query("SELECT COUNT(DISTINCT worker, seq) AS n FROM load_records")[1].n
  local dup = db:query("SELECT worker, seq, COUNT(*) AS c FROM load_records GROUP BY worker, seq "
    .. "HAVING COUNT(*) > 1 LIMIT 5")
  local stray = db:query("SELECT COUNT(*) AS n FROM load_records WHERE worker < 1 OR worker > ? "
    .. "OR seq < 1 OR seq > ?", workers, ops)[1].n
  local bad_json = db:query("SELECT COUNT(*) AS n FROM load_records WHERE "
    .. "JSON_VALUE(payload, '$.worker') <> worker OR JSON_VALUE(payload, '$.seq') <> seq")[1].n
  local missing = 0
  for w = 1, workers do
    local n = db:query("SELECT COUNT(DISTINCT seq) AS n FROM load_records WHERE worker = ?", w)[1].n
    missing = missing + (ops - n)
  end
  local sum = tonumber(db:query("SELECT SUM(n) AS s FROM load_counters")[1].s)
  if total ~= expected then problems[#problems + 1] = ("rows %d, expected %d"):format(total, expected) end
  if distinct ~= total or #dup > 0 then problems[#problems + 1] = "duplicate (worker, seq) rows" end
  if stray > 0 then problems[#problems + 1] = stray .. " stray rows" end
  if bad_json > 0 then problems[#problems + 1] = bad_json .. " rows whose JSON differs from their columns" end
  if missing > 0 then problems[#problems + 1] = missing .. " rows missing" end
  if sum ~= 2 * expected then
    problems[#problems + 1] = ("counters sum %s, expected %d (a transaction applied twice or lost)")
      :format(tostring(sum), 2 * expected)
  end
  print(("load: rows=%d expected=%d distinct=%d missing=%d duplicates=%d counters=%s/%d")
    :format(total, expected, distinct, missing, total - distinct, tostring(sum), 2 * expected))
  if #problems > 0 then
    print("load: FAILED: " .. table.concat(problems, "; "))
    os.exit(1)
  end
  db:execute("DROP TABLE load_records")
  db:execute("DROP TABLE load_counters")
  print("load: OK, rows lost: 0")
else
  io.stderr:write("usage: load_check.lua setup COUNTERS | verify WORKERS OPS COUNTERS\n")
  os.exit(2)
end
db:close()

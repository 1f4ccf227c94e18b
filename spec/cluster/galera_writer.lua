-- One writer process of the Galera load spec (galera_spec.lua): for
-- SECONDS, transfers between accounts, each a transaction with retries,
-- through a backend over the cluster's nodes listed from node FIRST on.
-- Prints "ack <id>" once a transfer is committed (acknowledged), "fail <id>
-- <kind> <commit_unknown>" when it is not, and a last "stats" line.
--   lua5.4 galera_writer.lua WRITER SECONDS FIRST
local ar = require("activerecord")
local support = require("cluster.support")
local core = require("activerecord.backend.mysql.core")

local writer, seconds, first = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
io.stdout:setvbuf("line")

local nodes = support.galera()
local order = {}
for i = 0, #nodes - 1 do order[#order + 1] = nodes[(first - 1 + i) % #nodes + 1] end
local db = ar.connect{ cluster = order, node_retry = 1, reconnect_retries = 2,
                       read_timeout = 10, pool = { size = 1 } }

local ACCOUNTS = 10
math.randomseed(writer * 7919)
local deadline = core.monotime() + seconds
local seq, acked, attempts, failed = 0, 0, 0, 0
while core.monotime() < deadline do
  seq = seq + 1
  local id = writer * 1000000 + seq
  local a = math.random(ACCOUNTS)
  local b = a % ACCOUNTS + 1
  local amount = math.random(1, 50)
  local ok, err = pcall(db.transaction, db, function(tx)
    attempts = attempts + 1
    tx:execute("UPDATE gal_accounts SET balance = balance - ? WHERE id = ?", amount, a)
    tx:execute("UPDATE gal_accounts SET balance = balance + ? WHERE id = ?", amount, b)
    tx:execute("INSERT INTO gal_ledger (id, src, dst, amount) VALUES (?, ?, ?, ?)", id, a, b, amount)
  end, { retries = 30 })
  if ok then
    acked = acked + 1
    print("ack " .. id)
  else
    failed = failed + 1
    print(("fail %d %s %s %s"):format(id, tostring(err.kind), tostring(err.commit_unknown),
      tostring(err.message):gsub("\n", " ")))
    core.sleep(0.05)
  end
end
local stats = db:pool_stats()
print(("stats writer=%d acked=%d failed=%d attempts=%d failovers=%d"):format(writer, acked, failed, attempts,
  stats.failovers or 0))
db:close()

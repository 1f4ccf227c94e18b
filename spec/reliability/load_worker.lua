-- One worker process of the load test (scripts/load-test.sh): `OPS`
-- transactions, each saving a JSON record through the ORM and bumping two
-- shared counter rows in random order (so deadlocks do happen between
-- workers), retried with db:transaction(fn, { retries = 5 }); after the
-- commit the record is read back and compared. Any other error is counted
-- as unexpected. Prints one summary line:
--   worker=W ops=N saved=N verified=N attempts=N deadlocks=N lock_timeouts=N unexpected=N
-- usage: lua5.4 spec/reliability/load_worker.lua WORKER OPS COUNTERS
local ar = require("activerecord")
local support = require("support.db")

local worker = math.tointeger(tonumber(arg[1])) or error("usage: load_worker.lua WORKER OPS COUNTERS")
local ops = math.tointeger(tonumber(arg[2])) or 1000
local counters = math.tointeger(tonumber(arg[3])) or 4

math.randomseed(os.time() + worker * 7919)

local db = ar.connect(support.options{ pool = { size = 2 } })
local Record = ar.Model{
  name = "LoadRecord", table = "load_records", backend = db,
  fields = {
    id = { type = "integer", primary_key = true },
    worker = { type = "integer", required = true },
    seq = { type = "integer", required = true },
    payload = "json",
  },
}

local stats = { saved = 0, verified = 0, attempts = 0, deadlocks = 0, lock_timeouts = 0, unexpected = 0 }
local function note_unexpected(what, err)
  stats.unexpected = stats.unexpected + 1
  io.stderr:write(("worker %d: unexpected error at %s: %s\n"):format(worker, what, tostring(err)))
end

for seq = 1, ops do
  local payload = { worker = worker, seq = seq, tags = { "a", "b", tostring(seq % 7) },
                    nested = { n = seq * 3, f = seq / 4, ok = seq % 2 == 0, s = ("é%dü"):format(seq) } }
  local a = math.random(counters)
  local b = math.random(counters - 1)
  if b >= a then b = b + 1 end
  local ok, rec = pcall(db.transaction, db, function(tx)
    stats.attempts = stats.attempts + 1
    -- counters first, in random order: two workers locking (1, 2) and (2, 1) deadlock
    local ok1, e1 = pcall(function()
      tx:execute("UPDATE load_counters SET n = n + 1 WHERE id = ?", a)
      tx:execute("UPDATE load_counters SET n = n + 1 WHERE id = ?", b)
    end)
    if not ok1 then
      if ar.errors.is(e1, "DeadlockError") then stats.deadlocks = stats.deadlocks + 1 end
      if ar.errors.is(e1, "LockTimeoutError") then stats.lock_timeouts = stats.lock_timeouts + 1 end
      error(e1, 0)
    end
    return Record:create{ worker = worker, seq = seq, payload = payload }
  end, { retries = 5 })
  if not ok then
    note_unexpected("save seq " .. seq, rec)
  else
    stats.saved = stats.saved + 1
    local back_ok, back = pcall(Record.find, Record, rec.id)
    if not back_ok then
      note_unexpected("read back seq " .. seq, back)
    elseif not back or back.worker ~= worker or back.seq ~= seq
      or back.payload.nested.n ~= seq * 3 or back.payload.nested.s ~= payload.nested.s
      or back.payload.tags[3] ~= tostring(seq % 7) or back.payload.nested.ok ~= (seq % 2 == 0) then
      note_unexpected("read back seq " .. seq, "record differs from what was saved")
    else
      stats.verified = stats.verified + 1
    end
  end
end

db:close()
print(("worker=%d ops=%d saved=%d verified=%d attempts=%d deadlocks=%d lock_timeouts=%d unexpected=%d")
  :format(worker, ops, stats.saved, stats.verified, stats.attempts, stats.deadlocks, stats.lock_timeouts,
          stats.unexpected))
os.exit(stats.unexpected == 0 and stats.saved == ops and 0 or 1)

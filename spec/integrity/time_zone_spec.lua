-- Time (issue 15): DATETIME columns hold UTC whatever the session's
-- time_zone. The timestamps mixin writes UTC and the schema DSL's
-- t:timestamps() defaults to UTC_TIMESTAMP(6) with no ON UPDATE (the server
-- wrote session-local time there: five hours off under "+05:00" after an
-- update_all). A Lua value stores the instant it names: an os.time() number
-- (UTC epoch), an os.date("!*t") table with utc = true, an ISO string with
-- an offset. Sessions default to time_zone "+00:00".
local ar = require("activerecord")
local support = require("support.db")

-- "2026-12-01 11:00:00.123456" (UTC) -> epoch seconds (whole)
local function epoch(s)
  local y, mo, d, h, mi, sec = s:match("^(%d+)%-(%d+)%-(%d+) (%d+):(%d+):(%d+)")
  assert(y, "not a DATETIME: " .. tostring(s))
  local t = { year = tonumber(y), month = tonumber(mo), day = tonumber(d),
              hour = tonumber(h), min = tonumber(mi), sec = tonumber(sec) }
  -- UTC without the local zone: days from the civil date
  local yy = t.month <= 2 and t.year - 1 or t.year
  local era = yy // 400
  local yoe = yy - era * 400
  local doy = (153 * (t.month + (t.month > 2 and -3 or 9)) + 2) // 5 + t.day - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  return days * 86400 + t.hour * 3600 + t.min * 60 + t.sec
end

local function near_now(s)
  local diff = math.abs(epoch(s) - os.time())
  assert(diff <= 5, ("%s is %d s away from the UTC time now"):format(s, diff))
end

for _, zone in ipairs({ "+05:00", "-08:00" }) do
  describe("integrity: time under time_zone = " .. zone, function()
    local db, Task

    setup(function()
      db = ar.connect(support.options{ time_zone = zone, pool = { size = 2 } })
      ar.schema.create_table(db, "tz_tasks", function(t)
        t:bigint("id", { primary_key = true, auto_increment = true })
        t:string("title", { size = 50 })
        t:datetime("due_at", { precision = 6 })
        t:timestamps()
      end, { force = true })
      Task = ar.Model{ name = "TzTask", table = "tz_tasks", backend = db, mixins = { "timestamps" } }
    end)

    teardown(function()
      ar.schema.drop_table(db, "tz_tasks", { if_exists = true })
      db:close()
    end)

    local function stored(id)
      return db:query("SELECT created_at, updated_at, due_at FROM tz_tasks WHERE id = ?", id)[1]
    end

    it("runs the session in that zone", function()
      assert.are.equal(zone, db:query("SELECT @@session.time_zone AS z")[1].z)
    end)

    it("create: created_at and updated_at are the UTC time now", function()
      local t = Task:create{ title = "a" }
      local row = stored(t.id)
      assert.are.equal(row.created_at, row.updated_at)
      near_now(row.created_at)
    end)

    it("a row inserted by SQL gets UTC from the DSL's defaults", function()
      db:execute("INSERT INTO tz_tasks (title) VALUES ('raw')")
      local row = db:query("SELECT created_at, updated_at FROM tz_tasks WHERE title = 'raw'")[1]
      near_now(row.created_at)
      near_now(row.updated_at)
    end)

    it("update_all leaves both in UTC; it sets updated_at when given a Lua time", function()
      local t = Task:create{ title = "b" }
      assert.are.equal(1, Task:where{ id = t.id }:update_all{ title = "b2" })
      local row = stored(t.id)
      near_now(row.created_at)
      near_now(row.updated_at)
      assert.is_true(math.abs(epoch(row.updated_at) - epoch(row.created_at)) <= 1)
      Task:where{ id = t.id }:update_all{ updated_at = os.time() }
      near_now(stored(t.id).updated_at)
    end)

    it("save: updated_at moves forward in UTC, created_at stays", function()
      local t = Task:create{ title = "c" }
      local before = stored(t.id)
      t.title = "c2"
      t:save()
      local row = stored(t.id)
      assert.are.equal(before.created_at, row.created_at)
      assert.is_true(row.updated_at > before.updated_at)
      near_now(row.updated_at)
      assert.are.equal(row.updated_at, t.updated_at)
    end)

    it("a Lua time round-trips to the instant it names", function()
      local instant = 1780315200 -- 2026-06-01 12:00:00 UTC
      local cases = {
        instant,
        instant + 0.25,
        "2026-06-01T17:00:00+05:00",
        "2026-06-01T04:00:00-08:00",
        "2026-06-01T12:00:00Z",
        "2026-06-01 12:00:00",
        { year = 2026, month = 6, day = 1, hour = 12, utc = true },
      }
      for i, v in ipairs(cases) do
        local t = Task:create{ title = "r" .. i, due_at = v }
        local back = Task:find(t.id).due_at
        assert.are.equal(instant, epoch(back), ("case %d: %s"):format(i, back))
        assert.are.equal(back, stored(t.id).due_at)
      end
      assert.are.equal("2026-06-01 12:00:00.250000", stored(Task:where{ title = "r2" }:first().id).due_at)
    end)
  end)
end

describe("integrity: the session time_zone by default", function()
  it("is +00:00, so NOW() is UTC; a named zone is kept", function()
    local db = ar.connect(support.options{ pool = { size = 1 } })
    local row = db:query("SELECT @@session.time_zone AS z, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS d")[1]
    assert.are.equal("+00:00", row.z)
    assert.are.equal(0, row.d)
    db:close()
    db = ar.connect(support.options{ pool = { size = 1 }, time_zone = "+01:30" })
    assert.are.equal("+01:30", db:query("SELECT @@session.time_zone AS z")[1].z)
    db:close()
  end)
end)

-- The timestamps mixin: created_at on insert, updated_at on every real
-- update (UTC, microseconds), created_at never changes. The table has no
-- server defaults, so every value seen here was written by the mixin.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

describe("mixin timestamps", function()
  local scenario = testsuite.default_scenario()
  local db
  local Note

  local DATETIME6 = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d%d%d%d$"

  local function stored(id)
    return db:query("SELECT created_at, updated_at FROM mx_ts_notes WHERE id = ?", id)[1]
  end

  local function utc(t) return os.date("!%Y-%m-%d %H:%M:%S", t) end

  -- a later clock reading, so that consecutive timestamps differ
  local function tick() testsuite.sleep(0.002) end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_ts_notes", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("body", { size = 100 })
      t:datetime("created_at", { precision = 6 })
      t:datetime("updated_at", { precision = 6 })
    end, { force = true })
    Note = ar.Model{ name = "TsNote", table = "mx_ts_notes", backend = db, mixins = { "timestamps" },
      fields = { id = "integer", body = "string" } }
  end)

  teardown(function()
    ar.schema.drop_table(db, "mx_ts_notes", { if_exists = true })
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM mx_ts_notes")
  end)

  it("declares created_at and updated_at as fields of the model", function()
    assert.are.equal("datetime", Note.fields.created_at.type)
    assert.are.equal("datetime", Note.fields.updated_at.type)
  end)

  it("sets created_at = updated_at on insert, in UTC with microseconds", function()
    local before = os.time()
    local n = Note:create{ body = "hello" }
    local after = os.time()
    assert.matches(DATETIME6, n.created_at)
    assert.are.equal(n.created_at, n.updated_at)
    -- UTC, whatever the machine's zone: within the seconds the call took
    local secs = n.created_at:sub(1, 19)
    assert.is_true(secs >= utc(before) and secs <= utc(after + 1), secs .. " not in UTC " .. utc(before))
    -- the row holds exactly what the instance shows, microseconds included
    local row = stored(n.id)
    assert.are.equal(n.created_at, row.created_at)
    assert.are.equal(n.updated_at, row.updated_at)
  end)

  it("keeps a created_at given explicitly on insert (an import), and never lets it change afterwards", function()
    local n = Note:create{ body = "imported", created_at = "2020-01-02 03:04:05.123456" }
    assert.are.equal("2020-01-02 03:04:05.123456", stored(n.id).created_at)
    assert.matches(DATETIME6, stored(n.id).updated_at)
    local err = testsuite.error_of(function() n.created_at = "2021-01-01 00:00:00" end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.same({ "is read-only" }, err.errors.created_at)
    Note:insert_all({ { body = "bulk", created_at = "2020-01-02 03:04:05.123456",
                        updated_at = "2020-01-02 03:04:05.123456" } })
    assert.are.equal(2, db:query("SELECT COUNT(*) AS n FROM mx_ts_notes WHERE created_at = ?",
      "2020-01-02 03:04:05.123456")[1].n)
  end)

  it("advances updated_at on every real update and never touches created_at", function()
    local n = Note:create{ body = "v1" }
    local created, first = n.created_at, n.updated_at
    for i = 2, 4 do
      tick()
      local prev = n.updated_at
      n.body = "v" .. i
      n:save()
      assert.is_true(n.updated_at > prev, n.updated_at .. " <= " .. prev)
      local row = stored(n.id)
      assert.are.equal(n.updated_at, row.updated_at)
      assert.are.equal(created, row.created_at)
    end
    assert.is_true(n.updated_at > first)
    -- update() is a save too
    tick()
    local prev = n.updated_at
    n:update{ body = "v5" }
    assert.is_true(stored(n.id).updated_at > prev)
    assert.are.equal(created, n:reload().created_at)
  end)

  it("writes nothing, and keeps updated_at, when a save changes nothing", function()
    local n = Note:create{ body = "same" }
    local prev = n.updated_at
    tick()
    assert.are.equal(0, testsuite.count_statements(db, function()
      assert.are.equal(0, n:save())
      n.body = "same" -- assigning the stored value is no change
      assert.are.equal(0, n:save())
    end))
    assert.are.equal(prev, n.updated_at)
    assert.are.equal(prev, stored(n.id).updated_at)
  end)

  it("refuses to change created_at after insert", function()
    local n = Note:create{ body = "x" }
    local err = testsuite.error_of(function() n.created_at = "2001-01-01 00:00:00" end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    local loaded = Note:find(n.id)
    err = testsuite.error_of(function() loaded.created_at = "2001-01-01 00:00:00" end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.are.equal(n.created_at, stored(n.id).created_at)
  end)

  it("stamps rows written by insert_all", function()
    local res = Note:insert_all({ { body = "a" }, { body = "b" } })
    for _, rec in ipairs(res.records) do
      local row = stored(rec.id)
      assert.matches(DATETIME6, row.created_at)
      assert.are.equal(row.created_at, row.updated_at)
    end
  end)
end)

-- All four built-in mixins on one model:
--   mixins = { "timestamps", "soft_delete", "optimistic_lock", { "uuid", { version = 7, binary = true } } }
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

describe("all four mixins combined", function()
  local scenario = testsuite.default_scenario()
  local db
  local Doc

  local function stored(id)
    return db:query("SELECT name, created_at, updated_at, deleted_at, version FROM mx_all_docs "
      .. "WHERE id = UNHEX(REPLACE(?, '-', ''))", id)[1]
  end

  local function tick() testsuite.sleep(0.002) end

  local function names(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.name end
    table.sort(out)
    return out
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_all_docs", function(t)
      t:uuid("id", { primary_key = true, binary = true })
      t:string("name", { size = 100, nullable = false })
      t:datetime("created_at", { precision = 6 })
      t:datetime("updated_at", { precision = 6 })
      t:datetime("deleted_at", { precision = 6 })
      t:integer("version", { nullable = false, default = 0 })
    end, { force = true })
    Doc = ar.Model{ name = "AllDoc", table = "mx_all_docs", backend = db,
      mixins = { "timestamps", "soft_delete", "optimistic_lock", { "uuid", { version = 7, binary = true } } },
      fields = { name = { type = "string", required = true } } }
  end)

  teardown(function()
    ar.schema.drop_table(db, "mx_all_docs", { if_exists = true })
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM mx_all_docs")
  end)

  it("has every mixin's fields", function()
    for _, f in ipairs({ "id", "created_at", "updated_at", "deleted_at", "version", "name" }) do
      assert.is_not_nil(Doc.fields[f], f)
    end
    assert.are.equal("id", Doc.primary_key)
  end)

  it("creates with a v7 key, both timestamps and version 0", function()
    local d = Doc:create{ name = "spec" }
    assert.matches("^%x+%-%x+%-7%x+%-[89ab]%x+%-%x+$", d.id)
    local row = stored(d.id)
    assert.are.equal("spec", row.name)
    assert.are.equal(d.created_at, row.created_at)
    assert.are.equal(row.created_at, row.updated_at)
    assert.is_nil(row.deleted_at)
    assert.are.equal(0, row.version)
  end)

  it("updates: version +1, updated_at advances, created_at stays", function()
    local d = Doc:create{ name = "v0" }
    local created = d.created_at
    tick()
    d:update{ name = "v1" }
    local row = stored(d.id)
    assert.are.equal(1, row.version)
    assert.is_true(row.updated_at > row.created_at)
    assert.are.equal(created, row.created_at)
    assert.are.equal(d.updated_at, row.updated_at)
  end)

  it("refuses a stale copy and writes nothing, not even updated_at", function()
    local d = Doc:create{ name = "base" }
    local mine, theirs = Doc:find(d.id), Doc:find(d.id)
    tick()
    theirs:update{ name = "theirs" }
    local before = stored(d.id)
    tick()
    mine.name = "mine"
    local err = testsuite.error_of(mine.save, mine)
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.are.same(before, stored(d.id))
  end)

  it("soft-deletes through the version check and a timestamp bump", function()
    local d = Doc:create{ name = "doomed" }
    Doc:create{ name = "kept" }
    tick()
    d:delete()
    local row = stored(d.id)
    assert.is_not_nil(row.deleted_at)
    assert.are.equal(1, row.version)
    assert.is_true(row.updated_at > row.created_at)
    assert.are.same({ "kept" }, names(Doc:all()))
    assert.is_nil(Doc:find(d.id))
    assert.are.same({ "doomed" }, names(Doc:only_deleted():all()))
    assert.are.same({ "doomed", "kept" }, names(Doc:with_deleted():all()))
  end)

  it("refuses to soft-delete a stale copy; the row stays visible", function()
    local d = Doc:create{ name = "contested" }
    local stale = Doc:find(d.id)
    d:update{ name = "edited" }
    local err = testsuite.error_of(stale.delete, stale)
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.is_nil(stored(d.id).deleted_at)
    assert.are.equal("edited", Doc:find(d.id).name)
  end)

  it("restores, then hard-deletes", function()
    local d = Doc:create{ name = "phoenix" }
    d:delete()
    local gone = Doc:only_deleted():all()[1]
    gone:restore()
    local row = stored(d.id)
    assert.is_nil(row.deleted_at)
    assert.are.equal(2, row.version)
    assert.are.equal("phoenix", Doc:find(d.id).name)
    local current = Doc:find(d.id)
    assert.are.equal(1, current:hard_delete())
    assert.is_nil(stored(d.id))
  end)

  it("refuses to hard-delete a stale copy", function()
    local d = Doc:create{ name = "x" }
    local stale = Doc:find(d.id)
    d:update{ name = "y" }
    assert.is_true(ar.errors.is(testsuite.error_of(stale.destroy, stale), "StaleObjectError"))
    assert.is_not_nil(stored(d.id))
  end)

  it("bulk-inserts with keys, timestamps and versions", function()
    local res = Doc:insert_all({ { name = "a" }, { name = "b" }, { name = "c" } })
    for _, rec in ipairs(res.records) do
      local row = stored(rec.id)
      assert.is_not_nil(row, rec.id)
      assert.are.equal(0, row.version)
      assert.is_not_nil(row.created_at)
    end
    assert.are.same({ "a", "b", "c" }, names(Doc:all()))
  end)
end)

-- The optimistic_lock mixin: a `version` column; every update checks the
-- version this copy read and increments it; a stale copy raises
-- StaleObjectError and writes nothing, on update and on delete.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

describe("mixin optimistic_lock", function()
  local scenario = testsuite.default_scenario()
  local db
  local Item

  local function row(id)
    return db:query("SELECT name, qty, version FROM mx_ol_items WHERE id = ?", id)[1]
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_ol_items", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 100 })
      t:integer("qty", { nullable = false, default = 0 })
      t:integer("version", { nullable = false, default = 0 })
    end, { force = true })
    Item = ar.Model{ name = "OlItem", table = "mx_ol_items", backend = db, mixins = { "optimistic_lock" },
      fields = { id = "integer", name = "string", qty = "integer" } }
  end)

  teardown(function()
    ar.schema.drop_table(db, "mx_ol_items", { if_exists = true })
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM mx_ol_items")
  end)

  it("starts at version 0 and increments it on every update", function()
    local it_ = Item:create{ name = "widget" }
    assert.are.equal(0, it_.version)
    assert.are.equal(0, row(it_.id).version)
    for v = 1, 3 do
      it_.qty = v
      it_:save()
      assert.are.equal(v, it_.version)
      assert.are.equal(v, row(it_.id).version)
    end
  end)

  it("checks the version in the UPDATE's WHERE", function()
    local it_ = Item:create{ name = "widget" }
    it_.name = "gadget"
    local _, events = testsuite.count_statements(db, function() it_:save() end)
    assert.are.equal(1, #events)
    assert.matches("^UPDATE .* WHERE .*version.* = %?", events[1].sql)
  end)

  it("raises StaleObjectError for a stale copy and writes nothing", function()
    local orig = Item:create{ name = "widget", qty = 1 }
    local mine, theirs = Item:find(orig.id), Item:find(orig.id)
    theirs.qty = 10
    theirs:save()
    mine.name = "mine"
    mine.qty = 99
    local err = testsuite.error_of(function() return mine:save() end)
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.are.equal("OlItem", err.model)
    assert.are.equal(orig.id, err.id)
    assert.are.same({ name = "widget", qty = 10, version = 1 }, row(orig.id))
  end)

  it("lets a stale copy save after reload", function()
    local orig = Item:create{ name = "widget" }
    local mine, theirs = Item:find(orig.id), Item:find(orig.id)
    theirs:update{ qty = 5 }
    mine.qty = 6
    assert.is_true(ar.errors.is(testsuite.error_of(mine.save, mine), "StaleObjectError"))
    mine:reload()
    assert.are.equal(5, mine.qty)
    assert.are.equal(1, mine.version)
    mine.qty = 6
    assert.are.equal(1, mine:save())
    assert.are.same({ name = "widget", qty = 6, version = 2 }, row(orig.id))
  end)

  it("refuses to delete a stale copy and deletes a current one", function()
    local orig = Item:create{ name = "widget" }
    local stale = Item:find(orig.id)
    orig:update{ qty = 1 }
    local err = testsuite.error_of(function() return stale:delete() end)
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.is_not_nil(row(orig.id))
    assert.is_false(stale:is_new())
    assert.are.equal(1, orig:delete())
    assert.is_nil(row(orig.id))
  end)

  it("raises StaleObjectError when the row was deleted by someone else", function()
    local orig = Item:create{ name = "widget" }
    local copy = Item:find(orig.id)
    orig:delete()
    copy.qty = 3
    assert.is_true(ar.errors.is(testsuite.error_of(copy.save, copy), "StaleObjectError"))
    assert.is_nil(row(orig.id))
  end)

  it("does not bump the version when nothing changed", function()
    local it_ = Item:create{ name = "widget" }
    assert.are.equal(0, testsuite.count_statements(db, function() assert.are.equal(0, it_:save()) end))
    assert.are.equal(0, it_.version)
    assert.are.equal(0, row(it_.id).version)
  end)

  it("turns a lost race inside a transaction into a rollback of everything", function()
    local x = Item:create{ name = "x", qty = 1 }
    local y = Item:create{ name = "y", qty = 1 }
    local stale_y = Item:find(y.id)
    y:update{ qty = 2 }
    local err = testsuite.error_of(db.transaction, db, function()
      x:update{ qty = 0 }
      stale_y:update{ qty = 0 }
    end)
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.are.same({ name = "x", qty = 1, version = 0 }, row(x.id))
    assert.are.same({ name = "y", qty = 2, version = 1 }, row(y.id))
  end)
end)

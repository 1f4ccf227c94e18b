-- Change sets without a server: a change set maps a field to its old value
-- itself (no table per change), so old values that are false, nil or tables
-- must read back exactly, and a value set back to the stored one is clean.
local ar = require("activerecord")
local fake_backend = require("model.fake_backend")

describe("change sets (no server)", function()
  local M, db
  before_each(function()
    db = fake_backend()
    M = ar.Model{ name = "SpecChanges", table = "spec_changes", backend = db,
      fields = { id = "integer", active = "boolean", name = "string", doc = "json" } }
  end)

  local function stored(row)
    return M:_load(row)
  end

  it("an old value false is a change (dirty, written, old_value false)", function()
    local r = stored{ id = 1, active = 0, name = "a" }
    r.active = true
    assert.is_true(r:is_dirty())
    assert.are.same({ "active" }, r:dirty_fields())
    assert.are.equal(false, r:old_value("active"))
    assert.are.equal(1, r:save())
    assert.are.same({ 1, 1, n = 2 }, db.executed[#db.executed].params) -- SET active = 1 WHERE id = 1
  end)

  it("set back to the stored value (false, nil) is clean again", function()
    local r = stored{ id = 1, active = 0 }
    r.active = true
    r.active = false
    assert.is_false(r:is_dirty())
    r.name = "x"
    r.name = nil
    assert.is_false(r:is_dirty())
    assert.are.equal(0, r:save())
  end)

  it("an old value nil reads as nil; the key's old value finds the row", function()
    local r = stored{ id = 1 }
    r.name = "n"
    assert.is_nil(r:old_value("name"))
    r.id = 2
    assert.are.equal(1, r:old_value("id"))
    r:save()
    local params = db.executed[#db.executed].params
    assert.are.equal(1, params[params.n]) -- WHERE id = the stored key
  end)

  it("a table replaced keeps the old table as its old value", function()
    local old = { k = 1 }
    local r = M.new{ id = 1, doc = old }
    r:save()
    r.doc = { k = 2 }
    assert.are.equal(old, r:old_value("doc"))
  end)
end)

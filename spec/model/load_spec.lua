-- Loading rows without a server: the generated loader is the model's own
-- `_load` once the model knows whether JSON arrives decoded, and
-- `_meta.load_rows(model, rows, held)` (what the query side calls for a
-- result) loads every row in place, asking that question first.
local ar = require("activerecord")
local fake_backend = require("model.fake_backend")

local n = 0
local function model()
  n = n + 1
  local db = fake_backend() -- supports nothing: JSON columns arrive as text
  return ar.Model{ name = "SpecLoad" .. n, table = "spec_load", backend = db,
    fields = { id = "integer", active = "boolean", doc = "json" } }
end

describe("record loaders (no server)", function()
  it("load_rows loads a result in place, JSON checked first (text decoded here)", function()
    local M = model()
    assert.is_nil(rawget(M, "_load"))
    local rows = { { id = 1, active = 1, doc = '{"a":1}' }, { id = 2, active = 0 } }
    local out = M._meta.load_rows(M, rows, nil)
    assert.are.equal(rows, out)
    assert.are.equal(1, rows[1].id)
    assert.is_true(rows[1].active)
    assert.are.same({ a = 1 }, rows[1].doc)
    assert.is_false(rows[2].active)
    assert.is_nil(rows[2].doc)
    assert.is_false(rows[2]:is_new())
    assert.is_false(rows[2]:is_dirty())
    -- the model now carries its loader itself
    assert.are.equal(M._meta.load, rawget(M, "_load"))
  end)

  it("_load before any query checks JSON too; held hashes go with the record", function()
    local M = model()
    local r = M:_load({ id = 3, doc = '[1]', h = 42 }, { "h" })
    assert.are.same({ 1 }, r.doc)
    assert.are.equal(3, r.id)
    r.doc[2] = 2 -- changed in place: seen against the held hash
    assert.is_true(r:is_dirty())
  end)

  it("a loaded record's relation cache slot starts empty", function()
    local M = model()
    local r = M:_load({ id = 4 })
    assert.are.same({}, require("activerecord.record").cache(r))
  end)
end)

-- New records without a server: `new` and the bulk builder are generated per
-- model (unrolled over the fields, the built-in casts inline); a model with
-- very many fields takes the generic loop. Both must behave the same.
local ar = require("activerecord")
local types = require("activerecord.types")
local fake_backend = require("model.fake_backend")

local n = 0
local function model(extra)
  n = n + 1
  local fields = {
    id = "integer", age = "integer", score = "float",
    balance = { type = "decimal", precision = 8, scale = 2 },
    at = "datetime", tag = { type = "string", default = "none" },
    seq = { type = "integer", default = function() return 7.0 end },
  }
  for k, v in pairs(extra or {}) do fields[k] = v end
  return ar.Model{ name = "SpecNew" .. n, table = "spec_new", backend = fake_backend(), fields = fields }
end

local function many_fields()
  local extra = {}
  for i = 1, 160 do extra["f" .. i] = "string" end
  return extra
end

for _, variant in ipairs({ { "generated", nil }, { "generic (160 fields)", many_fields } }) do
  describe("Model.new, " .. variant[1], function()
    local M
    before_each(function() M = model(variant[2] and variant[2]()) end)

    it("casts like assignment: integers, floats, decimals, date-times", function()
      local r = M.new{ age = 3.0, score = 2, balance = 5, at = { year = 2024, month = 1, day = 2, utc = true } }
      assert.are.equal("integer", math.type(r.age))
      assert.are.equal("float", math.type(r.score))
      assert.are.equal("5", r.balance)
      assert.are.equal("2024-01-02 00:00:00", r.at)
      local again = M.new{ balance = "5.50", at = "2024-01-02 03:04:05" } -- texts as they are
      assert.are.equal("5.50", again.balance)
      assert.are.equal("2024-01-02 03:04:05", again.at)
    end)

    it("applies defaults (a function called, its value cast) and keeps them as old values", function()
      local r = M.new{ tag = "x" }
      assert.are.equal("x", r.tag)
      assert.are.equal("none", r:old_value("tag"))
      assert.are.equal(7, r.seq)
      assert.are.equal("integer", math.type(r.seq))
      assert.are.same({ "tag" }, r:dirty_fields())
    end)

    it("marks a null as an assigned nil", function()
      local r = M.new{ age = ar.null }
      assert.is_nil(r.age)
      assert.are.same({ "age" }, r:dirty_fields())
    end)

    it("refuses an unknown name before any cast, and non-tables", function()
      assert.has_error(function() M.new{ age = 1, nope = 2 } end)
      local ok, err = pcall(M.new, { nope = 2 })
      assert.is_false(ok)
      assert.are.equal("ConfigError", err.kind)
      assert.matches("has no field 'nope'", err.message)
      ok, err = pcall(M.new, 5)
      assert.is_false(ok)
      assert.are.equal("ConfigError", err.kind)
      assert.is_true(M.new():is_new())
    end)

    it("_build: defaults for missing values, casts, no change tracking", function()
      local r = M:_build{ age = 4.0, at = "2024-01-02T03:04:05Z" }
      assert.are.equal("integer", math.type(r.age))
      assert.are.equal("2024-01-02 03:04:05", r.at)
      assert.are.equal("none", r.tag)
      assert.are.equal(7, r.seq)
      assert.is_false(r:is_dirty())
      local ok, err = pcall(M._build, M, { nope = 1 })
      assert.is_false(ok)
      assert.are.equal("ConfigError", err.kind)
    end)
  end)
end

describe("types.recent", function()
  it("remembers the last four values, no others", function()
    local r, add = types.recent()
    for i = 1, 6 do add("v" .. i) end
    local function has(v) return r[1] == v or r[2] == v or r[3] == v or r[4] == v end
    assert.is_false(has("v2"))
    assert.is_true(has("v3") and has("v6"))
    assert.is_false(has(false) or has(nil))
  end)

  it("a decimal cast remembers its text; validate still checks the size", function()
    local M = model()
    local r = M.new{ balance = "1234567.5" } -- 7 digits before the point: too many for (8, 2)
    local ok, errs = r:valid()
    assert.is_false(ok)
    assert.is_truthy(errs.balance)
  end)
end)

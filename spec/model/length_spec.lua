-- The `length` rule in every form a field takes (issue 15): { min =, max = },
-- { 3, 10 } (min, max), one bound, { is = n } and a number (the exact
-- length); characters for strings, items for tables. No database: a model
-- without a backend validates by its declaration.
local ar = require("activerecord")
local validation = require("activerecord.validation")

describe("model: length", function()
  local n = 0
  local function errors_for(length, value)
    n = n + 1
    local M = ar.Model{ name = "LengthSpec" .. n, table = "length_spec", fields = {
      id = { type = "integer", primary_key = true },
      name = { type = "string", size = 100, length = length } } }
    local ok, errs = M.new{ name = value }:valid()
    return ok and {} or errs.name
  end

  it("{ min = 3, max = 10 } and { 3, 10 } mean the same", function()
    for _, rule in ipairs({ { min = 3, max = 10 }, { 3, 10 } }) do
      assert.same({ "is shorter than 3 characters" }, errors_for(rule, "ab"))
      assert.same({}, errors_for(rule, "abc"))
      assert.same({}, errors_for(rule, "abcdefghij"))
      assert.same({ "is longer than 10 characters" }, errors_for(rule, "abcdefghijk"))
    end
  end)

  it("one bound alone", function()
    assert.same({ "is shorter than 2 characters" }, errors_for({ min = 2 }, "a"))
    assert.same({}, errors_for({ min = 2 }, string.rep("a", 90)))
    assert.same({ "is longer than 3 characters" }, errors_for({ max = 3 }, "abcd"))
    assert.same({}, errors_for({ max = 3 }, ""))
  end)

  it("a number and { is = n } are the exact length, counted in characters", function()
    for _, rule in ipairs({ 4, { is = 4 } }) do
      assert.same({ "is the wrong length (should be 4 characters)" }, errors_for(rule, "abc"))
      assert.same({ "is the wrong length (should be 4 characters)" }, errors_for(rule, "abcde"))
      assert.same({}, errors_for(rule, "äöüß"))
    end
  end)

  it("length_bounds reads the normalised and the declared forms", function()
    local function b(rule) return { validation.length_bounds(rule) } end
    assert.same({ 3, 10 }, b({ min = 3, max = 10 }))
    assert.same({ 3, 10 }, b({ 3, 10 }))
    assert.same({ nil, nil, 5 }, b(5))
    assert.same({ nil, nil, 5 }, b({ min = 5, max = 5, is = 5 }))
    assert.same({ nil, 7 }, b({ max = 7 }))
  end)
end)

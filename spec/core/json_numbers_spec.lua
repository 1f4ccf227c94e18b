-- JSON numbers in the core's decoder: integers up to 18 digits are read in
-- place (and hashed as read), longer ones and non-integers by the full
-- reader; both give the same values and hashes as before.
local core = require("activerecord.backend.mysql.core")
local db = require("support.db")

local cases = {
  { "0", 0, "integer" }, { "-0", 0, "integer" }, { "7", 7, "integer" }, { "-7", -7, "integer" },
  { "123456789012345678", 123456789012345678, "integer" },   -- 18 digits: fast path
  { "-123456789012345678", -123456789012345678, "integer" },
  { "1234567890123456789", 1234567890123456789, "integer" }, -- 19 digits: full reader
  { "9223372036854775807", math.maxinteger, "integer" },
  { "-9223372036854775808", math.mininteger, "integer" },
  { "12345678901234567890", 12345678901234567890.0, "float" }, -- beyond 64 bits
  { "1.5", 1.5, "float" }, { "-2.25", -2.25, "float" }, { "1e3", 1000.0, "float" },
  { "2E-2", 0.02, "float" }, { "3e+1", 30.0, "float" },
}

describe("core JSON numbers", function()
  it("decodes integers and floats with their Lua subtype", function()
    for _, c in ipairs(cases) do
      local v = core.json_decode(c[1])
      assert.are.equal(c[2], v, c[1])
      assert.are.equal(c[3], math.type(v), c[1])
      local arr = core.json_decode("[" .. c[1] .. ", " .. c[1] .. "]")
      assert.are.same({ c[2], c[2] }, { arr[1], arr[2] }, c[1])
    end
  end)

  it("refuses what is not a number, as before", function()
    for _, text in ipairs({ "-", "1-2", "[1+]", "--1", "[1.]x" }) do
      assert.has_error(function() core.json_decode(text) end, nil, text)
    end
  end)

  it("hashes a number read in place like json_hash of its value", function()
    local conn <close> = db.connect()
    for _, c in ipairs(cases) do
      local text = '{"n": ' .. c[1] .. ', "a": [' .. c[1] .. ']}'
      local row = conn:execute_json_hashes("SELECT JSON_COMPACT(?) AS j", text).rows[1]
      assert.are.equal(core.json_hash(row.j), row[-1], text)
    end
  end)
end)

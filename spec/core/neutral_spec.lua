-- The neutral layers never load the MySQL core (issue 13): in a fresh Lua
-- state, requiring them leaves `activerecord.backend.mysql.core` out of
-- package.loaded; once the core loads, it adopts the neutral null, error
-- metatable and JSON array mark, and installs its JSON functions and clock.
local CORE = "activerecord.backend.mysql.core"

-- Runs `code` in a fresh lua5.4 with this process's module paths; returns
-- its output (trimmed) and whether it succeeded.
local function fresh(code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local cmd = string.format("LUA_PATH='%s' LUA_CPATH='%s' lua5.4 '%s' 2>&1", package.path,
    package.cpath, script)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  os.remove(script)
  return (out:gsub("%s+$", "")), ok
end

describe("neutral modules", function()
  for _, name in ipairs({ "null", "errors", "json", "clock", "options", "types", "validation",
                          "query", "relations", "model", "uuid", "schema", "registry", "bulk",
                          "mixins", "backend.base", "backend.capabilities" }) do
    it("activerecord." .. name .. " loads without the MySQL core", function()
      local out, ok = fresh(([[
        require("activerecord.%s")
        local loaded = {}
        for k in pairs(package.loaded) do
          if k:find("^activerecord%%.backend%%.mysql") then loaded[#loaded + 1] = k end
        end
        table.sort(loaded)
        io.write(table.concat(loaded, ","))
      ]]):format(name))
      assert.is_true(ok, out)
      assert.are.equal("", out)
    end)
  end

  it("work without a backend: null is cjson.null, errors, JSON and the clock", function()
    local out, ok = fresh([[
      local null, errors = require("activerecord.null"), require("activerecord.errors")
      local json, clock = require("activerecord.json"), require("activerecord.clock")
      assert(null == require("cjson").null)
      local err = errors.new("QueryError", "bad", { sql = "SELECT" })
      assert(errors.is(err, "QueryError") and tostring(err) == "QueryError: bad")
      assert(not pcall(errors.kind_of, 1062))
      assert(json.encode({ a = json.array(), b = { 1, 2 }, c = null }) == '{"a":[],"b":[1,2],"c":null}')
      assert(json.hash({ x = 1, y = 2 }) == json.hash({ y = 2, x = 1 }))
      assert(getmetatable(json.decode("[1]")) == json.array_mt)
      assert(math.type(clock.now()) ~= nil)
      assert(package.loaded["]] .. CORE .. [["] == nil)
      io.write("ok")
    ]])
    assert.is_true(ok, out)
    assert.are.equal("ok", out)
  end)

  it("the core adopts the neutral values and installs its functions", function()
    local out, ok = fresh([[
      local null, errors = require("activerecord.null"), require("activerecord.errors")
      local json, clock = require("activerecord.json"), require("activerecord.clock")
      local marked = json.array() -- marked before the core loads: stays an array
      local core = require("]] .. CORE .. [[")
      assert(core.null == null and core.Error == errors.Error)
      assert(core.json_array_mt == json.array_mt and json.encode(marked) == "[]")
      assert(json.encode == core.json_encode and json.decode == core.json_decode)
      assert(json.hash == core.json_hash and json.array == core.json_array)
      assert(clock.now == core.now and errors.kind_of(1062) == "IntegrityError")
      assert(core.json_decode("[null]")[1] == null)
      local ok, err = pcall(core.json_decode, "[")
      assert(not ok and errors.is(err, "DataError"), tostring(err))
      assert(tostring(core.error("QueryError", "x")) == "QueryError: x")
      io.write("ok")
    ]])
    assert.is_true(ok, out)
    assert.are.equal("ok", out)
  end)
end)

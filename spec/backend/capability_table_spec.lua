-- One table of capabilities (issue 13): the dialect decides every
-- server-dependent choice by asking the capability table (the C core's
-- matrix), never by comparing versions of its own.
local core = require("activerecord.backend.mysql.core")
local Dialect = require("activerecord.backend.mysql.dialect")

local function dialect(flavor, version, caps)
  return Dialect.new{ flavor = flavor, version = version, capabilities = caps }
end

describe("the capability table", function()
  it("decides JSON path ranges: the matrix's threshold, or whatever the table says", function()
    assert.are.equal("8.0.2", core.capability_matrix().json_path_ranges.mysql)
    assert.has_error(function() dialect("mysql", "8.0.1"):validate_json_path("$[last]") end)
    assert.are.equal("$[last]", dialect("mysql", "8.0.2"):validate_json_path("$[last]"))
    assert.has_error(function() dialect("mariadb", "11.4.2"):validate_json_path("$[1 to 2]") end)
    -- the table, not the version, is asked
    assert.are.equal("$[1 to 2]",
      dialect("mysql", "5.7.8", { json_path_ranges = true }):validate_json_path("$[1 to 2]"))
  end)

  it("decides DEFAULTs on TEXT/BLOB/JSON columns, with the matrix's wording", function()
    local col = { name = "body", type = "text", default = "x" }
    local ok, err = pcall(function() return dialect("mysql", "8.0.12"):default_sql(col, "t") end)
    assert.is_false(ok)
    assert.are.equal("CapabilityError", err.kind)
    assert.are.equal("a DEFAULT on a text column needs MySQL 8.0.13+ (server: mysql 8.0.12)", err.message)
    assert.are.equal("('x')", dialect("mysql", "8.0.13"):default_sql(col, "t"))
    assert.are.equal("'x'", dialect("mariadb", "10.6.0"):default_sql(col, "t"))
  end)

  it("the dialect's files compare no versions of their own", function()
    for _, part in ipairs({ "dialect", "quoting", "json_path", "literals", "ddl", "ddl_alter" }) do
      local path = package.searchpath("activerecord.backend.mysql." .. part, package.path)
      local f = assert(io.open(path))
      local text = f:read("a")
      f:close()
      assert.is_nil(text:find("at_least%(%d"), part .. " compares a version")
    end
  end)
end)

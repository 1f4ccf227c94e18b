-- One wording for an unknown option, everywhere (no server needed): a
-- ConfigError that names the key and lists the accepted ones, sorted, with
-- `option` set to the key.
local ar = require("activerecord")
local options = require("activerecord.options")
local config = require("activerecord.backend.mysql.config")
local Dialect = require("activerecord.backend.mysql.dialect")
local compiler = require("activerecord.backend.mysql.compiler")
local schema = require("activerecord.schema")

local mariadb = Dialect.new{ flavor = "mariadb", version = { 10, 11, 6 } }

local function config_error(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "accepted")
  assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
  return err
end

describe("options.check", function()
  it("names the key, lists the accepted ones sorted and sets `option`", function()
    local err = config_error(function() options.check({ sise = 1 }, { size = true, name = true }, "thing") end)
    assert.equal("thing: unknown option 'sise' (accepted: name, size)", err.message)
    assert.equal("sise", err.option)
  end)

  it("lets known keys through and returns the table", function()
    local opts = { size = 1 }
    assert.equal(opts, options.check(opts, { size = true }, "thing"))
  end)
end)

describe("an unknown option", function()
  local Item = ar.Model{ name = "OptionsSpecItem", table = "items", fields = { id = "integer", name = "string" } }
  local q = ar.table("items")

  -- where -> a call that must refuse `key` with the shared wording
  local CASES = {
    { "model definition", function()
        ar.Model{ name = "X", table = "x", fields = { id = "integer" }, feilds = {} }
      end, "feilds" },
    { "field definition", function()
        ar.Model{ name = "X", table = "x", fields = { id = "integer", a = { type = "string", sise = 3 } } }
      end, "sise" },
    { "relation", function() ar.has_many("Post", { foreign_kye = "x" }) end, "foreign_kye" },
    { "save", function() Item.new{ name = "a" }:save{ upsrt = true } end, "upsrt" },
    { "insert_all", function() Item:insert_all({ { name = "a" } }, { batchsize = 2 }) end, "batchsize" },
    { "for_update", function() q:for_update{ wait = true } end, "wait" },
    { "delete_all", function() q:delete_all{ everything = true } end, "everything" },
    { "with_cte", function() q:with_cte("c", "SELECT 1", { recurse = true }) end, "recurse" },
    { "window", function() ar.rank():over{ partiton_by = "x" } end, "partiton_by" },
    { "find_each", function() q:find_each({ batchsize = 2 }, function() end) end, "batchsize" },
    { "pool", function() config.normalize{ pool = { sise = 2 } } end, "sise" },
    { "dialect lock", function() mariadb:lock_clause{ wait = 5 } end, "wait" },
    { "compiler insert", function() compiler.insert(mariadb, "t", { "a" }, 1, { replace = true }) end, "replace" },
    { "schema column", function() schema.define("t", function(t) t:string("a", { sise = 3 }) end) end, "sise" },
    { "type registration", function() ar.register_type("options_spec_t", { sql_typ = "INT" }) end, "sql_typ" },
  }

  for _, case in ipairs(CASES) do
    it("to " .. case[1] .. " is a ConfigError naming it and listing the accepted ones", function()
      local err = config_error(case[2])
      assert.matches("unknown option '" .. case[3] .. "' (accepted: ", err.message, 1, true)
    end)
  end
end)

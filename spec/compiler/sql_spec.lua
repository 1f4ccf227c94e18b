-- The SQL the ORM sends, pinned without a server: queries built with the
-- public builder are compiled for a MariaDB and a MySQL dialect and their
-- text and parameters compared with what they must be. A change to the
-- compiler that changes a statement shows up here first; values must always
-- be parameters, never text.
local ar = require("activerecord")
local compiler = require("activerecord.backend.mysql.compiler")
local errors = require("activerecord.errors")

local cases = require("compiler.cases")
local SELECTS, REFUSED = cases.selects, cases.refused
local mariadb = cases.dialects.mariadb
local null = ar.null
local T = ar.table

local function plain(params)
  local out = {}
  for i = 1, params.n do out[i] = params[i] end
  return out
end

describe("the SQL of queries (no server)", function()
  for _, case in ipairs(SELECTS) do
    local name, d, build, sql, params = case[1], case[2], case[3], case[4], case[5]
    it(name, function()
      local got_sql, got = compiler.select(d, build():_final())
      assert.are.equal(sql, got_sql)
      assert.are.same(params, plain(got))
      assert.are.equal(#params, got.n)
    end)
  end

  for _, case in ipairs(REFUSED) do
    it(case[1] .. " is a CapabilityError", function()
      local ok, err = pcall(compiler.select, case[2], case[3]():_final())
      assert.is_false(ok)
      assert.is_true(errors.is(err, "CapabilityError"), tostring(err))
      assert.truthy(err.message:find(case[4]), err.message)
    end)
  end
end)

describe("the SQL of update_all and delete_all (no server)", function()
  it("UPDATE sets bound values, NULL included", function()
    local sql, params = compiler.update(mariadb, T("users"):where{ id = { 1, 2 } },
      { { column = "name", value = "x" }, { column = "score", value = null } })
    assert.are.equal("UPDATE `users` SET `name` = ?, `score` = ? WHERE (`id` IN (?, ?))", sql)
    assert.are.same({ "x", null, 1, 2 }, plain(params))
  end)

  it("UPDATE takes an expression on the right", function()
    local sql, params = compiler.update(mariadb, T("users"):where{ active = false },
      { { column = "score", value = ar.col("score"):add(1) } })
    assert.are.equal("UPDATE `users` SET `score` = (`score` + ?) WHERE (`active` = ?)", sql)
    assert.are.same({ 1, false }, plain(params))
  end)

  it("UPDATE without a column to set is refused", function()
    local ok, err = pcall(compiler.update, mariadb, T("users"), {})
    assert.is_false(ok)
    assert.is_true(errors.is(err, "QueryError"))
  end)

  it("DELETE keeps its conditions and a bound LIMIT", function()
    local sql, params = compiler.delete(mariadb, T("users"):where("age < ?", 18))
    assert.are.equal("DELETE FROM `users` WHERE (age < ?)", sql)
    assert.are.same({ 18 }, plain(params))
    sql, params = compiler.delete(mariadb, T("users"):where{ id = 5 }:limit(1))
    assert.are.equal("DELETE FROM `users` WHERE (`id` = ?) LIMIT ?", sql)
    assert.are.same({ 5, 1 }, plain(params))
  end)
end)

describe("the SQL of model queries (no server)", function()
  local tenant = 1
  local Doc = ar.Model{ name = "SqlSpecDoc", table = "docs",
    fields = { id = "integer", tenant_id = "integer", title = "string", deleted_at = "datetime" },
    scopes = { titled = function(q, t) return q:where{ title = t } end },
    mixins = { { default_scopes = { tenant = function(q) return q:where{ tenant_id = tenant } end } } } }

  it("default scopes are applied as the query runs", function()
    local sql, params = compiler.select(mariadb, Doc:where{ id = 9 }:_final())
    assert.are.equal("SELECT * FROM `docs` WHERE (`id` = ?) AND (`tenant_id` = ?)", sql)
    assert.are.same({ 9, 1 }, plain(params))
    tenant = 2
    sql, params = compiler.select(mariadb, Doc:titled("a"):_final())
    assert.are.equal("SELECT * FROM `docs` WHERE (`title` = ?) AND (`tenant_id` = ?)", sql)
    assert.are.same({ "a", 2 }, plain(params))
  end)

  it("unscoped drops them", function()
    local sql = compiler.select(mariadb, Doc:unscoped():where{ id = 9 }:_final())
    assert.are.equal("SELECT * FROM `docs` WHERE (`id` = ?)", sql)
  end)
end)

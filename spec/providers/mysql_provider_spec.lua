-- The MySQL provider of the shared suite: scenarios from its config file,
-- fixtures compiled with each scenario's table options, clean set-up and
-- tear-down.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")
local fixtures = require("activerecord.testsuite.fixtures")
local provider = require("providers.mysql")

local GROUP = "spec/providers"

local function tables(db)
  local out = {}
  for _, row in ipairs(db:query("SELECT TABLE_NAME AS t FROM information_schema.TABLES "
      .. "WHERE TABLE_SCHEMA = DATABASE()")) do
    out[row.t] = true
  end
  return out
end

describe("mysql test provider", function()
  after_each(function()
    for _, s in ipairs(provider.scenarios()) do provider.teardown(GROUP, s) end
  end)

  it("is a valid provider with the default scenario first", function()
    assert.are.equal(provider, testsuite.check(provider))
    local scenarios = provider.scenarios()
    assert.are.equal("default", scenarios[1])
    assert.is_truthy(#scenarios >= 2)
  end)

  it("rejects a table that is not a provider, naming what is missing", function()
    local ok, err = pcall(testsuite.check, { name = "half", scenarios = function() end })
    assert.is_false(ok)
    assert.matches("backend", err, 1, true)
    assert.matches("setup", err, 1, true)
  end)

  it("creates every fixture, with what it references, in every scenario", function()
    for _, scenario in ipairs(provider.scenarios()) do
      provider.setup(GROUP, scenario, fixtures.order)
      local have = tables(provider.backend(scenario))
      for _, name in ipairs(fixtures.order) do assert.is_true(have[name], scenario .. ": " .. name) end
      provider.teardown(GROUP, scenario)
    end
    provider.setup(GROUP, "default", { "post_tags" })
    local have = tables(provider.backend("default"))
    for _, name in ipairs({ "users", "posts", "tags", "post_tags" }) do
      assert.is_true(have[name], name)
    end
  end)

  it("starts from empty tables, dropping dependents that would block it", function()
    local db = provider.setup(GROUP, "default", { "comments" })
    db:execute("INSERT INTO users (name) VALUES (?)", "ann")
    -- users is referenced by posts and comments: setting it up again must work
    provider.setup(GROUP, "default", { "users" })
    assert.are.equal(0, db:query("SELECT COUNT(*) AS n FROM users")[1].n)
    assert.is_nil(tables(db).comments)
  end)

  it("drops its tables on teardown", function()
    provider.setup(GROUP, "default", { "accounts", "nodes" })
    provider.teardown(GROUP, "default")
    local db = provider.new_backend("default", { pool = { size = 1 } })
    local have = tables(db)
    db:close()
    assert.is_nil(have.accounts)
    assert.is_nil(have.nodes)
  end)

  it("applies the strict_bin scenario's collation and sql_mode", function()
    for scenario, matches in pairs({ default = 1, strict_bin = 0 }) do
      local db = provider.setup(GROUP, scenario, { "users" })
      db:execute("INSERT INTO users (name) VALUES (?)", "Ann")
      local n = #db:query("SELECT id FROM users WHERE name = ?", "ann")
      assert.are.equal(matches, n, scenario)
    end
    local db = provider.backend("strict_bin")
    local mode = db:query("SELECT @@SESSION.sql_mode AS m")[1].m
    assert.matches("NO_BACKSLASH_ESCAPES", mode, 1, true)
    assert.matches("STRICT_ALL_TABLES", mode, 1, true)
    -- strict: an over-long value is an error, not a silent truncation
    local ok, err = pcall(db.execute, db, "INSERT INTO users (name) VALUES (?)", string.rep("x", 101))
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err, "DataError"), tostring(err))
  end)

  it("runs a concurrent session in another process", function()
    provider.setup(GROUP, "default", { "accounts" })
    local other = provider.concurrent_session("default", {
      { sql = "INSERT INTO accounts (id, owner) VALUES (?, ?)", params = { 1, "child" } },
      { signal = true },
    })
    assert.is_true(other:wait_signal())
    assert.is_true(other:finish())
    local rows = provider.backend("default"):query("SELECT owner FROM accounts")
    assert.are.same({ { owner = "child" } }, rows)
    local failing = provider.concurrent_session("default", { { sql = "SELECT * FROM no_such_table" } })
    local ok, detail = failing:finish()
    assert.is_false(ok)
    assert.matches("no_such_table", detail, 1, true)
  end)
end)

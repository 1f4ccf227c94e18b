-- The statements bulk writes send, pinned without a server: the compiler
-- writes all of their text (issue 13, one write path), including the
-- one-row upsert's `pk = LAST_INSERT_ID(pk)` that tells the row's id.
local compiler = require("activerecord.backend.mysql.compiler")
local errors = require("activerecord.errors")
local cases = require("compiler.cases")

local mariadb, mysql8 = cases.dialects.mariadb, cases.dialects.mysql8

describe("bulk statements (no server)", function()
  it("an upsert with key = pk reads the row's key back through LAST_INSERT_ID (VALUES form)", function()
    local sql = compiler.insert(mariadb, "users", { "email", "name" }, 1,
      { upsert = { update = { "name" }, key = "id" } })
    assert.are.equal("INSERT INTO `users` (`email`, `name`) VALUES (?, ?) ON DUPLICATE KEY UPDATE "
      .. "`name` = VALUES(`name`), `id` = LAST_INSERT_ID(`id`)", sql)
  end)

  it("an upsert with key = pk reads the row's key back through LAST_INSERT_ID (row alias form)", function()
    local sql = compiler.insert(mysql8, "users", { "email", "name" }, 1,
      { upsert = { update = { "name" }, key = "id" } })
    assert.are.equal("INSERT INTO `users` (`email`, `name`) VALUES (?, ?) AS new ON DUPLICATE KEY UPDATE "
      .. "`name` = new.`name`, `id` = LAST_INSERT_ID(`id`)", sql)
  end)

  it("an upsert without key has no LAST_INSERT_ID", function()
    local sql = compiler.insert(mariadb, "users", { "email", "name" }, 2, { upsert = { update = { "name" } } })
    assert.are.equal("INSERT INTO `users` (`email`, `name`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE "
      .. "`name` = VALUES(`name`)", sql)
  end)

  it("the key is a quoted identifier, never text", function()
    local sql = compiler.insert(mariadb, "users", { "name" }, 1,
      { upsert = { update = { "name" }, key = "id`; DROP TABLE users; --" } })
    assert.truthy(sql:find("`id``; DROP TABLE users; --` = LAST_INSERT_ID(`id``; DROP TABLE users; --`)", 1, true),
      sql)
  end)

  it("an unknown upsert option is a ConfigError listing key and update", function()
    local ok, err = pcall(compiler.insert, mariadb, "users", { "name" }, 1,
      { upsert = { update = { "name" }, keys = "id" } })
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ConfigError"), tostring(err))
    assert.truthy(err.message:find("key, update", 1, true), err.message)
  end)
end)

-- Dialect quoting end to end: hostile identifiers and values survive a
-- round trip through the schema DSL and the server without touching a
-- canary table, in every scenario (sql_mode affects string escaping);
-- invalid identifiers and JSON paths are refused before any SQL is sent.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/backend"

local HOSTILE_TABLE = "t`; DROP TABLE ts_canary; --"
local HOSTILE_COLUMN = "v`a\"l'ue) --"
local HOSTILE_VALUES = {
  "'); DROP TABLE ts_canary; --",
  "\\'; DROP TABLE ts_canary; -- ",
  "` OR 1=1 #",
  "nul\0byte",
  "\"double\" 'single' \\back\\slash",
}

testsuite.each_scenario(function(scenario)
  describe("dialect quoting", function()
    local db

    local function q(name) return db.dialect:quote_identifier(name) end

    setup(function()
      provider.setup(GROUP, scenario, { "users" })
      db = provider.backend(scenario)
      ar.schema.drop_table(db, "ts_canary", { if_exists = true })
      ar.schema.create_table(db, "ts_canary", function(t)
        t:integer("id", { primary_key = true })
      end)
      db:execute("INSERT INTO ts_canary (id) VALUES (?)", 1)
    end)

    teardown(function()
      ar.schema.drop_table(db, HOSTILE_TABLE, { if_exists = true })
      ar.schema.drop_table(db, "ts_canary", { if_exists = true })
      provider.teardown(GROUP, scenario)
    end)

    local function canary_alive()
      assert.is_true(ar.schema.table_exists(db, "ts_canary"))
      assert.are.equal(1, db:query("SELECT COUNT(*) AS n FROM ts_canary")[1].n)
    end

    it("creates, writes, reads and drops a table named like an injection", function()
      ar.schema.create_table(db, HOSTILE_TABLE, function(t)
        t:integer("id", { primary_key = true })
        t:string(HOSTILE_COLUMN, { size = 100 })
      end, { force = true })
      assert.is_true(ar.schema.table_exists(db, HOSTILE_TABLE))
      canary_alive()
      local insert = db:compile("insert", HOSTILE_TABLE, { "id", HOSTILE_COLUMN }, 1)
      db:execute(insert, 1, "hello")
      local rows = db:query("SELECT " .. q(HOSTILE_COLUMN) .. " AS v FROM " .. q(HOSTILE_TABLE)
        .. " WHERE id = ?", 1)
      assert.are.same({ { v = "hello" } }, rows)
      ar.schema.drop_table(db, HOSTILE_TABLE)
      assert.is_false(ar.schema.table_exists(db, HOSTILE_TABLE))
      canary_alive()
    end)

    it("stores hostile values verbatim and finds them by equality", function()
      local insert = db:compile("insert", "users", { "name", "email" }, 1)
      for i, value in ipairs(HOSTILE_VALUES) do
        db:execute(insert, value, "u" .. i .. "@example.test")
      end
      for i, value in ipairs(HOSTILE_VALUES) do
        local rows = db:query("SELECT name, email FROM users WHERE name = ?", value)
        assert.are.equal(1, #rows, ("value %d matched %d rows"):format(i, #rows))
        assert.are.equal(value, rows[1].name)
        assert.are.equal("u" .. i .. "@example.test", rows[1].email)
      end
      canary_alive()
    end)

    it("refuses invalid identifiers before sending any SQL", function()
      local bad = { "", string.rep("x", 65), "trailing space ", "nul\0name" }
      for _, name in ipairs(bad) do
        local err
        local n = testsuite.count_statements(db, function()
          err = testsuite.error_of(ar.schema.create_table, db, name, function(t)
            t:integer("id", { primary_key = true })
          end)
        end)
        assert.are.equal(0, n)
        assert.is_true(ar.errors.is(err), tostring(err))
        assert.is_true(err.kind == "QueryError" or err.kind == "ConfigError", tostring(err))
      end
      canary_alive()
    end)

    it("binds JSON paths as parameters, quoted keys included", function()
      if not testsuite.requires_capabilities(db, "json") then return end
      db:execute(db:compile("insert", "users", { "name", "profile" }, 1), "ann",
        '{"theme": "dark", "it\'s here": 7}')
      local col = db.dialect:quote_column_ref("profile")
      for path, want in pairs({ ["$.theme"] = "dark", ["$.\"it's here\""] = "7" }) do
        local expr, params = db.dialect:json_value(col, path)
        params[#params + 1] = "ann"
        local rows = db:query("SELECT " .. expr .. " AS v FROM users WHERE name = ?",
          table.unpack(params))
        assert.are.equal(want, tostring(rows[1].v))
      end
    end)

    it("refuses a JSON path injection attempt with QueryError before any SQL", function()
      if not testsuite.requires_capabilities(db, "json") then return end
      local col = db.dialect:quote_column_ref("profile")
      local attempts = {
        "$.a') OR 1=1 -- ",
        "$.a'), (SELECT 1 FROM ts_canary",
        "$.theme; DROP TABLE ts_canary",
        "theme",
      }
      for _, path in ipairs(attempts) do
        local err
        local n = testsuite.count_statements(db, function()
          err = testsuite.error_of(function()
            local expr, params = db.dialect:json_extract(col, path)
            return db:query("SELECT " .. expr .. " AS v FROM users", table.unpack(params))
          end)
        end)
        assert.are.equal(0, n, path)
        assert.is_true(ar.errors.is(err, "QueryError"), path .. ": " .. tostring(err))
      end
      canary_alive()
    end)
  end)
end)

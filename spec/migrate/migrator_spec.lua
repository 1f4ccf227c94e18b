-- The migrator (activerecord.migrate) against the test server: version
-- order, migrate{ to }, rollback by steps and to, status with missing files,
-- file names, duplicate versions and return values refused before anything
-- runs, a failing migration and its rerun, change migrations run backwards,
-- the lock, and the environment a migration file runs in.
local ar = require("activerecord")
local support = require("support.db")
local h = require("migrate.helpers")

local errors = ar.errors

-- Lua source of a migration whose up and down run the given SQL statements.
local function sql_migration(up, down)
  local function body(list)
    local out = {}
    for _, sql in ipairs(list) do out[#out + 1] = ("    m:execute(%q)"):format(sql) end
    return table.concat(out, "\n")
  end
  return ("return {\n  up = function(m)\n%s\n  end,\n  down = function(m)\n%s\n  end,\n}\n")
    :format(body(up), body(down))
end

-- A migration that logs its version into mig_spec_log up, and deletes it down.
local function logging(version)
  return sql_migration({ ("INSERT INTO mig_spec_log (version) VALUES ('%s')"):format(version) },
    { ("DELETE FROM mig_spec_log WHERE version = '%s'"):format(version) })
end

describe("migrate: the migrator", function()
  local db, dir

  local function log_rows()
    local out = {}
    for _, r in ipairs(db:query("SELECT version FROM mig_spec_log ORDER BY id")) do out[#out + 1] = r.version end
    return out
  end

  local function config_error(fn, ...)
    local err = support.error_of(fn, ...)
    assert.is_true(errors.is(err, "ConfigError"), tostring(err))
    return err
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 3 } })
  end)

  teardown(function()
    h.reset(db, { "mig_spec_log", "mig_spec_a", "mig_spec_b", "mig_spec_fail" })
    db:close()
  end)

  before_each(function()
    h.reset(db, { "mig_spec_log", "mig_spec_a", "mig_spec_b", "mig_spec_fail" })
    db:execute("CREATE TABLE mig_spec_log (id INT AUTO_INCREMENT PRIMARY KEY, version VARCHAR(32))")
    dir = h.tmpdir()
  end)

  after_each(function()
    h.rmdir(dir)
  end)

  describe("migrate", function()
    it("runs pending migrations in numeric version order and records each", function()
      h.write(dir, "10_third.lua", logging("10"))
      h.write(dir, "0002_first.lua", logging("0002"))
      h.write(dir, "9_second.lua", logging("9"))
      h.write(dir, "README.md", "not a migration: ignored")
      local mig = ar.migrator(db, dir)
      assert.same({ "0002", "9", "10" }, mig:migrate())
      assert.same({ "0002", "9", "10" }, log_rows())
      assert.same({ "0002", "9", "10" }, h.recorded(db))
      local at = db:query("SELECT applied_at FROM schema_migrations WHERE version = '9'")[1].applied_at
      assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d", at)
      -- nothing left: a second run applies nothing and runs nothing
      assert.same({}, mig:migrate())
      assert.same({ "0002", "9", "10" }, log_rows())
    end)

    it("creates schema_migrations with a version primary key", function()
      h.write(dir, "1_a.lua", logging("1"))
      ar.migrator(db, dir):migrate()
      local cols = db:query([[SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLUMN_KEY AS k
        FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations'
        ORDER BY ORDINAL_POSITION]])
      assert.same({ name = "version", type = "varchar(32)", k = "PRI" }, cols[1])
      assert.same({ name = "applied_at", type = "datetime(6)", k = "" }, cols[2])
    end)

    it("keeps its versions in the table named by the table option, apart from schema_migrations", function()
      h.write(dir, "1_a.lua", logging("1"))
      db:execute("DROP TABLE IF EXISTS mig_spec_versions")
      local mig = ar.migrator(db, dir, { table = "mig_spec_versions" })
      assert.same({ "1" }, mig:migrate())
      assert.same({ { version = "1" } }, db:query("SELECT version FROM mig_spec_versions"))
      assert.same({}, h.recorded(db)) -- schema_migrations untouched
      assert.is_true(mig:status()[1].applied)
      assert.same({ "1" }, mig:rollback())
      assert.same({}, db:query("SELECT version FROM mig_spec_versions"))
      db:execute("DROP TABLE mig_spec_versions")
      -- the name is an identifier, checked when the migrator is made
      local err = support.error_of(ar.migrator, db, dir, { table = ("x"):rep(65) })
      assert.is_true(errors.is(err, "QueryError") or errors.is(err, "ConfigError"), tostring(err))
      config_error(ar.migrator, db, dir, { table = 5 })
    end)

    it("runs a migration added later with a version below the applied ones", function()
      h.write(dir, "5_a.lua", logging("5"))
      local mig = ar.migrator(db, dir)
      mig:migrate()
      h.write(dir, "3_late.lua", logging("3"))
      assert.same({ "3" }, mig:migrate())
      assert.same({ "5", "3" }, log_rows())
    end)

    it("to = version stops after that version; a to below the current version is refused", function()
      for _, v in ipairs({ "1", "2", "3", "4" }) do h.write(dir, v .. "_m" .. v .. ".lua", logging(v)) end
      local mig = ar.migrator(db, dir)
      assert.same({ "1", "2" }, mig:migrate{ to = "2" })
      assert.same({ "1", "2" }, h.recorded(db))
      assert.same({ "3" }, mig:migrate{ to = 3 })
      local err = config_error(mig.migrate, mig, { to = "1" })
      assert.matches("rollback", err.message)
      assert.matches("below the current version 3", err.message, 1, true)
      assert.same({ "1", "2", "3" }, log_rows())
      config_error(mig.migrate, mig, { to = "x1" })
      config_error(mig.migrate, mig, { upto = "4" })
      assert.same({ "4" }, mig:migrate())
    end)

    it("returns versions as written in the file names", function()
      h.write(dir, "20240131120000_create.lua", logging("20240131120000"))
      assert.same({ "20240131120000" }, ar.migrator(db, dir):migrate())
      assert.equal("string", type(h.recorded(db)[1]))
    end)
  end)

  describe("rollback", function()
    local mig

    before_each(function()
      for _, v in ipairs({ "1", "2", "3", "4" }) do h.write(dir, v .. "_m" .. v .. ".lua", logging(v)) end
      mig = ar.migrator(db, dir)
      mig:migrate()
    end)

    it("reverts the newest migration by default, and steps = n newest first", function()
      assert.same({ "4" }, mig:rollback())
      assert.same({ "1", "2", "3" }, h.recorded(db))
      assert.same({ "3", "2" }, mig:rollback{ steps = 2 })
      assert.same({ "1" }, h.recorded(db))
      assert.same({ "1" }, log_rows())
      assert.same({ "1" }, mig:rollback{ steps = 10 })
      assert.same({}, mig:rollback())
      assert.same({}, log_rows())
      -- everything again
      assert.same({ "1", "2", "3", "4" }, mig:migrate())
    end)

    it("to = version reverts every version above it", function()
      assert.same({ "4", "3" }, mig:rollback{ to = "2" })
      assert.same({ "1", "2" }, h.recorded(db))
      assert.same({}, mig:rollback{ to = 2 })
      assert.same({ "2", "1" }, mig:rollback{ to = 0 })
      assert.same({}, h.recorded(db))
    end)

    it("refuses steps with to, and a steps that is not a whole number >= 1", function()
      config_error(mig.rollback, mig, { steps = 1, to = "1" })
      config_error(mig.rollback, mig, { steps = 0 })
      config_error(mig.rollback, mig, { steps = 1.5 })
      config_error(mig.rollback, mig, { step = 1 })
      assert.same({ "1", "2", "3", "4" }, h.recorded(db))
    end)

    it("refuses to revert an applied version whose file is missing, before reverting anything", function()
      os.remove(dir .. "/3_m3.lua")
      local err = config_error(mig.rollback, mig, { steps = 2 })
      assert.matches("version 3 is applied but its file is missing", err.message, 1, true)
      assert.same({ "1", "2", "3", "4" }, h.recorded(db))
      assert.same({ "1", "2", "3", "4" }, log_rows())
    end)
  end)

  describe("status", function()
    it("lists files and records in version order, an applied version without its file as missing", function()
      for _, v in ipairs({ "1", "2", "3" }) do h.write(dir, v .. "_m" .. v .. ".lua", logging(v)) end
      local mig = ar.migrator(db, dir)
      -- no schema_migrations table yet: all down
      local st = mig:status()
      assert.same({ "1", "2", "3" }, { st[1].version, st[2].version, st[3].version })
      for _, e in ipairs(st) do assert.is_false(e.applied) end
      assert.equal("m1", st[1].name)
      assert.equal(dir .. "/1_m1.lua", st[1].file)
      mig:migrate{ to = "2" }
      os.remove(dir .. "/1_m1.lua")
      st = mig:status()
      assert.equal(3, #st)
      assert.same({ version = "1", applied = true, missing = true }, { version = st[1].version,
        applied = st[1].applied, missing = st[1].missing, name = st[1].name })
      assert.same({ "2", "m2", true }, { st[2].version, st[2].name, st[2].applied })
      assert.is_nil(st[2].missing)
      assert.matches("^%d%d%d%d%-", st[2].applied_at)
      assert.same({ "3", "m3", false }, { st[3].version, st[3].name, st[3].applied })
    end)
  end)

  describe("files", function()
    it("refuses a .lua file whose name is not <version>_<name>.lua, naming it", function()
      h.write(dir, "1_ok.lua", logging("1"))
      for _, bad in ipairs({ "create_users.lua", "12_bad-name.lua", "12.lua", "x12_y.lua" }) do
        local path = h.write(dir, bad, logging("x"))
        local err = config_error(ar.migrator(db, dir).migrate, ar.migrator(db, dir))
        assert.matches(bad, err.message, 1, true)
        assert.equal(path, err.file)
        config_error(ar.migrator(db, dir).status, ar.migrator(db, dir))
        os.remove(path)
      end
      assert.same({}, log_rows())
    end)

    it("refuses two files with one version, naming both", function()
      h.write(dir, "5_a.lua", logging("5"))
      h.write(dir, "5_b.lua", logging("5"))
      local mig = ar.migrator(db, dir)
      local err = config_error(mig.migrate, mig)
      assert.matches("5_a.lua", err.message, 1, true)
      assert.matches("5_b.lua", err.message, 1, true)
      os.remove(dir .. "/5_b.lua")
      h.write(dir, "005_c.lua", logging("005"))
      err = config_error(mig.migrate, mig)
      assert.matches("005_c.lua", err.message, 1, true)
      assert.same({}, log_rows())
    end)

    it("refuses a file that returns something else than a migration, before running any", function()
      h.write(dir, "1_good.lua", logging("1"))
      local mig = ar.migrator(db, dir)
      local bad = {
        ["return 42"] = "got number",
        ["return { up = function() end }"] = "without down",
        ["return { change = function() end, up = function() end, down = function() end }"] = "together",
        ["return { up = function() end, down = function() end, donw = 1 }"] = "unknown key 'donw'",
        ["return { change = 'x' }"] = "change = string",
        ["return {"] = "does not load",
        ["error('boom in file')"] = "boom in file",
      }
      for text, wanted in pairs(bad) do
        local path = h.write(dir, "2_bad.lua", text)
        local err = config_error(mig.migrate, mig)
        assert.matches(path, err.message, 1, true)
        assert.matches(wanted, err.message, 1, true)
        assert.same({}, log_rows())
        assert.same({}, h.recorded(db))
      end
    end)

    it("refuses a missing folder", function()
      local err = config_error(ar.migrator(db, dir .. "/nope").migrate, ar.migrator(db, dir .. "/nope"))
      assert.matches("nope", err.message, 1, true)
    end)

    it("loads each file in an environment of its own that reads globals", function()
      h.write(dir, "1_env.lua", [[
        local ar = require("activerecord")
        mig_spec_leak = true
        return { up = function(m) m:execute("INSERT INTO mig_spec_log (version) VALUES (?)", ar._VERSION
          and tostring(mig_spec_leak)) end, down = function() end }
      ]])
      ar.migrator(db, dir):migrate()
      assert.is_nil(rawget(_G, "mig_spec_leak"))
      assert.same({ "true" }, log_rows())
    end)

    it("create_file writes a change template the migrator runs and reverts", function()
      local migrate = require("activerecord.migrate")
      local t = os.time{ year = 2024, month = 1, day = 31, hour = 12, min = 0, sec = 0 }
      local path = migrate.create_file(dir .. "/sub", "add_things", t)
      assert.matches("/sub/%d+_add_things%.lua$", path)
      local again = migrate.create_file(dir .. "/sub", "add_things", t)
      assert.not_equal(path, again)
      config_error(migrate.create_file, dir, "bad name")
      local mig = ar.migrator(db, dir .. "/sub")
      assert.equal(2, #mig:migrate())
      assert.equal(2, #mig:rollback{ to = 0 })
    end)
  end)

  describe("a failing migration", function()
    it("stops the run; the versions before it stay recorded, it does not; a rerun goes on from it", function()
      h.write(dir, "1_a.lua", logging("1"))
      local failing = h.write(dir, "2_b.lua", sql_migration({
        "INSERT INTO mig_spec_log (version) VALUES ('2')",
        "INSERT INTO mig_spec_no_such_table VALUES (1)",
      }, {}))
      h.write(dir, "3_c.lua", logging("3"))
      local mig = ar.migrator(db, dir)
      local err = support.error_of(mig.migrate, mig)
      assert.is_true(errors.is(err, "MigrationError"), tostring(err))
      assert.equal(failing, err.file)
      assert.equal("2", err.version)
      assert.matches("mig_spec_no_such_table", err.sql, 1, true)
      assert.matches("2_b.lua", tostring(err), 1, true)
      assert.matches("mig_spec_no_such_table", tostring(err), 1, true)
      assert.is_true(errors.is(err.cause, "QueryError"), tostring(err.cause))
      assert.same({ "1" }, err.applied)
      assert.same({ "1" }, h.recorded(db))
      assert.same({ "1", "2" }, log_rows()) -- DDL/DML before the failure is not undone
      -- the same failure again: nothing applied by this run
      err = support.error_of(mig.migrate, mig)
      assert.same({}, err.applied)
      -- fixed: the rerun applies the failed one and what follows
      db:execute("DELETE FROM mig_spec_log WHERE version = '2'")
      h.write(dir, "2_b.lua", logging("2"))
      assert.same({ "2", "3" }, mig:migrate())
      assert.same({ "1", "2", "3" }, h.recorded(db))
      assert.same({ "1", "2", "3" }, log_rows())
    end)

    it("during rollback stops the run with the versions reverted before it", function()
      h.write(dir, "1_a.lua", logging("1"))
      h.write(dir, "2_b.lua", sql_migration({ "INSERT INTO mig_spec_log (version) VALUES ('2')" },
        { "DELETE FROM mig_spec_no_such_table" }))
      h.write(dir, "3_c.lua", logging("3"))
      local mig = ar.migrator(db, dir)
      mig:migrate()
      local err = support.error_of(mig.rollback, mig, { to = 0 })
      assert.is_true(errors.is(err, "MigrationError"), tostring(err))
      assert.same({ "3" }, err.reverted)
      assert.same({ "1", "2" }, h.recorded(db))
    end)

    it("a Lua error in the migration's code stops the run as a MigrationError naming the file", function()
      h.write(dir, "1_a.lua", logging("1"))
      local path = h.write(dir, "2_b.lua",
        "return { up = function() local x = nil; x.y = 1 end, down = function() end }")
      local mig = ar.migrator(db, dir)
      local err = support.error_of(mig.migrate, mig)
      assert.is_true(errors.is(err, "MigrationError"), tostring(err))
      assert.matches(path, tostring(err), 1, true)
      assert.same({ "1" }, err.applied)
      assert.same({ "1" }, h.recorded(db))
    end)
  end)

  describe("change migrations", function()
    it("are run backwards by rollback", function()
      h.write(dir, "1_tables.lua", [[
        return { change = function(m)
          m:create_table("mig_spec_a", function(t)
            t:bigint("id", { primary_key = true, auto_increment = true })
            t:string("name", { size = 20 })
          end)
          m:create_table("mig_spec_b", function(t)
            t:bigint("id", { primary_key = true, auto_increment = true })
          end)
        end }
      ]])
      h.write(dir, "2_column.lua", [[
        return { change = function(m) m:add_column("mig_spec_a", "email", "string", { size = 80 }) end }
      ]])
      local mig = ar.migrator(db, dir)
      mig:migrate()
      local function exists(t, c)
        return #db:query("SELECT 1 AS x FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
          .. " AND TABLE_NAME = ? AND COLUMN_NAME = COALESCE(?, COLUMN_NAME)", t, c) > 0
      end
      assert.is_true(exists("mig_spec_a", "email"))
      assert.is_true(exists("mig_spec_b"))
      assert.same({ "2" }, mig:rollback())
      assert.is_false(exists("mig_spec_a", "email"))
      assert.is_true(exists("mig_spec_a", "name"))
      assert.same({ "1" }, mig:rollback())
      assert.is_false(exists("mig_spec_a"))
      assert.is_false(exists("mig_spec_b"))
      assert.same({}, h.recorded(db))
    end)
  end)

  describe("the lock", function()
    it("waits lock_timeout for a migrator holding it, then raises LockTimeoutError having run nothing", function()
      h.write(dir, "1_a.lua", logging("1"))
      local other = ar.connect(support.options())
      local name = "ar_migrate:" .. db:query("SELECT DATABASE() AS d")[1].d
      local mig = ar.migrator(db, dir, { lock_timeout = 0.3 })
      local started = ar.core.monotime()
      local err = other:with_advisory_lock(name, 1, function()
        return support.error_of(mig.migrate, mig)
      end)
      assert.is_true(errors.is(err, "LockTimeoutError"), tostring(err))
      assert.is_true(ar.core.monotime() - started >= 0.25)
      assert.same({}, log_rows())
      -- released: the next run gets it
      assert.same({ "1" }, mig:migrate())
      other:close()
    end)

    it("is held while migrations run", function()
      local name = "ar_migrate:" .. db:query("SELECT DATABASE() AS d")[1].d
      h.write(dir, "1_a.lua", ([[
        return { up = function(m)
          m:execute("INSERT INTO mig_spec_log (version) SELECT IF(IS_USED_LOCK('%s') IS NULL, 'free', 'held')")
        end, down = function() end }
      ]]):format(name))
      ar.migrator(db, dir):migrate()
      assert.same({ "held" }, log_rows())
      assert.equal(1, db:query("SELECT IS_FREE_LOCK(?) AS f", name)[1].f)
    end)

    it("refuses bad options", function()
      config_error(ar.migrator, db, dir, { lock_timeout = -1 })
      config_error(ar.migrator, db, dir, { lock = 1 })
      config_error(ar.migrator, db, dir, { log = "yes" })
      config_error(ar.migrator, nil, dir)
      config_error(ar.migrator, db, nil)
    end)
  end)

  it("log receives a line before and after each migration", function()
    h.write(dir, "1_a.lua", logging("1"))
    local lines = {}
    ar.migrator(db, dir, { log = function(line) lines[#lines + 1] = line end }):migrate()
    assert.equal(2, #lines)
    assert.matches("1 a: migrating", lines[1], 1, true)
    assert.matches("1 a: migrated", lines[2], 1, true)
  end)
end)

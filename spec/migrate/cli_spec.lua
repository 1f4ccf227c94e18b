-- bin/ar-migrate, run as a command with the test server's AR_MYSQL_*
-- variables: up [VERSION], down [N], status, dump, new NAME, --dir, --url,
-- --help, and errors as "ar-migrate: <message>" on stderr with exit code 1.
local ar = require("activerecord")
local support = require("support.db")
local h = require("migrate.helpers")

local function logging(version)
  return ([[
return {
  up = function(m) m:execute("INSERT INTO mig_cli_log (version) VALUES (?)", %q) end,
  down = function(m) m:execute("DELETE FROM mig_cli_log WHERE version = ?", %q) end,
}
]]):format(version, version)
end

describe("migrate: the ar-migrate command", function()
  local db, dir

  local function cli(args)
    return h.run(h.cli("--dir " .. h.quote(dir) .. " " .. args))
  end

  local function lines(text)
    local out = {}
    for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
    return out
  end

  local function log_rows()
    local out = {}
    for _, r in ipairs(db:query("SELECT version FROM mig_cli_log ORDER BY id")) do out[#out + 1] = r.version end
    return out
  end

  setup(function()
    db = ar.connect(support.options())
  end)

  teardown(function()
    h.reset(db, { "mig_cli_log", "mig_cli_widgets" })
    db:close()
  end)

  before_each(function()
    h.reset(db, { "mig_cli_log", "mig_cli_widgets" })
    db:execute("CREATE TABLE mig_cli_log (id INT AUTO_INCREMENT PRIMARY KEY, version VARCHAR(32))")
    dir = h.tmpdir()
    h.write(dir, "1_first.lua", logging("1"))
    h.write(dir, "2_second.lua", logging("2"))
    h.write(dir, "10_third.lua", logging("10"))
  end)

  after_each(function()
    h.rmdir(dir)
  end)

  it("--help prints the usage and exits 0", function()
    for _, flag in ipairs({ "--help", "-h" }) do
      local code, out, err = h.run(h.cli(flag))
      assert.equal(0, code, err)
      assert.matches("^usage: ar%-migrate %[%-%-dir DIR%] %[%-%-url URL%]", out)
      for _, command in ipairs({ "up %[VERSION%]", "down %[N%]", "status", "dump", "new NAME" }) do
        assert.matches("\n  " .. command, out)
      end
      assert.equal("", err)
    end
  end)

  it("status prints up or down, version and name per migration, in version order", function()
    local code, out, err = cli("status")
    assert.equal(0, code, err)
    assert.same({ "down  1   first", "down  2   second", "down  10  third" }, lines(out))
  end)

  it("up applies the pending migrations, up VERSION those up to it", function()
    local code, out, err = cli("up 2")
    assert.equal(0, code, err)
    assert.same({ "== 1 first: migrating", "== 2 second: migrating", "applied 2 migrations" },
      { lines(out)[1], lines(out)[3], lines(out)[5] })
    assert.same({ "1", "2" }, log_rows())
    code, out = cli("status")
    assert.equal(0, code)
    assert.same({ "up    1   first", "up    2   second", "down  10  third" }, lines(out))
    code, out = cli("up")
    assert.equal(0, code)
    assert.matches("applied 1 migration\n$", out)
    code, out = cli("up")
    assert.equal(0, code)
    assert.equal("nothing to migrate\n", out)
    assert.same({ "1", "2", "10" }, h.recorded(db))
  end)

  it("down reverts the newest migration, down N the N newest", function()
    assert.equal(0, (cli("up")))
    local code, out, err = cli("down")
    assert.equal(0, code, err)
    assert.matches("== 10 third: reverting", out, 1, true)
    assert.matches("reverted 1 migration\n$", out)
    assert.same({ "1", "2" }, h.recorded(db))
    code, out = cli("down 5")
    assert.equal(0, code)
    assert.matches("reverted 2 migrations\n$", out)
    assert.same({}, log_rows())
    code, out = cli("down")
    assert.equal(0, code)
    assert.equal("nothing to revert\n", out)
    code, out, err = cli("down zero")
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ar-migrate: down takes a number of migrations >= 1, got zero\n", err)
  end)

  it("status marks an applied version whose file is missing", function()
    assert.equal(0, (cli("up 2")))
    os.remove(dir .. "/2_second.lua")
    local code, out = cli("status")
    assert.equal(0, code)
    assert.same({ "up    1   first", "up    2   (file missing)", "down  10  third" }, lines(out))
  end)

  it("new NAME writes a change template named after the UTC time; up runs it", function()
    local sub = dir .. "/nested/migrations"
    local before = os.date("!%Y%m%d%H%M%S")
    local code, out, err = h.run(h.cli("--dir=" .. h.quote(sub) .. " new add_widgets"))
    local after = os.date("!%Y%m%d%H%M%S")
    assert.equal(0, code, err)
    local path = out:match("^(.-)\n$")
    local version = path:match("^" .. sub:gsub("%p", "%%%0") .. "/(%d+)_add_widgets%.lua$")
    assert.is_truthy(version, out)
    assert.equal(14, #version)
    assert.is_true(version >= before and version <= after)
    local migration = assert(loadfile(path))()
    assert.equal("function", type(migration.change))
    code, out = h.run(h.cli("--dir " .. h.quote(sub) .. " up"))
    assert.equal(0, code, out)
    assert.matches("applied 1 migration", out, 1, true)
    code, out, err = h.run(h.cli("--dir " .. h.quote(sub) .. " new 'add widgets'"))
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("^ar%-migrate: ConfigError: a migration's name is letters, digits and underscores", err)
  end)

  it("dir defaults to db/migrations", function()
    local code, out, err = h.run("cd " .. h.quote(dir) .. " && " .. h.cli("new first_one"))
    assert.equal(0, code, err)
    assert.matches("^db/migrations/%d+_first_one%.lua\n$", out)
    code, out, err = h.run("cd " .. h.quote(dir) .. " && " .. h.cli("status"))
    assert.equal(0, code, err)
    assert.matches("^down  %d+  first_one\n$", out)
  end)

  it("dump prints the schema as a migration file", function()
    h.write(dir, "11_widgets.lua", [[
      return { change = function(m)
        m:create_table("mig_cli_widgets", function(t)
          t:bigint("id", { primary_key = true, auto_increment = true })
          t:string("label", { size = 40, nullable = false })
        end)
      end }
    ]])
    assert.equal(0, (cli("up")))
    local code, out, err = cli("dump")
    assert.equal(0, code, err)
    assert.matches("mig_cli_widgets", out, 1, true)
    assert.matches("label", out, 1, true)
    assert.not_matches("schema_migrations", out, 1, true)
    local migration = assert(load(out))()
    assert.equal("function", type(migration.up))
  end)

  it("--url connects to the URL given instead of AR_MYSQL_*", function()
    local o = support.options()
    local url = ("mysql://%s:%s@%s:%d/%s"):format(o.user, o.password or "", o.host or "127.0.0.1",
      o.port or 3306, o.database)
    local code, out, err = h.run("env -u AR_MYSQL_HOST -u AR_MYSQL_PORT -u AR_MYSQL_SOCKET -u AR_MYSQL_USER "
      .. "-u AR_MYSQL_PASSWORD -u AR_MYSQL_DATABASE " .. h.cli("--dir " .. h.quote(dir) .. " --url "
      .. h.quote(url) .. " up 1"))
    assert.equal(0, code, err)
    assert.matches("applied 1 migration", out, 1, true)
    assert.same({ "1" }, log_rows())
    code, out, err = cli("--url bogus://nowhere status")
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal("ar-migrate: ConfigError: url must start with mysql:// or mariadb://\n", err)
  end)

  it("a failing migration: exit 1, the error on stderr, the ones before it applied", function()
    local bad = h.write(dir, "2_second.lua", [[
      return { up = function(m) m:execute("INSERT INTO mig_cli_no_such_table VALUES (1)") end,
               down = function() end }
    ]])
    local code, out, err = cli("up")
    assert.equal(1, code)
    assert.matches("== 1 first: migrated", out, 1, true)
    assert.matches("^ar%-migrate: MigrationError", err)
    assert.matches(bad, err, 1, true)
    assert.matches("mig_cli_no_such_table", err, 1, true)
    assert.same({ "1" }, h.recorded(db))
  end)

  it("refuses unknown commands, options and extra arguments", function()
    local cases = {
      [""] = "ar-migrate: no command given",
      ["frobnicate"] = "ar-migrate: unknown command 'frobnicate'",
      ["--verbose up"] = "ar-migrate: unknown option --verbose",
      ["status extra"] = "ar-migrate: status takes at most 0 arguments",
      ["up 1 2"] = "ar-migrate: up takes at most 1 argument",
      ["up x"] = "ar-migrate: ConfigError: migrate: to must be a version",
      ["new"] = "ar-migrate: new needs a NAME",
      ["--lock-timeout soon up"] = "ar-migrate: --lock-timeout needs a number",
    }
    for args, wanted in pairs(cases) do
      local code, out, err = cli(args)
      assert.equal(1, code, args)
      assert.equal("", out, args)
      assert.equal(wanted, err:sub(1, #wanted), args .. ": " .. err)
    end
    local code, _, err = h.run(h.cli("--dir"))
    assert.equal(1, code)
    assert.matches("^ar%-migrate: %-%-dir needs a value", err)
    assert.same({}, log_rows())
  end)
end)

-- Two migrators in two OS processes started at once on one folder (two
-- deploy hosts): the server-side lock serialises them, each migration runs
-- exactly once, both succeed, the second finds nothing left to do.
local ar = require("activerecord")
local support = require("support.db")
local h = require("migrate.helpers")

-- A migration that counts its runs in mig_conc_runs, with the number of
-- sessions waiting in GET_LOCK at that moment, and sleeps `sleep` seconds,
-- so that a second migrator starting meanwhile overlaps it.
local function counting(version, sleep)
  return ([[
return {
  up = function(m)
    m:execute("DO SLEEP(%s)")
    m:execute("INSERT INTO mig_conc_runs (version, waiting) SELECT ?, COUNT(*)"
      .. " FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK%%'", %q)
  end,
  down = function(m) m:execute("DELETE FROM mig_conc_runs WHERE version = ?", %q) end,
}
]]):format(sleep, version, version)
end

describe("migrate: two migrators in two processes at once", function()
  local db, dir

  local function runs()
    local out = {}
    for _, r in ipairs(db:query("SELECT version, COUNT(*) AS n FROM mig_conc_runs GROUP BY version"
      .. " ORDER BY version")) do
      out[r.version] = r.n
    end
    return out
  end

  setup(function()
    db = ar.connect(support.options())
  end)

  teardown(function()
    h.reset(db, { "mig_conc_runs" })
    db:close()
  end)

  before_each(function()
    h.reset(db, { "mig_conc_runs" })
    db:execute("CREATE TABLE mig_conc_runs (id INT AUTO_INCREMENT PRIMARY KEY, version VARCHAR(32), waiting INT)")
    dir = h.tmpdir()
    h.write(dir, "1_first.lua", counting("1", 1))
    h.write(dir, "2_second.lua", counting("2", 0.5))
    h.write(dir, "3_third.lua", counting("3", 0))
  end)

  after_each(function()
    h.rmdir(dir)
  end)

  it("ar-migrate up twice: each migration runs once, both exit 0, one reports nothing to migrate", function()
    local a = h.start(h.cli("--dir " .. h.quote(dir) .. " up"))
    local b = h.start(h.cli("--dir " .. h.quote(dir) .. " up"))
    local code_a, out_a = a()
    local code_b, out_b = b()
    assert.equal(0, code_a, out_a)
    assert.equal(0, code_b, out_b)
    assert.same({ ["1"] = 1, ["2"] = 1, ["3"] = 1 }, runs())
    assert.same({ "1", "2", "3" }, h.recorded(db))
    local applied = { out_a:match("applied 3 migrations") ~= nil, out_b:match("applied 3 migrations") ~= nil }
    local nothing = { out_a:match("nothing to migrate") ~= nil, out_b:match("nothing to migrate") ~= nil }
    assert.is_true(applied[1] ~= applied[2], out_a .. "\n--\n" .. out_b)
    assert.same({ not applied[1], not applied[2] }, nothing)
    -- they overlapped: while the last migration ran, the other migrator
    -- was waiting for the lock
    assert.equal(1, db:query("SELECT waiting FROM mig_conc_runs WHERE version = '3'")[1].waiting)
  end)

  it("ar.migrator(...):migrate() in two lua5.4 processes: the second applies nothing", function()
    local script = ([[
      local ar = require("activerecord")
      local db = ar.connect(ar.config_from_env())
      local applied = ar.migrator(db, %q):migrate()
      io.write("applied:", table.concat(applied, ","), "\n")
      db:close()
    ]]):format(dir)
    local cmd = h.lua_env() .. " lua5.4 -e " .. h.quote(script)
    local a, b = h.start(cmd), h.start(cmd)
    local code_a, out_a = a()
    local code_b, out_b = b()
    assert.equal(0, code_a, out_a)
    assert.equal(0, code_b, out_b)
    local outs = { out_a:match("applied:([%d,]*)"), out_b:match("applied:([%d,]*)") }
    table.sort(outs)
    assert.same({ "", "1,2,3" }, outs)
    assert.same({ ["1"] = 1, ["2"] = 1, ["3"] = 1 }, runs())
    assert.equal(1, db:query("SELECT waiting FROM mig_conc_runs WHERE version = '3'")[1].waiting)
  end)
end)

-- db:with_advisory_lock (backend/mysql/advisory_lock.lua) against the test
-- server: the lock is held on a connection of its own while fn runs, other
-- sessions wait for it and time out with LockTimeoutError, it is released
-- and its connection handed back however fn ends, long names are hashed.
local ar = require("activerecord")
local support = require("support.db")

local errors = ar.errors

describe("backend: with_advisory_lock", function()
  local db, other

  local function free(name)
    return other:query("SELECT IS_FREE_LOCK(?) AS f", name)[1].f == 1
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 3 } })
    other = ar.connect(support.options{ pool = { size = 2 } })
  end)

  teardown(function()
    db:close()
    other:close()
  end)

  it("holds the lock while fn runs and returns what fn returns", function()
    local a, b, c = db:with_advisory_lock("mig_spec_lock", 1, function()
      assert.is_false(free("mig_spec_lock"))
      -- fn's statements run through the pool beside the lock's connection
      assert.equal(2, db:query("SELECT 1 + 1 AS n")[1].n)
      return "x", nil, 3
    end)
    assert.same({ "x", nil, 3 }, { a, b, c })
    assert.is_true(free("mig_spec_lock"))
    assert.equal(0, db:pool_stats().in_use)
  end)

  it("makes another session wait, then raises LockTimeoutError naming the lock", function()
    db:with_advisory_lock("mig_spec_lock", 1, function()
      local started = ar.core.monotime()
      local ran = false
      local err = support.error_of(other.with_advisory_lock, other, "mig_spec_lock", 0.3,
        function() ran = true end)
      assert.is_true(errors.is(err, "LockTimeoutError"), tostring(err))
      assert.matches("mig_spec_lock", err.message, 1, true)
      assert.equal("mig_spec_lock", err.lock)
      assert.equal(0.3, err.timeout)
      assert.is_false(ran)
      assert.is_true(ar.core.monotime() - started >= 0.25)
      assert.equal(0, other:pool_stats().in_use)
    end)
    -- once released, the other session gets it at once
    assert.equal("got", other:with_advisory_lock("mig_spec_lock", 0, function() return "got" end))
  end)

  it("releases the lock and hands the connection back when fn raises", function()
    local boom = errors.new("QueryError", "boom")
    local ok, err = pcall(db.with_advisory_lock, db, "mig_spec_lock", 1, function()
      assert.equal(1, db:pool_stats().in_use)
      error(boom, 0)
    end)
    assert.is_false(ok)
    assert.equal(boom, err)
    assert.is_true(free("mig_spec_lock"))
    assert.equal(0, db:pool_stats().in_use)
    -- a string error too
    ok, err = pcall(db.with_advisory_lock, db, "mig_spec_lock", 1, function() error("plain") end)
    assert.is_false(ok)
    assert.matches("plain", err)
    assert.is_true(free("mig_spec_lock"))
  end)

  it("works on a pool of one (the lock gets a connection of its own)", function()
    local single = ar.connect(support.options{ pool = { size = 1, checkout_timeout = 0.5 } })
    local n = single:with_advisory_lock("mig_spec_lock", 1, function()
      assert.is_false(free("mig_spec_lock"))
      return single:query("SELECT 7 AS n")[1].n
    end)
    assert.equal(7, n)
    assert.is_true(free("mig_spec_lock"))
    assert.equal(1, single:pool_stats().open)
    single:close()
  end)

  it("waits longer than read_timeout in shorter slices (no read timeout while waiting)", function()
    local short = ar.connect(support.options{ read_timeout = 1, pool = { size = 2 } })
    other:with_advisory_lock("mig_spec_lock", 0, function()
      local started = ar.core.monotime()
      local err = support.error_of(short.with_advisory_lock, short, "mig_spec_lock", 2.2, function() end)
      assert.is_true(errors.is(err, "LockTimeoutError"), tostring(err))
      assert.is_true(ar.core.monotime() - started >= 2.1)
    end)
    assert.equal("ok", short:with_advisory_lock("mig_spec_lock", 2.2, function() return "ok" end))
    short:close()
  end)

  it("hashes names longer than 64 characters: one long name, one lock", function()
    -- the server refuses such names itself (1059 "Identifier name ... is too long")
    local long = "mig_spec_" .. string.rep("x", 200)
    local long2 = "mig_spec_" .. string.rep("x", 199) .. "y"
    db:with_advisory_lock(long, 1, function()
      local err = support.error_of(other.with_advisory_lock, other, long, 0, function() end)
      assert.is_true(errors.is(err, "LockTimeoutError"), tostring(err))
      assert.equal(long, err.lock)
      -- a different long name with the same beginning is another lock
      assert.equal(1, other:with_advisory_lock(long2, 0, function() return 1 end))
    end)
    assert.equal(2, other:with_advisory_lock(long, 0, function() return 2 end))
    assert.equal(0, db:pool_stats().in_use)
  end)

  it("refuses a bad name, timeout or function", function()
    for _, args in ipairs({ { "", 1, print }, { 5, 1, print }, { "n", -1, print }, { "n", 0 / 0, print },
                            { "n", math.huge, print }, { "n", "1", print }, { "n", 1, "f" } }) do
      local err = support.error_of(db.with_advisory_lock, db, table.unpack(args, 1, 3))
      assert.is_true(errors.is(err, "ConfigError"), tostring(err))
    end
    assert.equal(0, db:pool_stats().in_use)
  end)
end)

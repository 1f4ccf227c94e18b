-- Integrity of the pool (issue 12): a coroutine closed or dropped inside a
-- transaction gives its connection back rolled back (its row locks
-- released); a stream that fails closes its cursor before the connection
-- goes back; pool timings are finite, non-negative numbers.
local ar = require("activerecord")
local support = require("support.db")
local core = require("activerecord.backend.mysql.core")

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

describe("integrity: a coroutine closed or dropped inside a transaction", function()
  local db, observer, session_id
  local TABLE = "integ_pool_locks"

  setup(function()
    observer = support.connect()
    observer:execute("DROP TABLE IF EXISTS " .. TABLE)
    observer:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
    -- a lock still held shows as a LockTimeoutError within 2 s, not 50
    observer:execute("SET SESSION innodb_lock_wait_timeout = 2")
    observer:execute("SET SESSION lock_wait_timeout = 5") -- DDL: fail, never hang
  end)

  -- a leaked transaction (the bug) would hold its locks past this test
  after_each(function()
    if session_id then pcall(observer.execute, observer, "KILL " .. session_id) end
    session_id = nil
  end)

  teardown(function()
    if db then db:close() end
    observer:execute("DROP TABLE IF EXISTS " .. TABLE)
    observer:close()
  end)

  before_each(function()
    if db then db:close() end
    db = ar.connect(support.options{ pool = { size = 1, checkout_timeout = 1 } })
    observer:execute("DELETE FROM " .. TABLE)
    observer:execute("INSERT INTO " .. TABLE .. " (id, v) VALUES (1, 0)")
  end)

  -- A coroutine that locks row 1 and writes row 2 inside a transaction, then
  -- yields with the transaction open.
  local function locker()
    local co = coroutine.create(function()
      db:transaction(function(tx)
        session_id = tx:query("SELECT CONNECTION_ID() AS id")[1].id
        tx:execute("UPDATE " .. TABLE .. " SET v = v + 1 WHERE id = 1")
        tx:execute("INSERT INTO " .. TABLE .. " (id, v) VALUES (2, 0)")
        coroutine.yield("locked")
      end)
    end)
    local ok, state = coroutine.resume(co)
    assert(ok, state)
    assert.are.equal("locked", state)
    return co
  end

  -- The row lock is gone: another session updates row 1 at once.
  local function assert_unlocked()
    local started = core.monotime()
    local ok, err = pcall(observer.execute, observer, "UPDATE " .. TABLE .. " SET v = 10 WHERE id = 1")
    assert(ok, "row 1 is still locked by the abandoned transaction: " .. tostring(err))
    assert.is_true(core.monotime() - started < 1.5)
  end

  local function assert_given_back()
    local stats = db:pool_stats()
    assert.are.equal(1, stats.idle)
    assert.are.equal(0, stats.in_use)
    -- the pool's one connection serves again, outside any transaction
    assert.are.equal(0, db:query("SELECT @@in_transaction AS t")[1].t)
    -- the row written inside the dead transaction is not in the table
    assert.are.same({ { id = 1 } }, observer:execute("SELECT id FROM " .. TABLE .. " ORDER BY id").rows)
  end

  it("coroutine.close rolls the transaction back and returns the connection", function()
    local co = locker()
    assert.is_true(coroutine.close(co))
    assert_unlocked()
    assert_given_back()
    assert.are.equal(10, observer:execute("SELECT v FROM " .. TABLE .. " WHERE id = 1").rows[1].v)
  end)

  it("a dropped coroutine, once collected, gives its connection back rolled back", function()
    locker() -- the coroutine is dropped: nothing refers to it any more
    collectgarbage()
    collectgarbage()
    assert_given_back() -- the pool's next call rolls the orphan back
    assert_unlocked()
  end)

  it("undo actions of the closed transaction run", function()
    local undone = false
    local co = coroutine.create(function()
      db:transaction(function(tx)
        tx:_track_undo(function() undone = true end)
        coroutine.yield()
      end)
    end)
    assert(coroutine.resume(co))
    coroutine.close(co)
    assert.is_true(undone)
  end)
end)

describe("integrity: a stream that fails while reading", function()
  local db, writer
  local TABLE = "integ_stream_json"

  setup(function()
    writer = support.connect()
    writer:execute("SET SESSION lock_wait_timeout = 5") -- DDL: fail, never hang
    writer:execute("DROP TABLE IF EXISTS " .. TABLE)
    writer:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY, doc JSON) ENGINE=InnoDB")
    -- another client writes text that is not JSON: on MariaDB, JSON is
    -- LONGTEXT with a json_valid CHECK, which this session switches off
    writer:execute("SET SESSION check_constraint_checks = 0")
    for i = 1, 300 do
      writer:execute("INSERT INTO " .. TABLE .. " (id, doc) VALUES (?, ?)", i,
        i == 40 and "{not json" or '{"n": ' .. i .. "}")
    end
  end)

  teardown(function()
    writer:execute("DROP TABLE IF EXISTS " .. TABLE)
    writer:close()
  end)

  before_each(function()
    db = ar.connect(support.options{ pool = { size = 2 } })
  end)

  after_each(function() db:close() end)

  local function assert_pool_serves()
    collectgarbage("stop") -- no finalizer may hide a leaked cursor
    local failures = {}
    for i = 1, 20 do
      local ok, err = pcall(db.query, db, "SELECT ? AS n", i)
      if not ok then failures[#failures + 1] = tostring(err) end
    end
    collectgarbage("restart")
    assert.are.same({}, failures)
    assert.are.equal(0, db:pool_stats().in_use)
  end

  it("db:each: the conversion error is raised and the next 20 queries succeed", function()
    local seen = 0
    local err = error_of(function()
      for row in db:each("SELECT id, doc FROM " .. TABLE .. " ORDER BY id") do
        seen = seen + 1
        assert.are.equal(row.id, row.doc.n)
      end
    end)
    assert.is_true(ar.errors.is(err, "DataError"), tostring(err))
    assert.are.equal(39, seen)
    assert_pool_serves()
  end)

  it("a model's each and find_each: the same", function()
    local Doc = ar.Model{ name = "IntegStreamDoc", table = TABLE, backend = db,
      fields = { id = "integer", doc = "json" } }
    local seen = 0
    local err = error_of(Doc.each, Doc, function(r)
      seen = seen + 1
      assert.are.equal(r.id, r.doc.n)
    end)
    assert.is_true(ar.errors.is(err, "DataError"), tostring(err))
    assert.are.equal(39, seen)
    assert_pool_serves()
    err = error_of(function()
      for _ in Doc:find_each{ batch_size = 25 } do end
    end)
    assert.is_true(ar.errors.is(err, "DataError"), tostring(err))
    assert_pool_serves()
  end)

  it("inside a transaction: the cursor is closed and the transaction goes on", function()
    db:transaction(function(tx)
      local ok = pcall(function()
        for _ in tx:each("SELECT id, doc FROM " .. TABLE .. " ORDER BY id") do end
      end)
      assert.is_false(ok)
      collectgarbage("stop")
      local ok2, err2 = pcall(tx.query, tx, "SELECT 1 AS x")
      collectgarbage("restart")
      assert(ok2, tostring(err2))
    end)
    assert_pool_serves()
  end)
end)

describe("integrity: pool timings", function()
  local TIMINGS = { "checkout_timeout", "idle_timeout", "max_lifetime", "validate_on_checkout" }
  local BAD = { { "NaN", 0 / 0 }, { "negative", -1 }, { "negative infinity", -math.huge } }

  local function connect_with(key, value)
    return ar.connect(support.options{ pool = { size = 1, [key] = value } })
  end

  for _, key in ipairs(TIMINGS) do
    for _, bad in ipairs(BAD) do
      it(("%s = %s is a ConfigError naming the option"):format(key, bad[1]), function()
        local err = error_of(connect_with, key, bad[2])
        assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
        assert.matches(key, err.message, 1, true)
      end)
    end
  end

  for _, key in ipairs({ "checkout_timeout", "idle_timeout", "max_lifetime" }) do
    it(key .. " = infinity is a ConfigError (only validate_on_checkout has a 'never')", function()
      local err = error_of(connect_with, key, math.huge)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches(key, err.message, 1, true)
    end)
  end

  it("validate_on_checkout = infinity means never, like false", function()
    local db = connect_with("validate_on_checkout", math.huge)
    assert.are.equal(1, db:query("SELECT 1 AS x")[1].x)
    db:close()
  end)

  it("an exhausted pool with a finite checkout_timeout raises in time", function()
    local db = connect_with("checkout_timeout", 0.2)
    local co = coroutine.create(function()
      db:transaction(function() coroutine.yield() end)
    end)
    assert(coroutine.resume(co)) -- holds the only connection
    local started = core.monotime()
    local err = error_of(db.query, db, "SELECT 1")
    assert.is_true(ar.errors.is(err, "ConnectionError"), tostring(err))
    assert.is_true(core.monotime() - started < 2)
    coroutine.close(co)
    db:close()
  end)
end)

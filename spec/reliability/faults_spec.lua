-- Faults against a private MariaDB this spec starts, SIGKILLs and restarts
-- itself (never the shared test server): a crash in the middle of a
-- transaction, KILL CONNECTION, wait_timeout, a restart between two
-- statements, max_allowed_packet, a client read timeout, a write timeout
-- (through a relay that stops taking data in) and a server-side statement
-- timeout. Tagged #slow: `make test-faults` runs it.
local ar = require("activerecord")
local core = require("activerecord.backend.mysql.core")
local H = require("reliability.helpers")

local now = core.monotime

describe("reliability: faults on a private server #slow", function()
  local server, db, observer

  -- rows of table t, by id, read on a connection of its own
  local function ids()
    local out = {}
    for i, row in ipairs(observer:query("SELECT id FROM t ORDER BY id")) do out[i] = row.id end
    return out
  end

  local function session_id(b)
    return b:query("SELECT CONNECTION_ID() AS id")[1].id
  end

  -- kills a session from another one (the observer)
  local function kill(id)
    observer:execute("KILL CONNECTION " .. math.tointeger(id))
  end

  local function new_backend(extra)
    local opts = { pool = { size = 2, validate_on_checkout = false } }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return ar.connect(server:options(opts))
  end

  setup(function()
    server = H.start_server()
    observer = ar.connect(server:options{ pool = { size = 1 } })
    observer:execute("CREATE TABLE t (id INT PRIMARY KEY, v LONGTEXT) ENGINE=InnoDB")
  end)

  teardown(function()
    if db then pcall(db.close, db) end
    if observer then pcall(observer.close, observer) end
    if server then server:destroy() end
  end)

  before_each(function()
    if db then pcall(db.close, db) end
    db = new_backend()
    observer:execute("DELETE FROM t")
  end)

  it("survives kill -9 of mariadbd in the middle of a transaction", function()
    db:execute("INSERT INTO t (id) VALUES (1)")          -- committed before the crash
    local before = db:pool_stats()
    local reached_after_kill = false
    local err = H.error_of(db.transaction, db, function(tx)
      tx:execute("INSERT INTO t (id) VALUES (2)")
      tx:execute("UPDATE t SET v = 'changed' WHERE id = 1")
      server:kill()
      tx:execute("INSERT INTO t (id) VALUES (3)")
      reached_after_kill = true
    end)
    assert.is_false(reached_after_kill)
    H.assert_error(err, { "ConnectionLost", "TransactionError" })
    if err.kind == "TransactionError" then H.assert_error(err.cause, "ConnectionLost") end
    assert.is_false(db:in_transaction())
    -- while the server is down: a clear ConnectionError/ConnectionLost, no hang
    local t0 = now()
    H.assert_error(H.error_of(db.query, db, "SELECT 1 AS one"), { "ConnectionError", "ConnectionLost" })
    assert.is_true(now() - t0 < 5)
    server:restart()
    -- the same backend recovers by itself
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    db:execute("INSERT INTO t (id) VALUES (4)")
    assert.are.same({ 1, 4 }, ids())
    assert.is_nil(observer:query("SELECT v FROM t WHERE id = 1")[1].v)   -- the UPDATE is gone too
    local after = db:pool_stats()
    assert.is_true(after.replaced >= before.replaced + 1, "replaced: " .. after.replaced)
    assert.is_true(after.created >= before.created + 1)
    assert.are.equal(0, after.in_use)
    assert.is_true(after.open >= 1 and after.open <= after.size)
  end)

  it("reconnects once after KILL CONNECTION of an idle pooled connection (a write)", function()
    local old = session_id(db)
    local before = db:pool_stats()
    kill(old)
    db:execute("INSERT INTO t (id) VALUES (1)")
    assert.are_not.equal(old, session_id(db))
    assert.are.same({ 1 }, ids())
    assert.are.equal(before.replaced + 1, db:pool_stats().replaced)
  end)

  it("raises after KILL CONNECTION inside a transaction and replays nothing", function()
    local later
    local err = H.error_of(db.transaction, db, function(tx)
      tx:execute("INSERT INTO t (id) VALUES (1)")
      kill(session_id(tx))
      local ok, e = pcall(tx.execute, tx, "INSERT INTO t (id) VALUES (2)")
      assert(not ok, "a statement ran on a killed connection")
      H.assert_error(e, { "ConnectionLost" })
      ok, later = pcall(tx.execute, tx, "INSERT INTO t (id) VALUES (3)")
      assert(not ok, "a statement ran after the transaction lost its connection")
    end)
    H.assert_error(later, "TransactionError", "lost")
    H.assert_error(later.cause, "ConnectionLost")
    H.assert_error(err, { "ConnectionLost", "TransactionError" })
    assert.are.same({}, ids())
    db:execute("INSERT INTO t (id) VALUES (4)")
    assert.are.same({ 4 }, ids())
  end)

  it("replaces connections the server timed out (wait_timeout) while idle in the pool", function()
    db:close()
    db = new_backend{ init_command = "SET SESSION wait_timeout = 1" }
    -- two idle connections in the pool
    db:transaction(function() db:transaction(function() end) end)
    local co = coroutine.wrap(function() db:transaction(function() coroutine.yield() end) end)
    co()
    db:query("SELECT 1 AS one")
    co()
    local before = db:pool_stats()
    core.sleep(2.5)
    db:execute("INSERT INTO t (id) VALUES (1)")
    assert.are.same({ 1 }, ids())
    local after = db:pool_stats()
    assert.is_true(after.replaced >= before.replaced + 1)
  end)

  it("SET GLOBAL wait_timeout=1: an idle transaction's connection is gone, nothing replayed", function()
    server:sql("SET GLOBAL wait_timeout = 1")
    finally(function() server:sql("SET GLOBAL wait_timeout = 28800") end)
    db:close()
    db = new_backend()
    local err = H.error_of(db.transaction, db, function(tx)
      tx:execute("INSERT INTO t (id) VALUES (1)")
      core.sleep(2.5)
      tx:execute("INSERT INTO t (id) VALUES (2)")
    end)
    H.assert_error(err, { "ConnectionLost", "TransactionError" })
    assert.are.same({}, ids())
    -- outside a transaction, after the same idle time: one reconnect, success
    db:query("SELECT 1 AS one")
    core.sleep(2.5)
    db:execute("INSERT INTO t (id) VALUES (3)")
    assert.are.same({ 3 }, ids())
  end)

  it("a server restart between two statements: the next one succeeds outside a transaction", function()
    db:execute("INSERT INTO t (id) VALUES (1)")
    local before = db:pool_stats()
    server:restart()
    db:execute("INSERT INTO t (id) VALUES (2)")
    assert.are.equal(2, #db:query("SELECT id FROM t"))
    assert.is_true(db:pool_stats().replaced >= before.replaced + 1)
    -- observer's connection also died: it recovers on its own read
    assert.are.same({ 1, 2 }, ids())
  end)

  it("a server restart inside a transaction: raised, rolled back, nothing replayed", function()
    local reached = false
    local err = H.error_of(db.transaction, db, function(tx)
      tx:execute("INSERT INTO t (id) VALUES (1)")
      server:restart()
      tx:execute("INSERT INTO t (id) VALUES (2)")
      reached = true
    end)
    assert.is_false(reached)
    H.assert_error(err, { "ConnectionLost", "TransactionError" })
    assert.are.same({}, ids())
    db:execute("INSERT INTO t (id) VALUES (3)")
    assert.are.same({ 3 }, ids())
  end)

  describe("max_allowed_packet smaller than a statement", function()
    local small

    setup(function()
      server:sql("SET GLOBAL max_allowed_packet = 1048576")
      small = ar.connect(server:options{ pool = { size = 1 } })   -- new sessions see 1 MiB
    end)

    teardown(function()
      if small then small:close() end
      server:sql("SET GLOBAL max_allowed_packet = 67108864")
    end)

    it("fails with an error object, writes nothing, and the backend stays usable", function()
      assert.are.equal(1048576, small:query("SELECT @@max_allowed_packet AS p")[1].p)
      local err = H.error_of(small.execute, small, "INSERT INTO t (id, v) VALUES (1, ?)",
        string.rep("x", 2 * 1024 * 1024))
      -- today: ConnectionLost (2006 or 1153: the server hangs up)
      H.assert_error(err, { "ConnectionLost", "DataError", "QueryError" })
      assert.are.same({}, ids())
      assert.are.equal(1, small:query("SELECT 1 AS one")[1].one)
      small:execute("INSERT INTO t (id, v) VALUES (2, ?)", string.rep("y", 512 * 1024))
      assert.are.same({ 2 }, ids())
    end)

    it("the error names the limit (max_allowed_packet)", function()
      local err = H.error_of(small.execute, small, "INSERT INTO t (id, v) VALUES (1, ?)",
        string.rep("x", 2 * 1024 * 1024))
      if not tostring(err):lower():find("max_allowed_packet", 1, true) then
        pending("BUG: an over-size statement gives '" .. tostring(err)
          .. "' (no mention of max_allowed_packet; a 2006 is also re-sent once as 'never sent')")
        return
      end
      H.assert_error(err, { "DataError", "QueryError" }, "max_allowed_packet")
    end)

    it("insert_all splits rows totalling several times the limit into smaller batches", function()
      local T = ar.Model{ name = "PacketRow", table = "t", backend = small,
        fields = { id = { type = "integer", primary_key = true }, v = "text" } }
      local rows, pad = {}, string.rep("z", 1000)
      for i = 1, 3000 do rows[i] = { id = i, v = pad } end        -- ~3 MB of values
      local res = T:insert_all(rows)
      assert.are.equal(3000, res.affected_rows)
      assert.are.equal(3000, observer:query("SELECT COUNT(*) AS n FROM t")[1].n)
      assert.are.equal(3000, observer:query("SELECT COUNT(DISTINCT id) AS n FROM t")[1].n)
    end)

    it("insert_all with one row over the limit fails and writes none of the batch", function()
      local T = ar.Model{ name = "PacketRow2", table = "t", backend = small,
        fields = { id = { type = "integer", primary_key = true }, v = "text" } }
      local rows = {}
      for i = 1, 1500 do rows[i] = { id = i, v = "small" } end
      rows[1501] = { id = 1501, v = string.rep("x", 2 * 1024 * 1024) }
      local err = H.error_of(T.insert_all, T, rows)
      H.assert_error(err, { "ConnectionLost", "DataError", "QueryError" })
      print("\n[faults] insert_all with a row over max_allowed_packet: " .. tostring(err))
      assert.are.same({}, ids())
    end)
  end)

  describe("read timeout", function()
    it("SELECT SLEEP(10) with read_timeout = 1 and no retry raises within about a second; "
      .. "the pool discards the connection", function()
      local b = new_backend{ read_timeout = 1, reconnect_retries = 0 }
      finally(function() b:close() end)
      b:query("SELECT 1 AS one")
      local before = b:pool_stats()
      local t0 = now()
      local err = H.error_of(b.query, b, "SELECT SLEEP(10)")
      local took = now() - t0
      H.assert_error(err, "ConnectionLost")
      assert.is_true(took >= 0.9 and took < 1.8, ("took %.2f s"):format(took))
      local after = b:pool_stats()
      assert.are.equal(before.replaced + 1, after.replaced)
      assert.are.equal(0, after.open)
      assert.are.equal(1, b:query("SELECT 1 AS one")[1].one)
    end)

    it("with the default reconnect_retries a timed-out read is re-run once (2 x read_timeout)", function()
      local b = new_backend{ read_timeout = 1 }
      finally(function() b:close() end)
      local before = b:pool_stats()
      local t0 = now()
      local err = H.error_of(b.query, b, "SELECT SLEEP(10)")
      local took = now() - t0
      H.assert_error(err, "ConnectionLost")
      assert.is_true(took < 2.8, ("took %.2f s"):format(took))
      local after = b:pool_stats()
      assert.is_true(after.replaced >= before.replaced + 1)
      if took > 1.8 then
        pending(("BUG: a read timeout is retried as a lost connection: SELECT SLEEP(10) with "
          .. "read_timeout = 1 raised after %.2f s (2 timed-out connections: replaced +%d)")
          :format(took, after.replaced - before.replaced))
      end
    end)
  end)

  describe("write timeout", function()
    -- A relay process that stops taking in what the client sends (while
    -- its pause file exists): the big statement fills the socket buffers.
    local function start_relay()
      local pause = os.tmpname()
      os.remove(pause)
      local lua = os.getenv("AR_LUA") or "lua5.4"
      -- popen's shell prints its pid, then becomes the relay
      local cmd = ("echo $$; exec %s spec/support/relay.lua 127.0.0.1 %d %s"):format(lua, server.port, pause)
      local pipe = assert(io.popen(cmd, "r"))
      local pid = assert(tonumber(pipe:read("l")), "relay pid")
      local port = assert(tonumber(pipe:read("l")), "relay port")
      return port, pause, function()
        os.execute("kill " .. pid)
        pipe:close()
        os.remove(pause)
      end
    end

    it("a statement the server takes in nothing of within write_timeout raises a timeout, not re-run",
      function()
      local port, pause, stop = start_relay()
      local b
      finally(function() -- busted keeps one finally per test
        if b then b:close() end
        stop()
      end)
      b = new_backend{ port = port, write_timeout = 1, read_timeout = 30 }
      assert.are.equal(1, b:query("SELECT LENGTH(?) AS n", "x")[1].n) -- prepared while all passes
      assert(io.open(pause, "w")):close()
      core.sleep(0.05) -- the relay looks every 10 ms
      local big = string.rep(string.rep("x", 1024), 32 * 1024) -- 32 MB, built before the clock starts
      local t0 = now()
      local err = H.error_of(b.query, b, "SELECT LENGTH(?) AS n", big)
      local took = now() - t0
      os.remove(pause)
      H.assert_error(err, "ConnectionLost", "write_timeout")
      assert.is_true(err.timeout)
      -- once, not again on a new connection (that waited as long again, then hung in its handshake)
      assert.is_true(took >= 0.9 and took < 4, ("took %.2f s"):format(took))
      assert.are.equal(7, b:query("SELECT 7 AS v")[1].v)
    end)
  end)

  it("a server-side statement timeout (max_statement_time) is a QueryTimeout; the connection survives",
    function()
    local before = db:pool_stats()
    local t0 = now()
    local err = H.error_of(db.query, db, "SET STATEMENT max_statement_time = 0.5 FOR SELECT SLEEP(5)")
    H.assert_error(err, "QueryTimeout", "max_statement_time")
    assert.are.equal(1969, err.code)
    assert.is_true(now() - t0 < 2)
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    assert.are.equal(before.replaced, db:pool_stats().replaced)
  end)
end)

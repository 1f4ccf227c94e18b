-- Transactions of the C core, checked by what a second session can see.
local db = require("support.db")
local core = db.core

local function count(conn, where, ...)
  local sql = "SELECT COUNT(*) AS n FROM tx_items" .. (where and (" WHERE " .. where) or "")
  return conn:execute(sql, ...).rows[1].n
end

-- Session counter (Com_savepoint, ...) as an integer.
local function status(conn, name)
  local r = conn:execute("SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS " ..
    "WHERE VARIABLE_NAME = ?", name:upper())
  return tonumber(r.rows[1].v)
end

describe("core transactions", function()
  local a, b -- a runs the transactions, b watches

  setup(function()
    a = db.connect()
    b = db.connect()
    db.recreate(a, "tx_items", "id INT PRIMARY KEY, name VARCHAR(50)")
    db.recreate(a, "tx_canary", "id INT PRIMARY KEY")
  end)

  teardown(function()
    if b then
      b:execute("DROP TABLE IF EXISTS tx_items, tx_canary")
      b:close()
    end
    if a then a:close() end
  end)

  before_each(function()
    if a:is_closed() then a = db.connect() end
    if a:in_transaction() then a:rollback() end
    b:execute("DELETE FROM tx_items")
  end)

  it("commit makes the rows visible to another session, not before", function()
    a:begin()
    a:execute("INSERT INTO tx_items (id, name) VALUES (?, ?)", 1, "one")
    assert.are.equal(1, count(a))
    assert.are.equal(0, count(b))
    a:commit()
    assert.are.equal(1, count(b))
    assert.is_false(a:in_transaction())
  end)

  it("rollback discards the rows", function()
    a:begin()
    a:execute("INSERT INTO tx_items (id, name) VALUES (?, ?)", 1, "one")
    a:rollback()
    assert.are.equal(0, count(a))
    assert.are.equal(0, count(b))
  end)

  it("in_transaction() follows the server status flag", function()
    assert.is_false(a:in_transaction())
    a:begin()
    assert.is_true(a:in_transaction())
    a:commit()
    assert.is_false(a:in_transaction())
    -- also when the transaction is started behind the core's back
    a:execute("START TRANSACTION")
    assert.is_true(a:in_transaction())
    a:execute("INSERT INTO tx_items (id) VALUES (?)", 5)
    a:execute("ROLLBACK")
    assert.is_false(a:in_transaction())
    assert.are.equal(0, count(b))
  end)

  describe("isolation", function()
    it("READ COMMITTED sees rows another session commits meanwhile", function()
      a:begin("READ COMMITTED")
      assert.are.equal(0, count(a)) -- takes the first snapshot
      b:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      assert.are.equal(1, count(a))
      a:commit()
    end)

    it("REPEATABLE READ keeps its snapshot", function()
      a:begin("REPEATABLE READ")
      assert.are.equal(0, count(a))
      b:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      assert.are.equal(0, count(a))
      a:commit()
      assert.are.equal(1, count(a))
    end)

    it("the level applies to that transaction only", function()
      a:begin { isolation = "read committed" }
      a:commit()
      a:begin() -- back to the server default (REPEATABLE READ)
      assert.are.equal(0, count(a))
      b:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      assert.are.equal(0, count(a))
      a:commit()
    end)

    it("accepts READ_COMMITTED, read-committed and Read Committed", function()
      for _, level in ipairs { "READ_COMMITTED", "read-committed", "Read Committed" } do
        b:execute("DELETE FROM tx_items")
        a:begin(level)
        assert.are.equal(0, count(a))
        b:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
        assert.are.equal(1, count(a), level)
        a:commit()
      end
    end)

    it("SERIALIZABLE makes plain reads lock: a writer waits and times out", function()
      b:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      a:begin("SERIALIZABLE")
      assert.are.equal(1, count(a, "id = ?", 1)) -- shared lock under SERIALIZABLE
      b:execute("SET SESSION innodb_lock_wait_timeout = 1")
      local err = db.error_of(b.execute, b, "UPDATE tx_items SET name = ? WHERE id = ?", "x", 1)
      b:execute("SET SESSION innodb_lock_wait_timeout = DEFAULT")
      a:commit()
      assert.are.equal("LockTimeoutError", err.kind)
    end)

    it("an unknown isolation level raises TransactionError and opens nothing", function()
      local err = db.error_of(a.begin, a, "READ SOMETIMES")
      assert.are.equal("TransactionError", err.kind)
      assert.truthy(err.message:find("READ SOMETIMES", 1, true), err.message)
      assert.is_false(a:in_transaction())
      err = db.error_of(a.begin, a, { isolation = "SNAPSHOT" })
      assert.are.equal("TransactionError", err.kind)
      assert.is_false(a:in_transaction())
    end)

    it("unknown begin options and argument types raise", function()
      local err = db.error_of(a.begin, a, { isolaton = "READ COMMITTED" })
      assert.are.equal("ConfigError", err.kind)
      assert.truthy(err.message:find("isolaton", 1, true), err.message)
      err = db.error_of(a.begin, a, 42)
      assert.are.equal("TransactionError", err.kind)
      assert.is_false(a:in_transaction())
    end)
  end)

  describe("read-only transactions", function()
    it("reject writes with error 1792", function()
      a:begin { read_only = true }
      assert.are.equal(0, count(a))
      local err = db.error_of(a.execute, a, "INSERT INTO tx_items (id) VALUES (?)", 1)
      assert.are.equal(1792, err.code)
      assert.are.equal("25006", err.sqlstate)
      a:rollback()
      assert.are.equal(0, count(b))
    end)

    it("read_only = false allows writes", function()
      a:begin { read_only = false, isolation = "READ COMMITTED" }
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      a:commit()
      assert.are.equal(1, count(b))
    end)
  end)

  describe("savepoints", function()
    it("rollback_to undoes only the work after the savepoint", function()
      a:begin()
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      a:savepoint("inner")
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 2)
      a:rollback_to("inner")
      assert.is_true(a:in_transaction())
      assert.are.equal(1, count(a))
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 3)
      a:commit()
      local ids = {}
      for _, row in ipairs(b:execute("SELECT id FROM tx_items ORDER BY id").rows) do
        ids[#ids + 1] = row.id
      end
      assert.are.same({ 1, 3 }, ids)
    end)

    it("release keeps the work and forgets the savepoint", function()
      a:begin()
      a:savepoint("sp_1")
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      a:release_savepoint("sp_1")
      local err = db.error_of(a.rollback_to, a, "sp_1")
      assert.are.equal(1305, err.code) -- SAVEPOINT does not exist
      assert.truthy(err.message:find("sp_1", 1, true), err.message)
      assert.is_true(a:in_transaction())
      a:commit()
      assert.are.equal(1, count(b))
    end)

    it("nest", function()
      a:begin()
      a:savepoint("outer")
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      a:savepoint("inner")
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 2)
      a:rollback_to("outer")
      assert.are.equal(0, count(a))
      a:commit()
      assert.are.equal(0, count(b))
    end)

    it("invalid names raise TransactionError before any SQL is sent", function()
      local bad = {
        "a`; DROP TABLE tx_canary; --",
        "x y", "", "1abc", "sp-1", ("s"):rep(65), "naïve",
      }
      a:begin()
      local sp0 = status(a, "Com_savepoint")
      local rb0 = status(a, "Com_rollback_to_savepoint")
      local rel0 = status(a, "Com_release_savepoint")
      for _, name in ipairs(bad) do
        for _, method in ipairs { "savepoint", "rollback_to", "release_savepoint" } do
          local err = db.error_of(a[method], a, name)
          assert.are.equal("TransactionError", err.kind, method .. " " .. name)
          assert.truthy(err.message:find("savepoint name", 1, true), err.message)
        end
      end
      assert.are.equal(sp0, status(a, "Com_savepoint"))
      assert.are.equal(rb0, status(a, "Com_rollback_to_savepoint"))
      assert.are.equal(rel0, status(a, "Com_release_savepoint"))
      -- the counter does move for a good name
      a:savepoint("good_name_" .. ("x"):rep(54)) -- 64 characters
      assert.are.equal(sp0 + 1, status(a, "Com_savepoint"))
      a:rollback()
      -- nothing was dropped
      assert.are.equal(0, b:execute("SELECT COUNT(*) AS n FROM tx_canary").rows[1].n)
    end)

    it("a non-string name raises", function()
      a:begin()
      assert.has_error(function() a:savepoint({}) end)
      a:rollback()
    end)
  end)

  describe("misuse", function()
    it("begin inside a transaction raises TransactionError and keeps it open", function()
      a:begin()
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      local err = db.error_of(a.begin, a)
      assert.are.equal("TransactionError", err.kind)
      assert.truthy(err.message:find("already", 1, true), err.message)
      -- the implicit commit of a second START TRANSACTION did not happen
      assert.is_true(a:in_transaction())
      assert.are.equal(0, count(b))
      -- also with an isolation level (SET TRANSACTION would fail mid-transaction)
      err = db.error_of(a.begin, a, "READ COMMITTED")
      assert.are.equal("TransactionError", err.kind)
      assert.are.equal(0, count(b))
      a:rollback()
      assert.are.equal(0, count(b))
      assert.are.equal(0, count(a))
    end)

    it("a transaction started through execute also blocks begin", function()
      a:execute("START TRANSACTION")
      local err = db.error_of(a.begin, a)
      assert.are.equal("TransactionError", err.kind)
      a:rollback()
      assert.is_false(a:in_transaction())
    end)

    it("commit and rollback outside a transaction are harmless", function()
      a:commit()
      a:rollback()
      assert.is_false(a:in_transaction())
    end)
  end)

  describe("autocommit", function()
    it("autocommit(false) keeps writes uncommitted until commit", function()
      a:autocommit(false)
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      assert.is_true(a:in_transaction())
      assert.are.equal(0, count(b))
      a:commit()
      assert.are.equal(1, count(b))
      a:autocommit(true)
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 2)
      assert.is_false(a:in_transaction())
      assert.are.equal(2, count(b))
    end)

    it("the connect option autocommit = false does the same", function()
      local c = db.connect { autocommit = false }
      c:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      assert.are.equal(0, count(b))
      c:close() -- closing without commit rolls back
      assert.are.equal(0, count(b))
    end)
  end)

  describe("a failed COMMIT", function()
    it("surfaces as ConnectionLost when the session was killed, and the rows are gone", function()
      a:begin()
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      b:execute("KILL " .. a:thread_id())
      local err = db.error_of(a.commit, a)
      assert.are.equal("ConnectionLost", err.kind)
      assert.are.equal("COMMIT", err.sql)
      assert.are.equal(0, count(b))
      a:close()
    end)

    it("a killed session also fails rollback loudly", function()
      a:begin()
      a:execute("INSERT INTO tx_items (id) VALUES (?)", 1)
      b:execute("KILL " .. a:thread_id())
      local err = db.error_of(a.rollback, a)
      assert.are.equal("ConnectionLost", err.kind)
      assert.are.equal(0, count(b))
      a:close()
    end)
  end)

  it("core.connect sessions default to autocommit", function()
    local c = db.connect()
    assert.are.equal(1, c:execute("SELECT @@autocommit AS v").rows[1].v)
    c:close()
    assert.is_function(core.connect)
  end)
end)

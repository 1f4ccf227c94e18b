-- Every error kind of design §4 provoked for real against the private server,
-- the shape of the error object, and that the connection survives the error.
local db = require("support.db")
local core = db.core

local SECRET = "s3cr3t-param"

-- Asserts err is a core error of `kind` (and `code` when given).
local function assert_kind(err, kind, code)
  assert.is_table(err, "expected an error object, got " .. tostring(err))
  assert.are.equal(core.Error, getmetatable(err))
  assert.are.equal(kind, err.kind, tostring(err))
  if code then assert.are.equal(code, err.code, tostring(err)) end
  assert.is_string(err.message)
  local s = tostring(err)
  assert.is_nil(s:find("\n", 1, true), "tostring(err) must be one line: " .. s)
  assert.truthy(s:find(kind, 1, true), s)
  return err
end

local function assert_usable(conn)
  assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
end

-- Runs a shell command in the background, its output in a temp file.
local function spawn(cmd)
  local out = os.tmpname()
  assert(os.execute("(" .. cmd .. ") >" .. out .. " 2>&1 &"))
  return out
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A mariadb CLI command line for the test server (TCP or socket).
local function cli(sql)
  local o = db.options()
  local args = { "mariadb", "--no-defaults", "-N", "-B" }
  if o.port then
    args[#args + 1] = "-h" .. shell_quote(o.host or "127.0.0.1")
    args[#args + 1] = "-P" .. o.port
  else
    args[#args + 1] = "-S" .. shell_quote(o.socket)
  end
  args[#args + 1] = "-u" .. shell_quote(o.user)
  if o.password then args[#args + 1] = "-p" .. shell_quote(o.password) end
  args[#args + 1] = shell_quote(o.database)
  args[#args + 1] = "-e " .. shell_quote(sql)
  return table.concat(args, " ")
end

local function wait_until(fn, limit, step)
  local deadline = core.monotime() + (limit or 10)
  while core.monotime() < deadline do
    if fn() then return true end
    os.execute("sleep " .. (step or 0.05))
  end
  return false
end

-- A TCP port on 127.0.0.1 with nothing listening on it.
local function closed_port()
  local ok, socket = pcall(require, "socket")
  if ok then
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    return tonumber(port)
  end
  return 1
end

describe("core errors", function()
  local conn

  setup(function()
    conn = db.connect()
    conn:execute("SET FOREIGN_KEY_CHECKS = 0")
    conn:execute("DROP TABLE IF EXISTS err_child")
    conn:execute("SET FOREIGN_KEY_CHECKS = 1")
    db.recreate(conn, "err_parent", "id INT PRIMARY KEY")
    db.recreate(conn, "err_child",
      "id INT PRIMARY KEY, parent_id INT NOT NULL, " ..
      "CONSTRAINT fk_err_child FOREIGN KEY (parent_id) REFERENCES err_parent (id)")
    db.recreate(conn, "err_things",
      "id INT PRIMARY KEY, name VARCHAR(5) NOT NULL DEFAULT 'x', " ..
      "secret VARCHAR(100), tiny TINYINT, at DATETIME, " ..
      "qty INT, CONSTRAINT qty_positive CHECK (qty > 0)")
    db.recreate(conn, "err_locks", "id INT PRIMARY KEY, v INT")
    conn:execute("INSERT INTO err_locks VALUES (1, 0), (2, 0)")
  end)

  teardown(function()
    if conn and not conn:is_closed() then
      conn:execute("DROP TABLE IF EXISTS err_child, err_parent, err_things, err_locks, err_heavy")
      conn:close()
    end
  end)

  after_each(function()
    if not conn:is_closed() then pcall(conn.rollback, conn) end
  end)

  before_each(function()
    conn:execute("DELETE FROM err_child")
    conn:execute("DELETE FROM err_parent")
    conn:execute("DELETE FROM err_things")
  end)

  describe("IntegrityError", function()
    it("duplicate key is 1062 with sqlstate 23000", function()
      conn:execute("INSERT INTO err_things (id) VALUES (?)", 1)
      local err = db.error_of(conn.execute, conn, "INSERT INTO err_things (id) VALUES (?)", 1)
      assert_kind(err, "IntegrityError", 1062)
      assert.are.equal("23000", err.sqlstate)
      assert.truthy(err.message:find("Duplicate", 1, true))
      assert_usable(conn)
      assert.are.equal(1, #conn:execute("SELECT id FROM err_things").rows)
    end)

    it("a child row without its parent is 1452", function()
      local err = db.error_of(conn.execute, conn,
        "INSERT INTO err_child (id, parent_id) VALUES (?, ?)", 1, 42)
      assert_kind(err, "IntegrityError", 1452)
      assert.are.equal("23000", err.sqlstate)
      assert_usable(conn)
    end)

    it("deleting a referenced parent is 1451", function()
      conn:execute("INSERT INTO err_parent (id) VALUES (?)", 7)
      conn:execute("INSERT INTO err_child (id, parent_id) VALUES (?, ?)", 1, 7)
      local err = db.error_of(conn.execute, conn, "DELETE FROM err_parent WHERE id = ?", 7)
      assert_kind(err, "IntegrityError", 1451)
      assert_usable(conn)
      assert.are.equal(1, #conn:execute("SELECT id FROM err_parent").rows)
    end)

    it("NULL into a NOT NULL column is 1048", function()
      local err = db.error_of(conn.execute, conn,
        "INSERT INTO err_things (id, name) VALUES (?, ?)", 1, nil)
      assert_kind(err, "IntegrityError", 1048)
      assert_usable(conn)
    end)

    it("a failed CHECK constraint is 4025 on MariaDB (3819 on MySQL)", function()
      local err = db.error_of(conn.execute, conn,
        "INSERT INTO err_things (id, qty) VALUES (?, ?)", 1, -5)
      local flavor = conn:server().flavor
      assert_kind(err, "IntegrityError", flavor == "mariadb" and 4025 or 3819)
      assert.truthy(err.message:find("qty_positive", 1, true), err.message)
      assert_usable(conn)
      assert.are.equal(0, #conn:execute("SELECT id FROM err_things").rows)
    end)
  end)

  describe("DataError", function()
    it("a string too long for its column is 1406", function()
      local err = db.error_of(conn.execute, conn,
        "INSERT INTO err_things (id, name) VALUES (?, ?)", 1, "far too long")
      assert_kind(err, "DataError", 1406)
      assert.truthy(err.message:find("name", 1, true), err.message)
      assert_usable(conn)
    end)

    it("an out of range integer is 1264", function()
      local err = db.error_of(conn.execute, conn,
        "INSERT INTO err_things (id, tiny) VALUES (?, ?)", 1, 1000)
      assert_kind(err, "DataError", 1264)
      assert.are.equal("22003", err.sqlstate)
      assert_usable(conn)
    end)

    it("an impossible datetime is 1292", function()
      local err = db.error_of(conn.execute, conn,
        "INSERT INTO err_things (id, at) VALUES (?, ?)", 1, "2024-13-45 99:00:00")
      assert_kind(err, "DataError", 1292)
      assert_usable(conn)
    end)

    it("a NaN parameter is refused before reaching the server", function()
      local err = db.error_of(conn.execute, conn, "SELECT ? AS v", 0 / 0)
      assert_kind(err, "DataError")
      assert.truthy(err.message:find("NaN", 1, true), err.message)
      assert_usable(conn)
    end)
  end)

  describe("QueryError", function()
    it("a syntax error is 1064 and carries the statement", function()
      local err = db.error_of(conn.execute, conn, "SELEKT 1")
      assert_kind(err, "QueryError", 1064)
      assert.are.equal("42000", err.sqlstate)
      assert.are.equal("SELEKT 1", err.sql)
      assert_usable(conn)
    end)

    it("an unknown table is 1146", function()
      local err = db.error_of(conn.execute, conn, "SELECT * FROM err_no_such_table")
      assert_kind(err, "QueryError", 1146)
      assert.are.equal("42S02", err.sqlstate)
      assert_usable(conn)
    end)

    it("an unknown column is 1054", function()
      local err = db.error_of(conn.execute, conn, "SELECT no_such_column FROM err_things WHERE id = ?", 1)
      assert_kind(err, "QueryError", 1054)
      assert.are.equal("42S22", err.sqlstate)
      assert_usable(conn)
    end)

    it("too few or too many parameters raise a clear error", function()
      local err = db.error_of(conn.execute, conn, "SELECT ? AS a, ? AS b", 1)
      assert_kind(err, "QueryError")
      assert.truthy(err.message:find("2 placeholder", 1, true), err.message)
      assert.truthy(err.message:find("1 value", 1, true), err.message)
      err = db.error_of(conn.execute, conn, "SELECT ? AS a", 1, 2)
      assert_kind(err, "QueryError")
      assert.truthy(err.message:find("1 placeholder", 1, true), err.message)
      assert.truthy(err.message:find("2 value", 1, true), err.message)
      -- the statement was not run with a missing value
      assert.are.same({ a = 1, b = 2 }, conn:execute("SELECT ? AS a, ? AS b", 1, 2).rows[1])
      assert_usable(conn)
    end)

    it("an error while streaming with each() names the server's error", function()
      local err = db.error_of(function()
        for _ in conn:each("SELEKT ?", 1) do end
      end)
      assert_kind(err, "QueryError", 1064)
      assert_usable(conn)
    end)
  end)

  describe("error objects", function()
    it("have kind, code, sqlstate, message and sql", function()
      local err = db.error_of(conn.execute, conn, "SELECT * FROM err_no_such_table WHERE id = ?", 1)
      assert.are.equal("QueryError", err.kind)
      assert.are.equal(1146, err.code)
      assert.are.equal("42S02", err.sqlstate)
      assert.truthy(err.message:find("err_no_such_table", 1, true))
      assert.are.equal("SELECT * FROM err_no_such_table WHERE id = ?", err.sql)
      assert.are.equal("QueryError 1146 (42S02): " .. err.message, tostring(err))
    end)

    it("never carry a parameter value", function()
      local sql = "INSERT INTO err_things (id, secret, name) VALUES (?, ?, ?)"
      local err = db.error_of(conn.execute, conn, sql, 1, SECRET, "much too long for five")
      assert_kind(err, "DataError", 1406)
      assert.are.equal(sql, err.sql) -- placeholders only
      assert.is_nil(tostring(err):find(SECRET, 1, true))
      assert.is_nil(tostring(err):find("much too long", 1, true))
      for k, v in pairs(err) do
        assert.is_nil(tostring(v):find(SECRET, 1, true), "field " .. tostring(k) .. " leaks the parameter")
      end
      -- same when streaming
      err = db.error_of(function()
        for _ in conn:each("SELECT * FROM err_no_such_table WHERE secret = ?", SECRET) do end
      end)
      for k, v in pairs(err) do
        assert.is_nil(tostring(v):find(SECRET, 1, true), "field " .. tostring(k) .. " leaks the parameter")
      end
      assert_usable(conn)
    end)

    it("are caught by pcall and rethrown intact by error()", function()
      local ok, err = pcall(conn.execute, conn, "SELEKT 1")
      assert.is_false(ok)
      assert.are.equal("QueryError", err.kind)
      local ok2, err2 = pcall(error, err)
      assert.is_false(ok2)
      assert.are.equal(err, err2)
    end)

    it("core.error_kind maps errnos like the raising path", function()
      assert.are.equal("IntegrityError", core.error_kind(1062))
      assert.are.equal("DeadlockError", core.error_kind(1213))
      assert.are.equal("LockTimeoutError", core.error_kind(1205))
      assert.are.equal("QueryTimeout", core.error_kind(1969))
      assert.are.equal("ConnectionLost", core.error_kind(2013))
      assert.are.equal("QueryError", core.error_kind(1064))
    end)
  end)

  describe("locks and timeouts", function()
    it("a lock wait timeout is LockTimeoutError 1205", function()
      local holder = db.connect()
      holder:begin()
      holder:execute("SELECT id FROM err_locks WHERE id = ? FOR UPDATE", 1)
      conn:execute("SET SESSION innodb_lock_wait_timeout = 1")
      local t0 = core.monotime()
      local err = db.error_of(conn.execute, conn, "UPDATE err_locks SET v = v + 1 WHERE id = ?", 1)
      local elapsed = core.monotime() - t0
      holder:rollback()
      holder:close()
      conn:execute("SET SESSION innodb_lock_wait_timeout = DEFAULT")
      assert_kind(err, "LockTimeoutError", 1205)
      assert.is_true(elapsed >= 0.9 and elapsed < 5, "waited " .. elapsed .. " s")
      assert_usable(conn)
    end)

    it("a real deadlock between two sessions is DeadlockError 1213", function()
      -- The other participant is a separate mariadb client process: it makes
      -- its transaction heavier (many undo records) so InnoDB picks ours,
      -- the lighter one, as the victim.
      db.recreate(conn, "err_heavy", "id INT PRIMARY KEY")
      conn:begin()
      conn:execute("SELECT id FROM err_locks WHERE id = 1 FOR UPDATE")
      local out = spawn(cli(
        "SET SESSION innodb_lock_wait_timeout = 20; START TRANSACTION; " ..
        "INSERT INTO err_heavy SELECT seq FROM seq_1_to_2000; " ..
        "SELECT id FROM err_locks WHERE id = 2 FOR UPDATE; " ..
        "SELECT CONCAT('got-', id) FROM err_locks WHERE id = 1 FOR UPDATE; ROLLBACK;"))
      finally(function() os.remove(out) end)
      local monitor = db.connect()
      -- wait until the other session holds row 2 and waits for our row 1
      local waiting = wait_until(function()
        local r = monitor:execute(
          "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")
        return r.rows[1].n > 0
      end, 20, 0.25) -- InnoDB refreshes INNODB_TRX only after 100 ms without readers
      monitor:close()
      assert.is_true(waiting, "the other session never blocked: " .. slurp(out))
      local err = db.error_of(conn.execute, conn, "SELECT id FROM err_locks WHERE id = 2 FOR UPDATE")
      assert_kind(err, "DeadlockError", 1213)
      assert.are.equal("40001", err.sqlstate)
      -- InnoDB rolled our transaction back. Error packets carry no status
      -- flags, so the core learns it from the next statement, which ran
      -- outside the transaction begin() opened: the safety net raises
      -- TransactionError once (rollback() first would have avoided it)
      local ended = db.error_of(conn.execute, conn, "SELECT 1 AS one")
      assert_kind(ended, "TransactionError", 0)
      assert_usable(conn)
      -- its lock on row 1 is gone, so the other session gets it;
      -- in_transaction() agrees with the server
      assert.are.equal(0, conn:execute("SELECT @@in_transaction AS t").rows[1].t)
      assert.is_false(conn:in_transaction())
      assert.is_true(wait_until(function() return slurp(out):find("got-1", 1, true) end, 20),
        "the other session did not get the lock: " .. slurp(out))
    end)

    it("max_statement_time is QueryTimeout 1969", function()
      local t0 = core.monotime()
      local err = db.error_of(conn.execute, conn,
        "SET STATEMENT max_statement_time = 0.5 FOR " ..
        "SELECT COUNT(*) FROM seq_1_to_100000 a, seq_1_to_100000 b")
      local elapsed = core.monotime() - t0
      assert_kind(err, "QueryTimeout", 1969)
      assert.truthy(err.message:find("max_statement_time", 1, true), err.message)
      assert.is_true(elapsed < 5, "took " .. elapsed .. " s")
      assert_usable(conn)
    end)

    it("an interrupted SLEEP under max_statement_time is QueryTimeout too", function()
      local err = db.error_of(conn.execute, conn,
        "SET STATEMENT max_statement_time = 0.3 FOR SELECT SLEEP(3) AS s")
      assert_kind(err, "QueryTimeout", 1969)
      assert_usable(conn)
    end)
  end)

  describe("ConnectionLost", function()
    it("is raised by the next execute after KILL from another session", function()
      local victim = db.connect()
      local killer = db.connect()
      killer:execute("KILL " .. victim:thread_id())
      killer:close()
      local err = db.error_of(victim.execute, victim, "SELECT 1")
      assert_kind(err, "ConnectionLost")
      local known = { [2006] = true, [2013] = true, [4031] = true, [1927] = true }
      assert.is_true(known[err.code], "unexpected code " .. tostring(err.code))
      assert.are.equal("SELECT 1", err.sql)
      -- still lost, still no crash
      assert_kind(db.error_of(victim.execute, victim, "SELECT 1"), "ConnectionLost")
      local alive, perr = victim:ping()
      assert.is_false(alive)
      assert.are.equal("ConnectionLost", perr.kind)
      victim:close()
      assert_usable(conn)
    end)
  end)

  describe("ConnectionError", function()
    it("wrong password is 1045", function()
      local err = db.error_of(core.connect, db.options { password = "definitely-wrong" })
      assert_kind(err, "ConnectionError", 1045)
      assert.are.equal("28000", err.sqlstate)
      assert.is_nil(tostring(err):find("definitely-wrong", 1, true))
    end)

    it("a closed port is 2002/2003", function()
      local err = db.error_of(core.connect,
        db.options { host = "127.0.0.1", port = closed_port(), connect_timeout = 5 })
      assert_kind(err, "ConnectionError")
      assert.is_true(err.code == 2002 or err.code == 2003, tostring(err))
    end)

    it("an unknown database is a ConnectionError", function()
      local err = db.error_of(core.connect, db.options { database = "err_no_such_db" })
      assert_kind(err, "ConnectionError", 1049)
    end)
  end)

  describe("ConfigError", function()
    it("an unknown option is named and the accepted ones listed", function()
      local err = db.error_of(core.connect, db.options { pasword = "x" })
      assert_kind(err, "ConfigError")
      assert.truthy(err.message:find("'pasword'", 1, true), err.message)
      for _, name in ipairs { "host", "port", "password", "ssl", "read_timeout", "statement_cache_size" } do
        assert.truthy(err.message:find(name, 1, true), name .. " not listed: " .. err.message)
      end
    end)

    it("an unknown ssl option is named", function()
      local err = db.error_of(core.connect, db.options { ssl = { mode = "required", cafile = "x" } })
      assert_kind(err, "ConfigError")
      assert.truthy(err.message:find("'cafile'", 1, true), err.message)
      assert.truthy(err.message:find("capath", 1, true), err.message)
    end)

    local wrong = {
      { "port", "not-a-port" },
      { "port", 70000 },
      { "port", 3306.5 },
      { "host", 127 },
      { "user", true },
      { "read_timeout", "5" },
      { "connect_timeout", -1 },
      { "write_timeout", 0 },
      { "autocommit", "yes" },
      { "ssl", "required" },
      { "statement_cache_size", -1 },
      { "decimal", "float" },
      { "charset", "utf8mb4; DROP TABLE x" },
    }
    for _, case in ipairs(wrong) do
      it(("a wrong value for %s (%s) names the option"):format(case[1], tostring(case[2])), function()
        local err = db.error_of(core.connect, db.options { [case[1]] = case[2] })
        assert_kind(err, "ConfigError")
        assert.truthy(err.message:find(case[1], 1, true), err.message)
      end)
    end

    it("a bad ssl mode lists the valid modes", function()
      local err = db.error_of(core.connect, db.options { ssl = { mode = "sometimes" } })
      assert_kind(err, "ConfigError")
      assert.truthy(err.message:find("sometimes", 1, true), err.message)
      assert.truthy(err.message:find("verify_identity", 1, true), err.message)
    end)

    it("connect without an options table is rejected", function()
      assert.has_error(function() core.connect("mysql://x") end)
    end)
  end)
end)

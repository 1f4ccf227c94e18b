-- Integrity of db:transaction (issue 12, design §8 "One transaction state"):
-- undo actions after a rollback, doomed transactions (a real deadlock with a
-- second session in another process), statements that commit implicitly,
-- coroutines closed or dropped inside a transaction, streams that fail.
local ar = require("activerecord")
local support = require("support.db")
local core_connect = require("activerecord.backend.mysql.core").connect

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

describe("integrity: undo actions after a rollback", function()
  local db
  local TABLE = "integ_undo"

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 } })
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY) ENGINE=InnoDB")
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:close()
  end)

  before_each(function() db:execute("DELETE FROM " .. TABLE) end)

  it("outside a transaction registers nothing and returns false", function()
    local ran = false
    assert.is_false(db:_track_undo(function() ran = true end))
    pcall(db.transaction, db, function() error("x") end) -- a later rollback runs nothing of it
    assert.is_false(ran)
  end)

  it("runs the actions of a rolled-back transaction once, newest first; commit drops them", function()
    local log = {}
    local err = error_of(db.transaction, db, function(tx)
      assert.is_true(tx:_track_undo(function() log[#log + 1] = "a" end))
      tx:_track_undo(function() error("undo failure is reported, not fatal") end)
      tx:_track_undo(function() log[#log + 1] = "c" end)
      error("boom")
    end)
    assert.matches("boom", tostring(err))
    assert.are.same({ "c", "a" }, log)
    log = {}
    db:transaction(function(tx) tx:_track_undo(function() log[#log + 1] = "x" end) end)
    assert.are.same({}, log)
  end)

  it("a failed savepoint runs its own actions and those released into it, not the parent's", function()
    local log = {}
    local function mark(s) return function() log[#log + 1] = s end end
    db:transaction(function(tx)
      tx:_track_undo(mark("outer"))
      local ok = pcall(tx.transaction, tx, function()
        tx:_track_undo(mark("inner1"))
        tx:transaction(function() tx:_track_undo(mark("released")) end) -- released into inner
        tx:_track_undo(mark("inner2"))
        error("undo the inner part")
      end)
      assert.is_false(ok)
      assert.are.same({ "inner2", "released", "inner1" }, log)
      tx:transaction(function() tx:_track_undo(mark("kept")) end)
    end)
    -- the outer commit succeeded: nothing more ran
    assert.are.same({ "inner2", "released", "inner1" }, log)
  end)

  it("a released savepoint's actions run when the outer block fails", function()
    local log = {}
    error_of(db.transaction, db, function(tx)
      tx:transaction(function() tx:_track_undo(function() log[#log + 1] = "inner" end) end)
      tx:_track_undo(function() log[#log + 1] = "outer" end)
      error("fail outer")
    end)
    assert.are.same({ "outer", "inner" }, log)
  end)

  it("each failed attempt under retries runs its own actions", function()
    local attempts, undone = 0, 0
    db:transaction(function(tx)
      attempts = attempts + 1
      tx:execute("INSERT INTO " .. TABLE .. " (id) VALUES (1)")
      tx:_track_undo(function() undone = undone + 1 end)
      if attempts < 3 then
        ar.errors.raise("DeadlockError", "simulated deadlock for the retry path")
      end
    end, { retries = 3 })
    assert.are.equal(3, attempts)
    assert.are.equal(2, undone)
    assert.are.equal(1, #db:query("SELECT id FROM " .. TABLE))
  end)
end)

-- The process running spec/integrity/lock_holder.lua: { pipe, pid }.
local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function spawn_holder(accounts, heavy)
  local lua = os.getenv("AR_LUA") or "lua5.4"
  -- `exec` keeps the shell's pid, printed first, so teardown can kill it
  local cmd = ("LUA_PATH=%s LUA_CPATH=%s; export LUA_PATH LUA_CPATH; echo $$; exec %s %s %s %s 2>&1")
    :format(shell_quote(package.path), shell_quote(package.cpath), lua,
      shell_quote("spec/integrity/lock_holder.lua"), shell_quote(accounts), shell_quote(heavy))
  local pipe = assert(io.popen(cmd, "r"))
  local holder = { pipe = pipe, pid = math.tointeger(tonumber(pipe:read("l"))) }
  local line = pipe:read("l")
  assert(line == "holding", "the other session did not take its locks: " .. tostring(line))
  return holder
end

-- Waits for the holder to end (its lock waits are bounded); its last line.
local function finish_holder(holder)
  local last
  for line in holder.pipe:lines() do last = line end
  holder.pipe:close()
  holder.done = true
  return last
end

local function kill_holder(holder)
  if holder and not holder.done then
    if holder.pid then os.execute("kill -9 " .. holder.pid .. " 2>/dev/null") end
    pcall(holder.pipe.close, holder.pipe)
    holder.done = true
  end
end

describe("integrity: a deadlock inside a nested transaction (second session in another process)", function()
  local db, observer, holder
  local ACCOUNTS, HEAVY, FALLBACK = "integ_dl_accounts", "integ_dl_heavy", "integ_dl_fallback"
  local sent = {}

  local function balance(id)
    return observer:execute("SELECT balance FROM " .. ACCOUNTS .. " WHERE id = ?", id).rows[1].balance
  end

  local function fallback_rows()
    return #observer:execute("SELECT id FROM " .. FALLBACK).rows
  end

  setup(function()
    observer = support.connect()
    observer:execute("SET SESSION lock_wait_timeout = 10")
    observer:execute("DROP TABLE IF EXISTS " .. ACCOUNTS .. ", " .. HEAVY .. ", " .. FALLBACK)
    observer:execute("CREATE TABLE " .. ACCOUNTS .. " (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB")
    observer:execute("CREATE TABLE " .. HEAVY .. " (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB")
    observer:execute("CREATE TABLE " .. FALLBACK .. " (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT) ENGINE=InnoDB")
    observer:execute("INSERT INTO " .. HEAVY .. " (id, n) WITH RECURSIVE s (i) AS "
      .. "(SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300) SELECT i, 0 FROM s")
    db = ar.connect(support.options{
      pool = { size = 2 },
      init_command = "SET SESSION innodb_lock_wait_timeout = 10",
      log = function(event) sent[#sent + 1] = event.sql end,
    })
  end)

  teardown(function()
    kill_holder(holder)
    db:close()
    observer:execute("DROP TABLE IF EXISTS " .. ACCOUNTS .. ", " .. HEAVY .. ", " .. FALLBACK)
    observer:close()
  end)

  before_each(function()
    observer:execute("DELETE FROM " .. ACCOUNTS)
    observer:execute("DELETE FROM " .. FALLBACK)
    observer:execute("INSERT INTO " .. ACCOUNTS .. " (id, balance) VALUES (1, 100), (2, 100)")
    for i = #sent, 1, -1 do sent[i] = nil end
  end)

  after_each(function() kill_holder(holder) end)

  -- Debit account 1; credit account 2 in a nested block while the other
  -- process holds account 2 and waits for account 1: a deadlock, and ours
  -- is the lighter transaction. The caller handles the nested failure with
  -- a fallback row, as the issue describes, and returns normally.
  local function transfer(tx, attempts, seen)
    tx:execute("UPDATE " .. ACCOUNTS .. " SET balance = balance - 10 WHERE id = 1")
    if attempts == 1 then holder = spawn_holder(ACCOUNTS, HEAVY) end
    local ok, err = pcall(tx.transaction, tx, function()
      tx:execute("UPDATE " .. ACCOUNTS .. " SET balance = balance + 10 WHERE id = 2")
    end)
    if not ok then
      seen.inner = err
      local fok, ferr = pcall(tx.execute, tx, "INSERT INTO " .. FALLBACK .. " (note) VALUES (?)", "fallback")
      seen.fallback_ok, seen.fallback = fok, ferr
    end
    return "handled"
  end

  it("the outermost block raises DeadlockError although the caller caught it; nothing is kept", function()
    local seen = {}
    local ok, err = pcall(db.transaction, db, function(tx) return transfer(tx, 1, seen) end)
    local last = finish_holder(holder)
    assert.are.equal("done ok", last)
    assert.is_true(ar.errors.is(seen.inner, "DeadlockError"), tostring(seen.inner))
    -- the fallback INSERT was refused, unsent: the transaction was gone
    assert.is_false(seen.fallback_ok)
    assert.is_true(ar.errors.is(seen.fallback, "TransactionError"), tostring(seen.fallback))
    assert.is_true(ar.errors.is(seen.fallback.cause, "DeadlockError"))
    for _, sql in ipairs(sent) do assert.is_nil(sql:find(FALLBACK, 1, true), sql) end
    -- and the transaction did not "succeed"
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err, "DeadlockError"), tostring(err))
    -- neither the lone debit nor the fallback row
    assert.are.equal(100, balance(1))
    assert.are.equal(100, balance(2))
    assert.are.equal(0, fallback_rows())
    -- the backend serves again
    assert.are.equal(1, db:query("SELECT 1 AS x")[1].x)
  end)

  it("with retries = 1 the whole function runs again: the debit applied once, no fallback", function()
    local attempts, seen = 0, {}
    local res = db:transaction(function(tx)
      attempts = attempts + 1
      return transfer(tx, attempts, seen)
    end, { retries = 1 })
    assert.are.equal("done ok", finish_holder(holder))
    assert.are.equal("handled", res)
    assert.are.equal(2, attempts)
    assert.is_true(ar.errors.is(seen.inner, "DeadlockError"), tostring(seen.inner))
    assert.are.equal(90, balance(1))
    assert.are.equal(110, balance(2))
    assert.are.equal(0, fallback_rows())
  end)

  it("a doomed transaction sends nothing more at any level; nested blocks fail", function()
    local seen, errs = {}, {}
    pcall(db.transaction, db, function(tx)
      transfer(tx, 1, seen)
      local n = #sent
      errs.nested = select(2, pcall(tx.transaction, tx, function() tx:query("SELECT 1") end))
      errs.query = select(2, pcall(tx.query, tx, "SELECT 1"))
      errs.each = select(2, pcall(tx.each, tx, "SELECT 1"))
      errs.sent = #sent - n
    end)
    finish_holder(holder)
    for _, k in ipairs({ "nested", "query", "each" }) do
      assert.is_true(ar.errors.is(errs[k], "TransactionError"), k .. ": " .. tostring(errs[k]))
      assert.is_true(ar.errors.is(errs[k].cause, "DeadlockError"), k)
    end
    assert.are.equal(0, errs.sent)
  end)
end)

describe("integrity: statements that commit implicitly are refused inside db:transaction", function()
  local db, observer
  local ROWS, VICTIM = "integ_ic_rows", "integ_ic_victim"
  local sent = {}

  local REFUSED = {
    { "CREATE TABLE integ_ic_new (id INT)", "CREATE TABLE" },
    { "CREATE OR REPLACE VIEW integ_ic_view AS SELECT 1", "CREATE VIEW" },
    { "create index integ_ic_i on integ_ic_rows (id)", "CREATE INDEX" },
    { "ALTER TABLE integ_ic_rows ADD COLUMN w INT", "ALTER TABLE" },
    { "DROP TABLE integ_ic_victim", "DROP TABLE" },
    { "RENAME TABLE integ_ic_victim TO integ_ic_renamed", "RENAME TABLE" },
    { "TRUNCATE TABLE integ_ic_rows", "TRUNCATE TABLE" },
    { "truncate integ_ic_rows", "TRUNCATE" },
    { "COMMIT", "COMMIT" },
    { "commit work", "COMMIT WORK" },
    { "ROLLBACK", "ROLLBACK" },
    { "BEGIN", "BEGIN" },
    { "START TRANSACTION", "START TRANSACTION" },
    { "LOCK TABLES integ_ic_rows WRITE", "LOCK TABLES" },
    { "UNLOCK TABLES", "UNLOCK TABLES" },
    { "SET autocommit = 1", "SET autocommit" },
    { "SET @@session.autocommit=1", "SET autocommit" },
    { "SET SESSION sql_mode = DEFAULT, AUTOCOMMIT := 0", "SET autocommit" },
    { "GRANT SELECT ON integ_ic_rows TO 'nobody'@'localhost'", "GRANT" },
    { "ANALYZE TABLE integ_ic_rows", "ANALYZE TABLE" },
    { "OPTIMIZE TABLE integ_ic_rows", "OPTIMIZE TABLE" },
    { "REPAIR TABLE integ_ic_rows", "REPAIR TABLE" },
    { "CHECK TABLE integ_ic_rows", "CHECK TABLE" },
    { "FLUSH TABLES", "FLUSH TABLES" },
    { "XA START 'integ'", "XA START" },
    { "  /* why */ -- a note\n # another\n DROP TABLE integ_ic_victim", "DROP TABLE" },
    { "/*!40101 DROP TABLE integ_ic_victim */", "DROP TABLE" },
    { "SET STATEMENT max_statement_time = 10 FOR ALTER TABLE integ_ic_rows ADD COLUMN w INT", "ALTER TABLE" },
  }

  local ALLOWED = {
    "CREATE TEMPORARY TABLE integ_ic_tmp (id INT)",
    "INSERT INTO integ_ic_tmp (id) VALUES (1)",
    "DROP TEMPORARY TABLE integ_ic_tmp",
    "SAVEPOINT integ_sp",
    "INSERT INTO integ_ic_rows (id) VALUES (3)",
    "ROLLBACK TO SAVEPOINT integ_sp",
    "ROLLBACK WORK TO integ_sp",
    "SET @autocommit = 1",
    "SET @note = 'autocommit = 1'",
    "SELECT 'DROP TABLE x' AS s",
    "-- COMMIT\nSELECT 1",
  }

  local function ids()
    local out = {}
    for i, r in ipairs(observer:execute("SELECT id FROM " .. ROWS .. " ORDER BY id").rows) do out[i] = r.id end
    return out
  end

  local function table_exists(name)
    return #observer:execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
      .. "AND TABLE_NAME = ?", name).rows == 1
  end

  setup(function()
    observer = support.connect()
    observer:execute("SET SESSION lock_wait_timeout = 10")
    observer:execute("DROP TABLE IF EXISTS " .. ROWS .. ", " .. VICTIM .. ", integ_ic_new, integ_ic_renamed")
    observer:execute("DROP VIEW IF EXISTS integ_ic_view")
    observer:execute("CREATE TABLE " .. ROWS .. " (id INT PRIMARY KEY) ENGINE=InnoDB")
    observer:execute("CREATE TABLE " .. VICTIM .. " (id INT PRIMARY KEY) ENGINE=InnoDB")
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(event) sent[#sent + 1] = event.sql end })
  end)

  teardown(function()
    db:close()
    observer:execute("DROP TABLE IF EXISTS " .. ROWS .. ", " .. VICTIM .. ", integ_ic_new, integ_ic_renamed")
    observer:execute("DROP VIEW IF EXISTS integ_ic_view")
    observer:close()
  end)

  before_each(function()
    observer:execute("DELETE FROM " .. ROWS)
    for i = #sent, 1, -1 do sent[i] = nil end
  end)

  it("each form raises TransactionError naming the statement, sends nothing, and the work commits", function()
    local errs = {}
    db:transaction(function(tx)
      tx:execute("INSERT INTO " .. ROWS .. " (id) VALUES (1)")
      for i, case in ipairs(REFUSED) do
        local ok, err = pcall(tx.execute, tx, case[1])
        errs[i] = ok and "sent" or err
      end
      local ok, err = pcall(tx.each, tx, "TRUNCATE TABLE " .. ROWS)
      errs[#REFUSED + 1] = ok and "sent" or err
      tx:execute("INSERT INTO " .. ROWS .. " (id) VALUES (2)")
    end)
    for i, err in ipairs(errs) do
      local case = REFUSED[i] or { "each: TRUNCATE TABLE", "TRUNCATE TABLE" }
      assert.is_true(ar.errors.is(err, "TransactionError"), case[1] .. ": " .. tostring(err))
      assert.matches(case[2], err.message, 1, true)
      assert.are.equal(case[2], err.statement)
    end
    for _, sql in ipairs(sent) do
      assert.is_truthy(sql == "BEGIN" or sql == "COMMIT" or sql:find("^INSERT INTO " .. ROWS), sql)
    end
    assert.are.same({ 1, 2 }, ids())
    assert.is_true(table_exists(VICTIM))
    assert.is_false(table_exists("integ_ic_new"))
    assert.are.equal(0, #observer:execute("SELECT 1 FROM information_schema.COLUMNS WHERE "
      .. "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'w'", ROWS).rows)
  end)

  it("refuses them again from the memo (same SQL text, second transaction)", function()
    local err
    db:transaction(function(tx)
      err = select(2, pcall(tx.execute, tx, REFUSED[1][1]))
    end)
    assert.is_true(ar.errors.is(err, "TransactionError"), tostring(err))
    assert.are.same({ "BEGIN", "COMMIT" }, sent)
  end)

  it("lets through what does not end the transaction; a rollback then undoes it all", function()
    local err = error_of(db.transaction, db, function(tx)
      tx:execute("INSERT INTO " .. ROWS .. " (id) VALUES (1)")
      for _, sql in ipairs(ALLOWED) do tx:execute(sql) end
      error("undo everything")
    end)
    assert.matches("undo everything", tostring(err))
    assert.are.same({}, ids())
    assert.are.equal(#ALLOWED + 3, #sent) -- BEGIN, INSERT, the allowed ones, ROLLBACK
  end)

  it("outside a transaction the same statements run as usual", function()
    db:execute("CREATE TABLE integ_ic_new (id INT)")
    assert.is_true(table_exists("integ_ic_new"))
    db:execute("DROP TABLE integ_ic_new")
  end)
end)

-- A lock wait timeout ends the transaction only when the server has
-- innodb_rollback_on_timeout ON (read once per backend); OFF (the default)
-- undoes only the statement, and the transaction goes on.
local function lock_timeout_case(db, holder, table_name)
  holder:begin()
  holder:execute("SELECT id FROM " .. table_name .. " WHERE id = 2 FOR UPDATE")
  local seen = {}
  local ok, err = pcall(db.transaction, db, function(tx)
    tx:execute("INSERT INTO " .. table_name .. " (id) VALUES (10)")
    seen.timeout = select(2, pcall(tx.execute, tx, "UPDATE " .. table_name .. " SET id = 3 WHERE id = 2"))
    seen.later_ok, seen.later = pcall(tx.execute, tx, "INSERT INTO " .. table_name .. " (id) VALUES (11)")
    return "handled"
  end)
  holder:rollback()
  local ids = {}
  for i, r in ipairs(holder:execute("SELECT id FROM " .. table_name .. " ORDER BY id").rows) do ids[i] = r.id end
  return ok, err, seen, ids
end

describe("integrity: a lock wait timeout inside a transaction", function()
  local TABLE = "integ_lock_timeout"

  local function prepare(conn)
    conn:execute("DROP TABLE IF EXISTS " .. TABLE)
    conn:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY) ENGINE=InnoDB")
    conn:execute("INSERT INTO " .. TABLE .. " (id) VALUES (2)")
  end

  it("with innodb_rollback_on_timeout OFF undoes only the statement; the work commits", function()
    local holder = support.connect()
    prepare(holder)
    assert.are.equal(0, holder:execute("SELECT @@innodb_rollback_on_timeout AS v").rows[1].v)
    local db = ar.connect(support.options{ pool = { size = 1 },
      init_command = "SET SESSION innodb_lock_wait_timeout = 1" })
    local ok, res, seen, ids = lock_timeout_case(db, holder, TABLE)
    assert.is_true(ok, tostring(res))
    assert.is_true(ar.errors.is(seen.timeout, "LockTimeoutError"), tostring(seen.timeout))
    assert.is_true(seen.later_ok, tostring(seen.later))
    assert.are.same({ 2, 10, 11 }, ids)
    db:close()
    holder:execute("DROP TABLE " .. TABLE)
    holder:close()
  end)

  it("with innodb_rollback_on_timeout ON dooms the transaction (private server) #slow", function()
    local H = require("reliability.helpers")
    local server = H.start_server()
    local ok, err = pcall(function()
      -- the option is read-only: set it in the server's my.cnf and restart
      local path = server.dir .. "/my.cnf"
      local f = assert(io.open(path))
      local cnf = f:read("a")
      f:close()
      f = assert(io.open(path, "w"))
      f:write((cnf:gsub("%[client%]", "innodb_rollback_on_timeout=1\n[client]", 1)))
      f:close()
      server:restart()
      local holder = core_connect(server:options())
      prepare(holder)
      assert.are.equal(1, holder:execute("SELECT @@innodb_rollback_on_timeout AS v").rows[1].v)
      local db = ar.connect(server:options{ pool = { size = 1 },
        init_command = "SET SESSION innodb_lock_wait_timeout = 1" })
      local tok, res, seen, ids = lock_timeout_case(db, holder, TABLE)
      assert.is_true(ar.errors.is(seen.timeout, "LockTimeoutError"), tostring(seen.timeout))
      -- the server ended the transaction: the next INSERT is refused, unsent
      assert.is_false(seen.later_ok)
      assert.is_true(ar.errors.is(seen.later, "TransactionError"), tostring(seen.later))
      assert.is_false(tok)
      assert.is_true(ar.errors.is(res, "LockTimeoutError"), tostring(res))
      assert.are.same({ 2 }, ids) -- neither row 10 (rolled back) nor 11 (autocommitted before)
      db:close()
      holder:close()
    end)
    server:destroy()
    assert(ok, err)
  end)
end)

describe("integrity: a statement that left the transaction on the server", function()
  it("dooms it: the core's TransactionError reaches the outermost block, later work is unsent", function()
    local sent = {}
    local db = ar.connect(support.options{ pool = { size = 1 },
      log = function(event) sent[#sent + 1] = event.sql end })
    db:execute("DROP TABLE IF EXISTS integ_left")
    db:execute("DROP PROCEDURE IF EXISTS integ_commits")
    db:execute("CREATE TABLE integ_left (id INT PRIMARY KEY) ENGINE=InnoDB")
    -- a procedure that commits: not recognisable from the CALL's text
    db:execute("CREATE PROCEDURE integ_commits() BEGIN COMMIT; END")
    local seen = {}
    local ok, err = pcall(db.transaction, db, function(tx)
      tx:execute("INSERT INTO integ_left (id) VALUES (1)")
      seen.call = select(2, pcall(tx.execute, tx, "CALL integ_commits()"))
      seen.later_ok, seen.later = pcall(tx.execute, tx, "INSERT INTO integ_left (id) VALUES (2)")
      return "handled"
    end)
    assert.is_true(ar.errors.is(seen.call, "TransactionError"), tostring(seen.call))
    assert.is_false(seen.later_ok)
    assert.is_true(ar.errors.is(seen.later, "TransactionError"), tostring(seen.later))
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err, "TransactionError"), tostring(err))
    for _, sql in ipairs(sent) do assert.is_nil(sql:find("VALUES (2)", 1, true), sql) end
    -- row 1 was committed by the procedure (nothing can take that back);
    -- row 2 never reached the server
    local rows = db:query("SELECT id FROM integ_left ORDER BY id")
    assert.are.same({ { id = 1 } }, rows)
    db:execute("DROP PROCEDURE integ_commits")
    db:execute("DROP TABLE integ_left")
    db:close()
  end)
end)

-- Integrity of the C core (issue 12): string options kept alive while used,
-- client character sets that cannot swallow a quote, max_prepared_stmt_count,
-- the in-transaction safety net, and conversion errors that end the result.
local ar = require("activerecord")
local support = require("support.db")
local core = support.core

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

describe("integrity: C core", function()
  describe("string options produced by __index", function()
    -- Every lookup first collects garbage, then allocates strings of every
    -- small size: a string handed out earlier that the core let go of is freed
    -- and its memory overwritten at once (valgrind reports the read; without
    -- valgrind the core would read '#' bytes). The real values are built from
    -- reversed ones, so no other reference keeps them alive (short strings
    -- equal to a literal of this file would be: the literal keeps them).
    local function hostile(values)
      local reversed = {}
      for k, v in pairs(values) do
        reversed[k] = type(v) == "string" and v:reverse() or v
      end
      return setmetatable({}, { __index = function(_, k)
        collectgarbage()
        local junk = {}
        for n = 1, 80 do
          for j = 1, 12 do junk[#junk + 1] = string.rep("#", n - 1) .. string.char(64 + j) end
        end
        local v = reversed[k]
        if type(v) == "string" then return v:reverse() end
        return v
      end })
    end

    it("connect reads host, user, password, charset and session options correctly", function()
      local conn = core.connect(hostile(support.options{
        charset = ("UTF8MB4"):lower(), time_zone = "+03:00", sql_mode = "ANSI_QUOTES,STRICT_ALL_TABLES",
        init_command = "SET @ar_init = CONCAT('built by ', 'an __index function')",
      }))
      local row = conn:execute("SELECT @@session.time_zone AS tz, @@session.sql_mode AS mode, "
        .. "@ar_init AS init, @@character_set_client AS cs").rows[1]
      assert.are.equal("+03:00", row.tz)
      assert.are.equal("ANSI_QUOTES,STRICT_ALL_TABLES", row.mode)
      assert.are.equal("built by an __index function", row.init)
      assert.are.equal("utf8mb4", row.cs)
      conn:close()
    end)

    it("the isolation level produced by __index is the one applied", function()
      local a, b = support.connect(), support.connect()
      support.recreate(a, "integrity_iso", "id INT PRIMARY KEY")
      -- built, not a literal: a literal would stay alive in this chunk's constants
      a:begin(hostile{ isolation = ("read committed"):upper(), read_only = false })
      assert.are.equal(0, a:execute("SELECT COUNT(*) AS n FROM integrity_iso").rows[1].n)
      b:execute("INSERT INTO integrity_iso VALUES (1)")
      -- READ COMMITTED sees the other session's commit; REPEATABLE READ would not
      assert.are.equal(1, a:execute("SELECT COUNT(*) AS n FROM integrity_iso").rows[1].n)
      a:rollback()
      b:execute("DROP TABLE integrity_iso")
      a:close()
      b:close()
    end)
  end)

  describe("client character set", function()
    local UNSAFE = { "sjis", "cp932", "big5", "gbk", "gb18030", "SJIS", "ucs2", "utf16", "utf32", "klingon" }

    it("core.connect refuses sets whose characters can end in a quote byte, naming the accepted ones", function()
      for _, cs in ipairs(UNSAFE) do
        local err = error_of(core.connect, support.options{ charset = cs })
        assert.are.equal("ConfigError", err.kind, cs)
        assert.truthy(err.message:find(cs, 1, true), err.message)
        assert.truthy(err.message:find("utf8mb4", 1, true), err.message)
        assert.truthy(err.message:find("latin1", 1, true), err.message)
      end
    end)

    it("ar.connect refuses them too", function()
      for _, cs in ipairs{ "sjis", "big5", "gbk" } do
        local err = error_of(ar.connect, support.options{ charset = cs, pool = { size = 1 } })
        assert.are.equal("ConfigError", err.kind, cs)
        assert.truthy(err.message:find(cs, 1, true), err.message)
      end
    end)

    it("utf8mb4, latin1 and the other safe sets connect", function()
      for _, cs in ipairs{ "utf8mb4", "latin1", "utf8mb3", "ascii", "binary", "cp1251", "euckr", "ujis" } do
        local conn = core.connect(support.options{ charset = cs })
        assert.are.equal(cs, conn:execute("SELECT @@character_set_client AS c").rows[1].c)
        conn:close()
      end
      local db = ar.connect(support.options{ charset = "latin1", pool = { size = 1 } })
      assert.are.equal("latin1", db:query("SELECT @@character_set_client AS c")[1].c)
      db:close()
    end)

    it("an identifier ending in a lead byte cannot drop another table (sjis: 95 60 is one character)", function()
      local raw = support.connect()
      support.recreate(raw, "victim", "id INT PRIMARY KEY")
      -- with sjis accepted, the server reads the bytes 95 60 (the end of ŕ,
      -- then the doubled backtick) as one character, so the identifier ends
      -- at the next backtick and the rest drops victim
      local ok, db = pcall(ar.connect, support.options{ charset = "sjis", pool = { size = 1 } })
      if ok then
        pcall(ar.schema.drop_table, db, "tmp_ŕ`, victim #", { if_exists = true })
        db:close()
      end
      local n = raw:execute("SELECT COUNT(*) AS n FROM information_schema.TABLES "
        .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'victim'").rows[1].n
      raw:execute("DROP TABLE IF EXISTS victim")
      raw:close()
      assert.are.equal(1, n)
      assert.is_false(ok)
    end)
  end)
end)

describe("integrity: C core statements and transactions", function()
  describe("max_prepared_stmt_count (server error 1461)", function()
    local admin, original, restore_stmt

    local function prepared_on_server()
      return tonumber(admin:execute("SELECT VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS "
        .. "WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'").rows[1].v)
    end

    -- prepared before the limit is lowered, so it runs whatever the limit
    local function restore()
      if restore_stmt then restore_stmt:execute(original) end
    end

    setup(function()
      admin = support.connect()
      original = admin:execute("SELECT @@GLOBAL.max_prepared_stmt_count AS m").rows[1].m
      restore_stmt = admin:prepare("SET GLOBAL max_prepared_stmt_count = ?")
    end)

    -- the limit is server-wide: put it back whatever happened
    teardown(function()
      restore()
      if admin then admin:close() end
    end)

    it("a connection whose cache is larger than the limit evicts its oldest statements and goes on", function()
      local conn = support.connect{ statement_cache_size = 64 }
      finally(function()
        restore()
        conn:close()
      end)
      -- room for four more statements on the whole server
      admin:execute("SET GLOBAL max_prepared_stmt_count = " .. (prepared_on_server() + 4))
      for i = 1, 40 do
        -- distinct texts, each with a bound value: prepared, never text
        local row = conn:execute("SELECT ? + " .. i .. " AS v", 1000).rows[1]
        assert.are.equal(1000 + i, row.v)
      end
      assert.is_true(conn:statement_cache().size <= 4)
      -- and the statement that lifts the limit again runs on that connection too
      conn:execute("SET GLOBAL max_prepared_stmt_count = 16382")
      assert.are.equal(16382, admin:execute("SELECT @@GLOBAL.max_prepared_stmt_count AS m").rows[1].m)
    end)

    it("with no room at all: statements without values run as text, with values they raise 1461", function()
      local conn = support.connect{ statement_cache_size = 64 }
      finally(function()
        restore()
        conn:close()
      end)
      conn:execute("SELECT 1 AS warm_up") -- one cached statement to give back
      admin:execute("SET GLOBAL max_prepared_stmt_count = 0")
      assert.are.equal(42, conn:execute("SELECT 41 + 1 AS v").rows[1].v)
      local err = error_of(conn.execute, conn, "SELECT ? + 2 AS v", "secret-value")
      assert.are.equal(1461, err.code)
      assert.are.equal("SELECT ? + 2 AS v", err.sql)
      assert.falsy(tostring(err):find("secret-value", 1, true)) -- values never become SQL text
      -- the connection is still fine, and SET GLOBAL itself works without a prepare
      conn:execute("SET GLOBAL max_prepared_stmt_count = " .. math.tointeger(original))
      assert.are.equal(3, conn:execute("SELECT ? + 2 AS v", 1).rows[1].v)
    end)
  end)

  describe("the in-transaction safety net", function()
    local conn, other

    local function count()
      return other:execute("SELECT COUNT(*) AS n FROM integrity_tx").rows[1].n
    end

    setup(function()
      conn = support.connect()
      other = support.connect()
      support.recreate(conn, "integrity_tx", "id INT PRIMARY KEY")
    end)

    teardown(function()
      other:execute("DROP TABLE IF EXISTS integrity_tx, integrity_tx_ddl")
      other:close()
      conn:close()
    end)

    before_each(function()
      if conn:in_transaction() then conn:rollback() end
      other:execute("DELETE FROM integrity_tx")
      other:execute("DROP TABLE IF EXISTS integrity_tx_ddl")
    end)

    local function assert_ended(err, sql)
      assert.are.equal("TransactionError", err.kind, tostring(err))
      assert.are.equal(sql, err.sql)
      assert.truthy(err.message:find("committed the transaction implicitly", 1, true), err.message)
      assert.is_false(conn:in_transaction())
      conn:begin() -- the core forgot the transaction: a new one opens
      conn:rollback()
    end

    it("DDL after begin raises TransactionError (the server committed what ran before)", function()
      conn:begin()
      conn:execute("INSERT INTO integrity_tx (id) VALUES (?)", 1)
      local sql = "CREATE TABLE integrity_tx_ddl (id INT)"
      assert_ended(error_of(conn.execute, conn, sql), sql)
      assert.are.equal(1, count()) -- committed by the DDL: why it must not pass silently
    end)

    it("COMMIT sent as SQL after begin raises TransactionError", function()
      conn:begin()
      conn:execute("INSERT INTO integrity_tx (id) VALUES (?)", 2)
      assert_ended(error_of(conn.execute, conn, "COMMIT"), "COMMIT")
    end)

    it("LOCK TABLES (text protocol) and DDL through each are caught too", function()
      finally(function() conn:execute("UNLOCK TABLES") end) -- or the other session would wait
      conn:begin()
      assert_ended(error_of(conn.execute, conn, "LOCK TABLES integrity_tx WRITE"), "LOCK TABLES integrity_tx WRITE")
      conn:execute("UNLOCK TABLES")
      conn:begin()
      local sql = "CREATE TABLE integrity_tx_ddl (id INT)"
      assert_ended(error_of(function()
        for _ in conn:each(sql) do end
      end), sql)
    end)

    it("ordinary statements and savepoints keep the transaction; commit and rollback end it quietly", function()
      conn:begin()
      conn:execute("INSERT INTO integrity_tx (id) VALUES (?)", 3)
      conn:savepoint("sp")
      conn:execute("SELECT COUNT(*) AS n FROM integrity_tx")
      for _ in conn:each("SELECT id FROM integrity_tx") do end
      conn:rollback_to("sp")
      conn:release_savepoint("sp")
      conn:commit()
      assert.are.equal(1, count())
      -- without begin, DDL is just DDL
      conn:execute("CREATE TABLE integrity_tx_ddl (id INT)")
      conn:begin()
      conn:rollback()
      conn:execute("DROP TABLE integrity_tx_ddl")
    end)
  end)

  describe("a value that cannot be converted (invalid JSON from another client)", function()
    local conn

    setup(function()
      conn = support.connect()
      support.recreate(conn, "integrity_bad_json", "id INT PRIMARY KEY, doc JSON")
      -- another client writes invalid JSON past the column's json_valid CHECK
      local writer = support.connect()
      writer:execute("SET SESSION check_constraint_checks = 0")
      for i = 1, 50 do
        writer:execute("INSERT INTO integrity_bad_json (id, doc) VALUES (?, ?)", i,
          i == 2 and "{not json" or '{"n": ' .. i .. "}")
      end
      writer:close()
    end)

    teardown(function()
      conn:execute("DROP TABLE IF EXISTS integrity_bad_json")
      conn:close()
    end)

    -- no collection may run in between: the connection must be free because
    -- the core ended the result, not because a finalizer did
    before_each(function() collectgarbage("stop") end)
    after_each(function() collectgarbage("restart") end)

    it("a streaming cursor ends itself, then raises; the next statement runs at once", function()
      local seen = 0
      local err = error_of(function()
        for _ in conn:each("SELECT id, doc FROM integrity_bad_json ORDER BY id") do seen = seen + 1 end
      end)
      assert.are.equal("DataError", err.kind)
      assert.truthy(err.message:find("invalid JSON", 1, true), err.message)
      assert.are.equal(1, seen)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
      assert.are.equal(50, conn:execute("SELECT COUNT(*) AS n FROM integrity_bad_json").rows[1].n)
    end)

    it("a cursor driven by hand (next) ends the same way", function()
      local iter, cursor = conn:each("SELECT id, doc FROM integrity_bad_json ORDER BY id")
      assert.are.equal(1, iter(cursor).id)
      local err = error_of(iter, cursor)
      assert.are.equal("DataError", err.kind)
      assert.is_nil(iter(cursor)) -- ended
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)

    it("a buffered execute raises and leaves the connection usable", function()
      local err = error_of(conn.execute, conn, "SELECT id, doc FROM integrity_bad_json ORDER BY id")
      assert.are.equal("DataError", err.kind)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)
  end)
end)

-- Lifetimes of connections, statements and cursors: close, <close>, __gc,
-- pinning, busy connections, the statement cache and reset().
local db = require("support.db")
local core = db.core

local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

local function wait_until(fn, limit)
  local deadline = core.monotime() + (limit or 5)
  while core.monotime() < deadline do
    if fn() then return true end
    os.execute("sleep 0.05")
  end
  return false
end

-- Is a server thread with this id still there, as seen from `watcher`?
local function thread_alive(watcher, id)
  local r = watcher:execute(
    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ?", id)
  return r.rows[1].n > 0
end

local function session_status(conn, name)
  local r = conn:execute("SHOW SESSION STATUS LIKE '" .. name .. "'")
  return tonumber(r.rows[1].Value)
end

local function assert_closed_error(err)
  assert.is_table(err, tostring(err))
  assert.are.equal("ConnectionError", err.kind, tostring(err))
  assert.truthy(err.message:find("closed", 1, true), err.message)
end

describe("core lifetimes", function()
  local watcher

  setup(function()
    watcher = db.connect()
  end)

  teardown(function()
    if watcher then watcher:close() end
  end)

  describe("a connection", function()
    it("close is idempotent and is_closed tells", function()
      local c = db.connect()
      assert.is_false(c:is_closed())
      c:close()
      assert.is_true(c:is_closed())
      c:close()
      c:close()
      assert.is_true(c:is_closed())
    end)

    it("close ends the server session", function()
      local c = db.connect()
      local id = c:thread_id()
      assert.is_true(thread_alive(watcher, id))
      c:close()
      assert.is_true(wait_until(function() return not thread_alive(watcher, id) end))
    end)

    it("every method of a closed connection raises ConnectionError 'closed'", function()
      local c = db.connect()
      c:close()
      local calls = {
        { "execute", "SELECT 1" },
        { "execute", "SELECT ?", 1 },
        { "each", "SELECT 1" },
        { "prepare", "SELECT 1" },
        { "begin" },
        { "commit" },
        { "rollback" },
        { "savepoint", "sp" },
        { "release_savepoint", "sp" },
        { "rollback_to", "sp" },
        { "in_transaction" },
        { "autocommit", true },
        { "reset" },
        { "server" },
        { "capabilities" },
        { "thread_id" },
        { "ssl_cipher" },
        { "statement_cache" },
      }
      for _, call in ipairs(calls) do
        local name = call[1]
        local err = db.error_of(c[name], c, table.unpack(call, 2))
        assert.are.equal("ConnectionError", err.kind, name)
        assert.truthy(err.message:find("closed", 1, true), name .. ": " .. err.message)
      end
      -- ping answers instead of raising
      local alive, err = c:ping()
      assert.is_false(alive)
      assert_closed_error(err)
    end)

    it("tostring says closed once closed", function()
      local c = db.connect()
      local open = tostring(c)
      assert.truthy(open:find("thread " .. c:thread_id(), 1, true), open)
      c:close()
      assert.truthy(tostring(c):find("closed", 1, true), tostring(c))
    end)

    it("<close> closes it at the end of the scope", function()
      local kept, id
      do
        local c <close> = db.connect()
        kept = c
        id = c:thread_id()
        assert.is_false(c:is_closed())
      end
      assert.is_true(kept:is_closed())
      assert.is_true(wait_until(function() return not thread_alive(watcher, id) end))
    end)

    it("<close> closes it when the scope is left by an error", function()
      local kept
      local ok = pcall(function()
        local c <close> = db.connect()
        kept = c
        error("boom")
      end)
      assert.is_false(ok)
      assert.is_true(kept:is_closed())
    end)

    it("__gc closes an unreferenced connection", function()
      local id
      do
        local c = db.connect()
        id = c:thread_id()
      end
      assert.is_true(thread_alive(watcher, id))
      full_gc()
      assert.is_true(wait_until(function() return not thread_alive(watcher, id) end),
        "thread " .. id .. " still on the server after collectgarbage")
    end)

    it("closing a connection with open statements and cursors does not crash", function()
      local c = db.connect()
      local st = c:prepare("SELECT seq FROM seq_1_to_10 WHERE seq > ?")
      local it, cur = c:each("SELECT seq FROM seq_1_to_100")
      assert.are.equal(1, it(cur).seq)
      c:close()
      local err = db.error_of(it, cur)
      assert.are.equal("ConnectionError", err.kind)
      assert.is_nil(it(cur)) -- the cursor is finished, not crashed
      err = db.error_of(st.execute, st, 1)
      assert.truthy(err.message:find("closed", 1, true), err.message)
      cur:close()
      st:close()
      full_gc()
    end)
  end)

  describe("a prepared statement", function()
    local conn

    before_each(function() conn = db.connect() end)
    after_each(function() if conn then conn:close() end end)

    it("executes with parameters and counts its placeholders", function()
      local st = conn:prepare("SELECT ? + ? AS s")
      assert.are.equal(2, st:param_count())
      assert.are.equal(5, st:execute(2, 3).rows[1].s)
      assert.are.equal(9, st:execute(4, 5).rows[1].s)
      local seen = {}
      for row in st:each(1, 1) do seen[#seen + 1] = row.s end
      assert.are.same({ 2 }, seen)
      st:close()
    end)

    it("keeps its connection alive when every other reference is dropped", function()
      local st, id
      do
        local c = db.connect()
        id = c:thread_id()
        st = c:prepare("SELECT CONNECTION_ID() AS id, ? AS v")
      end
      full_gc()
      assert.are.same({ id = id, v = "still here" }, st:execute("still here").rows[1])
      assert.is_true(thread_alive(watcher, id))
      -- once the statement goes too, so does the connection
      st = nil -- luacheck: ignore (dropped for the collector)
      full_gc()
      assert.is_true(wait_until(function() return not thread_alive(watcher, id) end))
    end)

    it("of a closed connection raises cleanly", function()
      local st = conn:prepare("SELECT 1 AS one")
      conn:close()
      local err = db.error_of(st.execute, st)
      assert.is_table(err)
      assert.truthy(err.kind == "ConnectionError" or err.kind == "QueryError", err.kind)
      assert.truthy(err.message:find("closed", 1, true), err.message)
      assert.is_true(st:is_closed())
      err = db.error_of(st.each, st)
      assert.truthy(err.message:find("closed", 1, true), err.message)
      st:close() -- still fine
      conn = nil
    end)

    it("close is idempotent and a closed statement raises", function()
      local st = conn:prepare("SELECT 1 AS one")
      st:close()
      st:close()
      assert.is_true(st:is_closed())
      assert.truthy(tostring(st):find("closed", 1, true))
      local err = db.error_of(st.execute, st)
      assert.truthy(err.message:find("closed", 1, true), err.message)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)

    it("<close> closes it and the server forgets it", function()
      local kept
      local closes = session_status(conn, "Com_stmt_close")
      do
        local st <close> = conn:prepare("SELECT 1 AS one")
        kept = st
        assert.are.equal(1, st:execute().rows[1].one)
      end
      assert.is_true(kept:is_closed())
      assert.are.equal(closes + 1, session_status(conn, "Com_stmt_close"))
    end)

    it("is closed by __gc when unreferenced", function()
      local closes = session_status(conn, "Com_stmt_close")
      do
        local st = conn:prepare("SELECT 2 AS two")
        st:execute()
      end
      full_gc()
      assert.are.equal(closes + 1, session_status(conn, "Com_stmt_close"))
    end)

    it("that cannot be prepared raises a clear error", function()
      local err = db.error_of(conn.prepare, conn, "SELEKT")
      assert.are.equal(1064, err.code)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)
  end)

  describe("a cursor", function()
    local conn

    before_each(function() conn = db.connect() end)
    after_each(function() if conn then conn:close() end end)

    it("keeps working after the connection reference is dropped", function()
      local it, cur
      local id
      do
        local c = db.connect()
        id = c:thread_id()
        it, cur = c:each("SELECT seq FROM seq_1_to_1000")
      end
      full_gc()
      local n, last = 0, 0
      for row in it, cur do
        n = n + 1
        assert.are.equal(last + 1, row.seq)
        last = row.seq
        if n == 1 then full_gc() end
      end
      assert.are.equal(1000, n)
      it, cur = nil, nil -- luacheck: ignore (dropped for the collector)
      full_gc()
      assert.is_true(wait_until(function() return not thread_alive(watcher, id) end))
    end)

    it("is closed by breaking out of the generic for", function()
      local seen = 0
      for row in conn:each("SELECT seq FROM seq_1_to_100000") do
        seen = seen + 1
        if row.seq == 10 then break end
      end
      assert.are.equal(10, seen)
      -- the connection is free again
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
      assert.is_true(conn:ping())
    end)

    it("is closed when the loop body raises", function()
      local ok = pcall(function()
        for row in conn:each("SELECT seq FROM seq_1_to_100000") do
          if row.seq == 5 then error("stop") end
        end
      end)
      assert.is_false(ok)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)

    it("left open makes the next command raise 'busy' until it is closed", function()
      local it, cur = conn:each("SELECT seq FROM seq_1_to_1000")
      assert.are.equal(1, it(cur).seq)
      assert.truthy(tostring(cur):find("open", 1, true))
      for _, call in ipairs {
        function() return conn:execute("SELECT 1") end,
        function() return conn:execute("SELECT ?", 1) end,
        function() return conn:each("SELECT 1") end,
        function() return conn:prepare("SELECT 1") end,
        function() return conn:begin() end,
        function() return conn:commit() end,
        function() return conn:reset() end,
      } do
        local err = db.error_of(call)
        assert.are.equal("QueryError", err.kind)
        assert.truthy(err.message:find("busy", 1, true), err.message)
      end
      -- the cursor itself is untouched by those refusals
      assert.are.equal(2, it(cur).seq)
      cur:close()
      cur:close() -- idempotent
      assert.truthy(tostring(cur):find("closed", 1, true))
      assert.is_nil(it(cur))
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)

    it("abandoned and collected frees the connection", function()
      do
        local it, cur = conn:each("SELECT seq FROM seq_1_to_1000")
        it(cur)
      end
      full_gc()
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)

    it("read to the end frees the connection by itself", function()
      local n = 0
      local it, cur = conn:each("SELECT seq FROM seq_1_to_10")
      while it(cur) do n = n + 1 end
      assert.are.equal(10, n)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
      cur:close()
    end)
  end)

  describe("the statement cache", function()
    it("keeps at most statement_cache_size statements and closes the evicted ones", function()
      local c <close> = db.connect { statement_cache_size = 3 }
      assert.are.same({ size = 0, capacity = 3 }, c:statement_cache())
      -- a user-held statement sits outside the cache and reads the counters
      local counters <close> = c:prepare(
        "SELECT VARIABLE_NAME AS k, VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS " ..
        "WHERE VARIABLE_NAME IN ('COM_STMT_CLOSE', 'COM_STMT_PREPARE')")
      local function read()
        local t = {}
        for _, row in ipairs(counters:execute().rows) do t[row.k] = tonumber(row.v) end
        return t.COM_STMT_PREPARE, t.COM_STMT_CLOSE
      end
      local p0, c0 = read()
      for i = 1, 5 do
        assert.are.equal(i, c:execute("SELECT ? AS q" .. i, i).rows[1]["q" .. i])
      end
      assert.are.same({ size = 3, capacity = 3 }, c:statement_cache())
      local p1, c1 = read()
      assert.are.equal(5, p1 - p0) -- five prepares (executing the reader prepares nothing)
      assert.are.equal(2, c1 - c0, "the two evicted statements were closed on the server")
      -- cached: q5 runs again without a prepare
      c:execute("SELECT ? AS q5", 5)
      local p2, c2 = read()
      assert.are.equal(0, p2 - p1)
      assert.are.equal(0, c2 - c1)
      -- LRU: touch q3, add q6 -> q4 (least recently used) goes, q3 stays
      c:execute("SELECT ? AS q3", 3)
      c:execute("SELECT ? AS q6", 6)
      local p3, c3 = read()
      assert.are.equal(1, p3 - p2)
      assert.are.equal(1, c3 - c2)
      c:execute("SELECT ? AS q3", 3)
      local p4 = read()
      assert.are.equal(p3, p4, "q3 should still be cached")
      c:execute("SELECT ? AS q4", 4)
      local p5 = read()
      assert.are.equal(p4 + 1, p5, "q4 should have been evicted")
      assert.are.same({ size = 3, capacity = 3 }, c:statement_cache())
    end)

    it("statement_cache_size = 0 prepares and closes every time", function()
      local c <close> = db.connect { statement_cache_size = 0 }
      local closes = session_status(c, "Com_stmt_close")
      for i = 1, 4 do
        assert.are.equal(i, c:execute("SELECT ? AS v", i).rows[1].v)
      end
      assert.are.same({ size = 0, capacity = 0 }, c:statement_cache())
      local after = session_status(c, "Com_stmt_close")
      -- 4 executes and the first SHOW STATUS, each closed right after use
      assert.are.equal(closes + 5, after)
      local n = 0
      for row in c:each("SELECT seq FROM seq_1_to_5 WHERE seq <= ?", 3) do n = n + row.seq end
      assert.are.equal(6, n)
      assert.are.equal(1, c:execute("SELECT 1 AS one").rows[1].one)
    end)
  end)

  describe("reset()", function()
    it("clears session state and leaves the connection usable", function()
      local c <close> = db.connect()
      local id = c:thread_id()
      c:execute("SET @ar_marker = 42")
      c:execute("CREATE TEMPORARY TABLE lt_tmp (id INT)")
      assert.are.equal(42, c:execute("SELECT @ar_marker AS m").rows[1].m)
      assert.is_true(c:statement_cache().size > 0)
      c:reset()
      assert.are.equal(0, c:statement_cache().size)
      assert.are.same({}, c:execute("SELECT @ar_marker AS m").rows[1])
      local err = db.error_of(c.execute, c, "SELECT * FROM lt_tmp")
      assert.are.equal(1146, err.code)
      -- same session, statements prepare again fine
      assert.are.equal(id, c:thread_id())
      assert.are.equal(7, c:execute("SELECT ? AS v", 7).rows[1].v)
      assert.are.equal(7, c:execute("SELECT ? AS v", 7).rows[1].v)
    end)

    it("rolls back an open transaction", function()
      local c <close> = db.connect()
      db.recreate(c, "lt_items", "id INT PRIMARY KEY")
      c:begin()
      c:execute("INSERT INTO lt_items (id) VALUES (?)", 1)
      c:reset()
      assert.is_false(c:in_transaction())
      assert.are.equal(0, watcher:execute("SELECT COUNT(*) AS n FROM lt_items").rows[1].n)
      -- a pool resets, then the next user begins at once
      c:begin()
      c:execute("INSERT INTO lt_items (id) VALUES (?)", 2)
      c:commit()
      assert.are.equal(1, watcher:execute("SELECT COUNT(*) AS n FROM lt_items").rows[1].n)
      c:execute("DROP TABLE lt_items")
    end)

    it("keeps the session settings given to connect (time_zone, sql_mode, autocommit, init_command)",
      function()
        local c <close> = db.connect { time_zone = "+05:00", sql_mode = "ANSI_QUOTES",
                                       autocommit = false, init_command = "SET @init = 'ran'" }
        c:execute("SET @init = 'changed'")
        c:rollback()
        c:reset()
        local row = c:execute("SELECT @@session.time_zone AS tz, @@session.sql_mode AS mode, "
          .. "@@session.autocommit AS ac, @init AS init").rows[1]
        assert.are.equal("+05:00", row.tz)
        assert.are.equal("ANSI_QUOTES", row.mode)
        assert.are.equal(0, row.ac)
        assert.are.equal("ran", row.init)
      end)

    it("closes user-held statements cleanly", function()
      local c <close> = db.connect()
      local st = c:prepare("SELECT 1 AS one")
      c:reset()
      assert.is_true(st:is_closed())
      local err = db.error_of(st.execute, st)
      assert.truthy(err.message:find("closed", 1, true), err.message)
      assert.are.equal(1, c:prepare("SELECT 1 AS one"):execute().rows[1].one)
    end)
  end)
end)

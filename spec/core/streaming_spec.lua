-- Streaming with each(): constant memory over a million rows, typed values,
-- parameters, and the read timeout holding through the one wait point.
local db = require("support.db")
local core = db.core

local function measure()
  collectgarbage("collect")
  collectgarbage("collect")
  return db.rss_kib()
end

describe("core streaming", function()
  local conn

  setup(function() conn = db.connect() end)
  teardown(function() if conn then conn:close() end end)

  it("streams 1,000,000 rows in flat memory", function()
    -- Buffered, these rows (a Lua table each, a 100-byte string, an integer)
    -- take well over 100 MiB; streamed, only one row lives at a time.
    local n, sum, at_100k = 0, 0, nil
    local base = measure()
    for row in conn:each("SELECT seq, REPEAT('x', 100) AS pad FROM seq_1_to_1000000") do
      n = n + 1
      sum = sum + row.seq
      if n == 1 then
        assert.are.equal("integer", math.type(row.seq))
        assert.are.equal(("x"):rep(100), row.pad)
      end
      assert(row.seq == n, "rows arrive in order")
      if n == 100000 then at_100k = measure() end
    end
    local at_end = measure()
    assert.are.equal(1000000, n)
    assert.are.equal(1000000 * 1000001 // 2, sum)
    local growth = at_end - at_100k
    assert.is_true(growth < 16 * 1024,
      ("RSS grew by %d KiB between row 100,000 and row 1,000,000"):format(growth))
    assert.is_true(at_end - base < 32 * 1024,
      ("RSS grew by %d KiB over the whole stream"):format(at_end - base))
    -- the connection is free again
    assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
  end)

  it("the bound above is meaningful: 100,000 buffered rows alone exceed it", function()
    -- execute() keeps every row; a tenth of the stream already takes more
    -- than the 16 MiB the stream may grow by, so a buffering each() fails above
    -- the rows live in the Lua heap (RSS alone may not move when the
    -- allocator reuses pages freed by an earlier spec)
    local before = measure()
    local heap_before = collectgarbage("count")
    local res = conn:execute("SELECT seq, REPEAT('x', 100) AS pad FROM seq_1_to_100000")
    local after = measure()
    local grown = math.floor(math.max(after - before, collectgarbage("count") - heap_before))
    assert.are.equal(100000, #res.rows)
    assert.is_true(grown > 16 * 1024, ("100,000 buffered rows took only %d KiB"):format(grown))
    res = nil -- luacheck: ignore
  end)

  it("types the streamed values like execute does", function()
    local rows = {}
    for row in conn:each(
      "SELECT seq AS i, seq / 4 AS d, CAST(seq AS DOUBLE) / 2 AS f, CONCAT('s', seq) AS s, " ..
      "IF(seq = 2, NULL, seq) AS maybe, DATE('2024-01-01') + INTERVAL seq DAY AS day " ..
      "FROM seq_1_to_3") do
      rows[#rows + 1] = row
    end
    local buffered = conn:execute(
      "SELECT seq AS i, seq / 4 AS d, CAST(seq AS DOUBLE) / 2 AS f, CONCAT('s', seq) AS s, " ..
      "IF(seq = 2, NULL, seq) AS maybe, DATE('2024-01-01') + INTERVAL seq DAY AS day " ..
      "FROM seq_1_to_3").rows
    assert.are.same(buffered, rows)
    assert.are.equal("integer", math.type(rows[1].i))
    assert.are.equal("float", math.type(rows[1].f))
    assert.are.equal(0.5, rows[1].f)
    assert.are.equal("0.2500", rows[1].d) -- DECIMAL stays an exact string
    assert.are.equal("s3", rows[3].s)
    assert.is_nil(rows[2].maybe)
    assert.are.equal(3, rows[3].maybe)
    assert.are.equal("2024-01-02", rows[1].day)
  end)

  it("binds parameters", function()
    local seen = {}
    for row in conn:each("SELECT seq FROM seq_1_to_100 WHERE seq > ? AND seq <= ? AND ? = 'yes'",
      10, 15, "yes") do
      seen[#seen + 1] = row.seq
    end
    assert.are.same({ 11, 12, 13, 14, 15 }, seen)
    -- the same statement (cached) with other values
    seen = {}
    for row in conn:each("SELECT seq FROM seq_1_to_100 WHERE seq > ? AND seq <= ? AND ? = 'yes'",
      98, 200, "yes") do
      seen[#seen + 1] = row.seq
    end
    assert.are.same({ 99, 100 }, seen)
  end)

  it("an empty result ends the loop at once and frees the connection", function()
    local n = 0
    for _ in conn:each("SELECT seq FROM seq_1_to_10 WHERE seq > ?", 100) do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
  end)

  it("a statement without a result set runs and yields no rows", function()
    db.recreate(conn, "stream_t", "id INT PRIMARY KEY")
    local n = 0
    for _ in conn:each("INSERT INTO stream_t (id) VALUES (?)", 1) do n = n + 1 end
    assert.are.equal(0, n)
    assert.are.equal(1, #conn:execute("SELECT id FROM stream_t").rows)
    conn:execute("DROP TABLE stream_t")
  end)

  describe("read_timeout", function()
    it("ends a query that waits longer, well before the server answers", function()
      local c = db.connect { read_timeout = 1 }
      local t0 = core.monotime()
      local err = db.error_of(c.execute, c, "SELECT SLEEP(5) AS s")
      local elapsed = core.monotime() - t0
      assert.are.equal("ConnectionLost", err.kind, tostring(err))
      assert.are.equal(2013, err.code)
      assert.is_true(elapsed >= 0.9 and elapsed < 3, ("took %.2f s"):format(elapsed))
      c:close()
    end)

    it("ends a stream whose server stalls mid-result", function()
      -- 20 KB rows fill the server's network buffer, so the first rows reach
      -- us before the server sleeps at row 50
      local c = db.connect { read_timeout = 1 }
      local n = 0
      local t0 = core.monotime()
      local err = db.error_of(function()
        for _ in c:each("SELECT seq, REPEAT('y', 20000) AS pad, IF(seq = 50, SLEEP(5), 0) AS z " ..
          "FROM seq_1_to_100") do
          n = n + 1
        end
      end)
      local elapsed = core.monotime() - t0
      assert.is_true(n > 0 and n < 50, "rows before the stall: " .. n)
      assert.are.equal("ConnectionLost", err.kind, tostring(err))
      assert.are.equal(2013, err.code)
      assert.is_true(elapsed < 3, ("took %.2f s"):format(elapsed))
      c:close()
    end)

    it("does not end a query that answers in time", function()
      local c = db.connect { read_timeout = 2 }
      assert.are.equal(0, c:execute("SELECT SLEEP(0.5) AS s").rows[1].s)
      local n = 0
      for _ in c:each("SELECT seq, SLEEP(0.2) AS z FROM seq_1_to_3") do n = n + 1 end
      assert.are.equal(3, n)
      c:close()
    end)

    it("a server-side statement timeout mid-stream is QueryTimeout and the connection survives", function()
      local err = db.error_of(function()
        for _ in conn:each("SET STATEMENT max_statement_time = 0.3 FOR " ..
          "SELECT seq, SLEEP(0.2) AS z FROM seq_1_to_20") do
        end
      end)
      assert.are.equal("QueryTimeout", err.kind, tostring(err))
      assert.are.equal(1969, err.code)
      assert.are.equal(1, conn:execute("SELECT 1 AS one").rows[1].one)
    end)
  end)
end)

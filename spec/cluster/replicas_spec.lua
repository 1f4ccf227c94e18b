-- Read replicas (issue 18) against a real MariaDB GTID primary and its two
-- replicas (most specs use the first alone) started by `make cluster-test` (scripts/with-cluster.sh). Skipped when
-- that environment is absent (plain `make test` has one server only).
local support = require("cluster.support")
local ar = require("activerecord")
local errors = require("activerecord.errors")

local describe_if = support.available("replication") and describe or pending

describe_if("read replicas (primary + GTID replica)", function()
  local topo, events, db

  local function connect(extra)
    local opts = { primary = topo.primary, replicas = topo.replicas, replica_retry = 0.5,
                   log = function(e) events[#events + 1] = e end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return ar.connect(opts)
  end

  local function servers_of(pattern)
    local seen = {}
    for _, e in ipairs(events) do
      if e.sql and e.sql:find(pattern) then seen[#seen + 1] = e.server end
    end
    return seen
  end

  setup(function()
    topo = support.replication()
    events = {}
    db = connect()
    db:execute("DROP TABLE IF EXISTS repl_items")
    db:execute("CREATE TABLE repl_items (id INT PRIMARY KEY AUTO_INCREMENT, n INT NOT NULL, "
      .. "label VARCHAR(40) NOT NULL)")
  end)

  teardown(function()
    if db then
      db:execute("DROP TABLE IF EXISTS repl_items")
      db:close()
    end
  end)

  before_each(function()
    events = {}
  end)

  it("reads its own writes through the replica: no stale read in 1,000 write-then-read pairs", function()
    local Item = ar.Model{ name = "ReplItem", table = "repl_items", backend = db,
                           fields = { id = { type = "integer", primary_key = true }, n = "integer",
                                      label = "string" } }
    local before = db:pool_stats().reads
    local stale = 0
    for i = 1, 500 do
      local item = Item:create{ n = i, label = "v1" }
      local read = Item:find(item.id) -- a read outside a transaction: on the replica
      if not read or read.n ~= i then stale = stale + 1 end
      db:execute("UPDATE repl_items SET label = ? WHERE id = ?", "v2-" .. i, item.id)
      local row = db:query("SELECT label FROM repl_items WHERE id = ?", item.id)[1]
      if not row or row.label ~= "v2-" .. i then stale = stale + 1 end
    end
    assert.are.equal(0, stale)
    local reads = db:pool_stats().reads
    -- the reads really went to the replica, after waiting for the write
    assert.is_true(reads.replica - before.replica >= 900, "replica reads: " .. reads.replica - before.replica)
    assert.is_true(reads.gtid_waits - before.gtid_waits >= 900)
    local on = servers_of("^SELECT label FROM repl_items")
    assert.are.equal("replica 1", on[1])
    assert.are.equal("primary", servers_of("^UPDATE repl_items")[1])
  end)

  it("runs writes, transactions, locking reads and on_primary on the primary", function()
    db:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", 1, "tx")
    db:transaction(function(tx)
      tx:query("SELECT n FROM repl_items WHERE label = ? -- in tx", "tx")
      tx:execute("UPDATE repl_items SET n = n + 1 WHERE label = ?", "tx")
    end)
    db:query("SELECT n FROM repl_items WHERE label = ? FOR UPDATE", "tx")
    db:on_primary(function()
      db:query("SELECT n FROM repl_items WHERE label = ? -- pinned", "tx")
    end)
    db:query("SELECT n FROM repl_items WHERE label = ? -- plain", "tx")
    assert.are.same({ "primary" }, servers_of("%-%- in tx$"))
    assert.are.same({ "primary" }, servers_of("FOR UPDATE$"))
    assert.are.same({ "primary" }, servers_of("%-%- pinned$"))
    assert.are.same({ "replica 1" }, servers_of("%-%- plain$"))
    assert.are.equal(2, db:query("SELECT n FROM repl_items WHERE label = ?", "tx")[1].n)
  end)

  it("streams with each from the replica after waiting for the last write, and from the primary "
     .. "when the replica cannot catch up", function()
    local sdb = connect{ replica_wait_timeout = 0.3 }
    for i = 1, 50 do sdb:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", i, "stream") end
    local function stream(tag)
      local n, sum = 0, 0
      for row in sdb:each("SELECT n FROM repl_items WHERE label = ? ORDER BY n -- " .. tag, "stream") do
        n, sum = n + 1, sum + row.n
      end
      return n, sum
    end
    events = {}
    assert.are.same({ 50, 1275 }, { stream("fresh") }) -- every row just written
    assert.are.same({ "replica 1" }, servers_of("%-%- fresh$"))
    -- a loop that breaks gives the replica's connection back
    for row in sdb:each("SELECT n FROM repl_items WHERE label = ? -- broken", "stream") do
      if row.n then break end
    end
    assert.are.equal(0, sdb:pool_stats().replicas[1].in_use)
    sdb:transaction(function()
      for row in sdb:each("SELECT n FROM repl_items WHERE label = ? -- in tx", "stream") do
        if row.n then break end
      end
    end)
    assert.are.same({ "primary" }, servers_of("%-%- in tx$"))
    local rroot = ar.connect(support.replication_root("replica"))
    rroot:execute("STOP SLAVE SQL_THREAD")
    local ok, err = pcall(function()
      sdb:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", 51, "stream")
      local before = sdb:pool_stats().reads.fallbacks
      assert.are.same({ 51, 1326 }, { stream("lagging") })
      assert.are.same({ "primary" }, servers_of("%-%- lagging$"))
      assert.are.equal(before + 1, sdb:pool_stats().reads.fallbacks)
    end)
    rroot:execute("START SLAVE SQL_THREAD")
    rroot:close()
    assert.are.equal(0, sdb:pool_stats().in_use)
    sdb:close()
    assert(ok, err)
  end)

  it("skips a stopped replica (reads go on, on the primary) and uses it again once restarted", function()
    db:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", 7, "stop")
    assert.are.equal(7, db:query("SELECT n FROM repl_items WHERE label = ?", "stop")[1].n)
    support.stop_replica()
    local ok_stop, err = pcall(function()
      for _ = 1, 20 do
        assert.are.equal(7, db:query("SELECT n FROM repl_items WHERE label = ?", "stop")[1].n)
      end
      local stats = db:pool_stats()
      assert.is_true(stats.replicas[1].down)
      assert.is_true(stats.reads.fallbacks >= 20)
    end)
    support.start_replica()
    assert(ok_stop, err)
    -- after replica_retry (0.5 s) the replica serves reads again
    local deadline = require("activerecord.backend.mysql.core").monotime() + 20
    local back
    repeat
      require("activerecord.backend.mysql.core").sleep(0.2)
      events = {}
      db:query("SELECT n FROM repl_items WHERE label = ? -- after restart", "stop")
      back = servers_of("after restart$")[1] == "replica 1"
    until back or require("activerecord.backend.mysql.core").monotime() > deadline
    assert.is_true(back, "the restarted replica reads again")
    assert.is_false(db:pool_stats().replicas[1].down)
  end)

  -- write-then-read pairs through `two`: how many reads missed their write
  local function stale_pairs(two, count, tag)
    local stale = 0
    for i = 1, count do
      local res = two:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", i, tag)
      local row = two:query("SELECT n FROM repl_items WHERE id = ? -- " .. tag, res.insert_id)[1]
      if not row or row.n ~= i then stale = stale + 1 end
    end
    return stale
  end

  it("takes turns over two replicas, each waiting for the reader's last write", function()
    local two = connect{ replicas = support.replication(nil, 2).replicas }
    assert.are.equal(0, stale_pairs(two, 200, "turns"))
    local on = servers_of("%-%- turns$")
    assert.are.equal(200, #on)
    for i = 2, #on do assert.are_not.equal(on[i - 1], on[i]) end -- round-robin
    local stats = two:pool_stats()
    assert.are.equal(100, stats.replicas[1].reads)
    assert.are.equal(100, stats.replicas[2].reads)
    assert.are.equal(0, stats.reads.fallbacks)
    two:close()
  end)

  it("with one of two replicas stopped, reads on the other (not the primary), then on both again", function()
    local two = connect{ replicas = support.replication(nil, 2).replicas }
    assert.are.equal(0, stale_pairs(two, 10, "both")) -- a connection to each
    support.stop_replica(1)
    local ok_stop, err = pcall(function()
      local before = two:pool_stats()
      assert.are.equal(0, stale_pairs(two, 50, "one down"))
      local after = two:pool_stats()
      assert.is_true(after.replicas[1].down)
      -- the read that found replica 1 gone ran on the primary; every other on replica 2
      assert.is_true(after.replicas[2].reads - before.replicas[2].reads >= 49)
      assert.is_true(after.reads.fallbacks - before.reads.fallbacks <= 1)
      for _, server in ipairs(servers_of("%-%- one down$")) do assert.are_not.equal("replica 1", server) end
    end)
    support.start_replica(1)
    assert(ok_stop, err)
    require("activerecord.backend.mysql.core").sleep(0.6) -- replica_retry
    local before = two:pool_stats().replicas[1].reads
    assert.are.equal(0, stale_pairs(two, 20, "back"))
    assert.is_true(two:pool_stats().replicas[1].reads - before >= 9)
    two:close()
  end)

  it("with replica_lag = seconds, skips a replica that stopped applying, and reads fresh data", function()
    local lagdb = connect{ replica_lag = 0.3 }
    local root = ar.connect(support.replication_root("replica"))
    root:execute("STOP SLAVE SQL_THREAD")
    local ok, err = pcall(function()
      lagdb:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", 5, "lag")
      local before = lagdb:pool_stats().reads.fallbacks
      local row = lagdb:query("SELECT n FROM repl_items WHERE label = ?", "lag")[1]
      assert.are.equal(5, row and row.n) -- from the primary: the replica does not have it
      assert.is_true(lagdb:pool_stats().reads.fallbacks > before)
    end)
    root:execute("START SLAVE SQL_THREAD")
    root:close()
    lagdb:close()
    assert(ok, err)
  end)

  it("with replica_lag = seconds and a user who may not read SHOW SLAVE STATUS, bounds a read's wait "
     .. "for the last write by those seconds", function()
    local proot = ar.connect(support.replication_root("primary"))
    local rroot = ar.connect(support.replication_root("replica"))
    local database = topo.primary.database
    proot:execute("DROP USER IF EXISTS 'ar_nomon'@'127.0.0.1'")
    proot:execute("CREATE USER 'ar_nomon'@'127.0.0.1' IDENTIFIED BY 'nomon-pw'")
    proot:execute("GRANT ALL PRIVILEGES ON `" .. database .. "`.* TO 'ar_nomon'@'127.0.0.1'")
    -- the replica has the account before anyone connects to it
    local pos = proot:query("SELECT @@gtid_binlog_pos AS p")[1].p
    assert.are.equal(0, rroot:query("SELECT MASTER_GTID_WAIT(?, 10) AS w", pos)[1].w)
    local cfg = support.replication{ user = "ar_nomon", password = "nomon-pw" }
    local lagdb = ar.connect{ primary = cfg.primary, replicas = cfg.replicas, replica_lag = 0.3,
                              log = function(e) events[#events + 1] = e end }
    local ok, err = pcall(function()
      -- the user really cannot read the replica's status
      assert.has_error(function() lagdb:on_primary(function() lagdb:query("SHOW SLAVE STATUS") end) end)
      lagdb:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", 6, "nomon")
      events = {}
      assert.are.equal(6, lagdb:query("SELECT n FROM repl_items WHERE label = ? -- applied", "nomon")[1].n)
      assert.are.same({ "replica 1" }, servers_of("%-%- applied$"))
      rroot:execute("STOP SLAVE SQL_THREAD")
      lagdb:execute("UPDATE repl_items SET n = ? WHERE label = ?", 8, "nomon")
      local before = lagdb:pool_stats().reads.fallbacks
      local t0 = require("activerecord.backend.mysql.core").monotime()
      events = {}
      local row = lagdb:query("SELECT n FROM repl_items WHERE label = ? -- stopped", "nomon")[1]
      local waited = require("activerecord.backend.mysql.core").monotime() - t0
      assert.are.equal(8, row.n) -- fresh, from the primary
      assert.are.same({ "primary" }, servers_of("%-%- stopped$"))
      assert.are.equal(before + 1, lagdb:pool_stats().reads.fallbacks)
      assert.is_true(waited >= 0.25 and waited < 2, ("waited %.2f s for the replica"):format(waited))
    end)
    pcall(rroot.execute, rroot, "START SLAVE SQL_THREAD")
    lagdb:close()
    proot:execute("DROP USER IF EXISTS 'ar_nomon'@'127.0.0.1'")
    proot:close()
    rroot:close()
    assert(ok, err)
  end)

  it("under a scheduler, many coroutines at once each read their own writes through the replica", function()
    local cqueues = require("cqueues")
    local sdb = connect{ scheduler = "cqueues", pool = { size = 8 } }
    local Item = ar.Model{ name = "ReplItemCo", table = "repl_items", backend = sdb,
                           fields = { id = { type = "integer", primary_key = true }, n = "integer",
                                      label = "string" } }
    local before = sdb:pool_stats().reads.replica
    local stale, done, failures = 0, 0, {}
    local cq = cqueues.new()
    for c = 1, 30 do
      cq:wrap(function()
        local ok, e = xpcall(function()
          for i = 1, 20 do
            local item = Item:create{ n = i, label = "co-" .. c }
            local read = Item:find(item.id)
            if not read or read.n ~= i then stale = stale + 1 end
            item:update{ n = i + 1000 }
            read = Item:find(item.id)
            if not read or read.n ~= i + 1000 then stale = stale + 1 end
          end
          done = done + 1
        end, debug.traceback)
        if not ok then failures[#failures + 1] = e end
      end)
    end
    assert(cq:loop())
    local reads = sdb:pool_stats().reads.replica - before
    sdb:close()
    assert.are.same({}, failures)
    assert.are.equal(30, done)
    assert.are.equal(0, stale)
    assert.is_true(reads >= 600, "replica reads: " .. reads)
  end)

  it("under a scheduler, never waits for an older write than the reader's own when writes report "
     .. "their GTIDs out of order", function()
    -- A's write commits first, but its log hook (an async logger, say)
    -- yields, so A learns its GTID after B learned B's; the replica then
    -- stops applying. B's read must wait for B's write (and, the replica
    -- lacking it, run on the primary), not for A's older one.
    local cqueues = require("cqueues")
    local rroot = ar.connect(support.replication_root("replica"))
    local sdb = connect{ scheduler = "cqueues", pool = { size = 4 }, replica_wait_timeout = 0.3,
      log = function(e)
        if e.sql and e.sql:find("-- slow logger", 1, true) then cqueues.sleep(0.3) end
      end }
    db:execute("INSERT INTO repl_items (n, label) VALUES (?, ?)", 0, "order")
    local got, a_done, b_wrote
    local cq = cqueues.new()
    cq:wrap(function()
      sdb:execute("UPDATE repl_items SET n = 1 WHERE label = 'order' -- slow logger")
      a_done = true
    end)
    cq:wrap(function()
      cqueues.sleep(0.05) -- A's UPDATE has committed, its hook sleeps
      rroot:execute("STOP SLAVE SQL_THREAD")
      sdb:execute("UPDATE repl_items SET n = 2 WHERE label = ?", "order")
      b_wrote = true
      repeat cqueues.sleep(0.02) until a_done -- A has noted its (older) GTID now
      got = sdb:query("SELECT n FROM repl_items WHERE label = ?", "order")[1].n
    end)
    local ok, err = cq:loop()
    rroot:execute("START SLAVE SQL_THREAD")
    rroot:close()
    sdb:close()
    assert(ok, err)
    assert.is_true(b_wrote)
    assert.are.equal(2, got) -- B reads its own write
  end)

  it("refuses a write sent to a replica with a clear error, nothing written", function()
    local replica_only = ar.connect(topo.replicas[1])
    local ok, err = pcall(replica_only.execute, replica_only,
      "INSERT INTO repl_items (n, label) VALUES (?, ?)", 99, "wrong")
    replica_only:close()
    assert.is_false(ok)
    assert.are.equal(1290, err.code)
    assert.is_true(err.read_only)
    assert.matches("read%-only server", err.message)
    assert.are.equal(0, #db:on_primary(function()
      return db:query("SELECT id FROM repl_items WHERE label = ?", "wrong")
    end))
  end)

  it("validates its options", function()
    local ok, err = pcall(ar.connect, { primary = topo.primary, replicas = {} })
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ConfigError"))
    ok, err = pcall(ar.connect, { primary = topo.primary, replicas = { { prot = 1 } } })
    assert.is_false(ok)
    assert.matches("unknown option 'prot' in replicas%[1%]", err.message)
    ok, err = pcall(ar.connect, { primary = topo.primary, replicas = topo.replicas, replica_lag = "soon" })
    assert.is_false(ok)
    assert.matches("replica_lag", err.message)
  end)
end)

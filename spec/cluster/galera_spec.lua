-- A Galera cluster (issue 18) of three real MariaDB nodes started by `make
-- cluster-test` (scripts/with-cluster.sh). Skipped without that
-- environment (plain `make test` has one server only).
local support = require("cluster.support")
local ar = require("activerecord")
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")

local describe_if = support.available("galera") and describe or pending
local LUA = os.getenv("AR_LUA") or "lua5.4"

describe_if("a Galera cluster of three nodes", function()
  local nodes

  -- a backend on one node alone (to read what that node holds)
  local function on_node(i) return ar.connect(nodes[i]) end

  setup(function()
    nodes = support.galera()
    local db = ar.connect{ cluster = nodes }
    db:execute("DROP TABLE IF EXISTS gal_ledger")
    db:execute("DROP TABLE IF EXISTS gal_accounts")
    db:execute("DROP TABLE IF EXISTS gal_items")
    db:execute("CREATE TABLE gal_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB")
    db:execute("CREATE TABLE gal_ledger (id BIGINT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, "
      .. "amount INT NOT NULL) ENGINE=InnoDB")
    db:execute("CREATE TABLE gal_items (id BIGINT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(40) NOT NULL) "
      .. "ENGINE=InnoDB")
    for i = 1, 10 do db:execute("INSERT INTO gal_accounts (id, balance) VALUES (?, 1000)", i) end
    db:close()
  end)

  it("takes ids from the server under Galera's auto_increment_increment", function()
    local db = ar.connect{ cluster = nodes }
    local Item = ar.Model{ name = "GalItem", table = "gal_items", backend = db,
                           fields = { id = { type = "integer", primary_key = true }, name = "string" } }
    local step = db:query("SELECT @@auto_increment_increment AS s")[1].s
    local items = {}
    for i = 1, 5 do items[i] = Item:create{ name = "item " .. i } end
    for i = 1, 5 do
      local row = db:query("SELECT name FROM gal_items WHERE id = ?", items[i].id)[1]
      assert.are.equal("item " .. i, row and row.name) -- each record holds its own row's id
    end
    if step > 1 then
      assert.are.equal(0, (items[2].id - items[1].id) % step) -- ids follow the step, never id+1 guessed
    end
    db:close()
  end)

  it("fails over to the next node when the current one is killed, and takes it back once synced", function()
    local db = ar.connect{ cluster = nodes, node_retry = 0.5 }
    db:execute("INSERT INTO gal_items (name) VALUES (?)", "before")
    assert.are.equal("node 1", db:pool_stats().current)
    support.galera_kill(1)
    local ok_kill, err = pcall(function()
      db:execute("INSERT INTO gal_items (name) VALUES (?)", "during")
      assert.are.equal("node 2", db:pool_stats().current)
      assert.is_true(db:pool_stats().nodes[1].failures >= 1) -- taken out of rotation
    end)
    local t0 = core.monotime()
    support.galera_start(1)
    local recover = core.monotime() - t0
    assert(ok_kill, err)
    -- node 1 is back in the cluster with what it missed
    local n1 = on_node(1)
    assert.are.equal(1, #n1:query("SELECT id FROM gal_items WHERE name = ?", "during"))
    n1:close()
    print(("\n    node 1 restarted and synced in %.1f s"):format(recover))
    db:close()
  end)

  it("under a scheduler, fails over with coroutines mid-transaction; no acknowledged write is lost", function()
    local cqueues = require("cqueues")
    local db = ar.connect{ cluster = nodes, node_retry = 0.5, scheduler = "cqueues", pool = { size = 6 } }
    local acked, unknown, others, killed_at = {}, {}, {}, nil
    local cq = cqueues.new()
    local t0 = core.monotime()
    for c = 1, 8 do
      cq:wrap(function()
        for i = 1, 60 do
          local name = ("co %d-%d"):format(c, i)
          local ok, err = pcall(db.transaction, db, function(tx)
            tx:execute("INSERT INTO gal_items (name) VALUES (?)", name)
            tx:query("SELECT COUNT(*) AS n FROM gal_items WHERE name = ?", name)
          end, { retries = 5 })
          if ok then
            acked[#acked + 1] = { name = name, at = core.monotime() - t0 }
          elseif err.commit_unknown then
            unknown[#unknown + 1] = name
          else
            others[#others + 1] = tostring(err)
          end
          cqueues.sleep(0.01)
        end
      end)
    end
    cq:wrap(function()
      cqueues.sleep(0.3)
      support.galera_kill(1) -- blocks the loop for the script's run: the kill lands mid-flight
      killed_at = core.monotime() - t0
    end)
    local loop_ok, loop_err = cq:loop()
    local r0 = core.monotime()
    support.galera_start(1)
    local recover = core.monotime() - r0
    assert(loop_ok, loop_err)
    assert.are.same({}, others)
    assert.are.equal(480, #acked + #unknown)
    assert.are.equal("node 2", db:pool_stats().current)
    local after = 0
    for _, a in ipairs(acked) do
      if a.at > killed_at then after = after + 1 end
    end
    assert.is_true(after > 100, "coroutines went on writing after the kill: " .. after)
    local n2 = on_node(2)
    local function count(name) return n2:query("SELECT COUNT(*) AS n FROM gal_items WHERE name = ?", name)[1].n end
    local lost, doubled = 0, 0
    for _, a in ipairs(acked) do
      if count(a.name) ~= 1 then lost = lost + 1 end
    end
    for _, name in ipairs(unknown) do -- committed or not, never twice
      if count(name) > 1 then doubled = doubled + 1 end
    end
    n2:close()
    db:close()
    assert.are.equal(0, lost)
    assert.are.equal(0, doubled)
    print(("\n    8 coroutines on one thread: %d transactions acknowledged, %d with COMMIT outcome unknown; "
      .. "node 1 killed at %.1f s, restarted and synced in %.1f s"):format(#acked, #unknown, killed_at, recover))
  end)

  it("loses no acknowledged write while a node is killed under load (4 writers on all nodes)", function()
    local SECONDS, WRITERS = 14, 4
    local pipes = {}
    for w = 1, WRITERS do
      local cmd = ("%s spec/cluster/galera_writer.lua %d %d %d 2>&1"):format(LUA, w, SECONDS, (w - 1) % 3 + 1)
      pipes[w] = assert(io.popen(cmd, "r"))
    end
    local t0 = core.monotime()
    core.sleep(3)
    support.galera_kill(3)
    local killed_at = core.monotime() - t0
    core.sleep(2)
    local r0 = core.monotime()
    support.galera_start(3)
    local recover = core.monotime() - r0
    local acked, fails, stats, unknown = {}, 0, {}, 0
    for w = 1, WRITERS do
      for line in pipes[w]:lines() do
        local id = line:match("^ack (%d+)$")
        if id then
          acked[#acked + 1] = tonumber(id)
        elseif line:match("^fail ") then
          fails = fails + 1
          if line:match("^fail %d+ %S+ true") then unknown = unknown + 1 end
        elseif line:match("^stats ") then
          stats[#stats + 1] = line
        else
          io.stderr:write("writer ", w, ": ", line, "\n")
        end
      end
      pipes[w]:close()
    end
    assert.are.equal(WRITERS, #stats, "every writer ran to its end")
    local attempts, failovers = 0, 0
    for _, line in ipairs(stats) do
      attempts = attempts + tonumber(line:match("attempts=(%d+)"))
      failovers = failovers + tonumber(line:match("failovers=(%d+)"))
    end
    assert.is_true(#acked > 100, "writes were acknowledged: " .. #acked)
    -- every node holds every acknowledged transfer exactly once, and the
    -- money is all there
    for i = 1, 3 do
      local n = on_node(i)
      local seen = {}
      for _, row in ipairs(n:query("SELECT id FROM gal_ledger")) do seen[row.id] = (seen[row.id] or 0) + 1 end
      local lost = 0
      for _, id in ipairs(acked) do
        if seen[id] ~= 1 then lost = lost + 1 end
      end
      assert.are.equal(0, lost, "node " .. i .. " misses acknowledged writes")
      assert.are.equal(10000, tonumber(n:query("SELECT SUM(balance) AS s FROM gal_accounts")[1].s))
      n:close()
    end
    print(("\n    %d writers x %d s: %d transfers acknowledged, %d attempts (%d re-runs: conflicts and "
      .. "lost links before COMMIT), %d failed (%d with COMMIT outcome unknown), %d failovers, lost 0; "
      .. "node 3 killed at %.1f s, restarted and synced in %.1f s"):format(WRITERS, SECONDS, #acked, attempts,
      attempts - #acked - fails, fails, unknown, failovers, killed_at, recover))
  end)

  -- write-then-read pairs through `db`: how many reads missed their own write
  local function stale_reads(db, pairs_count, tag)
    local stale = 0
    for i = 1, pairs_count do
      local res = db:execute("INSERT INTO gal_items (name) VALUES (?)", tag .. i)
      local row = db:query("SELECT name FROM gal_items WHERE id = ?", res.insert_id)[1]
      if not row or row.name ~= tag .. i then stale = stale + 1 end
    end
    return stale
  end

  it("spreads reads over the nodes with read-your-writes, and keeps reading while a node is down", function()
    local db = ar.connect{ cluster = nodes, cluster_reads = "spread", node_retry = 0.5 }
    assert.are.equal(0, stale_reads(db, 300, "spread "))
    local stats = db:pool_stats()
    for i = 1, 3 do assert.is_true(stats.nodes[i].reads >= 90, "node " .. i .. " read " .. stats.nodes[i].reads) end
    assert.are.equal("node 1", stats.current)

    support.galera_kill(3)
    local ok_down, err = pcall(function()
      assert.are.equal(0, stale_reads(db, 100, "node 3 down "))
      local s = db:pool_stats()
      assert.is_true(s.nodes[3].failures >= 1) -- out of rotation for reads
      assert.are.equal("node 1", s.current)    -- and the writes never moved
      assert.are.equal(0, s.failovers)
    end)
    support.galera_start(3)
    assert(ok_down, err)
    core.sleep(0.6) -- node_retry: node 3 is tried again, and read on once it is Synced
    local before = db:pool_stats().nodes[3].reads
    assert.are.equal(0, stale_reads(db, 60, "node 3 back "))
    assert.is_true(db:pool_stats().nodes[3].reads > before)

    db:close()

    -- 1,000 pairs in each mode, for bench/README.md: reads on the writes'
    -- node, spread with causal reads (the default), and spread without
    -- them, which shows what wsrep_sync_wait = 1 is for
    local figures = {}
    for _, mode in ipairs({ { "current" }, { "spread" }, { "spread", 0 } }) do
      local m = ar.connect{ cluster = nodes, cluster_reads = mode[1], wsrep_sync_wait = mode[2] }
      local t0 = core.monotime()
      local stale = stale_reads(m, 1000, "figures " .. #figures .. " ")
      figures[#figures + 1] = ("%s%s: %d stale, %.2f s"):format(mode[1],
        mode[2] and " with wsrep_sync_wait = 0" or "", stale, core.monotime() - t0)
      if mode[2] == nil then assert.are.equal(0, stale) end
      m:close()
    end
    print("\n    1,000 write-then-read pairs, reads " .. table.concat(figures, "; "))
  end)

  it("under a scheduler, spread reads serve many coroutines their own writes from every node", function()
    local cqueues = require("cqueues")
    local db = ar.connect{ cluster = nodes, cluster_reads = "spread", scheduler = "cqueues", pool = { size = 4 } }
    local stale, failures = 0, {}
    local cq = cqueues.new()
    for c = 1, 8 do
      cq:wrap(function()
        local ok, err = pcall(function()
          for i = 1, 40 do
            local label = ("sched %d-%d"):format(c, i)
            local res = db:execute("INSERT INTO gal_items (name) VALUES (?)", label)
            local row = db:query("SELECT name FROM gal_items WHERE id = ?", res.insert_id)[1]
            if not row or row.name ~= label then stale = stale + 1 end
          end
        end)
        if not ok then failures[#failures + 1] = tostring(err) end
      end)
    end
    assert(cq:loop())
    assert.are.same({}, failures)
    assert.are.equal(0, stale)
    local stats = db:pool_stats()
    for i = 1, 3 do assert.is_true(stats.nodes[i].reads >= 60, "node " .. i .. " read " .. stats.nodes[i].reads) end
    assert.are.equal(320, stats.reads.spread + stats.reads.fallbacks)
    db:close()
  end)

  it("sets wsrep_sync_wait on every connection when asked (causal reads)", function()
    local db = ar.connect{ cluster = nodes, wsrep_sync_wait = 1 }
    assert.are.equal(1, db:query("SELECT @@SESSION.wsrep_sync_wait AS w")[1].w)
    db:close()
    local plain = ar.connect{ cluster = nodes }
    assert.are.equal(0, plain:query("SELECT @@SESSION.wsrep_sync_wait AS w")[1].w)
    plain:close()
  end)

  it("validates its options", function()
    local ok, err = pcall(ar.connect, { cluster = nodes, replicas = { nodes[2] } })
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ConfigError"))
    ok, err = pcall(ar.connect, { cluster = nodes, wsrep_sync_wait = 99 })
    assert.is_false(ok)
    assert.matches("wsrep_sync_wait", err.message)
  end)
end)

-- Replicas and a cluster whose servers are all the one test server: the
-- routing rules that need no second server. A pool busy to its size is
-- load, not a failed server: it must not rest a replica or move a cluster's
-- writes to another node. (spec/cluster has the real topologies.)
local ar = require("activerecord")
local errors = require("activerecord.errors")

-- Runs fn while a stream, its first row read, holds a connection.
local function while_held(db, fn)
  local iter, _, _, guard <close> = db:each("SELECT 1 AS a UNION ALL SELECT 2")
  assert.is_not_nil(guard)
  assert.are.equal(1, iter().a)
  return fn()
end

describe("a replica whose pool is busy to its size", function()
  it("reads on the primary meanwhile, and does not rest", function()
    local srv = ar.config_from_env()
    local db = ar.connect{ primary = srv, replicas = { srv }, replica_lag = "ignore",
                           pool = { size = 1, checkout_timeout = 0.1 } }
    while_held(db, function() -- the stream reads on the replica
      assert.are.equal(1, db:pool_stats().replicas[1].in_use)
      assert.are.equal(3, db:query("SELECT 3 AS b")[1].b) -- on the primary, after 0.1 s
    end)
    local stats = db:pool_stats()
    assert.are.equal(1, stats.reads.fallbacks)
    assert.is_false(stats.replicas[1].down)
    assert.are.equal(0, stats.replicas[1].failures)
    local before = db:pool_stats().reads.replica
    db:query("SELECT 4 AS c")
    assert.are.equal(before + 1, db:pool_stats().reads.replica) -- the replica reads again at once
    db:close()
  end)
end)

describe("a cluster node whose pool is busy to its size", function()
  it("raises the pool's error and keeps the writes on that node", function()
    local srv = ar.config_from_env()
    local db = ar.connect{ cluster = { srv, srv }, pool = { size = 1, checkout_timeout = 0.1 } }
    local ok, err = while_held(db, function() return pcall(db.query, db, "SELECT 3 AS b") end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ConnectionError"))
    assert.is_true(err.pool_exhausted)
    assert.matches("exhausted", err.message)
    local stats = db:pool_stats()
    assert.are.equal("node 1", stats.current)
    assert.are.equal(0, stats.failovers)
    assert.are.equal(3, db:query("SELECT 3 AS b")[1].b)
    db:close()
  end)

  it("keeps a node whose statement timed out: a read timeout is no failed node", function()
    local srv = ar.config_from_env()
    local db = ar.connect{ cluster = { srv, srv }, read_timeout = 0.5 }
    local ok, err = pcall(db.query, db, "SELECT SLEEP(2)")
    assert.is_false(ok)
    assert.is_true(err.timeout)
    local stats = db:pool_stats()
    assert.are.equal("node 1", stats.current)
    assert.are.equal(0, stats.failovers)
    assert.are.equal(0, stats.nodes[1].failures)
    db:close()
  end)
end)

-- cluster_reads = "spread": reads outside transactions take turns over the
-- nodes; writes and every statement of a transaction stay on the current
-- node. Two "nodes" that are the one test server tell the routing apart by
-- the log's `server`.
describe("a cluster with cluster_reads = \"spread\"", function()
  local function connect(nodes, extra)
    local seen = {}
    local opts = { cluster = nodes, cluster_reads = "spread",
                   log = function(ev) if ev.sql then seen[#seen + 1] = { sql = ev.sql, server = ev.server } end end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return ar.connect(opts), seen
  end
  local function servers_of(seen, pattern)
    local list = {}
    for _, ev in ipairs(seen) do
      if ev.sql:find(pattern) then list[#list + 1] = ev.server end
    end
    return list
  end

  it("spreads reads over the nodes and keeps writes and transactions on the current one", function()
    local srv = ar.config_from_env()
    local db, seen = connect({ srv, srv })
    for i = 1, 6 do db:query("SELECT ? AS spread_read", i) end
    db:execute("DO 1 + ?", 1)
    db:transaction(function(tx) tx:query("SELECT 7 AS spread_in_tx") end)
    assert.are.same({ "node 1", "node 2", "node 1", "node 2", "node 1", "node 2" },
                    servers_of(seen, "spread_read"))
    assert.are.same({ "node 1" }, servers_of(seen, "DO 1"))
    assert.are.same({ "node 1" }, servers_of(seen, "spread_in_tx"))
    local stats = db:pool_stats()
    assert.are.equal(6, stats.reads.spread)
    assert.are.equal(3, stats.nodes[2].reads)
    assert.are.equal("node 1", stats.current)
    -- on_primary: the running coroutine's reads on the node writes go to
    db:on_primary(function() for _ = 1, 2 do db:query("SELECT 8 AS pinned_read") end end)
    assert.are.same({ "node 1", "node 1" }, servers_of(seen, "pinned_read"))
    db:close()
  end)

  it("takes a node that cannot be reached out for reads and writes, and reads on the others", function()
    local srv = ar.config_from_env()
    local dead = { host = "127.0.0.1", port = 1 } -- nothing listens there
    local db, seen = connect({ srv, dead, srv }, { node_retry = 60 })
    for i = 1, 4 do assert.are.equal(i, db:query("SELECT ? AS r", i)[1].r) end
    local stats = db:pool_stats()
    assert.is_true(stats.nodes[2].down)
    assert.are.equal(1, stats.nodes[2].failures)
    assert.are.equal(0, stats.nodes[2].reads)
    assert.are.equal("node 1", stats.current) -- node 2 never took the writes
    assert.are.equal(4, stats.reads.spread + stats.reads.fallbacks)
    for _, server in ipairs(servers_of(seen, "AS r")) do assert.are_not.equal("node 2", server) end
    db:close()
  end)

  it("sets wsrep_sync_wait = 1 (causal reads) unless told otherwise", function()
    local srv = ar.config_from_env()
    local db = connect({ srv })
    assert.are.equal(1, math.tointeger(db:query("SELECT @@SESSION.wsrep_sync_wait AS w")[1].w))
    db:close()
    db = connect({ srv }, { wsrep_sync_wait = 0 })
    assert.are.equal(0, math.tointeger(db:query("SELECT @@SESSION.wsrep_sync_wait AS w")[1].w))
    db:close()
  end)

  it("refuses an unknown mode, and a topology's options without that topology", function()
    local srv = ar.config_from_env()
    local ok, err = pcall(ar.connect, { cluster = { srv }, cluster_reads = "everywhere" })
    assert.is_false(ok)
    assert.is_true(errors.is(err, "ConfigError"))
    assert.matches("cluster_reads", err.message)
    -- an option of a topology given without it would do nothing: refused, named
    for name, case in pairs({ cluster_reads = { "spread", "cluster" }, node_retry = { 1, "cluster" },
                              wsrep_sync_wait = { 1, "cluster" }, replica_lag = { "wait", "replicas" },
                              replica_retry = { 5, "replicas" }, replica_wait_timeout = { 1, "replicas" } }) do
      local opts = ar.config_from_env()
      opts[name] = case[1]
      ok, err = pcall(ar.connect, opts)
      assert.is_false(ok, name)
      assert.is_true(errors.is(err, "ConfigError"))
      assert.matches(("option '%s' needs option '%s'"):format(name, case[2]), err.message)
    end
    -- and a replica option with a cluster
    ok, err = pcall(ar.connect, { cluster = { srv }, replica_lag = "wait" })
    assert.is_false(ok)
    assert.matches("needs option 'replicas'", err.message)
  end)
end)

-- Fast faults on the shared test server that touch only this spec's own
-- sessions: KILL CONNECTION of a pooled connection (idle and inside a
-- transaction) and a server-side statement timeout. The server-wide faults
-- (kill -9, restart, SET GLOBAL ...) are in faults_spec.lua (#slow).
local ar = require("activerecord")
local H = require("reliability.helpers")

describe("reliability: quick faults", function()
  local db, admin
  local TABLE = "rel_quick_faults"

  local function ids()
    local out = {}
    for i, r in ipairs(admin:query("SELECT id FROM " .. TABLE .. " ORDER BY id")) do out[i] = r.id end
    return out
  end

  setup(function()
    admin = ar.connect(H.support.options{ pool = { size = 1 } })
    admin:execute("DROP TABLE IF EXISTS " .. TABLE)
    admin:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY) ENGINE=InnoDB")
  end)

  teardown(function()
    if db then db:close() end
    admin:execute("DROP TABLE IF EXISTS " .. TABLE)
    admin:close()
  end)

  before_each(function()
    if db then db:close() end
    db = ar.connect(H.support.options{ pool = { size = 1 } })
    admin:execute("DELETE FROM " .. TABLE)
  end)

  it("KILL CONNECTION of an idle pooled connection: the next write succeeds after one reconnect", function()
    local id = db:query("SELECT CONNECTION_ID() AS id")[1].id
    local before = db:pool_stats()
    admin:execute("KILL CONNECTION " .. id)
    db:execute("INSERT INTO " .. TABLE .. " (id) VALUES (1)")
    assert.are.same({ 1 }, ids())
    local after = db:pool_stats()
    assert.are.equal(before.replaced + 1, after.replaced)
    assert.are.equal(before.created + 1, after.created)
  end)

  it("KILL CONNECTION inside a transaction: raised, nothing replayed, the pool recovers", function()
    local err = H.error_of(db.transaction, db, function(tx)
      tx:execute("INSERT INTO " .. TABLE .. " (id) VALUES (1)")
      admin:execute("KILL CONNECTION " .. tx:query("SELECT CONNECTION_ID() AS id")[1].id)
      tx:execute("INSERT INTO " .. TABLE .. " (id) VALUES (2)")
    end)
    H.assert_error(err, { "ConnectionLost", "TransactionError" })
    assert.are.same({}, ids())
    db:execute("INSERT INTO " .. TABLE .. " (id) VALUES (3)")
    assert.are.same({ 3 }, ids())
  end)

  it("SET STATEMENT max_statement_time=... gives QueryTimeout and keeps the connection", function()
    local before = db:pool_stats()
    local err = H.error_of(db.query, db, "SET STATEMENT max_statement_time = 0.2 FOR SELECT SLEEP(3)")
    H.assert_error(err, "QueryTimeout", "max_statement_time")
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    assert.are.equal(before.replaced, db:pool_stats().replaced)
  end)

  it("a query option for the server-side statement timeout", function()
    -- one row to select from (MariaDB's sequence engine), so the heavy
    -- expression below is really evaluated
    local q = ar.table("seq_1_to_1", db)
    for _, name in ipairs{ "timeout", "max_execution_time", "max_statement_time", "statement_timeout" } do
      if type(q[name]) == "function" then
        -- a heavy query: MariaDB's SLEEP() returns 1 when interrupted instead of failing
        local slow = q:select(ar.raw("(SELECT COUNT(*) FROM seq_1_to_100000 a, seq_1_to_1000 b) AS s")):limit(1)
        local err = H.error_of(function() return slow[name](slow, 0.2):all() end)
        H.assert_error(err, "QueryTimeout")
        return
      end
    end
    pending("MISSING API: no query option for max_statement_time / MAX_EXECUTION_TIME "
      .. "(the capability 'max_execution_time' is detected but nothing uses it); raw SQL works")
  end)
end)

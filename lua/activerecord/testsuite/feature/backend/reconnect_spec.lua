-- Losing the connection: outside a transaction the backend reconnects and
-- the statement succeeds; inside one the loss is raised and nothing is
-- replayed on a new connection.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/backend"

describe("backend reconnect", function()
  local scenario = testsuite.default_scenario()
  local db, observer

  local function ids(conn)
    local out = {}
    for i, row in ipairs(conn:query("SELECT id FROM accounts ORDER BY id")) do out[i] = row.id end
    return out
  end

  local function insert(conn, id)
    conn:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", id, "o" .. id)
  end

  setup(function()
    provider.setup(GROUP, scenario, { "accounts" })
    db = provider.new_backend(scenario, { pool = { size = 1 } })
    observer = provider.backend(scenario)
  end)

  teardown(function()
    if db then db:close() end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    observer:execute("DELETE FROM accounts")
  end)

  it("replaces a killed idle connection and runs the next statement", function()
    if not testsuite.requires_operations(provider, "session_id", "kill_session") then return end
    local before = db:pool_stats()
    local old = provider.session_id(db)
    provider.kill_session(scenario, old)
    insert(db, 1) -- a write, not merely a read
    local new = provider.session_id(db)
    assert.are_not.equal(old, new)
    assert.are.same({ 1 }, ids(observer))
    local after = db:pool_stats()
    assert.are.equal(before.replaced + 1, after.replaced)
    assert.are.equal(1, after.open)
  end)

  it("raises inside a transaction, rolls back, and replays nothing", function()
    if not testsuite.requires_operations(provider, "session_id", "kill_session") then return end
    local lost, later
    local err = testsuite.error_of(db.transaction, db, function(tx)
      insert(tx, 1)
      provider.kill_session(scenario, provider.session_id(tx))
      local ok, e = pcall(insert, tx, 2)
      assert(not ok, "a statement on a killed connection succeeded")
      lost = e
      -- the transaction is gone: later statements must not run elsewhere
      ok, e = pcall(insert, tx, 3)
      assert(not ok, "a statement ran after the transaction's connection was lost")
      later = e
    end)
    assert.is_true(lost.kind == "ConnectionLost" or lost.kind == "TransactionError", tostring(lost))
    assert.is_true(ar.errors.is(later, "TransactionError"), tostring(later))
    assert.is_true(err.kind == "ConnectionLost" or err.kind == "TransactionError", tostring(err))
    assert.are.same({}, ids(observer))
    assert.is_false(db:in_transaction())
    -- the backend itself recovers for the next statement
    insert(db, 4)
    assert.are.same({ 4 }, ids(observer))
  end)

  it("keeps serving other coroutines after one transaction lost its connection", function()
    if not testsuite.requires_operations(provider, "session_id", "kill_session") then return end
    local two = provider.new_backend(scenario, { pool = { size = 2 } })
    local co = coroutine.create(function()
      return pcall(two.transaction, two, function(tx)
        insert(tx, 1)
        coroutine.yield(provider.session_id(tx))
        insert(tx, 2)
      end)
    end)
    local _, victim = coroutine.resume(co)
    provider.kill_session(scenario, victim)
    insert(two, 3) -- another connection: unaffected
    local _, ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err), tostring(err))
    assert.are.same({ 3 }, ids(observer))
    two:close()
  end)
end)

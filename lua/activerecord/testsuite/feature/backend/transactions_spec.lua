-- db:transaction: commit, rollback with the original error, results,
-- savepoints, isolation as another connection sees it, read-only, option
-- checks, and a COMMIT that fails.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/backend"

describe("backend transactions", function()
  local scenario = testsuite.default_scenario()
  local db, observer

  local function ids(conn)
    local out = {}
    for i, row in ipairs(conn:query("SELECT id FROM accounts ORDER BY id")) do out[i] = row.id end
    return out
  end

  local function insert(conn, id, owner)
    return conn:execute("INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", id,
      owner or ("owner " .. id), "10.00")
  end

  setup(function()
    provider.setup(GROUP, scenario, { "accounts" })
    db = provider.backend(scenario)
    observer = provider.new_backend(scenario, { pool = { size = 1 } })
  end)

  teardown(function()
    if observer then observer:close() end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM accounts")
  end)

  it("commits when fn returns; nothing is visible to others before", function()
    local seen_inside
    db:transaction(function(tx)
      assert.is_true(tx:in_transaction())
      insert(tx, 1)
      insert(tx, 2)
      seen_inside = ids(observer)
    end)
    assert.are.same({}, seen_inside)
    assert.are.same({ 1, 2 }, ids(observer))
    assert.is_false(db:in_transaction())
  end)

  it("passes fn's return values through, nils included", function()
    local n, a, b, c = (function(...) return select("#", ...), ... end)(
      db:transaction(function() return 1, nil, "three" end))
    assert.are.equal(3, n)
    assert.are.equal(1, a)
    assert.is_nil(b)
    assert.are.equal("three", c)
  end)

  it("rolls back and re-raises fn's own error object unchanged", function()
    local boom = setmetatable({ reason = "domain rule broken" }, {
      __tostring = function() return "boom" end })
    local err = testsuite.error_of(db.transaction, db, function(tx)
      insert(tx, 1)
      error(boom)
    end)
    assert.is_true(rawequal(boom, err))
    assert.are.same({}, ids(observer))
    assert.is_false(db:in_transaction())
    -- string errors keep their text too
    err = testsuite.error_of(db.transaction, db, function(tx)
      insert(tx, 2)
      error("plain message", 0)
    end)
    assert.are.equal("plain message", err)
    assert.are.same({}, ids(observer))
  end)

  it("re-raises a database error with its kind and code, after rolling back", function()
    local raised
    local err = testsuite.error_of(db.transaction, db, function(tx)
      insert(tx, 1)
      local ok, e = pcall(insert, tx, 1) -- duplicate key
      raised = e
      assert(not ok)
      error(e, 0)
    end)
    assert.is_true(rawequal(raised, err))
    assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
    assert.is_not_nil(err.code)
    assert.are.same({}, ids(observer))
  end)

  it("nests with savepoints: an inner failure undoes only the inner part", function()
    local inner_err
    db:transaction(function(tx)
      insert(tx, 1)
      local ok, e = pcall(tx.transaction, tx, function(inner)
        insert(inner, 2)
        error("inner failed", 0)
      end)
      assert.is_false(ok)
      inner_err = e
      assert.is_true(tx:in_transaction()) -- the outer one goes on
      assert.are.same({ 1 }, ids(tx))
      insert(tx, 3)
      tx:transaction(function(inner) insert(inner, 4) end) -- inner success is kept
    end)
    assert.are.equal("inner failed", inner_err)
    assert.are.same({ 1, 3, 4 }, ids(observer))
  end)

  it("rolls back an inner success when the outer transaction fails", function()
    testsuite.error_of(db.transaction, db, function(tx)
      insert(tx, 1)
      tx:transaction(function(inner)
        insert(inner, 2)
        inner:transaction(function(deeper) insert(deeper, 3) end)
      end)
      error("outer failed", 0)
    end)
    assert.are.same({}, ids(observer))
  end)

  it("REPEATABLE READ keeps its snapshot while another connection commits", function()
    local before, after
    db:transaction(function(tx)
      before = #ids(tx)
      insert(observer, 9) -- autocommitted elsewhere
      after = #ids(tx)
    end, { isolation = "REPEATABLE READ" })
    assert.are.equal(0, before)
    assert.are.equal(0, after)
    assert.are.same({ 9 }, ids(db))
  end)

  it("READ COMMITTED sees what another connection commits meanwhile", function()
    local before, after
    db:transaction(function(tx)
      before = #ids(tx)
      insert(observer, 9)
      after = #ids(tx)
    end, { isolation = "READ COMMITTED" })
    assert.are.equal(0, before)
    assert.are.equal(1, after)
  end)

  it("read_only transactions read but reject writes", function()
    if not testsuite.requires_capabilities(db, "read_only_transactions") then return end
    insert(db, 1)
    local seen
    local err = testsuite.error_of(db.transaction, db, function(tx)
      seen = ids(tx)
      tx:execute("UPDATE accounts SET owner = ? WHERE id = ?", "changed", 1)
    end, { read_only = true })
    assert.are.same({ 1 }, seen)
    assert.is_true(ar.errors.is(err), tostring(err))
    assert.are.equal("owner 1", db:query("SELECT owner FROM accounts WHERE id = ?", 1)[1].owner)
  end)

  it("refuses to change isolation or read-only mode inside a transaction", function()
    local errs = {}
    db:transaction(function(tx)
      insert(tx, 1)
      errs[1] = testsuite.error_of(tx.transaction, tx, function() insert(tx, 2) end,
        { isolation = "SERIALIZABLE" })
      errs[2] = testsuite.error_of(tx.transaction, tx, function() insert(tx, 3) end,
        { read_only = true })
    end)
    for _, err in ipairs(errs) do
      assert.is_true(ar.errors.is(err, "TransactionError"), tostring(err))
    end
    assert.are.same({ 1 }, ids(observer)) -- the outer transaction went on
  end)

  it("rejects an unknown transaction option before running anything", function()
    local ran = false
    local err = testsuite.error_of(db.transaction, db, function() ran = true end,
      { isolaton = "SERIALIZABLE" })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("isolaton", err.message, 1, true)
    assert.matches("isolation", err.message:gsub("isolaton", ""), 1, true)
    assert.is_false(ran)
  end)

  it("raises when COMMIT fails (connection killed before fn returned); no row survives", function()
    if not testsuite.requires_operations(provider, "session_id", "kill_session") then return end
    local returned = false
    local err = testsuite.error_of(db.transaction, db, function(tx)
      insert(tx, 1)
      provider.kill_session(scenario, provider.session_id(tx))
      returned = true
      return "looks fine"
    end)
    assert.is_true(returned)
    assert.is_true(ar.errors.is(err), tostring(err))
    assert.is_true(err.kind == "ConnectionLost" or err.kind == "TransactionError", err.kind)
    assert.are.same({}, ids(observer))
    assert.are.same({}, ids(db)) -- and the backend serves again
  end)
end)

-- The `log` hook: one event per statement with timing and counts, values
-- only on request, slow statements flagged, errors attached, and a broken
-- hook never breaking the statement.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/backend"

describe("backend logging", function()
  local scenario = testsuite.default_scenario()
  local opened = {}

  -- A backend whose events land in the returned list.
  local function logged(extra)
    local events = {}
    local overrides = { pool = { size = 1 }, log = function(e) events[#events + 1] = e end }
    for k, v in pairs(extra or {}) do overrides[k] = v end
    local db = provider.new_backend(scenario, overrides)
    opened[#opened + 1] = db
    -- connecting may run statements of its own: start from an empty list
    for i = #events, 1, -1 do events[i] = nil end
    return db, events
  end

  local function find(events, fragment)
    for _, e in ipairs(events) do
      if e.sql:find(fragment, 1, true) then return e end
    end
    return nil
  end

  setup(function()
    provider.setup(GROUP, scenario, { "accounts" })
  end)

  teardown(function()
    for _, db in ipairs(opened) do db:close() end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    provider.backend(scenario):execute("DELETE FROM accounts")
  end)

  it("logs every statement with its SQL, parameter count, time and counts", function()
    local db, events = logged()
    db:execute("INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?), (?, ?, ?)",
      1, "ann", "1.00", 2, "bob", "2.00")
    local rows = db:query("SELECT id FROM accounts WHERE balance > ?", "0")
    db:execute("UPDATE accounts SET owner = ? WHERE id = ?", "bea", 2)
    assert.are.equal(2, #rows)
    assert.are.equal(3, #events)
    local insert, select_, update = events[1], events[2], events[3]
    assert.matches("^INSERT INTO accounts", insert.sql)
    assert.are.equal(6, insert.params)
    assert.are.equal(2, insert.affected)
    assert.are.equal(1, select_.params)
    assert.are.equal(2, select_.rows)
    assert.are.equal(2, update.params)
    assert.are.equal(1, update.affected)
    for _, e in ipairs(events) do
      assert.are.equal("number", type(e.seconds))
      assert.is_true(e.seconds >= 0 and e.seconds < 5)
      assert.is_nil(e.values) -- values stay out of logs unless asked for
      assert.is_nil(e.error)
      assert.is_falsy(e.slow)
    end
    -- the statement text carries placeholders, never the values
    assert.is_nil(insert.sql:find("ann", 1, true))
  end)

  it("logs statements run inside a transaction", function()
    local db, events = logged()
    db:transaction(function(tx)
      tx:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", 1, "ann")
    end)
    assert.is_not_nil(find(events, "INSERT INTO accounts"))
  end)

  it("includes parameter values only with log_params", function()
    local db, events = logged({ log_params = true })
    db:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", 5, "s3cret owner")
    local e = find(events, "INSERT INTO accounts")
    assert.are.equal(2, e.values.n or #e.values)
    assert.are.equal(5, e.values[1])
    assert.are.equal("s3cret owner", e.values[2])
  end)

  it("flags statements slower than slow_query_seconds", function()
    if not testsuite.requires_operations(provider, "sleep_statement") then return end
    local db, events = logged({ slow_query_seconds = 0.1 })
    local sql, params = provider.sleep_statement(0.2)
    db:query(sql, table.unpack(params))
    db:query("SELECT 1 AS one")
    local slow, fast = events[1], events[2]
    assert.is_true(slow.slow)
    assert.is_true(slow.seconds >= 0.2, "took " .. slow.seconds)
    assert.is_falsy(fast.slow)
  end)

  it("attaches the error object to the event of a failing statement", function()
    local db, events = logged()
    db:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", 1, "ann")
    local err = testsuite.error_of(db.execute, db,
      "INSERT INTO accounts (id, owner) VALUES (?, ?)", 1, "dup")
    local e = events[#events]
    assert.is_true(rawequal(err, e.error))
    assert.is_true(ar.errors.is(e.error, "IntegrityError"), tostring(e.error))
    assert.matches("^INSERT INTO accounts", e.sql)
  end)

  it("keeps statements working when the log hook itself fails", function()
    local calls = 0
    local db = provider.new_backend(scenario, { pool = { size = 1 }, log = function()
      calls = calls + 1
      error("the log hook broke")
    end })
    opened[#opened + 1] = db
    local stderr = io.stderr -- silence the backend's report of the broken hook
    io.stderr = { write = function(self) return self end } -- luacheck: ignore 122
    local ok, res = pcall(function()
      db:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", 1, "ann")
      return db:query("SELECT owner FROM accounts WHERE id = ?", 1)
    end)
    io.stderr = stderr -- luacheck: ignore 122
    assert.is_true(ok, tostring(res))
    assert.are.equal("ann", res[1].owner)
    assert.is_true(calls >= 2)
  end)

  it("counts statements through the suite's statement counter", function()
    local db = provider.new_backend(scenario, { pool = { size = 1 } })
    opened[#opened + 1] = db
    local n = testsuite.count_statements(db, function()
      for id = 1, 3 do db:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", id, "x") end
      db:query("SELECT * FROM accounts")
    end)
    assert.are.equal(4, n)
    local selects = testsuite.count_statements(db, function()
      db:query("SELECT * FROM accounts")
      db:execute("DELETE FROM accounts WHERE id = ?", 1)
    end, "^SELECT")
    assert.are.equal(1, selects)
    assert.are.equal(0, testsuite.count_statements(db, function() end))
  end)
end)

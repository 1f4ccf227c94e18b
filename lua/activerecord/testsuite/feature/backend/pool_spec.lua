-- Connection pool: size, reuse, counters, exhaustion, coroutine affinity,
-- idle/lifetime replacement and validation on checkout.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/backend"

describe("backend pool", function()
  local scenario = testsuite.default_scenario()
  local opened = {}

  -- a fresh backend with its own pool; closed in teardown
  local function backend(pool, extra)
    local overrides = { pool = pool }
    for k, v in pairs(extra or {}) do overrides[k] = v end
    local db = provider.new_backend(scenario, overrides)
    opened[#opened + 1] = db
    return db
  end

  local function count_accounts(db, id)
    return db:query("SELECT COUNT(*) AS n FROM accounts WHERE id = ?", id)[1].n
  end

  local holders = {}

  -- A coroutine holding a transaction (and so a connection) until resumed.
  local function hold(db, id)
    local co = coroutine.create(function()
      return db:transaction(function(tx)
        if id then tx:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", id, "held") end
        coroutine.yield(provider.session_id and provider.session_id(tx))
        return "committed"
      end)
    end)
    local ok, session = coroutine.resume(co)
    assert(ok, session)
    holders[#holders + 1] = co
    return co, session
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

  -- a failed spec must not leave a transaction holding row locks
  after_each(function()
    for _, co in ipairs(holders) do
      if coroutine.status(co) == "suspended" then coroutine.resume(co) end
    end
    holders = {}
  end)

  it("reuses one idle connection for sequential statements", function()
    if not testsuite.requires_operations(provider, "session_id") then return end
    local db = backend({ size = 3 })
    local first = provider.session_id(db)
    for _ = 1, 5 do assert.are.equal(first, provider.session_id(db)) end
    local s = db:pool_stats()
    assert.are.equal(1, s.created)
    assert.are.equal(1, s.open)
    assert.are.equal(0, s.in_use)
    assert.are.equal(1, s.idle)
    assert.are.equal(3, s.size)
  end)

  it("opens connections up to size for concurrent holders, then reuses them", function()
    local db = backend({ size = 2 })
    local a, id_a = hold(db)
    local b, id_b = hold(db)
    if id_a then assert.are_not.equal(id_a, id_b) end
    local s = db:pool_stats()
    assert.are.equal(2, s.open)
    assert.are.equal(2, s.in_use)
    assert.are.equal(0, s.idle)
    assert.is_true(select(2, coroutine.resume(a)) == "committed")
    assert.is_true(select(2, coroutine.resume(b)) == "committed")
    s = db:pool_stats()
    assert.are.equal(2, s.open)
    assert.are.equal(0, s.in_use)
    assert.are.equal(2, s.idle)
    -- both are reused: no third connection ever
    hold(db)
    hold(db)
    assert.are.equal(2, db:pool_stats().created)
  end)

  it("waits up to checkout_timeout when exhausted, then raises ConnectionError", function()
    local db = backend({ size = 1, checkout_timeout = 0.2 })
    local holder = hold(db, 1)
    local started = testsuite.now()
    local err = testsuite.error_of(db.query, db, "SELECT 1 AS one")
    local elapsed = testsuite.now() - started
    assert.is_true(ar.errors.is(err, "ConnectionError"), tostring(err))
    assert.is_true(elapsed >= 0.19, "gave up after " .. elapsed .. " s")
    assert.is_true(elapsed < 2, "waited " .. elapsed .. " s")
    local s = db:pool_stats()
    assert.are.equal(1, s.waits)
    assert.are.equal(1, s.timeouts)
    assert.are.equal(1, s.open)
    -- the holder is unaffected and the pool serves again once it is done
    assert.are.equal("committed", select(2, coroutine.resume(holder)))
    assert.are.equal(1, count_accounts(db, 1))
  end)

  it("lets a scheduler finish the holder while a checkout waits (pool.wait)", function()
    local holder
    local db = backend({ size = 1, checkout_timeout = 1, wait = function()
      if coroutine.status(holder) == "suspended" then assert(coroutine.resume(holder)) end
    end })
    holder = hold(db, 7)
    -- the wait hook resumes the holder, which commits and frees the connection
    assert.are.equal(1, count_accounts(db, 7))
    assert.are.equal("dead", coroutine.status(holder))
    assert.are.equal(1, db:pool_stats().waits)
    assert.are.equal(0, db:pool_stats().timeouts)
  end)

  it("never shares a transaction's connection with another coroutine", function()
    if not testsuite.requires_operations(provider, "session_id") then return end
    local db = backend({ size = 2 })
    local holder, tx_session = hold(db, 42)
    assert.is_false(db:in_transaction()) -- the transaction belongs to the holder
    local other = provider.session_id(db)
    assert.are_not.equal(tx_session, other)
    assert.are.equal(0, count_accounts(db, 42)) -- uncommitted: invisible here
    assert.are.equal("committed", select(2, coroutine.resume(holder)))
    assert.are.equal(1, count_accounts(db, 42))
  end)

  it("replaces connections idle longer than idle_timeout", function()
    if not testsuite.requires_operations(provider, "session_id") then return end
    local db = backend({ idle_timeout = 0.05 })
    local control = backend({}) -- defaults: kept
    local first, kept = provider.session_id(db), provider.session_id(control)
    testsuite.sleep(0.1)
    assert.are_not.equal(first, provider.session_id(db))
    assert.are.equal(kept, provider.session_id(control))
    local s = db:pool_stats()
    assert.are.equal(2, s.created)
    assert.are.equal(1, s.closed)
    assert.are.equal(1, s.open)
  end)

  it("replaces connections older than max_lifetime even when in steady use", function()
    if not testsuite.requires_operations(provider, "session_id") then return end
    local db = backend({ max_lifetime = 0.1, idle_timeout = 60 })
    local first = provider.session_id(db)
    local deadline = testsuite.now() + 0.15
    local seen = { [first] = true }
    local distinct = 1
    while testsuite.now() < deadline do -- used every few ms: never idle
      local id = provider.session_id(db)
      if not seen[id] then seen[id], distinct = true, distinct + 1 end
      testsuite.sleep(0.01)
    end
    assert.is_true(distinct >= 2, "the connection was never replaced")
    assert.is_true(db:pool_stats().created >= 2)
  end)

  it("pings on checkout after validate_on_checkout seconds idle, and not before", function()
    if not testsuite.requires_operations(provider, "ping_count") then return end
    local always = backend({ size = 1, validate_on_checkout = true })
    local a = provider.ping_count(always)
    assert.are.equal(a + 1, provider.ping_count(always))
    local never = backend({ size = 1, validate_on_checkout = false })
    local n = provider.ping_count(never)
    assert.are.equal(n, provider.ping_count(never))
    local after = backend({ size = 1, validate_on_checkout = 0.05 })
    local t = provider.ping_count(after)
    assert.are.equal(t, provider.ping_count(after)) -- used a moment ago
    testsuite.sleep(0.08)
    assert.are.equal(t + 1, provider.ping_count(after))
  end)

  it("refuses statements after close with ConnectionError", function()
    local db = provider.new_backend(scenario, { pool = { size = 1 } })
    assert.are.equal(1, db:query("SELECT 1 AS one")[1].one)
    db:close()
    local err = testsuite.error_of(db.query, db, "SELECT 1 AS one")
    assert.is_true(ar.errors.is(err, "ConnectionError"), tostring(err))
    assert.are.equal(0, db:pool_stats().open)
  end)
end)

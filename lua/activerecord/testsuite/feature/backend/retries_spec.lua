-- db:transaction{ retries = n }: a transaction that loses a lock conflict
-- (lock-wait timeout, real deadlock) is re-run and succeeds; without
-- retries the error reaches the caller with its kind.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/backend"

describe("backend transaction retries", function()
  local scenario = testsuite.default_scenario()
  local db

  local function balance(conn, id)
    return tonumber(conn:query("SELECT balance FROM accounts WHERE id = ?", id)[1].balance)
  end

  local function add(conn, id, amount)
    conn:execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, id)
  end

  setup(function()
    provider.setup(GROUP, scenario, { "accounts" })
    db = provider.backend(scenario)
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM accounts")
    for id = 1, 20 do
      db:execute("INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)", id, "o" .. id, "100.00")
    end
  end)

  describe("after a lock-wait timeout", function()
    local waiter, holder

    setup(function()
      if provider.lock_wait_options then
        waiter = provider.new_backend(scenario, provider.lock_wait_options(1))
        holder = provider.new_backend(scenario, { pool = { size = 1 } })
      end
    end)

    teardown(function()
      if waiter then waiter:close() end
      if holder then holder:close() end
    end)

    local held = {}

    -- Holds the row lock on account `id` in a suspended coroutine.
    local function lock_row(id)
      local co = coroutine.create(function()
        holder:transaction(function(h)
          add(h, id, 1)
          coroutine.yield()
        end)
      end)
      assert(coroutine.resume(co))
      held[#held + 1] = co
      return co
    end

    -- a failed spec must not leave the lock held for the next one
    after_each(function()
      for _, co in ipairs(held) do
        if coroutine.status(co) == "suspended" then coroutine.resume(co) end
      end
      held = {}
    end)

    it("re-runs fn and succeeds once the lock is free", function()
      if not testsuite.requires_operations(provider, "lock_wait_options") then return end
      local co = lock_row(1)
      local attempts = 0
      local result = waiter:transaction(function(tx)
        attempts = attempts + 1
        if attempts == 2 then assert(coroutine.resume(co)) end -- the other side commits
        add(tx, 1, 10)
        return "moved"
      end, { retries = 3 })
      assert.are.equal("moved", result)
      assert.are.equal(2, attempts)
      assert.are.equal(111, balance(db, 1)) -- both committed, each once
    end)

    it("raises LockTimeoutError without retries and keeps nothing", function()
      if not testsuite.requires_operations(provider, "lock_wait_options") then return end
      local co = lock_row(1)
      local attempts = 0
      local err = testsuite.error_of(waiter.transaction, waiter, function(tx)
        attempts = attempts + 1
        add(tx, 2, 5) -- written before the conflict: must be rolled back
        add(tx, 1, 10)
      end)
      assert(coroutine.resume(co))
      assert.are.equal(1, attempts)
      assert.is_true(ar.errors.is(err, "LockTimeoutError"), tostring(err))
      assert.are.equal(100, balance(db, 2))
      assert.are.equal(101, balance(db, 1))
    end)

    it("gives up after the configured number of retries", function()
      if not testsuite.requires_operations(provider, "lock_wait_options") then return end
      local co = lock_row(1)
      local attempts = 0
      local err = testsuite.error_of(waiter.transaction, waiter, function(tx)
        attempts = attempts + 1
        add(tx, 1, 10)
      end, { retries = 1 })
      assert(coroutine.resume(co))
      assert.are.equal(2, attempts)
      assert.is_true(ar.errors.is(err, "LockTimeoutError"), tostring(err))
    end)
  end)

  describe("after a real deadlock with another session", function()
    -- The other session (another process) locks account 2 and 19 others,
    -- signals, then asks for account 1, which our transaction holds while
    -- it asks for account 2. The server breaks the cycle by rolling back the
    -- lighter transaction: ours.
    local OTHER = {
      { sql = "UPDATE accounts SET balance = balance + 1 WHERE id >= 2" },
      { signal = true },
      { sleep = 0.3 },
      { sql = "UPDATE accounts SET balance = balance + 1 WHERE id = 1" },
    }

    local function run(opts)
      local attempts, other = 0, nil
      local ok, res = pcall(db.transaction, db, function(tx)
        attempts = attempts + 1
        add(tx, 1, 10)
        if attempts == 1 then
          other = provider.concurrent_session(scenario, OTHER)
          assert(other:wait_signal(), "the other session did not start")
        end
        add(tx, 2, 10)
        return "done"
      end, opts)
      local other_ok, detail = other:finish()
      assert.is_true(other_ok, detail)
      return ok, res, attempts
    end

    it("re-runs fn and succeeds", function()
      if not testsuite.requires_operations(provider, "concurrent_session") then return end
      local ok, res, attempts = run({ retries = 2 })
      assert.is_true(ok, tostring(res))
      assert.are.equal("done", res)
      assert.are.equal(2, attempts)
      assert.are.equal(111, balance(db, 1))
      assert.are.equal(111, balance(db, 2))
    end)

    it("raises DeadlockError without retries", function()
      if not testsuite.requires_operations(provider, "concurrent_session") then return end
      local ok, err, attempts = run(nil)
      assert.is_false(ok)
      assert.are.equal(1, attempts)
      assert.is_true(ar.errors.is(err, "DeadlockError"), tostring(err))
      assert.are.equal(101, balance(db, 1)) -- only the other session's change
      assert.are.equal(101, balance(db, 2))
    end)
  end)

  it("does not re-run fn for other errors", function()
    local attempts = 0
    local err = testsuite.error_of(db.transaction, db, function(tx)
      attempts = attempts + 1
      tx:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", 1, "duplicate")
    end, { retries = 3 })
    assert.are.equal(1, attempts)
    assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
  end)

  it("checks the retries option", function()
    for _, bad in ipairs({ -1, 1.5, "3" }) do
      local err = testsuite.error_of(db.transaction, db, function() end, { retries = bad })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    end
    local err = testsuite.error_of(db.transaction, db, function(tx)
      tx:transaction(function() end, { retries = 2 })
    end)
    assert.is_true(ar.errors.is(err, "TransactionError"), tostring(err))
  end)
end)

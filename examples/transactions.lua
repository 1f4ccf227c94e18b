-- Transactions: db:transaction(fn) commits when fn returns and rolls back
-- when it raises; a nested call is a savepoint, so an inner failure undoes
-- only the inner part; `retries = n` re-runs the whole function after a
-- deadlock. The deadlock here is a real one, with a second session in another
-- process (the C core blocks while it waits for a lock, so two coroutines of
-- one process cannot wait on each other), made deterministic by waiting until
-- the server reports that session as waiting for our lock.
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/transactions.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")

local function connect()
  return ar.connect(ar.config_from_env())
end

-- ---- the other session (this file run with --deadlock-helper) -------------

-- Moves 5.00 from account 2 to account 1: it locks row 2 first, tells the
-- main process which session it is, then asks for row 1, which the main
-- process holds. It changes rows, so it is the heavier transaction and the
-- server picks the main process's (lighter) one as the deadlock victim.
if arg[1] == "--deadlock-helper" then
  local db <close> = connect()
  local ok, err = pcall(db.transaction, db, function(tx)
    tx:execute("UPDATE example_accounts SET balance = balance - ? WHERE id = ?", "5.00", 2)
    io.write(("ready %d\n"):format(tx:query("SELECT CONNECTION_ID() AS id")[1].id))
    io.flush()
    tx:execute("UPDATE example_accounts SET balance = balance + ? WHERE id = ?", "5.00", 1)
  end)
  io.write(ok and "helper committed\n" or ("helper failed: " .. tostring(err) .. "\n"))
  return
end

-- ---- the main process -------------------------------------------------------

local db <close> = connect()
ar.set_default_backend(db)

ar.schema.create_table(db, "example_accounts", function(t)
  t:bigint("id", { primary_key = true })
  t:string("owner", { size = 100, nullable = false })
  t:decimal("balance", { precision = 12, scale = 2, nullable = false, default = "0.00" })
end, { force = true })

local Account = ar.Model{
  name = "Account", table = "example_accounts",
  fields = {
    id = { type = "integer", primary_key = true, auto_increment = false },
    owner = { type = "string", required = true },
    balance = { type = "decimal", precision = 12, scale = 2 },
  },
}

local function reset()
  db:execute("DELETE FROM example_accounts")
  Account:insert_all{ { id = 1, owner = "Ann", balance = "100.00" }, { id = 2, owner = "Bo", balance = "100.00" } }
end

local function balances()
  local rows = db:query("SELECT id, balance FROM example_accounts ORDER BY id")
  local total = db:query("SELECT SUM(balance) AS total FROM example_accounts")[1].total
  return ("1=%s 2=%s (total %s)"):format(rows[1].balance, rows[2].balance, total)
end

-- 1. Commit and rollback.
reset()
db:transaction(function()
  Account:find(1):update{ balance = "90.00" }
  Account:find(2):update{ balance = "110.00" }
end)
print("committed transfer: " .. balances())

local ok, err = pcall(db.transaction, db, function()
  Account:find(1):update{ balance = "0.00" }
  error("card declined")
end)
print(("failed transaction rolled back (%s): %s"):format(ok and "no error" or tostring(err):match("card declined"),
  balances()))

-- 2. Nesting: the inner transaction is a savepoint. Its failure undoes only
-- its own work; the outer part still commits.
reset()
db:transaction(function()
  Account:find(1):update{ balance = "80.00" }                 -- kept
  local inner_ok, inner_err = pcall(db.transaction, db, function()
    Account:find(2):update{ balance = "999.00" }              -- undone
    error("inner failure")
  end)
  print(("inner transaction failed (%s), in_transaction=%s"):format(
    tostring(inner_err):match("inner failure") or tostring(inner_ok), tostring(db:in_transaction())))
  db:transaction(function()                                   -- a second savepoint, kept
    Account:find(2):update{ balance = "120.00" }
  end)
end)
print("after nesting, outer work and the second savepoint kept, inner undone: " .. balances())

-- 3. Three levels: the middle level catches its child's failure and goes on.
reset()
local levels = {}
db:transaction(function()
  levels[#levels + 1] = "outer"
  db:transaction(function()
    levels[#levels + 1] = "middle"
    Account:find(1):update{ balance = "101.00" }
    pcall(db.transaction, db, function()
      levels[#levels + 1] = "inner (fails)"
      Account:find(1):update{ balance = "-1.00" }
      error("nope")
    end)
  end)
end)
print(("levels ran: %s; account 1 = %s"):format(table.concat(levels, " > "), Account:find(1).balance))

-- 4. A real deadlock, retried. We move 10.00 from account 1 to 2, locking
-- both rows with SELECT ... FOR UPDATE; the helper moves 5.00 from 2 to 1,
-- locking them in the other order.
reset()
local lua = arg[-1] or "lua5.4"
local script = arg[0]
local helper
local attempts = 0
-- INNODB_TRX is a cache the server refreshes only when it was last read
-- more than 0.1 s ago: poll it more slowly than that, or it never changes.
local function waiting(tx, session)
  local rows = tx:query("SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX "
    .. "WHERE trx_mysql_thread_id = ? AND trx_state = 'LOCK WAIT'", session)
  return rows[1].n > 0
end

db:transaction(function(tx)
  attempts = attempts + 1
  Account:where{ id = 1 }:for_update():all()                 -- we hold row 1
  if attempts == 1 then
    helper = assert(io.popen(("%q %q --deadlock-helper"):format(lua, script), "r"))
    local session = tonumber(assert(helper:read("l"), "helper did not start"):match("^ready (%d+)$"))
    -- the helper now holds row 2 and asks for row 1: wait until the server says it waits
    local deadline = ar.core.monotime() + 10
    while not waiting(tx, session) do
      assert(ar.core.monotime() < deadline, "the helper never waited for our lock")
      ar.core.sleep(0.15)
    end
    print("attempt 1: we hold account 1, the other session holds account 2 and waits for account 1")
  end
  local locked_ok, locked_err = pcall(function() return Account:where{ id = 2 }:for_update():all() end)
  if not locked_ok then
    print(("attempt %d: %s (code %d): the server rolled this attempt back"):format(attempts,
      locked_err.kind, locked_err.code))
    error(locked_err, 0)                                       -- let retries handle it
  end
  tx:execute("UPDATE example_accounts SET balance = balance - ? WHERE id = ?", "10.00", 1)
  tx:execute("UPDATE example_accounts SET balance = balance + ? WHERE id = ?", "10.00", 2)
end, { retries = 3 })
print(("deadlock retried: committed on attempt %d"):format(attempts))
for line in helper:lines() do print("other session: " .. line) end
helper:close()
print("after both transfers: " .. balances())

-- 5. Without retries the DeadlockError reaches the caller (shown with
-- the same helper, in a compact form).
reset()
attempts = 0
ok, err = pcall(db.transaction, db, function(tx)
  attempts = attempts + 1
  Account:where{ id = 1 }:for_update():all()
  helper = assert(io.popen(("%q %q --deadlock-helper"):format(lua, script), "r"))
  local session = tonumber(helper:read("l"):match("^ready (%d+)$"))
  local deadline = ar.core.monotime() + 10
  while not waiting(tx, session) do
    assert(ar.core.monotime() < deadline, "the helper never waited for our lock")
    ar.core.sleep(0.15)
  end
  Account:where{ id = 2 }:for_update():all()
end)
for _ in helper:lines() do end
helper:close()
print(("without retries: raised %s after %d attempt; only the other transfer applied: %s"):format(
  ok and "nothing" or err.kind, attempts, balances()))

ar.schema.drop_table(db, "example_accounts", { if_exists = true })
print("cleaned up")

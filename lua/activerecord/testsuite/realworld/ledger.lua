-- The ledger scenario's models and its one business operation, shared by
-- ledger_spec.lua and the worker processes it starts (worker() below).
--
-- Money is DECIMAL and never becomes a Lua number: amounts travel as exact
-- strings ("12.34"), balances change in SQL (`balance - CAST(? AS DECIMAL)`)
-- and every sum is computed by the server.
local ar = require("activerecord")

local M = {}

M.TABLES = { "ledger_entries", "ledger_transfers", "ledger_accounts" }

-- Opening balances; their total, as the server must always report it.
M.OPENING = { { id = 1, owner = "Ann", opening = "1000.00" }, { id = 2, owner = "Bo", opening = "250.50" },
              { id = 3, owner = "Cy", opening = "75.25" }, { id = 4, owner = "Di", opening = "0.10" },
              { id = 5, owner = "Ed", opening = "3333.33" } }
M.OPENING_TOTAL = "4659.18"

-- Creates the tables (dropping old ones first).
function M.create_tables(db)
  for _, t in ipairs(M.TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
  ar.schema.create_table(db, "ledger_accounts", function(t)
    t:bigint("id", { primary_key = true })
    t:string("owner", { size = 100, nullable = false })
    t:decimal("opening", { precision = 14, scale = 2, nullable = false })
    t:decimal("balance", { precision = 14, scale = 2, nullable = false })
  end)
  ar.schema.create_table(db, "ledger_transfers", function(t)
    t:bigint("id", { primary_key = true, auto_increment = true })
    t:bigint("from_id", { nullable = false, references = { table = "ledger_accounts" } })
    t:bigint("to_id", { nullable = false, references = { table = "ledger_accounts" } })
    t:decimal("amount", { precision = 14, scale = 2, nullable = false })
    t:string("worker", { size = 20 })
  end)
  -- the journal: double entry, one debit and one credit per transfer
  ar.schema.create_table(db, "ledger_entries", function(t)
    t:bigint("id", { primary_key = true, auto_increment = true })
    t:bigint("transfer_id", { nullable = false, references = { table = "ledger_transfers", on_delete = "cascade" } })
    t:bigint("account_id", { nullable = false, index = true, references = { table = "ledger_accounts" } })
    t:decimal("amount", { precision = 14, scale = 2, nullable = false })
  end)
end

function M.drop_tables(db)
  for _, t in ipairs(M.TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
end

local function positive_money(v)
  if type(v) ~= "string" or not v:match("^%d+%.%d%d$") or not v:match("[1-9]") then
    return false, "must be a positive amount with two decimals, as a string"
  end
  return true
end

-- The models, bound to `db`.
function M.models(db)
  local L = { db = db }
  L.Account = ar.Model{ name = "LedgerAccount", table = "ledger_accounts", backend = db,
    fields = {
      id = { type = "integer", primary_key = true, auto_increment = false },
      owner = { type = "string", required = true },
      opening = { type = "decimal", precision = 14, scale = 2, readonly = true },
      balance = { type = "decimal", precision = 14, scale = 2 },
    },
    relations = { entries = ar.has_many("LedgerEntry", { foreign_key = "account_id", order_by = "id" }) } }
  L.Transfer = ar.Model{ name = "LedgerTransfer", table = "ledger_transfers", backend = db,
    fields = {
      id = "integer", from_id = "integer", to_id = "integer", worker = "string",
      amount = { type = "decimal", precision = 14, scale = 2, validate = positive_money },
    },
    relations = { entries = ar.has_many("LedgerEntry", { foreign_key = "transfer_id", order_by = "id" }) } }
  L.Entry = ar.Model{ name = "LedgerEntry", table = "ledger_entries", backend = db,
    fields = { id = "integer", transfer_id = "integer", account_id = "integer",
               amount = { type = "decimal", precision = 14, scale = 2 } } }
  return L
end

function M.open_accounts(L)
  L.db:execute("DELETE FROM ledger_entries")
  L.db:execute("DELETE FROM ledger_transfers")
  L.db:execute("DELETE FROM ledger_accounts")
  local rows = {}
  for i, a in ipairs(M.OPENING) do
    rows[i] = { id = a.id, owner = a.owner, opening = a.opening, balance = a.opening }
  end
  L.Account:insert_all(rows)
end

-- An exact DECIMAL operand for SQL arithmetic: the string is bound and cast
-- by the server (a bare string operand would be converted to a double).
local function money(amount)
  return ar.raw("CAST(? AS DECIMAL(14,2))", amount)
end
M.money = money

-- Moves `amount` (an exact string) from one account to another in one
-- transaction: both accounts locked with SELECT ... FOR UPDATE in the order
-- the transfer names them (so two opposite transfers can deadlock; the
-- server rolls one back and `retries` runs it again), the debit only when
-- the balance covers it, the credit, the transfer and its two journal
-- entries. Returns the transfer, or nil and a reason for a refused one;
-- raises for anything else. opts: retries, worker, fail_after_debit (tests).
function M.transfer(L, from_id, to_id, amount, opts)
  opts = opts or {}
  if from_id == to_id then return nil, "same account" end
  local ok, v = positive_money(amount)
  if not ok then return nil, v end
  local attempts = 0
  local result, reason = L.db:transaction(function()
    attempts = attempts + 1
    local from = L.Account:where{ id = from_id }:for_update():one()
    local to = L.Account:where{ id = to_id }:for_update():one()
    if not from or not to then return nil, "no such account" end
    -- the comparison and the subtraction are the server's, in DECIMAL
    local debited = L.Account:where{ id = from_id }:where(ar.col("balance"):ge(money(amount)))
      :update_all{ balance = ar.col("balance"):sub(money(amount)) }
    if debited == 0 then return nil, "insufficient funds" end
    if opts.fail_after_debit then error(opts.fail_after_debit, 0) end
    L.Account:where{ id = to_id }:update_all{ balance = ar.col("balance"):add(money(amount)) }
    local t = L.Transfer:create{ from_id = from_id, to_id = to_id, amount = amount, worker = opts.worker }
    L.Entry:insert_all{ { transfer_id = t.id, account_id = from_id, amount = "-" .. amount },
                        { transfer_id = t.id, account_id = to_id, amount = amount } }
    return t
  end, { retries = opts.retries or 0 })
  return result, reason, attempts
end

-- ---- invariants ------------------------------------------------------------

-- Every check the ledger must pass; returns a table of facts (all from SQL).
function M.audit(L)
  local db = L.db
  local facts = {}
  facts.total = L.Account:sum("balance")
  facts.opening_total = L.Account:sum("opening")
  facts.negative = L.Account:where(ar.col("balance"):lt(0)):count()
  -- the journal explains every balance: opening + entries = balance
  facts.unexplained = db:query([[
    SELECT COUNT(*) AS n FROM ledger_accounts a
     WHERE a.balance <> a.opening + COALESCE((SELECT SUM(e.amount) FROM ledger_entries e
                                               WHERE e.account_id = a.id), 0)]])[1].n
  -- each transfer: exactly two entries, a debit of its amount and a credit
  facts.unbalanced = db:query([[
    SELECT COUNT(*) AS n FROM ledger_transfers t
     WHERE (SELECT COUNT(*) FROM ledger_entries e WHERE e.transfer_id = t.id) <> 2
        OR (SELECT SUM(e.amount) FROM ledger_entries e WHERE e.transfer_id = t.id) <> 0
        OR NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = t.id
                          AND e.account_id = t.to_id AND e.amount = t.amount)
        OR NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = t.id
                          AND e.account_id = t.from_id AND e.amount = -t.amount)]])[1].n
  facts.journal_sum = L.Entry:sum("amount") or "0.00"
  facts.transfers = L.Transfer:query():count()
  facts.entries = L.Entry:query():count()
  return facts
end

-- ---- worker processes ------------------------------------------------------

-- Entry point of a worker process (started by ledger_spec.lua): `n`
-- pseudo-random transfers through the test provider's backend, then one
-- line "worker <name> ok=<n> refused=<n> failed=<n> attempts=<n>".
function M.worker(scenario, name, n, seed)
  local testsuite = require("activerecord.testsuite")
  local db = testsuite.provider().new_backend(scenario, { pool = { size = 1 } })
  local L = M.models(db)
  math.randomseed(seed)
  local done, refused, failed, attempts = 0, 0, 0, 0
  for _ = 1, n do
    local from = math.random(#M.OPENING)
    local to = math.random(#M.OPENING - 1)
    if to >= from then to = to + 1 end
    local amount = ("%d.%02d"):format(math.random(0, 120), math.random(1, 99))
    local ok, t, reason, tries = pcall(M.transfer, L, from, to, amount, { retries = 20, worker = name })
    if not ok then
      failed = failed + 1
      io.stderr:write(("worker %s: %s\n"):format(name, tostring(t)))
    elseif t then
      done = done + 1
      attempts = attempts + tries
    else
      refused = refused + 1
      attempts = attempts + (tries or 0)
      assert(reason == "insufficient funds", reason)
    end
  end
  db:close()
  io.write(("worker %s ok=%d refused=%d failed=%d attempts=%d\n"):format(name, done, refused, failed, attempts))
end

return M

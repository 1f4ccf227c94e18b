-- A ledger with DECIMAL money: accounts, transfers and a double-entry
-- journal (activerecord.testsuite.realworld.ledger). Amounts stay exact
-- strings and every sum is the server's; a transfer locks both accounts
-- with SELECT ... FOR UPDATE inside a transaction and is retried after a
-- deadlock; worker processes transfer concurrently. After every spec the
-- books must balance: the total across accounts is the opening total, no
-- account is negative, the journal explains every balance and every
-- transfer has a matching debit and credit.
local testsuite = require("activerecord.testsuite")
local ledger = require("activerecord.testsuite.realworld.ledger")

local provider = testsuite.provider()
local GROUP = "realworld_ledger"

describe("realworld: a ledger", function()
  local scenario = testsuite.default_scenario()
  local db, L

  local function balance(id) return L.Account:find(id).balance end

  local function assert_books_balance()
    local facts = ledger.audit(L)
    assert.are.equal(ledger.OPENING_TOTAL, facts.total)
    assert.are.equal(ledger.OPENING_TOTAL, facts.opening_total)
    assert.are.equal(0, facts.negative)
    assert.are.equal(0, facts.unexplained)
    assert.are.equal(0, facts.unbalanced)
    assert.is_truthy(facts.journal_sum:match("^%-?0%.00$"), facts.journal_sum)
    assert.are.equal(2 * facts.transfers, facts.entries)
    return facts
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ledger.create_tables(db)
    L = ledger.models(db)
  end)

  teardown(function()
    ledger.drop_tables(db)
    provider.teardown(GROUP, scenario)
  end)

  before_each(function() ledger.open_accounts(L) end)
  after_each(function() assert_books_balance() end)

  it("opens with exact balances and the expected total", function()
    assert.are.equal("1000.00", balance(1))
    assert.are.equal("0.10", balance(4))
    assert.are.equal(ledger.OPENING_TOTAL, L.Account:sum("balance"))
  end)

  it("keeps cents exact where Lua floats would not", function()
    for _ = 1, 10 do assert(ledger.transfer(L, 1, 4, "0.10")) end
    for _ = 1, 3 do assert(ledger.transfer(L, 2, 3, "0.70")) end
    assert.are.equal("999.00", balance(1))
    assert.are.equal("1.10", balance(4))
    assert.are.equal("248.40", balance(2))
    assert.are.equal("77.35", balance(3))
    -- the same sums in floats drift: 0.1 added ten times is not 1.0
    local f = 0
    for _ = 1, 10 do f = f + 0.1 end
    assert.are_not.equal(1.0, f)
    -- the server's sums are exact DECIMAL strings
    assert.are.equal("1.00", L.Transfer:where{ to_id = 4 }:sum("amount"))
    assert.are.equal("2.10", L.Transfer:where{ from_id = 2 }:sum("amount"))
    assert.are.equal("-1.00", L.Entry:where{ account_id = 1 }:sum("amount"))
  end)

  it("refuses an overdraft and writes nothing", function()
    local before = ledger.audit(L)
    local t, reason = ledger.transfer(L, 4, 1, "5.00")
    assert.is_nil(t)
    assert.are.equal("insufficient funds", reason)
    assert.are.equal("0.10", balance(4))
    assert.are.equal(before.transfers, L.Transfer:query():count())
    -- the exact balance can be moved; one cent more cannot
    assert.is_truthy(ledger.transfer(L, 4, 1, "0.10"))
    assert.are.equal("0.00", balance(4))
    assert.is_nil((ledger.transfer(L, 4, 1, "0.01")))
  end)

  it("refuses malformed amounts before touching the database", function()
    for _, bad in ipairs({ "0.00", "-1.00", "1.5", "1e3", 12.5, "12.345" }) do
      local t, reason = ledger.transfer(L, 1, 2, bad)
      assert.is_nil(t)
      assert.is_truthy(reason:match("positive amount"), reason)
    end
    assert.are.same({ nil, "same account" }, { ledger.transfer(L, 1, 1, "1.00") })
  end)

  it("undoes the debit when the transfer fails after it", function()
    local err = testsuite.error_of(ledger.transfer, L, 1, 2, "100.00", { fail_after_debit = "power cut" })
    assert.are.equal("power cut", err)
    assert.are.equal("1000.00", balance(1))
    assert.are.equal("250.50", balance(2))
    assert.are.equal(0, L.Transfer:query():count())
  end)

  it("shows an account's statement from its journal, eager-loaded", function()
    assert(ledger.transfer(L, 1, 2, "10.00"))
    assert(ledger.transfer(L, 2, 1, "2.50"))
    assert(ledger.transfer(L, 5, 1, "0.01"))
    local n = testsuite.count_statements(db, function()
      local accounts = L.Account:query():with("entries"):order_by("id"):all()
      local ann = accounts[1]
      local lines = {}
      for i, e in ipairs(ann:entries()) do lines[i] = e.amount end
      assert.are.same({ "-10.00", "2.50", "0.01" }, lines)
      assert.are.equal(0, #accounts[4]:entries())
    end)
    assert.are.equal(2, n)
    -- the running balance, computed by the server
    assert.are.equal("992.51", db:query("SELECT opening + (SELECT SUM(amount) FROM ledger_entries "
      .. "WHERE account_id = ?) AS b FROM ledger_accounts WHERE id = ?", 1, 1)[1].b)
  end)

  it("balances after concurrent transfers from several processes, retrying deadlocks", function()
    if not os.getenv("AR_TESTSUITE_PROVIDER") then
      return testsuite.pending("worker processes find the provider through AR_TESTSUITE_PROVIDER")
    end
    local lua = os.getenv("AR_LUA") or "lua5.4"
    local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local WORKERS, EACH = 4, 30
    local pipes = {}
    for w = 1, WORKERS do
      local code = ("require('activerecord.testsuite.realworld.ledger').worker(%q, %q, %d, %d)"):format(
        scenario, "w" .. w, EACH, 1000 + w)
      local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1"):format(q(package.path), q(package.cpath), lua, q(code))
      pipes[w] = assert(io.popen(cmd, "r"))
    end
    local ok_total, refused_total, attempts_total = 0, 0, 0
    for w, pipe in ipairs(pipes) do
      local out = pipe:read("a")
      pipe:close()
      local ok_n, refused, failed, attempts = out:match("ok=(%d+) refused=(%d+) failed=(%d+) attempts=(%d+)")
      assert(ok_n, ("worker %d printed no summary:\n%s"):format(w, out))
      assert.are.equal("0", failed, out)
      assert.are.equal(EACH, tonumber(ok_n) + tonumber(refused))
      ok_total, refused_total = ok_total + tonumber(ok_n), refused_total + tonumber(refused)
      attempts_total = attempts_total + tonumber(attempts)
    end
    local facts = assert_books_balance()
    -- the journal holds exactly the transfers the workers saw succeed
    assert.are.equal(ok_total, facts.transfers)
    assert.is_true(ok_total > 0)
    assert.is_true(attempts_total >= ok_total)
    for w = 1, WORKERS do
      assert.is_true(L.Transfer:where{ worker = "w" .. w }:count() <= EACH)
    end
  end)

  it("retries a transfer that lost a deadlock and applies it once", function()
    if not testsuite.requires_operations(provider, "concurrent_session") then return end
    local other
    local t, _, attempts = ledger.transfer(L, 1, 2, "7.00", { retries = 3, worker = "main" })
    assert(t)
    assert.are.equal(1, attempts)
    -- a real deadlock: we lock account 1; the other session (another
    -- process) debits account 2, which makes it the heavier transaction, and
    -- then asks for account 1 while we ask for account 2. The server rolls
    -- back the lighter one, ours, and `retries` runs it again.
    local tries = 0
    local result = db:transaction(function()
      tries = tries + 1
      L.Account:where{ id = 1 }:for_update():one()
      if tries == 1 then
        other = provider.concurrent_session(scenario, {
          { sql = "UPDATE ledger_accounts SET balance = balance - CAST(? AS DECIMAL(14,2)) WHERE id = ?",
            params = { "1.00", 2 } },
          { signal = true },
          { sleep = 0.3 },
          { sql = "UPDATE ledger_accounts SET balance = balance + CAST(? AS DECIMAL(14,2)) WHERE id = ?",
            params = { "1.00", 1 } },
        })
        assert(other:wait_signal(), "the other session did not start")
      end
      L.Account:where{ id = 2 }:for_update():one()
      return "locked both"
    end, { retries = 3 })
    local other_ok, detail = other:finish()
    assert.is_true(other_ok, detail)
    assert.are.equal("locked both", result)
    assert.are.equal(2, tries)
    -- the other session's change is not in the journal: record it as a
    -- transfer so the books can balance again
    assert.are.equal("994.00", balance(1))
    assert.are.equal("256.50", balance(2))
    local fix = L.Transfer:create{ from_id = 2, to_id = 1, amount = "1.00", worker = "other" }
    L.Entry:insert_all{ { transfer_id = fix.id, account_id = 2, amount = "-1.00" },
                        { transfer_id = fix.id, account_id = 1, amount = "1.00" } }
  end)
end)

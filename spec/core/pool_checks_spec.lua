-- The pool's two calls into the core per statement: conn:checkout_check()
-- (age, idleness, nothing pending on the socket, a ping when idle long
-- enough, against conn:pool_limits) and conn:checkin_state() (closed, a
-- transaction left open, or ready; notes the time of last use).
local db = require("support.db")

describe("core pool checks", function()
  local conn, other

  before_each(function()
    conn = db.connect()
    other = db.connect()
  end)

  after_each(function()
    conn:close()
    other:close()
  end)

  it("checkin_state: nil when ready, 'transaction' with one open, 'closed' once closed", function()
    assert.is_nil(conn:checkin_state())
    conn:begin()
    assert.are.equal("transaction", conn:checkin_state())
    conn:rollback()
    assert.is_nil(conn:checkin_state())
    conn:close()
    assert.are.equal("closed", conn:checkin_state())
  end)

  it("checkout_check: usable by default; too old or idle too long is not usable, not broken", function()
    assert.is_true(conn:checkout_check())
    conn:pool_limits(0, math.huge, math.huge) -- max_lifetime 0: already too old
    local ok, broken = conn:checkout_check()
    assert.is_false(ok)
    assert.is_false(broken)
    conn:pool_limits(math.huge, 0, math.huge) -- idle_timeout 0
    assert.is_nil(conn:checkin_state())
    ok, broken = conn:checkout_check()
    assert.is_false(ok)
    assert.is_false(broken)
  end)

  it("checkout_check: a link the server dropped is broken before any SQL is sent", function()
    conn:pool_limits(math.huge, math.huge, math.huge)
    other:execute("KILL ?", conn:thread_id())
    local deadline = os.clock() + 5
    local ok, broken
    repeat ok, broken = conn:checkout_check() until not ok or os.clock() > deadline
    assert.is_false(ok)
    assert.is_true(broken)
  end)

  it("checkout_check: pings when idle for validate_after seconds or more", function()
    conn:pool_limits(math.huge, math.huge, 0)
    assert.is_true(conn:checkout_check())
    conn:close()
    local ok, broken = conn:checkout_check()
    assert.is_false(ok)
    assert.is_true(broken)
  end)
end)

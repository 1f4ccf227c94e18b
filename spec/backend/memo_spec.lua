-- activerecord.memo: the bounded memo the backend's quoting and statement
-- classifier use (server-free).
local memo = require("activerecord.memo")

describe("memo.bounded", function()
  it("computes a key once and answers later reads from the table", function()
    local calls = 0
    local m = memo.bounded(8, function(k) calls = calls + 1; return k .. "!" end)
    assert.equal("a!", m.a)
    assert.equal("a!", m.a)
    assert.equal(1, calls)
    assert.equal("a!", rawget(m, "a"))
  end)

  it("keeps false results and recomputes nil ones", function()
    local calls = 0
    local m = memo.bounded(8, function(k) calls = calls + 1; if k == "f" then return false end end)
    assert.is_false(m.f)
    assert.is_false(m.f)
    assert.is_nil(m.n)
    assert.is_nil(m.n)
    assert.equal(3, calls)
  end)

  it("empties itself in place when full, keeping the same table", function()
    local m = memo.bounded(3, function(k) return k * 2 end)
    for i = 1, 3 do assert.equal(i * 2, m[i]) end
    assert.equal(8, m[4]) -- the fourth miss empties the table first
    local held = {}
    for k in pairs(m) do held[#held + 1] = k end
    assert.same({ 4 }, held)
  end)

  it("lets an error of compute through and keeps nothing", function()
    local m = memo.bounded(3, function(k) if k == "bad" then error("no", 0) end return k end)
    assert.has_error(function() return m.bad end, "no")
    assert.is_nil(rawget(m, "bad"))
    assert.equal("ok", m.ok)
  end)
end)

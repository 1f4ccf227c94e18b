-- Integrity of db:transaction (issue 12, design §8 "One transaction state"):
-- undo actions after a rollback, doomed transactions (a real deadlock with a
-- second session in another process), statements that commit implicitly,
-- coroutines closed or dropped inside a transaction, streams that fail.
local ar = require("activerecord")
local support = require("support.db")

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

describe("integrity: undo actions after a rollback", function()
  local db
  local TABLE = "integ_undo"

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 } })
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY) ENGINE=InnoDB")
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:close()
  end)

  before_each(function() db:execute("DELETE FROM " .. TABLE) end)

  it("outside a transaction registers nothing and returns false", function()
    local ran = false
    assert.is_false(db:_track_undo(function() ran = true end))
    pcall(db.transaction, db, function() error("x") end) -- a later rollback runs nothing of it
    assert.is_false(ran)
  end)

  it("runs the actions of a rolled-back transaction once, newest first; commit drops them", function()
    local log = {}
    local err = error_of(db.transaction, db, function(tx)
      assert.is_true(tx:_track_undo(function() log[#log + 1] = "a" end))
      tx:_track_undo(function() error("undo failure is reported, not fatal") end)
      tx:_track_undo(function() log[#log + 1] = "c" end)
      error("boom")
    end)
    assert.matches("boom", tostring(err))
    assert.are.same({ "c", "a" }, log)
    log = {}
    db:transaction(function(tx) tx:_track_undo(function() log[#log + 1] = "x" end) end)
    assert.are.same({}, log)
  end)

  it("a failed savepoint runs its own actions and those released into it, not the parent's", function()
    local log = {}
    local function mark(s) return function() log[#log + 1] = s end end
    db:transaction(function(tx)
      tx:_track_undo(mark("outer"))
      local ok = pcall(tx.transaction, tx, function()
        tx:_track_undo(mark("inner1"))
        tx:transaction(function() tx:_track_undo(mark("released")) end) -- released into inner
        tx:_track_undo(mark("inner2"))
        error("undo the inner part")
      end)
      assert.is_false(ok)
      assert.are.same({ "inner2", "released", "inner1" }, log)
      tx:transaction(function() tx:_track_undo(mark("kept")) end)
    end)
    -- the outer commit succeeded: nothing more ran
    assert.are.same({ "inner2", "released", "inner1" }, log)
  end)

  it("a released savepoint's actions run when the outer block fails", function()
    local log = {}
    error_of(db.transaction, db, function(tx)
      tx:transaction(function() tx:_track_undo(function() log[#log + 1] = "inner" end) end)
      tx:_track_undo(function() log[#log + 1] = "outer" end)
      error("fail outer")
    end)
    assert.are.same({ "outer", "inner" }, log)
  end)

  it("each failed attempt under retries runs its own actions", function()
    local attempts, undone = 0, 0
    db:transaction(function(tx)
      attempts = attempts + 1
      tx:execute("INSERT INTO " .. TABLE .. " (id) VALUES (1)")
      tx:_track_undo(function() undone = undone + 1 end)
      if attempts < 3 then
        ar.errors.raise("DeadlockError", "simulated deadlock for the retry path")
      end
    end, { retries = 3 })
    assert.are.equal(3, attempts)
    assert.are.equal(2, undone)
    assert.are.equal(1, #db:query("SELECT id FROM " .. TABLE))
  end)
end)

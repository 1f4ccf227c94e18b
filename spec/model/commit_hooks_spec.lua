-- after_commit and after_rollback against the real server: they run once
-- per record once the outermost transaction has ended (never inside it: a
-- second connection sees the row from the handler), with the kind of the
-- record's writes and the `on` filters; savepoints, retries, writes outside
-- a transaction, bulk inserts, failing handlers and mixins.
local ar = require("activerecord")
local support = require("support.db")

local errors = ar.errors

describe("model: after_commit / after_rollback", function()
  local db, observer
  local TABLE, LOCKS = "spec_commit_items", "spec_commit_locks"

  setup(function()
    observer = support.connect()
    observer:execute("DROP TABLE IF EXISTS " .. TABLE .. ", " .. LOCKS)
    observer:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50)) ENGINE=InnoDB")
    observer:execute("CREATE TABLE " .. LOCKS .. " (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB")
    observer:execute("INSERT INTO " .. LOCKS .. " (id, n) VALUES (1, 0)")
    db = ar.connect(support.options{ pool = { size = 2 },
      init_command = "SET SESSION innodb_lock_wait_timeout = 1" })
  end)

  teardown(function()
    db:close()
    observer:execute("DROP TABLE IF EXISTS " .. TABLE .. ", " .. LOCKS)
    observer:close()
  end)

  before_each(function() observer:execute("DELETE FROM " .. TABLE) end)

  -- What another connection sees of a row (committed data only).
  local function seen_by_observer(id)
    return #observer:execute("SELECT id FROM " .. TABLE .. " WHERE id = ?", id).rows == 1
  end

  local serial = 0
  -- A fresh model whose commit handlers append to `log`:
  -- "commit <kind> <name> <row visible elsewhere> <in a transaction>".
  local function model(log, extra)
    serial = serial + 1
    local def = {
      name = "SpecCommitItem" .. serial, table = TABLE, backend = db,
      fields = { id = { type = "integer", primary_key = true }, name = "string" },
      events = {
        after_commit = function(rec, kind)
          log[#log + 1] = ("commit %s %s %s %s"):format(kind, rec.name, tostring(seen_by_observer(rec.id)),
            tostring(db:in_transaction()))
        end,
        after_rollback = function(rec, kind)
          log[#log + 1] = ("rollback %s %s new=%s"):format(kind, rec.name, tostring(rec:is_new()))
        end,
      },
    }
    for k, v in pairs(extra or {}) do
      if k == "events" then
        for e, fn in pairs(v) do def.events[e] = fn end
      else
        def[k] = v
      end
    end
    return ar.Model(def)
  end

  it("runs after the outermost COMMIT only, seen committed from another connection", function()
    local log = {}
    local Item = model(log)
    local a, b = Item:new{ name = "a" }, Item:new{ name = "b" }
    db:transaction(function()
      a:save()
      db:transaction(function()
        b:save()
        assert.are.same({}, log)
      end)
      assert.are.same({}, log) -- a released savepoint is not a commit
    end)
    assert.are.same({ "commit create a true false", "commit create b true false" }, log)
  end)

  it("once per record per transaction, with the kind of its writes", function()
    local log = {}
    local Item = model(log)
    local old = Item:create{ name = "old" }
    local gone = Item:create{ name = "gone" }
    for i = #log, 1, -1 do log[i] = nil end
    local a = Item:new{ name = "a" }
    db:transaction(function()
      a:save()
      a:update{ name = "a2" }
      old:update{ name = "old2" }
      old:update{ name = "old3" }
      gone:delete()
    end)
    assert.are.same({ "commit create a2 true false", "commit update old3 true false",
      "commit delete gone false false" }, log)
  end)

  it("on filters: a kind, a list of kinds, and the after_<kind>_commit shorthands", function()
    local seen = {}
    local function rec_of(tag)
      return function(rec, kind) seen[#seen + 1] = tag .. ":" .. kind .. ":" .. rec.name end
    end
    local Item = model({}, { events = { after_delete_commit = rec_of("def_delete") } })
    Item:on("after_commit", rec_of("create"), { on = "create" })
    Item:on("after_commit", rec_of("upd_del"), { on = { "update", "delete" } })
    Item:on("after_save_commit", rec_of("save"))
    local x = Item:create{ name = "x" }
    x:update{ name = "y" }
    x:delete()
    assert.are.same({ "create:create:x", "save:create:x", "upd_del:update:y", "save:update:y",
      "def_delete:delete:y", "upd_del:delete:y" }, seen)
    local err = support.error_of(Item.on, Item, "after_commit", function() end, { on = "destroy" })
    assert.are.equal("ConfigError", err.kind)
    err = support.error_of(Item.on, Item, "after_save", function() end, { on = "create" })
    assert.are.equal("ConfigError", err.kind)
    -- off finds a filtered handler by its function
    local fn = function() seen[#seen + 1] = "off" end
    Item:on("after_commit", fn, { on = "create" })
    assert.is_true(Item:off("after_commit", fn))
  end)

  it("in the definition: { fn, on = kind(s) } filters; other keys and `on` on other events are refused", function()
    local seen = {}
    local Item = model({}, { events = {
      after_commit = { function(rec, kind) seen[#seen + 1] = kind .. ":" .. rec.name end, on = "create" },
      after_rollback = { function(_, kind) seen[#seen + 1] = "rb:" .. kind end, on = { "update" } },
    } })
    local x = Item:create{ name = "x" }
    x:update{ name = "y" }
    assert.are.same({ "create:x" }, seen)
    local err = support.error_of(model, {}, { events = { after_commit = { function() end, when = "create" } } })
    assert.are.equal("ConfigError", err.kind)
    assert.matches("unknown key 'when'", err.message, 1, true)
    err = support.error_of(model, {}, { events = { after_save = { function() end, on = "create" } } })
    assert.are.equal("ConfigError", err.kind)
  end)

  it("after_rollback on a rollback, with the records restored; no after_commit", function()
    local log = {}
    local Item = model(log)
    local stored = Item:create{ name = "s" }
    for i = #log, 1, -1 do log[i] = nil end
    local a = Item:new{ name = "a" }
    local ok, err = pcall(db.transaction, db, function()
      a:save()
      stored:update{ name = "s2" }
      assert.are.same({}, log)
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", tostring(err))
    assert.are.same({ "rollback create a new=true", "rollback update s2 new=false" }, log)
    assert.is_true(a:is_new())
    assert.is_false(seen_by_observer(a.id or -1))
  end)

  it("a savepoint rolled back: its records get after_rollback at the outermost end, the others after_commit",
    function()
    local log = {}
    local Item = model(log)
    local a, b = Item:new{ name = "a" }, Item:new{ name = "b" }
    db:transaction(function()
      a:save()
      local ok = pcall(db.transaction, db, function()
        b:save()
        a:update{ name = "a-inner" }
        error("inner fails")
      end)
      assert.is_false(ok)
      assert.are.same({}, log) -- nothing inside the transaction
      assert.is_true(b:is_new())
    end)
    -- a: its outer write committed (once, as a create; its inner change is
    -- dirty again); b: all its writes undone
    assert.are.same({ "commit create a-inner true false", "rollback create b new=true" }, log)
    assert.are.same({ "name" }, a:dirty_fields())
    assert.are.equal("a", observer:execute("SELECT name FROM " .. TABLE .. " WHERE id = ?", a.id).rows[1].name)
  end)

  it("under retries only the attempt that committed runs after_commit; each failed one after_rollback", function()
    local log = {}
    local Item = model(log)
    local holder = support.connect()
    holder:begin()
    holder:execute("SELECT n FROM " .. LOCKS .. " WHERE id = 1 FOR UPDATE")
    local rec = Item:new{ name = "r" }
    local attempts = 0
    local ok, err = pcall(db.transaction, db, function(tx)
      attempts = attempts + 1
      rec:save()
      if attempts == 2 then holder:rollback() end
      -- the first attempt waits for the holder's lock: LockTimeoutError, retried
      tx:execute("UPDATE " .. LOCKS .. " SET n = n + 1 WHERE id = 1")
    end, { retries = 2 })
    holder:close()
    assert.is_true(ok, tostring(err))
    assert.are.equal(2, attempts)
    assert.are.same({ "rollback create r new=true", "commit create r true false" }, log)
    assert.are.equal(1, #observer:execute("SELECT id FROM " .. TABLE .. " WHERE name = 'r'").rows)
  end)

  it("outside a transaction after_commit runs right after the write", function()
    local log = {}
    local Item = model(log)
    local a = Item:create{ name = "a" }
    assert.are.same({ "commit create a true false" }, log)
    a:update{ name = "b" }
    a:delete()
    assert.are.same({ "commit create a true false", "commit update b true false", "commit delete b false false" },
      log)
  end)

  it("with after-handlers (the write's own unit) and through Model:transaction", function()
    local log = {}
    local fail = false
    local Item = model(log, { events = {
      after_save = function() if fail then error("after_save refuses") end end,
    } })
    Item:on("after_commit", function(rec, kind) log[#log + 1] = "also " .. kind .. " " .. rec.name end)
    Item:on("after_rollback", function(rec, kind) log[#log + 1] = "also rb " .. kind .. " " .. rec.name end)
    Item:create{ name = "u" }
    assert.are.same({ "commit create u true false", "also create u" }, log)
    fail = true
    local x = Item:new{ name = "v" }
    local ok = pcall(x.save, x)
    assert.is_false(ok)
    assert.are.same({ "commit create u true false", "also create u", "rollback create v new=true",
      "also rb create v" }, log)
    fail = false
    for i = #log, 1, -1 do log[i] = nil end
    Item:transaction(function()
      x:save()
      assert.are.same({}, log)
    end)
    assert.are.same({ "commit create v true false", "also create v" }, log)
  end)

  it("a raising handler does not undo the commit: the others run, the error says committed", function()
    local ran = {}
    local Item = model({})
    Item:on("after_commit", function() error("handler one fails") end)
    Item:on("after_commit", function(rec) ran[#ran + 1] = rec.name end)
    local a, b = Item:new{ name = "a" }, Item:new{ name = "b" }
    local ok, err = pcall(db.transaction, db, function()
      a:save()
      b:save()
    end)
    assert.is_false(ok)
    assert.is_true(errors.is(err, "CallbackError"), tostring(err))
    assert.is_true(err.committed)
    assert.are.equal(2, #err.causes)
    assert.matches("handler one fails", tostring(err.cause))
    assert.matches("committed", err.message)
    assert.are.same({ "a", "b" }, ran)
    assert.is_true(seen_by_observer(a.id) and seen_by_observer(b.id))
    -- outside a transaction: the same error from save; the record is saved
    local c = Item:new{ name = "c" }
    err = support.error_of(c.save, c)
    assert.is_true(errors.is(err, "CallbackError"), tostring(err))
    assert.is_true(err.committed)
    assert.is_false(c:is_new())
    assert.is_false(c:is_dirty())
    assert.is_true(seen_by_observer(c.id))
    assert.are.same({ "a", "b", "c" }, ran)
  end)

  it("mixins and ar.hooks.on register them too", function()
    local log = {}
    local audit = { events = {
      after_commit = function(rec, kind) log[#log + 1] = "mixin " .. kind .. " " .. rec.name end,
    } }
    local Item = ar.Model{ name = "SpecCommitMixin", table = TABLE, backend = db, mixins = { audit },
      fields = { id = { type = "integer", primary_key = true }, name = "string" } }
    ar.hooks.on(Item, "after_rollback", function(rec) log[#log + 1] = "hooks rb " .. rec.name end, { on = "create" })
    Item:create{ name = "m" }
    pcall(db.transaction, db, function()
      Item:create{ name = "n" }
      error("undo")
    end)
    assert.are.same({ "mixin create m", "hooks rb n" }, log)
  end)

  it("insert_all runs them per row (unless events = false)", function()
    local log = {}
    local Item = model(log)
    Item:insert_all({ { name = "p" }, { name = "q" } })
    assert.are.same({ "commit create p true false", "commit create q true false" }, log)
    db:transaction(function()
      Item:insert_all({ { name = "r" } })
      assert.are.equal(2, #log)
    end)
    assert.are.same("commit create r true false", log[3])
    Item:insert_all({ { name = "s" } }, { events = false })
    assert.are.equal(3, #log)
  end)
end)

-- Lifecycle events: the ten events in order around the SQL they surround,
-- registration in the definition and with Model:on / Model:off, handlers
-- changing values or aborting (nothing written, the error unchanged), what
-- update and after handlers see, and events sharing db:transaction.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/events/lifecycle"

describe("model lifecycle events", function()
  local scenario = testsuite.default_scenario()
  local db, observer
  local serial = 0

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "accounts" })
    observer = provider.new_backend(scenario, { pool = { size = 1 } })
  end)

  teardown(function()
    if observer then observer:close() end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM accounts")
    db:execute("DELETE FROM users")
  end)

  -- A fresh model (its own handlers) over `users`.
  local function model(extra)
    serial = serial + 1
    local def = { name = "EventsUser" .. serial, table = "users", backend = db, fields = {
      id = { type = "integer", primary_key = true },
      name = { type = "string", size = 100, required = true },
      email = { type = "string", size = 191 },
      age = "integer",
    } }
    for k, v in pairs(extra or {}) do def[k] = v end
    local User = ar.Model(def)
    ar.check_models{ models = { User } } -- its table read now: the statements logged later are its own
    return User
  end

  local function users()
    return observer:query("SELECT COUNT(*) AS n FROM users")[1].n
  end

  local function accounts()
    return observer:query("SELECT COUNT(*) AS n FROM accounts")[1].n
  end

  -- Handlers for every event that append "<event>" to `log`; statements
  -- the backend runs are appended as "SQL <VERB>".
  local function recording(User)
    local log = {}
    for _, e in ipairs({ "before_validate", "after_validate", "before_save", "after_save",
                         "before_create", "after_create", "before_update", "after_update",
                         "before_delete", "after_delete" }) do
      User:on(e, function() log[#log + 1] = e end)
    end
    local stop = testsuite.listen(db, function(ev)
      log[#log + 1] = "SQL " .. ev.sql:match("^%a+"):upper()
    end)
    return log, stop
  end

  it("runs all ten events in order around the statements", function()
    local User = model()
    local log, stop = recording(User)
    local u = User:create{ name = "Ann" }
    assert.are.same({ "before_validate", "after_validate", "before_save", "before_create",
                      "SQL BEGIN", "SQL INSERT", "after_create", "after_save", "SQL COMMIT" }, log)
    for i = #log, 1, -1 do log[i] = nil end
    u.age = 3
    u:save()
    assert.are.same({ "before_validate", "after_validate", "before_save", "before_update",
                      "SQL BEGIN", "SQL UPDATE", "after_update", "after_save", "SQL COMMIT" }, log)
    for i = #log, 1, -1 do log[i] = nil end
    u:delete()
    assert.are.same({ "before_delete", "SQL BEGIN", "SQL DELETE", "after_delete", "SQL COMMIT" }, log)
    for i = #log, 1, -1 do log[i] = nil end
    -- valid() runs the validation events only
    User.new{ name = "Bo" }:valid()
    assert.are.same({ "before_validate", "after_validate" }, log)
    for i = #log, 1, -1 do log[i] = nil end
    -- a save with nothing changed runs no events and no SQL
    local v = User:create{ name = "Cy" }
    for i = #log, 1, -1 do log[i] = nil end
    v:save()
    stop()
    assert.are.same({}, log)
  end)

  it("runs handlers from the definition, then Model:on, in registration order", function()
    local order = {}
    local User = model{ events = {
      before_save = { function() order[#order + 1] = "def1" end,
                      function() order[#order + 1] = "def2" end },
      after_save = function() order[#order + 1] = "def_after" end,
    } }
    User:on("before_save", function() order[#order + 1] = "on1" end)
    User:on("before_save", function() order[#order + 1] = "on2" end)
    User:create{ name = "Ann" }
    assert.are.same({ "def1", "def2", "on1", "on2", "def_after" }, order)
  end)

  it("Model:off removes a handler; other handlers keep their order", function()
    local order = {}
    local User = model()
    local a = User:on("before_save", function() order[#order + 1] = "a" end)
    local b = User:on("before_save", function() order[#order + 1] = "b" end)
    User:on("before_save", function() order[#order + 1] = "c" end)
    assert.is_true(User:off("before_save", b))
    assert.is_false(User:off("before_save", b))
    User:create{ name = "Ann" }
    assert.are.same({ "a", "c" }, order)
    User:off("before_save", a)
    order = {}
    User:create{ name = "Bo" }
    assert.are.same({ "c" }, order)
  end)

  it("refuses an unknown event or a handler that is not a function", function()
    local User = model()
    local err = testsuite.error_of(function() User:on("before_sav", function() end) end)
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("before_sav", err.message, 1, true)
    local err2 = testsuite.error_of(function() User:on("before_save", "nope") end)
    assert.is_true(ar.errors.is(err2, "ConfigError"), tostring(err2))
  end)

  it("saves the values before-handlers set", function()
    local User = model{ events = {
      before_validate = function(self) if self.name then self.name = self.name:gsub("^%s+", "") end end,
      before_save = function(self) self.email = self.name:lower() .. "@example.com" end,
      before_create = function(self) self.age = 1 end,
      before_update = function(self) self.age = (self.age or 0) + 10 end,
    } }
    local u = User:create{ name = "  Ann" }
    local r = observer:query("SELECT name, email, age FROM users WHERE id = ?", u.id)[1]
    assert.are.equal("Ann", r.name)
    assert.are.equal("ann@example.com", r.email)
    assert.are.equal(1, r.age)
    u.name = "Bo"
    u:save()
    r = observer:query("SELECT name, email, age FROM users WHERE id = ?", u.id)[1]
    assert.are.equal("Bo", r.name)
    assert.are.equal("bo@example.com", r.email)
    assert.are.equal(11, r.age)
    assert.is_false(u:is_dirty())
  end)

  describe("a raising before-handler", function()
    for _, event in ipairs({ "before_validate", "before_save", "before_create" }) do
      it(event .. " aborts the create: nothing written, the error unchanged", function()
        local User = model()
        local raised = ar.errors.new("IntegrityError", "refused by " .. event)
        User:on(event, function() error(raised) end)
        local after = 0
        User:on("after_save", function() after = after + 1 end)
        local u = User.new{ name = "Ann" }
        local err
        local n = testsuite.count_statements(db, function()
          err = testsuite.error_of(function() return u:save() end)
        end)
        assert.are.equal(raised, err)
        assert.are.equal("IntegrityError", err.kind)
        assert.are.equal(0, n)
        assert.are.equal(0, users())
        assert.are.equal(0, after)
        assert.is_true(u:is_new())
      end)
    end

    it("before_update aborts the update; the row and the changes stay", function()
      local User = model()
      local u = User:create{ name = "Ann", age = 1 }
      User:on("before_update", function() error({ reason = "plain table" }) end)
      u.age = 2
      local err = testsuite.error_of(function() return u:save() end)
      assert.are.same({ reason = "plain table" }, err)
      assert.are.equal(1, observer:query("SELECT age FROM users WHERE id = ?", u.id)[1].age)
      assert.is_true(u:is_dirty())
    end)

    it("before_delete aborts the delete; the row stays", function()
      local User = model()
      local u = User:create{ name = "Ann" }
      local raised = ar.errors.new("ValidationError", "cannot delete", { errors = { base = { "locked" } } })
      User:on("before_delete", function() error(raised) end)
      local err = testsuite.error_of(function() return u:delete() end)
      assert.are.equal(raised, err)
      assert.are.same({ base = { "locked" } }, err.errors)
      assert.are.equal(1, users())
      assert.is_false(u:is_new())
    end)

    it("a string error propagates as raised", function()
      local User = model{ events = { before_save = function() error("plain message", 0) end } }
      local err = testsuite.error_of(function() return User:create{ name = "Ann" } end)
      assert.are.equal("plain message", err)
      assert.are.equal(0, users())
    end)
  end)

  it("update handlers see dirty_fields and old values", function()
    local seen = {}
    local User = model()
    User:on("before_update", function(self)
      seen.before = self:dirty_fields()
      seen.old = self:old_value("age")
    end)
    User:on("after_update", function(self) seen.after = self:dirty_fields() end)
    local u = User:create{ name = "Ann", age = 1, email = "a@example.com" }
    u.age = 2
    u.email = "b@example.com"
    u:save()
    table.sort(seen.before)
    assert.are.same({ "age", "email" }, seen.before)
    assert.are.equal(1, seen.old)
    table.sort(seen.after)
    assert.are.same({ "age", "email" }, seen.after)
    assert.is_false(u:is_dirty())
  end)

  it("after-handlers get the affected-row count", function()
    local got = {}
    local User = model()
    for _, e in ipairs({ "after_create", "after_update", "after_save", "after_delete" }) do
      User:on(e, function(_, affected) got[#got + 1] = e .. "=" .. tostring(affected) end)
    end
    local u = User:create{ name = "Ann" }
    u.age = 5
    u:save()
    -- the row vanished behind our back: the UPDATE affects nothing
    observer:execute("DELETE FROM users WHERE id = ?", u.id)
    u.age = 6
    u:save()
    local v = User:create{ name = "Bo" }
    v:delete()
    assert.are.same({
      "after_create=1", "after_save=1",
      "after_update=1", "after_save=1",
      "after_update=0", "after_save=0",
      "after_create=1", "after_save=1",
      "after_delete=1",
    }, got)
  end)

  it("after_validate gets the errors collector", function()
    local User = model{ events = { after_validate = function(_, errors)
      errors:add("name", "added after validation")
    end } }
    local err = testsuite.error_of(function() return User:create{ name = "Ann" } end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.are.same({ "added after validation" }, err.errors.name)
    assert.are.equal(0, users())
  end)

  describe("inside db:transaction", function()
    local function audited(extra_events)
      local User = model()
      User:on("after_create", function(self)
        db:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", self.id, self.name)
      end)
      for e, fn in pairs(extra_events or {}) do User:on(e, fn) end
      return User
    end

    it("handlers run on the transaction's connection and see its uncommitted rows", function()
      local seen = {}
      local User = audited{ after_save = function(self)
        seen.session = provider.session_id and provider.session_id(db)
        seen.mine = db:query("SELECT COUNT(*) AS n FROM users WHERE id = ?", self.id)[1].n
        seen.others = observer:query("SELECT COUNT(*) AS n FROM users WHERE id = ?", self.id)[1].n
      end }
      local tx_session
      db:transaction(function()
        tx_session = provider.session_id and provider.session_id(db)
        User:create{ name = "Ann" }
      end)
      assert.are.equal(1, seen.mine)
      assert.are.equal(0, seen.others)
      assert.are.equal(tx_session, seen.session)
      assert.are.equal(1, users())
      assert.are.equal(1, accounts())
    end)

    it("an error after the write rolls back the record and the handlers' writes", function()
      local User = audited()
      local raised = ar.errors.new("DataError", "after the write")
      local err = testsuite.error_of(function()
        db:transaction(function()
          User:create{ name = "Ann" }
          assert.are.equal(1, db:query("SELECT COUNT(*) AS n FROM accounts")[1].n)
          error(raised)
        end)
      end)
      assert.are.equal(raised, err)
      assert.are.equal(0, users())
      assert.are.equal(0, accounts())
    end)

    it("an after-handler raising rolls back the whole save", function()
      local raised = ar.errors.new("IntegrityError", "after_save refused")
      local User = audited{ after_save = function() error(raised) end }
      local err = testsuite.error_of(function()
        db:transaction(function() User:create{ name = "Ann" } end)
      end)
      assert.are.equal(raised, err)
      assert.are.equal("IntegrityError", err.kind)
      assert.are.equal(0, users())
      assert.are.equal(0, accounts())
    end)

    it("a backend error in a handler keeps its kind and rolls back", function()
      local User = audited()
      db:execute("INSERT INTO accounts (id, owner) VALUES (?, ?)", 999999, "taken")
      local err = testsuite.error_of(function()
        db:transaction(function()
          local u = User.new{ name = "Ann" }
          u.id = 999999 -- after_create's INSERT into accounts collides
          u:save()
        end)
      end)
      assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
      assert.are.equal(1062, err.code)
      assert.are.equal(0, users())
      assert.are.equal(1, accounts())
    end)
  end)
end)

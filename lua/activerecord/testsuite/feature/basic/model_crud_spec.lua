-- Model instances and class finders: new/create/save/update/delete/reload,
-- change tracking (only dirty columns are written, nothing at all when
-- nothing changed), attribute assignment rules, finders, and backend errors
-- keeping their kind through the model layer.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/basic/crud"

describe("model instances", function()
  local scenario = testsuite.default_scenario()
  local db, observer, User

  setup(function()
    db = provider.setup(GROUP, scenario, { "users" })
    observer = provider.new_backend(scenario, { pool = { size = 1 } })
    User = ar.Model{ name = "CrudUser", table = "users", backend = db, fields = {
      id = { type = "integer", primary_key = true },
      name = { type = "string", size = 100, required = true },
      email = { type = "string", size = 191 },
      age = "integer",
      score = "float",
      balance = { type = "decimal", precision = 12, scale = 2 },
      active = "boolean",
      profile = "json",
      created_at = "datetime",
      updated_at = "datetime",
    } }
    ar.check_models{ models = { User } } -- the table read once, before statements are counted
  end)

  teardown(function()
    if observer then observer:close() end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM users")
  end)

  local function count()
    return observer:query("SELECT COUNT(*) AS n FROM users")[1].n
  end

  local function row(id)
    return observer:query("SELECT * FROM users WHERE id = ?", id)[1]
  end

  -- statements `db` runs during fn, and their log events
  local function statements(fn, filter)
    return testsuite.count_statements(db, fn, filter)
  end

  describe("new and create", function()
    it("new builds an unsaved record; nothing is written", function()
      local n = statements(function()
        local u = User.new{ name = "Ann", age = 30 }
        assert.is_true(u:is_new())
        assert.is_nil(u.id)
        assert.are.equal("Ann", u.name)
        assert.are.equal(30, u.age)
        local v = User:new{ name = "Bo" } -- the method form works too
        assert.are.equal("Bo", v.name)
      end)
      assert.are.equal(0, n)
      assert.are.equal(0, count())
    end)

    it("create inserts and fills the primary key", function()
      local u = User:create{ name = "Ann", email = "ann@example.com" }
      assert.is_false(u:is_new())
      assert.is_false(u:is_dirty())
      assert.are.equal("integer", math.type(u.id))
      assert.are.equal("Ann", row(u.id).name)
      local v = User:create{ name = "Bo" }
      assert.is_true(v.id > u.id)
    end)
  end)

  describe("save", function()
    it("INSERTs a new record, fills the primary key and returns 1", function()
      local u = User.new{ name = "Ann" }
      local n, events = statements(function()
        assert.are.equal(1, u:save())
      end)
      assert.are.equal(1, n)
      assert.matches("^INSERT", events[1].sql)
      -- only the columns that have values: the name, and the defaults the
      -- record took from the table at new() (balance, active)
      assert.are.equal("0.00", u.balance)
      assert.are.equal(3, events[1].params)
      assert.is_number(u.id)
      assert.are.equal(u.id, db:query("SELECT MAX(id) AS id FROM users")[1].id)
      assert.is_false(u:is_new())
    end)

    it("UPDATEs only the dirty columns", function()
      local u = User:create{ name = "Ann", email = "ann@example.com", age = 30 }
      u.name = "Anna"
      local n, events = statements(function()
        assert.are.equal(1, u:save())
      end, "^UPDATE")
      assert.are.equal(1, n)
      local sql = events[1].sql
      assert.matches("^UPDATE", sql)
      assert.truthy(sql:find("name", 1, true), sql)
      for _, other in ipairs({ "email", "age", "score", "balance", "active", "profile" }) do
        assert.is_nil(sql:find(other, 1, true), other .. " written: " .. sql)
      end
      assert.are.equal(2, events[1].params) -- the new name and the key
      assert.are.equal("Anna", row(u.id).name)
      -- updated_at (ON UPDATE CURRENT_TIMESTAMP) was read back: the record matches its row
      assert.are.equal(row(u.id).updated_at, u.updated_at)
    end)

    it("does not overwrite columns another session changed meanwhile", function()
      local u = User:create{ name = "Ann", email = "ann@example.com", age = 30 }
      local loaded = User:find(u.id)
      observer:execute("UPDATE users SET email = ?, age = ? WHERE id = ?", "new@example.com", 31, u.id)
      loaded.name = "Anna"
      loaded:save()
      local r = row(u.id)
      assert.are.equal("Anna", r.name)
      assert.are.equal("new@example.com", r.email)
      assert.are.equal(31, r.age)
    end)

    it("runs no SQL at all when nothing changed, and returns 0", function()
      local u = User:create{ name = "Ann", age = 30 }
      local loaded = User:find(u.id)
      local n = statements(function()
        assert.are.equal(0, u:save())
        assert.are.equal(0, loaded:save())
        -- assigning the stored value is not a change
        loaded.name = "Ann"
        loaded.age = 30
        assert.is_false(loaded:is_dirty())
        assert.are.equal(0, loaded:save())
        -- nor is changing a value and changing it back
        loaded.age = 31
        loaded.age = 30
        assert.is_false(loaded:is_dirty())
        assert.are.equal(0, loaded:save())
      end)
      assert.are.equal(0, n)
    end)

    it("returns the affected-row count of the UPDATE", function()
      local u = User:create{ name = "Ann" }
      u.age = 40
      assert.are.equal(1, u:save())
      -- the row is gone: the UPDATE affects nothing
      observer:execute("DELETE FROM users WHERE id = ?", u.id)
      u.age = 41
      assert.are.equal(0, u:save())
    end)

    it("update{...} assigns and saves in one call", function()
      local u = User:create{ name = "Ann", age = 1 }
      local n, events = statements(function()
        assert.are.equal(1, u:update{ age = 2, score = 1.5 })
      end, "^UPDATE")
      assert.are.equal(1, n)
      assert.is_nil(events[1].sql:find("name", 1, true))
      local r = row(u.id)
      assert.are.equal(2, r.age)
      assert.are.equal(1.5, r.score)
      assert.is_false(u:is_dirty())
    end)
  end)

  describe("delete", function()
    it("deletes the row and leaves a new record that saves as a new row", function()
      local u = User:create{ name = "Ann", email = "ann@example.com" }
      local old_id = u.id
      assert.are.equal(1, u:delete())
      assert.are.equal(0, count())
      assert.is_true(u:is_new())
      assert.are.equal("Ann", u.name)
      assert.are.equal(1, u:save())
      assert.are.equal(1, count())
      assert.is_false(u:is_new())
      local back = User:find(u.id)
      assert.are.equal("Ann", back.name)
      assert.are.equal("ann@example.com", back.email)
      assert.is_not_nil(old_id)
    end)

    it("refuses to delete a record that was never saved", function()
      local err = testsuite.error_of(function() return User.new{ name = "x" }:delete() end)
      assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
    end)
  end)

  describe("reload", function()
    it("reads the stored row again, dropping local changes", function()
      local u = User:create{ name = "Ann", age = 30 }
      observer:execute("UPDATE users SET age = 31 WHERE id = ?", u.id)
      u.name = "local change"
      assert.are.equal(u, u:reload())
      assert.are.equal(31, u.age)
      assert.are.equal("Ann", u.name)
      assert.is_false(u:is_dirty())
      -- server defaults are visible after a reload
      assert.is_true(u.active)
      assert.are.equal("0.00", u.balance)
      assert.is_string(u.created_at)
    end)

    it("raises RecordNotFound when the row is gone", function()
      local u = User:create{ name = "Ann" }
      observer:execute("DELETE FROM users WHERE id = ?", u.id)
      local err = testsuite.error_of(function() return u:reload() end)
      assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
    end)
  end)

  describe("change tracking", function()
    it("reports dirty fields and their old values", function()
      local u = User:create{ name = "Ann", age = 30 }
      assert.is_false(u:is_dirty())
      assert.are.same({}, u:dirty_fields())
      u.age = 31
      u.name = "Anna"
      assert.is_true(u:is_dirty())
      local dirty = u:dirty_fields()
      table.sort(dirty)
      assert.are.same({ "age", "name" }, dirty)
      assert.are.equal(30, u:old_value("age"))
      assert.are.equal("Ann", u:old_value("name"))
      assert.are.equal(31, u.age)
      -- the old value is the stored one, however often it changes
      u.age = 32
      assert.are.equal(30, u:old_value("age"))
      -- an unchanged field's old value is its value
      assert.is_nil(u:old_value("email"))
      u:save()
      assert.is_false(u:is_dirty())
      assert.are.equal(32, u:old_value("age"))
      assert.has_error(function() u:old_value("nope") end)
    end)

    it("marks a field assigned nil dirty and writes NULL", function()
      local u = User:create{ name = "Ann", age = 30, email = "ann@example.com" }
      u.age = nil
      assert.is_true(u:is_dirty())
      assert.are.same({ "age" }, u:dirty_fields())
      assert.are.equal(30, u:old_value("age"))
      local _, events = statements(function() assert.are.equal(1, u:save()) end, "^UPDATE")
      assert.matches("age", events[1].sql, 1, true)
      assert.is_nil(row(u.id).age)
      -- ar.null does the same
      u.email = ar.null
      assert.is_nil(u.email)
      u:save()
      assert.is_nil(row(u.id).email)
      -- nil on a new record is written as NULL too
      local v = User.new{ name = "Bo", age = 5 }
      v.age = nil
      v:save()
      assert.is_nil(row(v.id).age)
    end)
  end)

  describe("attributes", function()
    it("refuses to assign or read an unknown attribute", function()
      local u = User.new{ name = "Ann" }
      local err = testsuite.error_of(function() u.nmae = "x" end)
      assert.matches("nmae", tostring(err), 1, true)
      assert.has_error(function() User.new{ nmae = "x" } end)
      assert.has_error(function() return u.nmae end)
      assert.has_error(function() u:update{ nmae = "x" } end)
      assert.are.same({ "name" }, u:dirty_fields())
      assert.are.equal(0, count())
    end)

    it("to_table gives a plain copy of the values", function()
      local u = User:create{ name = "Ann", age = 30, profile = { theme = "dark" } }
      local t = u:to_table()
      assert.is_nil(getmetatable(t))
      assert.are.equal(u.id, t.id)
      assert.are.equal("Ann", t.name)
      assert.are.equal(30, t.age)
      assert.are.same({ theme = "dark" }, t.profile)
      t.name = "changed"
      assert.are.equal("Ann", u.name)
      assert.is_false(u:is_dirty())
    end)

    it("tostring names the model and shows the values", function()
      local u = User.new{ name = "Ann", age = 30 }
      local s = tostring(u)
      assert.matches("CrudUser", s, 1, true)
      assert.matches("Ann", s, 1, true)
      assert.matches("30", s, 1, true)
      assert.matches("new", s, 1, true)
      u:save()
      s = tostring(u)
      assert.matches("id=" .. u.id, s, 1, true)
      assert.is_nil(s:find("new", 1, true))
    end)
  end)

  describe("finders", function()
    local ann, bo

    before_each(function()
      ann = User:create{ name = "Ann", email = "ann@example.com", age = 30 }
      bo = User:create{ name = "Bo", email = "bo@example.com", age = 20 }
    end)

    it("find returns the record, or nil when absent", function()
      local u = User:find(ann.id)
      assert.are.equal("Ann", u.name)
      assert.is_false(u:is_new())
      assert.is_false(u:is_dirty())
      assert.is_nil(User:find(bo.id + 1000))
      -- a missing id is a mistake, not an absent row
      local err = testsuite.error_of(function() return User:find(nil) end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)

    it("find_or_fail raises RecordNotFound when absent", function()
      assert.are.equal("Bo", User:find_or_fail(bo.id).name)
      local err = testsuite.error_of(function() return User:find_or_fail(bo.id + 1000) end)
      assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
      assert.matches("CrudUser", err.message, 1, true)
      assert.matches(tostring(bo.id + 1000), err.message, 1, true)
    end)

    it("find_by matches every condition, nil when none matches", function()
      assert.are.equal(bo.id, User:find_by{ email = "bo@example.com" }.id)
      assert.are.equal(ann.id, User:find_by{ name = "Ann", age = 30 }.id)
      assert.is_nil(User:find_by{ name = "Ann", age = 20 })
    end)

    it("all returns every record as an instance", function()
      local all = User:all()
      assert.are.equal(2, #all)
      local names = {}
      for i, u in ipairs(all) do
        assert.is_false(u:is_new())
        names[i] = u.name
      end
      table.sort(names)
      assert.are.same({ "Ann", "Bo" }, names)
    end)

    it("query builds on the model", function()
      local rows = User:query():where{ name = { "Ann", "Bo" } }:order_by("age"):all()
      assert.are.equal(2, #rows)
      assert.are.equal("Bo", rows[1].name)
      assert.are.equal(1, User:query():where("age > ?", 25):count())
      -- found instances save like any other
      local u = rows[1]
      u.age = 21
      assert.are.equal(1, u:save())
      assert.are.equal(21, row(bo.id).age)
    end)
  end)

  describe("errors keep their kind", function()
    it("a duplicate key on save is a ValidationError on its field, caused by the IntegrityError", function()
      User:create{ name = "Ann", email = "dup@example.com" }
      local u = User.new{ name = "Other", email = "dup@example.com" }
      local err = testsuite.error_of(function() return u:save() end)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.is_table(err.errors.email)
      assert.is_true(ar.errors.is(err.cause, "IntegrityError"), tostring(err.cause))
      assert.are.equal(1062, err.cause.code)
      assert.are.equal("23000", err.cause.sqlstate)
      assert.is_true(u:is_new())
      assert.is_nil(u.id)
      assert.are.equal(1, count())
      -- the record can be fixed and saved
      u.email = "other@example.com"
      assert.are.equal(1, u:save())
      assert.are.equal(2, count())
    end)

    it("a duplicate key on update is a ValidationError caused by the IntegrityError; the record stays dirty", function()
      User:create{ name = "Ann", email = "a@example.com" }
      local b = User:create{ name = "Bo", email = "b@example.com" }
      b.email = "a@example.com"
      local err = testsuite.error_of(function() return b:save() end)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.are.equal(1062, err.cause.code)
      assert.is_true(b:is_dirty())
      assert.are.equal("b@example.com", row(b.id).email)
    end)

    it("a NOT NULL violation with validation skipped raises the server's error", function()
      local err = testsuite.error_of(function()
        return User.new{ name = ar.null, email = "x@example.com" }:save{ validate = false }
      end)
      assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
      assert.are.equal(1048, err.code)
      assert.are.equal(0, count())
    end)
  end)
end)

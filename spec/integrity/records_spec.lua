-- Records follow the database (issue 12, design section 8): find() applies
-- default scopes as they are when it runs; a write and its after-handlers
-- are one unit; a rolled-back transaction gives records their state back
-- (also under retries); after INSERT a record holds the server's values of
-- the columns it did not set; JSON tables changed in place are saved.
local ar = require("activerecord")
local support = require("support.db")

local errors = ar.errors

describe("integrity: records", function()
  local db, sqllog

  -- Statements `fn` sends (BEGIN/COMMIT included), as upper-cased verbs + text.
  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function count(tbl, where, ...)
    return db:query("SELECT COUNT(*) AS n FROM " .. tbl .. (where and (" WHERE " .. where) or ""), ...)[1].n
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 3 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    db:execute("DROP TABLE IF EXISTS int_rec_tenant")
    db:execute([[CREATE TABLE int_rec_tenant (id INT PRIMARY KEY AUTO_INCREMENT, tenant_id INT NOT NULL,
      name VARCHAR(50)) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS int_rec_items")
    db:execute([[CREATE TABLE int_rec_items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50),
      status VARCHAR(20) NOT NULL DEFAULT 'open', a INT, b INT,
      total INT AS (a * b) VIRTUAL, stored_total INT AS (a * b) STORED,
      code VARCHAR(60), created_at DATETIME DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB]])
    db:execute([[CREATE TRIGGER int_rec_items_bi BEFORE INSERT ON int_rec_items FOR EACH ROW
      SET NEW.code = CONCAT('C-', COALESCE(NEW.name, '?'))]])
    db:execute("DROP TABLE IF EXISTS int_rec_locked")
    db:execute([[CREATE TABLE int_rec_locked (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50),
      version INT NOT NULL DEFAULT 5) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS int_rec_docs")
    db:execute([[CREATE TABLE int_rec_docs (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50),
      doc JSON) ENGINE=InnoDB]])
  end)

  teardown(function()
    for _, t in ipairs({ "int_rec_tenant", "int_rec_items", "int_rec_locked", "int_rec_docs" }) do
      db:execute("DROP TABLE IF EXISTS " .. t)
    end
    db:close()
  end)

  before_each(function()
    for _, t in ipairs({ "int_rec_tenant", "int_rec_items", "int_rec_locked", "int_rec_docs" }) do
      db:execute("DELETE FROM " .. t)
    end
  end)

  local serial = 0
  -- A fresh model over int_rec_items (its own handlers).
  local function item_model(extra)
    serial = serial + 1
    local def = { name = "IntRecItem" .. serial, table = "int_rec_items", backend = db, fields = {
      id = { type = "integer", primary_key = true }, name = "string", status = "string",
      a = "integer", b = "integer", total = "integer", stored_total = "integer", code = "string",
      created_at = "datetime",
    } }
    for k, v in pairs(extra or {}) do def[k] = v end
    return ar.Model(def)
  end

  local function names()
    local out = {}
    for _, r in ipairs(db:query("SELECT name FROM int_rec_items ORDER BY id")) do out[#out + 1] = r.name end
    return out
  end

  describe("find(id) and default scopes", function()
    it("evaluates a tenant default scope at each call: no tenant reads another's row", function()
      local current = 1
      local tenant_scope = { default_scopes = {
        tenant = function(q) return q:where{ tenant_id = current } end,
      } }
      local Row = ar.Model{ name = "IntRecTenantRow", table = "int_rec_tenant", backend = db,
        mixins = { tenant_scope },
        fields = { id = "integer", tenant_id = "integer", name = "string" } }
      db:execute("INSERT INTO int_rec_tenant (id, tenant_id, name) VALUES (1, 1, 'one'), (2, 2, 'two')")
      assert.are.equal("one", Row:find(1).name)
      assert.is_nil(Row:find(2))
      current = 2
      assert.is_nil(Row:find(1))
      assert.are.equal("two", Row:find(2).name)
      current = 1
      assert.is_nil(Row:find(2))
      assert.are.equal("one", Row:find_or_fail(1).name)
      assert.are.equal(errors.kinds.RecordNotFound, support.error_of(Row.find_or_fail, Row, 2).kind)
    end)

    it("a model without default scopes still finds any row by its cached statement", function()
      local Plain = ar.Model{ name = "IntRecTenantPlain", table = "int_rec_tenant", backend = db,
        fields = { id = "integer", tenant_id = "integer", name = "string" } }
      db:execute("INSERT INTO int_rec_tenant (id, tenant_id, name) VALUES (1, 1, 'one'), (2, 2, 'two')")
      assert.are.equal("one", Plain:find(1).name)
      assert.are.equal("two", Plain:find(2).name)
      assert.is_nil(Plain:find(3))
    end)
  end)

  describe("a write and its after-handlers are one unit", function()
    local function failing(event)
      return item_model{ events = { [event] = function() errors.raise("DataError", "handler says no") end } }
    end

    for _, event in ipairs({ "after_create", "after_save" }) do
      it(event .. " raising undoes the INSERT; the record is new again", function()
        local M = failing(event)
        local r = M.new{ name = "ann" }
        local err = support.error_of(r.save, r)
        assert.are.equal("handler says no", err.message)
        assert.are.equal(0, count("int_rec_items"))
        assert.is_true(r:is_new())
        assert.is_nil(r.id)
        -- a retry by the caller writes the row once, not twice
        M:off(event, M._events[event][1])
        r:save()
        assert.are.equal(1, count("int_rec_items"))
        assert.are.equal(r.id, db:query("SELECT id FROM int_rec_items")[1].id)
      end)

      it(event .. " raising inside an outer transaction undoes only that INSERT", function()
        local M = failing(event)
        local Plain = item_model()
        local r = M.new{ name = "ann" }
        db:transaction(function()
          Plain:create{ name = "before" }
          local ok, err = pcall(r.save, r)
          assert.is_false(ok)
          assert.are.equal("handler says no", err.message)
          Plain:create{ name = "after" }
        end)
        assert.are.same({ "before", "after" }, names())
        assert.is_true(r:is_new())
        assert.is_nil(r.id)
      end)
    end

    for _, event in ipairs({ "after_update", "after_save" }) do
      it(event .. " raising undoes the UPDATE; the record is dirty again", function()
        local M = failing(event)
        local id = db:execute("INSERT INTO int_rec_items (name) VALUES ('ann')").insert_id
        local r = M:find(id)
        r.name = "bob"
        local err = support.error_of(r.save, r)
        assert.are.equal("handler says no", err.message)
        assert.are.same({ "ann" }, names())
        assert.is_true(r:is_dirty())
        assert.are.same({ "name" }, r:dirty_fields())
        assert.are.equal("ann", r:old_value("name"))
        M:off(event, M._events[event][1])
        assert.are.equal(1, r:save())
        assert.are.same({ "bob" }, names())
      end)

      it(event .. " raising inside an outer transaction undoes only that UPDATE", function()
        local M = failing(event)
        local Plain = item_model()
        local id = db:execute("INSERT INTO int_rec_items (name) VALUES ('ann')").insert_id
        local r = M:find(id)
        db:transaction(function()
          r.name = "bob"
          assert.is_false(pcall(r.save, r))
          Plain:create{ name = "after" }
        end)
        assert.are.same({ "ann", "after" }, names())
        assert.is_true(r:is_dirty())
      end)
    end

    it("after_delete raising undoes the DELETE; the record is persisted again", function()
      local M = failing("after_delete")
      local id = db:execute("INSERT INTO int_rec_items (name) VALUES ('ann')").insert_id
      local r = M:find(id)
      local err = support.error_of(r.delete, r)
      assert.are.equal("handler says no", err.message)
      assert.are.same({ "ann" }, names())
      assert.is_false(r:is_new())
      r.name = "bob"
      assert.are.equal(1, r:save())
      assert.are.same({ "bob" }, names())
    end)

    it("after_delete raising inside an outer transaction undoes only that DELETE", function()
      local M = failing("after_delete")
      local Plain = item_model()
      local id = db:execute("INSERT INTO int_rec_items (name) VALUES ('ann')").insert_id
      local r = M:find(id)
      db:transaction(function()
        assert.is_false(pcall(r.delete, r))
        Plain:create{ name = "after" }
      end)
      assert.are.same({ "ann", "after" }, names())
      assert.is_false(r:is_new())
    end)

    it("soft_delete: an after_delete error leaves the row unmarked and the record clean", function()
      db:execute("ALTER TABLE int_rec_tenant ADD COLUMN deleted_at DATETIME(6) NULL")
      finally(function() db:execute("ALTER TABLE int_rec_tenant DROP COLUMN deleted_at") end)
      local Soft = ar.Model{ name = "IntRecSoft", table = "int_rec_tenant", backend = db, mixins = { "soft_delete" },
        fields = { id = "integer", tenant_id = "integer", name = "string" },
        events = { after_delete = function() errors.raise("DataError", "handler says no") end } }
      local r = Soft:create{ tenant_id = 1, name = "ann" }
      assert.is_false(pcall(r.delete, r))
      assert.are.equal(0, count("int_rec_tenant", "deleted_at IS NOT NULL"))
      assert.is_nil(r.deleted_at)
      assert.is_false(r:is_dirty())
      assert.is_false(r:is_new())
    end)

    it("a model without after-handlers sends no transaction around its write", function()
      local Plain = item_model()
      ar.check_models{ models = { Plain } } -- its table read before the count
      local sent = statements(function() Plain:create{ name = "x", status = "s", a = 1, b = 1, total = nil } end)
      assert.are.equal(1, #sent)
      assert.matches("^INSERT", sent[1])
    end)
  end)

  describe("after a rollback, records get their state back", function()
    it("a record inserted in a rolled-back transaction is new again and a later save inserts it", function()
      local M = item_model()
      local r = M.new{ name = "ann", a = 2, b = 3 }
      local ok = pcall(db.transaction, db, function()
        r:save()
        assert.is_not_nil(r.id)
        assert.are.equal("open", r.status)
        error("boom")
      end)
      assert.is_false(ok)
      assert.is_true(r:is_new())
      assert.is_nil(r.id)
      -- values the server filled in are gone too; what the caller set stays
      -- dirty; the column default the record took at new() stays
      assert.are.equal("open", r.status)
      assert.is_nil(r.created_at)
      assert.is_nil(r.total)
      assert.are.same({ "a", "b", "name" }, r:dirty_fields())
      assert.are.equal(1, r:save())
      assert.are.equal(1, count("int_rec_items", "id = ? AND name = 'ann'", r.id))
      assert.are.equal(6, r.total)
    end)

    it("a caller-set id survives the rollback", function()
      local M = item_model()
      local r = M.new{ id = 77, name = "ann" }
      assert.is_false(pcall(db.transaction, db, function() r:save() error("boom") end))
      assert.is_true(r:is_new())
      assert.are.equal(77, r.id)
      r:save()
      assert.are.equal(1, count("int_rec_items", "id = 77"))
    end)

    it("a record updated in a rolled-back transaction is dirty again and a later save writes it", function()
      local M = item_model()
      local r = M:create{ name = "ann", a = 1 }
      r.name = "bob"
      r.a = 5
      assert.is_false(pcall(db.transaction, db, function()
        r:save()
        assert.is_false(r:is_dirty())
        error("boom")
      end))
      assert.is_true(r:is_dirty())
      assert.are.same({ "a", "name" }, r:dirty_fields())
      assert.are.equal("ann", r:old_value("name"))
      assert.are.equal(1, r:old_value("a"))
      assert.are.equal(1, r:save())
      local row = db:query("SELECT name, a FROM int_rec_items WHERE id = ?", r.id)[1]
      assert.are.same({ name = "bob", a = 5 }, row)
    end)

    it("two saves of one record in a rolled-back transaction leave the first save's changes", function()
      local M = item_model()
      local r = M:create{ name = "ann", a = 1 }
      assert.is_false(pcall(db.transaction, db, function()
        r.name = "bob"
        r:save()
        r.a = 2
        r:save()
        error("boom")
      end))
      assert.are.same({ "a", "name" }, r:dirty_fields())
      assert.are.equal("ann", r:old_value("name"))
      assert.are.equal(1, r:old_value("a"))
      r:save()
      assert.are.same({ name = "bob", a = 2 }, db:query("SELECT name, a FROM int_rec_items WHERE id = ?", r.id)[1])
    end)

    it("a record deleted in a rolled-back transaction is persisted again", function()
      local M = item_model()
      local r = M:create{ name = "ann" }
      assert.is_false(pcall(db.transaction, db, function() r:delete() error("boom") end))
      assert.is_false(r:is_new())
      assert.are.equal(1, count("int_rec_items"))
      r.name = "bob"
      assert.are.equal(1, r:save())
      assert.are.same({ "bob" }, names())
      assert.are.equal(1, count("int_rec_items"))
    end)

    it("a savepoint rolled back inside a committed transaction undoes only its records", function()
      local M = item_model()
      local kept, undone = M.new{ name = "kept" }, M.new{ name = "undone" }
      db:transaction(function()
        kept:save()
        pcall(db.transaction, db, function() undone:save() error("inner") end)
      end)
      assert.is_false(kept:is_new())
      assert.is_true(undone:is_new())
      assert.is_nil(undone.id)
      assert.are.same({ "kept" }, names())
    end)

    it("retries = 2: a handler failing the first attempt with a deadlock leaves the record saved once", function()
      local attempts = 0
      local M = item_model{ events = { after_create = function()
        if attempts == 1 then errors.raise("DeadlockError", "simulated deadlock (1213)") end
      end } }
      local r = M.new{ name = "ann" }
      local other = item_model().new{ name = "bob" }
      db:transaction(function()
        attempts = attempts + 1
        other:save()
        r:save()
      end, { retries = 2 })
      assert.are.equal(2, attempts)
      assert.is_false(r:is_new())
      assert.are.same({ "bob", "ann" }, names())
      assert.are.equal(r.id, db:query("SELECT id FROM int_rec_items WHERE name = 'ann'")[1].id)
      assert.are.equal(other.id, db:query("SELECT id FROM int_rec_items WHERE name = 'bob'")[1].id)
    end)

    it("retries: an update whose first attempt deadlocks is written by the second", function()
      local M = item_model()
      local r = M:create{ name = "ann" }
      local attempts = 0
      db:transaction(function()
        attempts = attempts + 1
        if attempts == 1 then r.name = "bob" end
        r:save()
        if attempts == 1 then error(errors.new("DeadlockError", "simulated deadlock (1213)"), 0) end
      end, { retries = 2 })
      assert.are.equal(2, attempts)
      assert.are.same({ "bob" }, names())
      assert.is_false(r:is_dirty())
    end)
  end)

  describe("after INSERT the record holds the server's values", function()
    it("reads back a DEFAULT, generated columns, a trigger-set value and CURRENT_TIMESTAMP", function()
      local M = item_model()
      local r = M:create{ name = "ann", a = 3, b = 4 }
      assert.are.equal("open", r.status)
      assert.are.equal(12, r.total)
      assert.are.equal(12, r.stored_total)
      assert.are.equal("C-ann", r.code)
      assert.is_not_nil(r.created_at)
      assert.is_false(r:is_dirty())
      local fresh = M:find(r.id)
      for _, f in ipairs({ "id", "name", "status", "a", "b", "total", "stored_total", "code", "created_at" }) do
        assert.are.same(fresh[f], r[f], f)
      end
    end)

    it("a value the caller set is written and not read back", function()
      local M = item_model()
      local r = M:create{ name = "ann", status = "closed" }
      assert.are.equal("closed", r.status)
      assert.are.equal("closed", db:query("SELECT status FROM int_rec_items WHERE id = ?", r.id)[1].status)
    end)

    it("when every column but the generated key is set, the INSERT returns nothing more", function()
      local M = ar.Model{ name = "IntRecLockedPlain", table = "int_rec_locked", backend = db,
        fields = { id = "integer", name = "string", version = "integer" } }
      ar.check_models{ models = { M } } -- its table read before the count
      local sent = statements(function() M:create{ name = "x", version = 1 } end)
      assert.are.equal(1, #sent)
      assert.is_nil(sent[1]:upper():find("RETURNING"))
    end)

    it("without RETURNING, the values are read by primary key", function()
      local nr = ar.connect(support.options{ pool = { size = 1 },
        log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
      finally(function() nr:close() end)
      local supports = nr.supports
      nr.supports = function(self, name)
        if name == "returning" then return false end
        return supports(self, name)
      end
      local M = item_model{ backend = nr }
      ar.check_models{ models = { M } } -- its table read before the count
      local r
      local sent = statements(function() r = M:create{ name = "ann", a = 2, b = 5 } end)
      assert.are.equal(2, #sent)
      assert.is_nil(sent[1]:upper():find("RETURNING"))
      assert.matches("^SELECT", sent[2])
      assert.are.equal("open", r.status)
      assert.are.equal(10, r.total)
      assert.are.equal("C-ann", r.code)
      assert.is_not_nil(r.created_at)
      assert.are.equal(r.id, db:query("SELECT id FROM int_rec_items")[1].id)
    end)

    it("optimistic_lock starts at the table's default version and checks it", function()
      local Locked = ar.Model{ name = "IntRecLocked", table = "int_rec_locked", backend = db,
        mixins = { "optimistic_lock" }, fields = { id = "integer", name = "string" } }
      local r = Locked:create{ name = "ann" }
      assert.are.equal(5, r.version)
      assert.are.equal(5, db:query("SELECT version FROM int_rec_locked WHERE id = ?", r.id)[1].version)
      local stale = Locked:find(r.id)
      r.name = "bob"
      r:save()
      assert.are.equal(6, r.version)
      stale.name = "cy"
      assert.are.equal(errors.kinds.StaleObjectError, support.error_of(stale.save, stale).kind)
      -- a version the caller sets is kept
      assert.are.equal(9, Locked:create{ name = "dee", version = 9 }.version)
    end)
  end)

  describe("JSON values changed in place", function()
    local Doc
    setup(function()
      Doc = ar.Model{ name = "IntRecDoc", table = "int_rec_docs", backend = db,
        fields = { id = "integer", name = "string", doc = "json" } }
    end)

    local function stored(id)
      local text = db:query("SELECT CAST(doc AS CHAR) AS d FROM int_rec_docs WHERE id = ?", id)[1].d
      return require("cjson").decode(text)
    end

    it("an in-place change on a loaded record marks the field dirty and is saved", function()
      local id = Doc:create{ name = "a", doc = { browser = "firefox", n = 1 } }.id
      local r = Doc:find(id)
      r.doc.browser = "safari"
      assert.is_true(r:is_dirty())
      assert.are.same({ "doc" }, r:dirty_fields())
      assert.are.equal("firefox", r:old_value("doc").browser)
      assert.are.equal(1, r:save())
      assert.are.same({ browser = "safari", n = 1 }, stored(id))
      assert.is_false(r:is_dirty())
      -- and again on the same record: the saved state is the new reference
      r.doc.n = 2
      assert.are.same({ "doc" }, r:dirty_fields())
      r:save()
      assert.are.same({ browser = "safari", n = 2 }, stored(id))
    end)

    it("a nested change is saved", function()
      local id = Doc:create{ doc = { prefs = { langs = { "en", "de" }, dark = false } } }.id
      local r = Doc:find(id)
      local prefs = r.doc.prefs
      prefs.langs[2] = "fr"
      prefs.dark = true
      r:save()
      assert.are.same({ prefs = { langs = { "en", "fr" }, dark = true } }, stored(id))
      -- a removed key is a change too
      r.doc.prefs.dark = nil
      assert.is_true(r:is_dirty())
      r:save()
      assert.are.same({ prefs = { langs = { "en", "fr" } } }, stored(id))
    end)

    it("a table kept from before the INSERT and changed afterwards is saved", function()
      local doc = { step = 1 }
      local r = Doc:create{ doc = doc }
      doc.step = 2
      assert.is_true(r:is_dirty())
      r:save()
      assert.are.same({ step = 2 }, stored(r.id))
    end)

    it("unchanged JSON after reading is not dirty and save() sends no SQL", function()
      local id = Doc:create{ doc = { a = { 1, 2, { b = "c" } }, x = 1.5 } }.id
      local r = Doc:find(id)
      local seen = r.doc.a[3].b .. tostring(r.doc.x)
      assert.are.equal("c1.5", seen)
      assert.is_false(r:is_dirty())
      assert.are.same({}, r:dirty_fields())
      local ret
      local sent = statements(function() ret = r:save() end)
      assert.are.equal(0, ret)
      assert.are.same({}, sent)
    end)

    it("a rolled-back save of an in-place change leaves it dirty; the next save writes it", function()
      local id = Doc:create{ doc = { v = 1 } }.id
      local r = Doc:find(id)
      r.doc.v = 2
      assert.is_false(pcall(db.transaction, db, function() r:save() error("boom") end))
      assert.is_true(r:is_dirty())
      r:save()
      assert.are.same({ v = 2 }, stored(id))
    end)
  end)
end)

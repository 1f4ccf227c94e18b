-- After an UPDATE, what the server computed is read back (issue 14, design
-- section 8 "Records follow the database"): generated columns and the ON
-- UPDATE CURRENT_TIMESTAMP columns the UPDATE did not set, known from the
-- table's introspection, are read by primary key in the same transaction
-- as the UPDATE (its SELECT compiled once per statement shape), so the
-- record matches its row; a rollback gives the record the values from
-- before the UPDATE again.
local ar = require("activerecord")
local support = require("support.db")

local OLD = "2000-01-01 00:00:00.000000"

describe("integrity: values the server computes on UPDATE are read back", function()
  local db, sqllog, compiled
  local serial = 0

  -- statements `fn` sends, their verbs upper-cased first
  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function verbs(list)
    local out = {}
    for i, sql in ipairs(list) do out[i] = sql:match("^%a+"):upper() end
    return out
  end

  local function row(id)
    return db:query("SELECT * FROM urb_items WHERE id = ?", id)[1]
  end

  local function model(fields, extra)
    serial = serial + 1
    local def = { name = "UrbItem" .. serial, table = "urb_items", backend = db, fields = fields }
    for k, v in pairs(extra or {}) do def[k] = v end
    local M = ar.Model(def)
    ar.check_models{ models = { M } } -- the table read before statements are counted
    return M
  end

  local FULL = { id = "integer", name = "string", a = "integer", b = "integer", total = "integer",
                 stored = "integer", touched = "datetime" }

  -- a stored record whose ON UPDATE column holds OLD
  local function stored(M, attrs)
    local r = M:create(attrs or { name = "x", a = 2, b = 3 })
    db:execute("UPDATE urb_items SET touched = ? WHERE id = ?", OLD, r.id)
    return M:find(r.id)
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    local compile = db.compile
    db.compile = function(self, kind, ...)
      if compiled then compiled[#compiled + 1] = kind end
      return compile(self, kind, ...)
    end
    db:execute("DROP TABLE IF EXISTS urb_items")
    db:execute([[CREATE TABLE urb_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40),
      a INT NOT NULL DEFAULT 1, b INT NOT NULL DEFAULT 1, total INT AS (a * b) VIRTUAL,
      stored INT AS (a + b) STORED,
      touched DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS urb_plain")
    db:execute("CREATE TABLE urb_plain (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB")
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS urb_items")
    db:execute("DROP TABLE IF EXISTS urb_plain")
    db:close()
  end)

  before_each(function() db:execute("DELETE FROM urb_items") end)

  it("save reads back the generated and ON UPDATE columns, in one transaction with the UPDATE", function()
    local M = model(FULL)
    local r = stored(M)
    assert.are.equal(OLD, r.touched)
    r.a = 5
    local sent = statements(function() assert.are.equal(1, r:save()) end)
    assert.are.same({ "BEGIN", "UPDATE", "SELECT", "COMMIT" }, verbs(sent))
    local now = row(r.id)
    assert.are.equal(15, r.total)
    assert.are.equal(8, r.stored)
    assert.are_not.equal(OLD, r.touched)
    for _, k in ipairs({ "total", "stored", "touched" }) do assert.are.equal(now[k], r[k], k) end
    assert.is_false(r:is_dirty())
    -- the SELECT names the computed columns only
    assert.is_nil(sent[3]:find("`name`", 1, true))
  end)

  it("update{...} does the same, and the after-handlers see the values read back", function()
    local seen
    local M = model(FULL, { events = { after_update = function(rec) seen = rec.total end } })
    local r = stored(M)
    r:update{ b = 10 }
    assert.are.equal(20, seen)
    assert.are.same({ 20, 12 }, { r.total, r.stored })
    assert.are.equal(row(r.id).touched, r.touched)
  end)

  it("inside a transaction the read-back runs in it, without a transaction of its own", function()
    local M = model(FULL)
    local r = stored(M)
    local sent = statements(function()
      db:transaction(function()
        r.a = 7
        r:save()
        assert.are.equal(21, r.total)
      end)
    end)
    assert.are.same({ "BEGIN", "UPDATE", "SELECT", "COMMIT" }, verbs(sent))
  end)

  it("an ON UPDATE column the UPDATE sets keeps the written value; generated ones are still read", function()
    local M = model(FULL)
    local r = stored(M)
    r.a = 4
    r.touched = "2011-11-11 11:11:11"
    local sent = statements(function() r:save() end)
    assert.is_nil(sent[3]:find("touched", 1, true))
    assert.are.equal("2011-11-11 11:11:11", r.touched)
    assert.are.equal("2011-11-11 11:11:11.000000", row(r.id).touched)
    assert.are.equal(12, r.total)
  end)

  it("an UPDATE that sets every ON UPDATE column of a table without generated ones reads nothing", function()
    db:execute("DROP TABLE IF EXISTS urb_stamped")
    db:execute([[CREATE TABLE urb_stamped (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), created_at DATETIME(6),
      updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)) ENGINE=InnoDB]])
    finally(function() db:execute("DROP TABLE IF EXISTS urb_stamped") end)
    local Stamped = ar.Model{ name = "UrbStamped", table = "urb_stamped", backend = db,
      fields = { id = "integer", name = "string" }, mixins = { "timestamps" } }
    local r = Stamped:create{ name = "a" }
    r.name = "b"
    -- the timestamps mixin sets updated_at itself: no transaction, no read-back
    assert.are.same({ "UPDATE" }, verbs(statements(function() r:save() end)))
  end)

  it("an UPDATE that changed nothing reads nothing", function()
    local M = model(FULL)
    local r = stored(M)
    db:execute("UPDATE urb_items SET name = 'same' WHERE id = ?", r.id)
    r.name = "same"
    local sent = statements(function() assert.are.equal(0, r:save()) end)
    assert.are.same({ "BEGIN", "UPDATE", "COMMIT" }, verbs(sent))
  end)

  it("compiles the read-back SELECT once per statement shape", function()
    local M = model(FULL)
    local r = stored(M)
    compiled = {}
    r.a = 3
    r:save()
    r.a = 4
    r:save()
    local n = 0
    for _, kind in ipairs(compiled) do if kind == "select" then n = n + 1 end end
    compiled = nil
    assert.are.equal(1, n)
    assert.are.equal(4 * 3, r.total)
  end)

  it("a rollback gives the record the values from before the UPDATE again", function()
    local M = model(FULL)
    local r = stored(M)
    local ok = pcall(db.transaction, db, function()
      r.a = 9
      r:save()
      assert.are.equal(27, r.total)
      assert.are_not.equal(OLD, r.touched)
      error("boom")
    end)
    assert.is_false(ok)
    assert.are.same({ 6, 5, OLD }, { r.total, r.stored, r.touched })
    assert.are.same({ "a" }, r:dirty_fields()) -- what the caller set stays to be written
    assert.are.equal(9, r.a)
    -- a savepoint undone inside a transaction that goes on
    db:transaction(function()
      pcall(db.transaction, db, function()
        r:save()
        assert.are.equal(27, r.total)
        error("inner")
      end)
      assert.are.equal(6, r.total)
    end)
    assert.are.equal(1, r:save())
    assert.are.same({ 27, 12 }, { r.total, r.stored })
    assert.are.equal(row(r.id).touched, r.touched)
  end)

  it("reads nothing for a table without such columns, or a model that leaves them out", function()
    local Plain = ar.Model{ name = "UrbPlain", table = "urb_plain", backend = db }
    local p = Plain:create{ name = "p" }
    p.name = "q"
    assert.are.same({ "UPDATE" }, verbs(statements(function() p:save() end)))
    local Few = model{ id = "integer", name = "string", a = "integer" }
    local r = stored(Few, { name = "x", a = 2 })
    r.a = 3
    assert.are.same({ "UPDATE" }, verbs(statements(function() r:save() end)))
  end)

  it("works for a model without fields", function()
    local M = model(nil)
    local r = stored(M)
    r.b = 4
    r:save()
    assert.are.same({ 8, 6 }, { r.total, r.stored })
    assert.are.equal(row(r.id).touched, r.touched)
  end)
end)

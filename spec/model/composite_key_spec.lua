-- Composite primary keys (issue 16): `primary_key = { "order_id", "line_no" }`
-- on a model (or a table's composite PRIMARY KEY read by a model without
-- fields). find{...}, save, update, delete and reload go by the FULL key
-- (WHERE order_id = ? AND line_no = ?), touching only that row; optimistic
-- lock and uniqueness exclude the record by its full key; bulk inserts give
-- a clear error. A single-key model keeps its string `primary_key`.
local ar = require("activerecord")
local support = require("support.db")

describe("model: composite primary keys", function()
  local db, sqllog

  -- The statements `fn` sends.
  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function error_of(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error")
    return err
  end

  local function rows(sql)
    return db:query(sql)
  end

  local n = 0
  local function name(base)
    n = n + 1
    return base .. n
  end

  local function line_item(extra)
    local def = { name = name("CkLineItem"), table = "ck_line_items", backend = db,
      primary_key = { "order_id", "line_no" },
      fields = { order_id = "integer", line_no = "integer", sku = { type = "string", size = 20 },
                 qty = "integer" } }
    for k, v in pairs(extra or {}) do def[k] = v end
    return ar.Model(def)
  end

  local TABLES = { "ck_line_items", "ck_versioned", "ck_auto", "ck_plain" }

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    for _, t in ipairs(TABLES) do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:execute([[CREATE TABLE ck_line_items (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20),
      qty INT NOT NULL DEFAULT 1, PRIMARY KEY (order_id, line_no)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE ck_versioned (tenant VARCHAR(10) NOT NULL, code VARCHAR(10) NOT NULL,
      title VARCHAR(50), version INT NOT NULL DEFAULT 0, PRIMARY KEY (tenant, code)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE ck_auto (id INT NOT NULL AUTO_INCREMENT, shard INT NOT NULL, note VARCHAR(20),
      PRIMARY KEY (id, shard)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE ck_plain (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(20)) ENGINE=InnoDB]])
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:close()
  end)

  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
  end)

  describe("definition", function()
    it("primary_key and primary_keys are the list, pk_fields its fields, no pk_field; key parts first", function()
      local Item = line_item()
      assert.same({ "order_id", "line_no" }, Item.primary_key)
      assert.same({ "order_id", "line_no" }, Item.primary_keys)
      assert.are.equal(2, #Item.pk_fields)
      assert.are.equal(Item.fields.order_id, Item.pk_fields[1])
      assert.are.equal(Item.fields.line_no, Item.pk_fields[2])
      assert.is_nil(Item.pk_field)
      assert.are.equal("order_id", Item.field_list[1].name)
      assert.are.equal("line_no", Item.field_list[2].name)
      assert.is_true(Item.fields.order_id.primary_key)
      assert.is_nil(Item.fields.order_id.auto) -- a given key, not generated
    end)

    it("a single-key model keeps a string primary_key and its pk_field, and lists of one", function()
      local Plain = ar.Model{ name = name("CkPlain"), table = "ck_plain", backend = db, fields = { note = "string" } }
      assert.are.equal("id", Plain.primary_key)
      assert.are.equal(Plain.fields.id, Plain.pk_field)
      assert.same({ "id" }, Plain.primary_keys)
      assert.are.equal(Plain.fields.id, Plain.pk_fields[1])
      local Named = ar.Model{ name = name("CkPlain"), table = "ck_plain", backend = db, primary_key = { "id" },
        fields = { id = "integer", note = "string" } }
      assert.are.equal("id", Named.primary_key) -- a list of one is the name
    end)

    it("a model without fields takes the table's composite key, in column order", function()
      local Item = ar.Model{ name = name("CkReflect"), table = "ck_line_items", backend = db }
      assert.same({ "order_id", "line_no" }, Item.primary_keys)
      assert.is_nil(Item.pk_field)
      local Auto = ar.Model{ name = name("CkReflectAuto"), table = "ck_auto", backend = db }
      assert.same({ "id", "shard" }, Auto.primary_keys)
      assert.is_true(Auto.fields.id.auto) -- the table's AUTO_INCREMENT
      Auto:create{ shard = 3, note = "x" }
      assert.are.equal(1, Auto:count())
    end)

    it("refuses a malformed primary_key, a part naming no field, and a flag the key leaves out", function()
      local err = error_of(line_item, { primary_key = { "order_id", "order_id" } })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("list of distinct field names", err.message, 1, true)
      err = error_of(line_item, { primary_key = { "order_id", 5 } })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      err = error_of(line_item, { primary_key = { "order_id", "nope" } })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("nope", err.message, 1, true)
      err = error_of(line_item, { primary_key = { "order_id", "line_no" }, fields = { order_id = "integer",
        line_no = "integer", sku = { type = "string", primary_key = true } } })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("leaves it out", err.message, 1, true)
      -- two fields flagged without a list: the message shows the composite form
      err = error_of(ar.Model, { name = name("CkTwo"), table = "ck_line_items", backend = db,
        fields = { order_id = { type = "integer", primary_key = true },
                   line_no = { type = "integer", primary_key = true } } })
      assert.matches("primary_key = { \"line_no\", \"order_id\" }", err.message, 1, true)
    end)
  end)

  describe("find", function()
    it("find{ ... } takes the full key; find_or_fail names the full key; find_by and where work", function()
      local Item = line_item()
      Item:create{ order_id = 1, line_no = 1, sku = "a" }
      Item:create{ order_id = 1, line_no = 2, sku = "b" }
      Item:create{ order_id = 2, line_no = 1, sku = "c" }
      local sql = statements(function()
        assert.are.equal("b", Item:find{ order_id = 1, line_no = 2 }.sku)
      end)
      assert.are.equal(1, #sql)
      assert.matches("`order_id` = ?", sql[1], 1, true)
      assert.matches("`line_no` = ?", sql[1], 1, true)
      assert.is_nil(Item:find{ order_id = 2, line_no = 2 })
      local err = error_of(Item.find_or_fail, Item, { order_id = 2, line_no = 2 })
      assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
      assert.matches("order_id = 2, line_no = 2", err.message, 1, true)
      assert.are.equal("c", Item:find_by{ order_id = 2 }.sku)
      assert.are.equal(2, Item:where{ order_id = 1 }:count())
      -- first/last order by every key part
      assert.are.equal("a", Item:first().sku)
      assert.are.equal("c", Item:last().sku)
      assert.are.equal("b", Item:where{ order_id = 1 }:last().sku)
      assert.same({ { order_id = 1, line_no = 1 }, { order_id = 1, line_no = 2 }, { order_id = 2, line_no = 1 } },
        Item:query():order_by("order_id"):order_by("line_no"):ids())
      local page = Item:query():paginate{ per_page = 2, page = 2 }
      assert.are.equal("c", page.records[1].sku)
    end)

    it("find(5), a missing part or an unknown one is a clear QueryError", function()
      local Item = line_item()
      local err = error_of(Item.find, Item, 5)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("composite primary key (order_id, line_no)", err.message, 1, true)
      err = error_of(Item.find, Item, { order_id = 1 })
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("'line_no' is missing", err.message, 1, true)
      err = error_of(Item.find, Item, { order_id = 1, line_no = 2, sku = "x" })
      assert.matches("'sku' is not a part", err.message, 1, true)
    end)
  end)

  describe("writes by the full key", function()
    it("create writes the given key (no read-back of a generated id); update and delete touch only that row", function()
      local Item = line_item()
      local a = Item:create{ order_id = 7, line_no = 1, sku = "a", qty = 2 }
      local b = Item:create{ order_id = 7, line_no = 2, sku = "b", qty = 3 }
      assert.is_false(a:is_new())
      local sql = statements(function() b:update{ qty = 30 } end)
      assert.are.equal(1, #sql)
      assert.matches("UPDATE `ck_line_items` SET `qty` = ? WHERE", sql[1], 1, true)
      assert.matches("`order_id` = ?", sql[1], 1, true)
      assert.matches("`line_no` = ?", sql[1], 1, true)
      local got = rows("SELECT line_no, qty FROM ck_line_items WHERE order_id = 7 ORDER BY line_no")
      assert.are.equal(2, got[1].qty)
      assert.are.equal(30, got[2].qty)
      sql = statements(function() a:delete() end)
      assert.are.equal(1, #sql)
      assert.matches("DELETE FROM `ck_line_items` WHERE", sql[1], 1, true)
      got = rows("SELECT line_no FROM ck_line_items WHERE order_id = 7")
      assert.are.equal(1, #got)
      assert.are.equal(2, got[1].line_no)
      assert.is_true(a:is_new()) -- deleted: new again
    end)

    it("reads back what the server fills (a column default) after an INSERT", function()
      local Item = line_item()
      local a = Item:create{ order_id = 8, line_no = 1, sku = "a" }
      assert.are.equal(1, a.qty)
    end)

    it("changing a key part updates the row stored under the old key", function()
      local Item = line_item()
      local a = Item:create{ order_id = 9, line_no = 1, sku = "a" }
      Item:create{ order_id = 9, line_no = 2, sku = "b" }
      a.line_no = 5
      a:save()
      local got = rows("SELECT line_no, sku FROM ck_line_items WHERE order_id = 9 ORDER BY line_no")
      assert.are.equal(2, #got)
      assert.are.equal(2, got[1].line_no)
      assert.are.equal(5, got[2].line_no)
      assert.are.equal("a", got[2].sku)
      a:reload()
      assert.are.equal(5, a.line_no)
    end)

    it("reload reads by the full key; a gone row is RecordNotFound naming it", function()
      local Item = line_item()
      local a = Item:create{ order_id = 10, line_no = 1, sku = "a" }
      Item:create{ order_id = 10, line_no = 2, sku = "b" }
      db:execute("UPDATE ck_line_items SET sku = 'z' WHERE order_id = 10 AND line_no = 1")
      a.sku = "local"
      a:reload()
      assert.are.equal("z", a.sku)
      assert.is_false(a:is_dirty())
      db:execute("DELETE FROM ck_line_items WHERE order_id = 10 AND line_no = 1")
      local err = error_of(a.reload, a)
      assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
      assert.matches("order_id = 10, line_no = 1", err.message, 1, true)
    end)

    it("a rolled-back create leaves the record new again", function()
      local Item = line_item()
      local a = Item.new{ order_id = 11, line_no = 1, sku = "a" }
      pcall(db.transaction, db, function()
        a:save()
        error("stop")
      end)
      assert.is_true(a:is_new())
      assert.are.equal(0, #rows("SELECT 1 FROM ck_line_items WHERE order_id = 11"))
      a:save()
      assert.are.equal(1, #rows("SELECT 1 FROM ck_line_items WHERE order_id = 11"))
    end)

    it("an AUTO_INCREMENT key part is generated when left out and read back from the insert id", function()
      local Auto = ar.Model{ name = name("CkAuto"), table = "ck_auto", backend = db, primary_key = { "id", "shard" },
        fields = { id = { type = "integer", auto_increment = true }, shard = "integer", note = "string" } }
      local a = Auto:create{ shard = 1, note = "x" }
      local b = Auto:create{ shard = 1, note = "y" }
      assert.is_number(a.id)
      assert.are.equal(a.id + 1, b.id)
      assert.are.equal("y", Auto:find{ id = b.id, shard = 1 }.note)
      b:update{ note = "yy" }
      assert.are.equal("x", Auto:find{ id = a.id, shard = 1 }.note)
    end)

    it("optimistic lock guards by the full key: a stale copy raises and writes nothing", function()
      local Doc = ar.Model{ name = name("CkDoc"), table = "ck_versioned", backend = db,
        primary_key = { "tenant", "code" }, mixins = { "optimistic_lock" },
        fields = { tenant = { type = "string", size = 10 }, code = { type = "string", size = 10 },
                   title = "string" } }
      Doc:create{ tenant = "t1", code = "a", title = "one" }
      Doc:create{ tenant = "t2", code = "a", title = "other" }
      local x = Doc:find{ tenant = "t1", code = "a" }
      local y = Doc:find{ tenant = "t1", code = "a" }
      x:update{ title = "x" }
      local err = error_of(y.update, y, { title = "y" })
      assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
      assert.matches("tenant = \"t1\", code = \"a\"", err.message, 1, true)
      assert.are.equal("x", Doc:find{ tenant = "t1", code = "a" }.title)
      assert.are.equal("other", Doc:find{ tenant = "t2", code = "a" }.title)
      err = error_of(y.delete, y)
      assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
      x:delete()
      assert.are.equal(1, Doc:count())
    end)

    it("uniqueness excludes the record itself by its full key (NOT (a = ? AND b = ?))", function()
      local Item = line_item({ fields = { order_id = "integer", line_no = "integer",
        sku = { type = "string", size = 20, unique = { scope = "order_id" } }, qty = "integer" } })
      local a = Item:create{ order_id = 12, line_no = 1, sku = "same" }
      Item:create{ order_id = 13, line_no = 1, sku = "same" } -- another order: allowed
      a.qty = 5
      a:save() -- its own row does not count
      local err = error_of(Item.create, Item, { order_id = 12, line_no = 2, sku = "same" })
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.same({ "has already been taken" }, err.errors.sku)
      -- a row sharing order_id but not line_no is another row
      local b = Item:create{ order_id = 12, line_no = 3, sku = "other" }
      b.sku = "same"
      err = error_of(b.save, b)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    end)
  end)

  describe("bulk paths", function()
    it("insert_all and upsert_all give a clear ConfigError; update_all and delete_all work on a query", function()
      local Item = line_item()
      local err = error_of(Item.insert_all, Item, { { order_id = 1, line_no = 1 } })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("composite primary key (order_id, line_no)", err.message, 1, true)
      err = error_of(Item.upsert_all, Item, { { order_id = 1, line_no = 1 } })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      Item:create{ order_id = 20, line_no = 1, sku = "a" }
      Item:create{ order_id = 20, line_no = 2, sku = "b" }
      Item:create{ order_id = 21, line_no = 1, sku = "c" }
      assert.are.equal(2, Item:where{ order_id = 20 }:update_all{ qty = 9 })
      assert.are.equal(9, Item:find{ order_id = 20, line_no = 2 }.qty)
      assert.are.equal(1, Item:find{ order_id = 21, line_no = 1 }.qty)
      assert.are.equal(1, Item:where{ order_id = 20, line_no = 1 }:delete_all())
      assert.are.equal(2, Item:count())
      err = error_of(function() return Item:query():find_each(function() end) end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("composite primary key", err.message, 1, true)
    end)
  end)
end)

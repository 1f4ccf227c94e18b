-- Relations over composite keys (issue 16): has_many/has_one/belongs_to with
-- `foreign_key = { "order_id", "line_no" }` (and a list `primary_key`): the
-- accessor, `<name>_query()`, eager loading with one query per level
-- (`(a = ? AND b = ?) OR ...`, bound), joins, dependents, and the
-- ConfigErrors for lists that do not match.
local ar = require("activerecord")
local support = require("support.db")

describe("relations: composite foreign keys", function()
  local db, sqllog
  local Order, LineItem, Note

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

  local n = 0
  local function define(opts)
    n = n + 1
    local s = tostring(n)
    opts = opts or {}
    Order = ar.Model{ name = "CfOrder" .. s, table = "cf_orders", backend = db,
      fields = { id = { type = "integer", primary_key = true }, ref = "string" },
      relations = { line_items = ar.has_many("CfLineItem" .. s, { foreign_key = "order_id" }) } }
    LineItem = ar.Model{ name = "CfLineItem" .. s, table = "cf_line_items", backend = db,
      primary_key = { "order_id", "line_no" },
      fields = { order_id = "integer", line_no = "integer", sku = "string" },
      relations = {
        order = ar.belongs_to("CfOrder" .. s, { foreign_key = "order_id" }),
        notes = ar.has_many("CfNote" .. s, { foreign_key = { "order_id", "line_no" }, order_by = "id",
          dependent = opts.dependent, inverse_of = "line_item" }),
        first_note = ar.has_one("CfNote" .. s, { foreign_key = { "order_id", "line_no" }, order_by = "id" }),
      } }
    Note = ar.Model{ name = "CfNote" .. s, table = "cf_notes", backend = db,
      fields = { id = { type = "integer", primary_key = true }, order_id = "integer", line_no = "integer",
                 body = "string" },
      relations = { line_item = ar.belongs_to("CfLineItem" .. s, { foreign_key = { "order_id", "line_no" } }) } }
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    for _, t in ipairs({ "cf_notes", "cf_line_items", "cf_orders" }) do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:execute("CREATE TABLE cf_orders (id INT PRIMARY KEY AUTO_INCREMENT, ref VARCHAR(20)) ENGINE=InnoDB")
    db:execute([[CREATE TABLE cf_line_items (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20),
      PRIMARY KEY (order_id, line_no)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE cf_notes (id INT PRIMARY KEY AUTO_INCREMENT, order_id INT NULL, line_no INT NULL,
      body VARCHAR(50)) ENGINE=InnoDB]])
  end)

  teardown(function()
    for _, t in ipairs({ "cf_notes", "cf_line_items", "cf_orders" }) do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:close()
  end)

  before_each(function()
    for _, t in ipairs({ "cf_notes", "cf_line_items", "cf_orders" }) do db:execute("DELETE FROM " .. t) end
    define()
  end)

  -- two orders; order 1 has lines 1 and 2 (sharing order_id), order 2 line 1;
  -- notes on (1,1) x2, (1,2) x1, (2,1) x0
  local function seed()
    local o1, o2 = Order:create{ ref = "A" }, Order:create{ ref = "B" }
    local l11 = LineItem:create{ order_id = o1.id, line_no = 1, sku = "a" }
    local l12 = LineItem:create{ order_id = o1.id, line_no = 2, sku = "b" }
    local l21 = LineItem:create{ order_id = o2.id, line_no = 1, sku = "c" }
    Note:create{ order_id = o1.id, line_no = 1, body = "n1" }
    Note:create{ order_id = o1.id, line_no = 1, body = "n2" }
    Note:create{ order_id = o1.id, line_no = 2, body = "n3" }
    -- a note on line 1 of order 2's id but another order: must not leak
    return o1, o2, l11, l12, l21
  end

  local function bodies(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.body end
    return out
  end

  it("the accessor and <name>_query() match every key part", function()
    local o1, _, l11, l12, l21 = seed()
    assert.same({ "n1", "n2" }, bodies(l11:notes()))
    assert.same({ "n3" }, bodies(l12:notes()))
    assert.same({}, l21:notes())
    assert.are.equal("n1", l11:first_note().body)
    assert.is_nil(l21:first_note())
    local sql = statements(function() assert.are.equal(1, l12:notes_query():count()) end)
    assert.matches("`order_id` = ?", sql[1], 1, true)
    assert.matches("`line_no` = ?", sql[1], 1, true)
    local note = Note:find_by{ body = "n3" }
    assert.are.equal("b", note:line_item().sku)
    assert.are.equal(o1.id, l11:order().id)
    -- a note without a full key points at nothing (no query)
    local loose = Note:create{ order_id = o1.id, body = "loose" }
    sql = statements(function() assert.is_nil(loose:line_item()) end)
    assert.are.equal(0, #sql)
    -- a changed key part loads again
    note.line_no = 1
    assert.are.equal("a", note:line_item().sku)
  end)

  it("eager loading: one query per level, OR-of-ANDs with bound values, each owner gets its own rows", function()
    seed()
    local orders
    local sql = statements(function()
      orders = Order:query():order_by("id"):with("line_items", "line_items.notes", "line_items.first_note"):all()
    end)
    assert.are.equal(4, #sql) -- orders, line items, notes, first notes
    assert.matches("((`order_id` = ?) AND (`line_no` = ?)) OR ((`order_id` = ?) AND (`line_no` = ?))", sql[3], 1, true)
    sql = statements(function()
      local items = orders[1]:line_items()
      table.sort(items, function(a, b) return a.line_no < b.line_no end)
      assert.same({ "n1", "n2" }, bodies(items[1]:notes()))
      assert.same({ "n3" }, bodies(items[2]:notes()))
      assert.are.equal("n1", items[1]:first_note().body)
      assert.are.equal(items[1], items[1]:notes()[1]:line_item()) -- inverse_of, no query
      local other = orders[2]:line_items()
      assert.same({}, other[1]:notes())
      assert.is_nil(other[1]:first_note())
    end)
    assert.are.equal(0, #sql)
    -- belongs_to side
    local notes
    sql = statements(function() notes = Note:query():order_by("id"):with("line_item"):all() end)
    assert.are.equal(2, #sql)
    sql = statements(function()
      assert.same({ "a", "a", "b" }, { notes[1]:line_item().sku, notes[2]:line_item().sku, notes[3]:line_item().sku })
    end)
    assert.are.equal(0, #sql)
  end)

  it("eager loading chunks the tuples", function()
    seed()
    local rel = require("activerecord.relations")
    local saved = rel.chunk_size
    rel.chunk_size = 1
    local ok, err = pcall(function()
      local items
      local sql = statements(function()
        items = LineItem:query():order_by("order_id"):order_by("line_no"):with("notes"):all()
      end)
      assert.are.equal(1 + 3, #sql)
      assert.same({ "n1", "n2" }, bodies(items[1]:notes()))
    end)
    rel.chunk_size = saved
    assert(ok, err)
  end)

  it("joins match every key part", function()
    seed()
    local rows = Note:query():joins("line_item"):where{ ["cf_line_items.sku"] = "a" }:all()
    assert.same({ "n1", "n2" }, bodies(rows))
  end)

  it("dependent = \"nullify\" clears every part, \"delete\" deletes only that line's rows", function()
    define({ dependent = "nullify" })
    local _, _, l11 = seed()
    l11:delete()
    assert.are.equal(2, Note:where{ order_id = ar.null, line_no = ar.null }:count())
    assert.are.equal(1, Note:where{ line_no = 2 }:count())
    db:execute("DELETE FROM cf_notes")
    db:execute("DELETE FROM cf_line_items")
    db:execute("DELETE FROM cf_orders")
    define({ dependent = "delete" })
    local _, _, m11 = seed()
    m11:delete()
    assert.same({ "n3" }, bodies(Note:all()))
  end)

  it("refuses a list of another length, a malformed list, and a composite key with a single foreign key", function()
    local err = error_of(ar.has_many, "X", { foreign_key = { "a", 5 } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("a list of them for a composite key", err.message, 1, true)
    err = error_of(ar.belongs_to, "X", { foreign_key = { "a", "a" } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    local Bad = ar.Model{ name = "CfBad" .. n, table = "cf_notes", backend = db,
      fields = { id = { type = "integer", primary_key = true }, order_id = "integer", line_no = "integer" },
      relations = {
        three = ar.belongs_to(LineItem, { foreign_key = { "order_id", "line_no", "id" } }),
        single = ar.belongs_to(LineItem, { foreign_key = "order_id" }),
      } }
    local rec = Bad:create{ order_id = 1, line_no = 1 }
    err = error_of(function() return rec:three() end)
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("lists of the same length", err.message, 1, true)
    err = error_of(function() return rec:single() end)
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("foreign_key = { ... }", err.message, 1, true)
    -- has_many on a composite owner without a list foreign key
    local Owner = ar.Model{ name = "CfOwner" .. n, table = "cf_line_items", backend = db,
      primary_key = { "order_id", "line_no" }, fields = { order_id = "integer", line_no = "integer" },
      relations = { notes = ar.has_many(Note) } }
    local owner = Owner:find{ order_id = 1, line_no = 1 } or Owner:create{ order_id = 1, line_no = 1 }
    err = error_of(function() return owner:notes() end)
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    err = error_of(ar.Model, { name = "CfThrough" .. n, table = "cf_orders", backend = db,
      fields = { id = "integer" },
      relations = { x = ar.has_many_through(Note, { through = "t", primary_key = { "a", "b" } }) } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
  end)
end)

-- Models read their table (issue 14, design section 8 "The table is read,
-- not assumed"): a model without `fields` takes them from its table on
-- first use; a declaration's left-out options (precision, scale, size,
-- nullability, defaults) come from the table; a declared field the table
-- lacks or cannot hold is a ConfigError naming both sides; one
-- introspection query per model and backend; DDL through the backend makes
-- the model read again; ar.check_models checks every model at once.
local ar = require("activerecord")
local support = require("support.db")

local errors = ar.errors

-- introspection statements among `list` (the backend's log)
local function introspections(list)
  local n = 0
  for _, sql in ipairs(list) do
    if sql:find("information_schema.COLUMNS", 1, true) then n = n + 1 end
  end
  return n
end

local function config_error(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a ConfigError, got success")
  assert.is_true(errors.is(err, "ConfigError"), tostring(err))
  return err
end

describe("model reflection", function()
  local db, sent
  local serial = 0
  local created = {}

  -- a fresh model name (models are registered by name)
  local function name(prefix)
    serial = serial + 1
    return prefix .. serial
  end

  local function create(tbl, body)
    db:execute("DROP TABLE IF EXISTS " .. tbl)
    db:execute("CREATE TABLE " .. tbl .. " (" .. body .. ") ENGINE=InnoDB")
    created[tbl] = true
  end

  setup(function()
    sent = {}
    db = ar.connect(support.options{ pool = { size = 2 }, log = function(ev) sent[#sent + 1] = ev.sql end })
  end)

  teardown(function()
    for tbl in pairs(created) do db:execute("DROP TABLE IF EXISTS " .. tbl) end
    db:close()
  end)

  -- ---- check_models first: the registry then holds only these models ------

  describe("ar.check_models", function()
    it("checks every defined model and reports each problem, a model without backend too", function()
      create("rf_chk", "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, qty INT")
      local Good = ar.Model{ name = "RfChkGood", table = "rf_chk", backend = db,
        fields = { id = "integer", name = "string" } }
      assert.is_true(ar.check_models())
      -- the models checked are read: their fields carry the table's options
      assert.are.equal(20, Good.fields.name.size)
      ar.Model{ name = "RfChkLacks", table = "rf_chk", backend = db, fields = { id = "integer", nick = "string" } }
      ar.Model{ name = "RfChkType", table = "rf_chk", backend = db, fields = { id = "integer", name = "integer" } }
      ar.Model{ name = "RfChkNoTable", table = "rf_chk_missing", backend = db, fields = { id = "integer" } }
      ar.Model{ name = "RfChkNoBackend", table = "rf_chk", fields = { id = "integer" } }
      local err = config_error(ar.check_models)
      assert.are.equal(4, #err.problems)
      local text = err.message
      assert.matches("4 problems", text, 1, true)
      assert.matches("RfChkLacks.nick: table rf_chk has no column nick", text, 1, true)
      assert.matches("RfChkType.name (integer) cannot hold rf_chk.name (varchar(20))", text, 1, true)
      assert.matches("RfChkNoTable: table rf_chk_missing does not exist", text, 1, true)
      assert.matches("RfChkNoBackend: no backend", text, 1, true)
      assert.is_nil(text:find("RfChkGood", 1, true))
      -- `backend` serves the models that name none; `models` picks some (classes or names)
      assert.is_true(ar.check_models{ models = { Good, "RfChkNoBackend" }, backend = db })
      err = config_error(ar.check_models, { models = { "RfChkType" } })
      assert.are.same({ "RfChkType.name (integer) cannot hold rf_chk.name (varchar(20)): an integer field takes "
        .. "bigint, boolean, integer, smallint, tinyint columns" }, err.problems)
      config_error(ar.check_models, { modles = {} })
    end)
  end)

  -- ---- a model without fields ------------------------------------------------

  describe("a model without fields", function()
    setup(function()
      create("rf_all", [[id BIGINT AUTO_INCREMENT PRIMARY KEY,
        ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT NOT NULL DEFAULT 7, yr YEAR, bi BIGINT UNSIGNED,
        flag BOOLEAN NOT NULL DEFAULT TRUE, fl FLOAT, db DOUBLE, price DECIMAL(12,2) NOT NULL DEFAULT 0.50,
        name VARCHAR(30) NOT NULL, code CHAR(4), body TEXT, small_bytes VARBINARY(8), fixed BINARY(4),
        data BLOB, day DATE, at DATETIME(6), stamp TIMESTAMP(6) NULL, tm TIME, doc JSON,
        size ENUM('s','m','l') NOT NULL DEFAULT 'm', colors SET('red','blue') DEFAULT 'red,blue',
        ident UUID, addr INET6, shape POINT,
        created DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        total BIGINT AS (i * 2) VIRTUAL]])
    end)

    it("reflects every column type of the type table into a field", function()
      local All = ar.Model{ name = name("RfAll"), table = "rf_all", backend = db }
      local want = {
        id = "bigint", ti = "integer", si = "integer", mi = "integer", i = "integer", yr = "integer",
        bi = "bigint", flag = "boolean", fl = "float", db = "float", price = "decimal", name = "string",
        code = "string", body = "text", small_bytes = "binary", fixed = "binary", data = "binary", day = "date",
        at = "datetime", stamp = "timestamp", tm = "time", doc = "json", size = "enum", colors = "set",
        ident = "uuid", addr = "binary", shape = "binary", created = "datetime", total = "bigint",
      }
      for field, ftype in pairs(want) do
        assert.is_not_nil(All.fields[field], field) -- (asking for the fields is a first use)
        assert.are.equal(ftype, All.fields[field].type, field)
      end
      local n = 0
      for _ in pairs(All.fields) do n = n + 1 end
      assert.are.equal(29, n)
      -- options from the table
      local f = All.fields
      assert.are.equal("id", All.primary_key)
      assert.is_true(f.id.auto)
      assert.are.same({ 12, 2 }, { f.price.precision, f.price.scale })
      assert.are.equal(30, f.name.size)
      assert.are.equal(4, f.code.size)
      assert.are.equal(8, f.small_bytes.size)
      assert.are.equal(65535, f.body.size)
      assert.are.same({ "s", "m", "l" }, f.size.values)
      assert.are.same({ "red", "blue" }, f.colors.values)
      assert.is_false(f.name.nullable)
      assert.is_true(f.code.nullable)
      assert.is_true(f.total.generated)
      assert.is_true(f.total.readonly)
      assert.is_true(f.created.server_default)
    end)

    it("makes records with the table's defaults and writes and reads every type", function()
      local All = ar.Model{ name = name("RfAll"), table = "rf_all", backend = db }
      local r = All.new{ name = "ann" }
      -- literal column defaults are the new record's values (as Rails has it)
      assert.are.equal(7, r.i)
      assert.is_true(r.flag)
      assert.are.equal("0.50", r.price)
      assert.are.equal("m", r.size)
      assert.are.same({ "red", "blue" }, r.colors)
      assert.is_nil(r.created) -- an expression default is the server's
      r.ti, r.si, r.mi, r.yr, r.bi = 1, 2, 3, 2024, "18446744073709551615"
      r.fl, r.db, r.price, r.code, r.body = 1.5, 2.25, "12.50", "abcd", "text"
      r.small_bytes, r.fixed, r.data = "\0\1\2", "wxyz", "\255\254"
      r.day, r.at, r.stamp, r.tm = "2024-02-29", "2024-02-29 10:11:12.123456", "2024-03-01 00:00:00", "10:11:12"
      r.doc, r.ident, r.addr = { a = { 1, 2 } }, "123e4567-e89b-12d3-a456-426614174000", "::1"
      r:save()
      assert.are.equal(14, r.total) -- generated, read back after the INSERT
      assert.is_string(r.created)
      local back = All:find(r.id)
      for _, k in ipairs({ "ti", "si", "mi", "i", "yr", "bi", "flag", "fl", "db", "price", "name", "code", "body",
                           "small_bytes", "data", "day", "at", "tm", "size", "ident", "addr", "total",
                           "created" }) do
        assert.are.same(r[k], back[k], k)
      end
      assert.matches("^2024%-03%-01 00:00:00", back.stamp)
      assert.are.equal("wxyz", back.fixed)
      assert.are.same({ a = { 1, 2 } }, back.doc)
      assert.are.same({ "red", "blue" }, back.colors)
    end)

    it("validates by the table: sizes, scales, values and NOT NULL columns without a default", function()
      local All = ar.Model{ name = name("RfAll"), table = "rf_all", backend = db }
      local ok, errs = All.new{ price = "1.234", code = "abcde", size = "xl", small_bytes = ("x"):rep(9) }:valid()
      assert.is_false(ok)
      assert.are.same({ "is required" }, errs.name)
      assert.matches("decimal places", errs.price[1])
      assert.matches("longer than 4", errs.code[1])
      assert.matches("one of", errs.size[1])
      assert.matches("longer than 8 bytes", errs.small_bytes[1])
      assert.is_nil(errs.i) -- it has a default
      assert.is_nil(errs.created) -- the server's
    end)

    it("never writes a generated column: assigning one is refused", function()
      local All = ar.Model{ name = name("RfAll"), table = "rf_all", backend = db }
      local err = support.error_of(All.new, { name = "x", total = 3 })
      assert.is_true(errors.is(err, "ValidationError"), tostring(err))
      assert.matches("generated", err.message)
      local r = All:create{ name = "gen" }
      err = support.error_of(function() r.total = 5 end)
      assert.is_true(errors.is(err, "ValidationError"), tostring(err))
      -- a deleted record saved again: its generated value is not written
      r:delete()
      r:save()
      assert.are.equal(14, r.total)
    end)

    it("reads its table on the first use of any kind: a query, where{} converting, the key, new", function()
      create("rf_flags", "code VARCHAR(10) PRIMARY KEY, on_off BOOLEAN NOT NULL DEFAULT FALSE, at DATETIME")
      local Flag = ar.Model{ name = name("RfFlag"), table = "rf_flags", backend = db }
      assert.is_nil(rawget(Flag, "fields")) -- nothing read yet
      assert.are.equal("code", Flag.primary_key) -- asking reads
      assert.are.equal("boolean", Flag.fields.on_off.type)
      assert.is_nil(Flag.fields.code.auto) -- not AUTO_INCREMENT: the key is the caller's
      local err = support.error_of(Flag.create, Flag, { on_off = true })
      assert.is_true(errors.is(err, "ValidationError"), tostring(err))
      Flag:create{ code = "a", on_off = true, at = { year = 2024, month = 1, day = 2, utc = true } }
      -- where{} on a fresh model converts by the fields (a date table, a boolean)
      local Flag2 = ar.Model{ name = name("RfFlag"), table = "rf_flags", backend = db }
      assert.are.equal(1, Flag2:where{ at = { year = 2024, month = 1, day = 2, utc = true }, on_off = true }:count())
      local Flag3 = ar.Model{ name = name("RfFlag"), table = "rf_flags", backend = db }
      assert.are.equal("a", Flag3:find("a").code)
    end)

    it("takes the key it is given, or the table's (composite too); refuses a missing one naming the table", function()
      create("rf_pair", "a INT NOT NULL, b INT NOT NULL, note VARCHAR(10), PRIMARY KEY (a, b)")
      local Both = ar.Model{ name = name("RfPair"), table = "rf_pair", backend = db }
      assert.are.equal(0, Both:count())
      assert.same({ "a", "b" }, Both.primary_key) -- a composite key (spec/model/composite_key_spec.lua)
      local err
      local Pair = ar.Model{ name = name("RfPair"), table = "rf_pair", backend = db, primary_key = "a" }
      assert.are.equal("a", Pair.primary_key)
      create("rf_nokey", "a INT, b INT")
      err = config_error(function() return ar.Model{ name = name("RfNoKey"), table = "rf_nokey", backend = db }
        .new{} end)
      assert.matches("rf_nokey has no primary key", err.message, 1, true)
    end)

    it("refuses a missing table or a missing backend naming the table, at new and at a query", function()
      local M = ar.Model{ name = name("RfMissing"), table = "rf_no_such_table", backend = db }
      local err = config_error(M.new, {})
      assert.matches("rf_no_such_table does not exist", err.message, 1, true)
      err = config_error(function() return M:count() end)
      assert.matches("rf_no_such_table", err.message, 1, true)
      local N = ar.Model{ name = name("RfNoBackend"), table = "rf_all" }
      err = config_error(N.new, {})
      assert.matches("no backend to read table rf_all", err.message, 1, true)
    end)

    it("takes its mixins' fields as declared and the rest from the table", function()
      create("rf_notes", "id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(50), created_at DATETIME(6), "
        .. "updated_at DATETIME(6)")
      local Note = ar.Model{ name = name("RfNote"), table = "rf_notes", backend = db, mixins = { "timestamps" } }
      local n = Note:create{ body = "hi" }
      assert.is_string(n.created_at)
      assert.is_true(Note.fields.created_at.write_once) -- the mixin's declaration kept
      assert.are.equal(50, Note.fields.body.size)
      local err = config_error(function()
        return ar.Model{ name = name("RfNoteSoft"), table = "rf_notes", backend = db, mixins = { "soft_delete" } }
          :count()
      end)
      assert.matches("deleted_at: table rf_notes has no column deleted_at", err.message, 1, true)
      -- a relation may not share a reflected field's name
      err = config_error(function()
        return ar.Model{ name = name("RfNoteRel"), table = "rf_notes", backend = db,
          relations = { body = ar.has_many("RfNote1", { foreign_key = "id" }) } }:count()
      end)
      assert.matches("body: a relation cannot share a field's name", err.message, 1, true)
    end)

    it("works with relations, eager loading and insert_all", function()
      create("rf_authors", "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL")
      create("rf_books", "id INT AUTO_INCREMENT PRIMARY KEY, author_id INT NOT NULL, title VARCHAR(40) NOT NULL, "
        .. "pages INT NOT NULL DEFAULT 100")
      local an, bn = name("RfAuthor"), name("RfBook")
      local Author = ar.Model{ name = an, table = "rf_authors", backend = db,
        relations = { books = ar.has_many(bn, { foreign_key = "author_id", order_by = "id" }) } }
      local Book = ar.Model{ name = bn, table = "rf_books", backend = db,
        relations = { author = ar.belongs_to(an, { foreign_key = "author_id" }) } }
      -- insert_all as the first use of both
      local res = Author:insert_all{ { name = "ann" }, { name = "bo" } }
      local ann = res.records[1]
      Book:insert_all{ { author_id = ann.id, title = "one" }, { author_id = ann.id, title = "two" } }
      local back = Book:query():order_by("id"):all()
      assert.are.same({ 100, 100 }, { back[1].pages, back[2].pages })
      local Author2 = ar.Model{ name = an, table = "rf_authors", backend = db,
        relations = { books = ar.has_many(bn, { foreign_key = "author_id", order_by = "id" }) } }
      local authors = Author2:query():with("books"):order_by("id"):all()
      assert.are.same({ "one", "two" }, { authors[1]:books()[1].title, authors[1]:books()[2].title })
      assert.are.equal("ann", back[1]:author().name)
    end)
  end)

  -- ---- a model with fields -----------------------------------------------------

  describe("a model with fields", function()
    setup(function()
      create("rf_acct", [[id INT AUTO_INCREMENT PRIMARY KEY, owner VARCHAR(8) NOT NULL,
        balance DECIMAL(12,2) NOT NULL DEFAULT 0.00, status VARCHAR(10) NOT NULL DEFAULT 'open',
        note VARCHAR(20), kind ENUM('a','b') NOT NULL DEFAULT 'a', extra TEXT]])
    end)

    before_each(function() db:execute("DELETE FROM rf_acct") end)

    local function acct(fields, extra)
      local def = { name = name("RfAcct"), table = "rf_acct", backend = db, fields = fields }
      for k, v in pairs(extra or {}) do def[k] = v end
      return ar.Model(def)
    end

    it("takes a bare decimal's precision and scale from its column: \"12.50\" is accepted", function()
      local Acct = acct{ id = "integer", owner = "string", balance = "decimal" }
      local a = Acct:create{ owner = "ann", balance = "12.50" }
      assert.are.same({ 12, 2 }, { Acct.fields.balance.precision, Acct.fields.balance.scale })
      assert.are.equal("12.50", Acct:find(a.id).balance)
      -- a float exact at the column's scale is accepted too, more decimals are refused
      assert.are.equal("0.25", Acct:create{ owner = "bo", balance = 0.25 }.balance)
      local ok, errs = Acct.new{ owner = "cy", balance = "1.234" }:valid()
      assert.is_false(ok)
      assert.matches("more than 2 decimal places", errs.balance[1])
    end)

    it("takes a bare string's size, nullability and defaults from the table; declared options win", function()
      local Acct = acct{ id = "integer", owner = "string", status = "string", note = "string" }
      assert.are.equal(8, Acct.new{}:model().fields.owner.size) -- new is a first use
      local ok, errs = Acct.new{ owner = "ninechars" }:valid()
      assert.is_false(ok)
      assert.matches("longer than 8", errs.owner[1])
      ok, errs = Acct.new{}:valid()
      assert.is_false(ok)
      assert.are.same({ "is required" }, errs.owner) -- NOT NULL, no default
      assert.is_nil(errs.status) -- NOT NULL with a default
      assert.are.equal("open", Acct.new{}.status) -- the column default for new records
      -- declared: these win over the table
      local Mine = acct{ id = "integer", owner = { type = "string", size = 3, nullable = true },
        status = { type = "string", default = "new" } }
      assert.are.equal(3, Mine.new{}:model().fields.owner.size)
      ok, errs = Mine.new{ owner = "four" }:valid()
      assert.is_false(ok)
      assert.matches("longer than 3", errs.owner[1])
      assert.is_true((Mine.new{}:valid()))
      assert.are.equal("new", Mine.new{}.status)
    end)

    it("keeps the columns a declaration leaves out out of the model", function()
      local Acct = acct{ id = "integer", owner = "string" }
      local a = Acct:create{ owner = "ann" }
      assert.is_nil(Acct.fields.balance)
      assert.are.equal("ann", Acct:find(a.id).owner)
      assert.has_error(function() return a.balance end)
    end)

    it("refuses a field the table lacks or cannot hold at first use, naming both sides", function()
      local Bad = acct{ id = "integer", owner = "integer", nick = "string", extra = "binary", kind = "boolean" }
      local err = config_error(function() return Bad:count() end)
      local msg = err.message
      assert.matches(Bad.name .. ".nick: table rf_acct has no column nick", msg, 1, true)
      assert.matches(Bad.name .. ".owner (integer) cannot hold rf_acct.owner (varchar(8))", msg, 1, true)
      assert.matches(Bad.name .. ".kind (boolean) cannot hold rf_acct.kind (enum('a','b'))", msg, 1, true)
      assert.is_nil(msg:find(".extra", 1, true)) -- a binary field holds a TEXT column's values
      assert.are.equal(3, #err.problems)
      assert.are.equal(Bad.name, err.model)
      assert.are.equal("rf_acct", err.table)
      -- every first use raises it: new, save, find
      config_error(Bad.new, {})
      config_error(function() return Bad:find(1) end)
      -- the implicit key: its column must exist too
      create("rf_codes", "code VARCHAR(5) PRIMARY KEY, label VARCHAR(20)")
      local Codes = ar.Model{ name = name("RfCodes"), table = "rf_codes", backend = db,
        fields = { code = "string", label = "string" } }
      err = config_error(function() return Codes:count() end)
      assert.matches("has no column id (the model's primary key when it names none", err.message, 1, true)
    end)

    it("checks each declared type against the column types it can hold", function()
      create("rf_compat", [[id INT AUTO_INCREMENT PRIMARY KEY, i INT, big BIGINT, f DOUBLE, d DECIMAL(5,2),
        s VARCHAR(36), t TEXT, b VARBINARY(16), bl BLOB, flag BOOLEAN, dt DATETIME, ts TIMESTAMP NULL,
        dd DATE, tm TIME, j JSON, e ENUM('x'), st SET('x'), u UUID, pt POINT]])
      local cases = {
        { "integer", "i", true }, { "integer", "big", true }, { "integer", "s", false }, { "integer", "f", false },
        { "bigint", "i", true }, { "float", "f", true }, { "float", "i", true }, { "float", "d", false },
        { "decimal", "d", true }, { "decimal", "i", true }, { "decimal", "f", false },
        { "string", "s", true }, { "string", "t", true }, { "string", "bl", false }, { "string", "i", false },
        { "string", "dt", true }, { "string", "e", true }, { "string", "pt", false },
        { "text", "t", true }, { "text", "b", false },
        { "binary", "b", true }, { "binary", "bl", true }, { "binary", "s", true }, { "binary", "pt", true },
        { "binary", "i", false },
        { "boolean", "flag", true }, { "boolean", "i", false },
        { "date", "dd", true }, { "date", "dt", false },
        { "datetime", "dt", true }, { "datetime", "ts", true }, { "timestamp", "dt", true },
        { "datetime", "s", false }, { "time", "tm", true }, { "time", "dt", false },
        { "json", "j", true }, { "json", "s", false },
        { "enum", "e", true }, { "enum", "s", true }, { "enum", "i", false },
        { "set", "st", true }, { "set", "s", true },
        { "uuid", "s", true }, { "uuid", "u", true }, { "uuid", "b", false },
      }
      for _, c in ipairs(cases) do
        local ftype, col, ok = c[1], c[2], c[3]
        local spec = { type = ftype, column = col }
        if ftype == "enum" or ftype == "set" then spec.values = { "x" } end
        local M = ar.Model{ name = name("RfCompat"), table = "rf_compat", backend = db,
          fields = { id = "integer", v = spec } }
        local good, err = pcall(ar.check_models, { models = { M } })
        assert.are.equal(ok, good, ("%s on %s: %s"):format(ftype, col, tostring(err)))
        if not ok then
          assert.matches(("(%s) cannot hold rf_compat.%s"):format(ftype, col), err.message, 1, true)
        end
      end
      -- a binary uuid takes binary columns only
      local U = ar.Model{ name = name("RfCompat"), table = "rf_compat", backend = db,
        fields = { id = "integer", b = { type = "uuid", binary = true }, s = "string" } }
      assert.is_true(ar.check_models{ models = { U } })
      -- a registered type may sit on any column
      ar.register_type("rf_money", { sql_type = "VARCHAR(36)" })
      local R = ar.Model{ name = name("RfCompat"), table = "rf_compat", backend = db,
        fields = { id = "integer", i = "rf_money" } }
      assert.is_true(ar.check_models{ models = { R } })
    end)

    it("lets a missing table's statement fail with the server's error, and reads it once it exists", function()
      local M = ar.Model{ name = name("RfLate"), table = "rf_late", backend = db,
        fields = { id = "integer", name = "string" } }
      db:execute("DROP TABLE IF EXISTS rf_late")
      local err = support.error_of(function() return M:count() end)
      assert.is_true(errors.is(err, "QueryError"), tostring(err))
      assert.matches("rf_late", err.message)
      create("rf_late", "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(6)")
      assert.are.equal(0, M:count())
      assert.are.equal(6, M.fields.name.size)
    end)

    it("reads one introspection query per model and backend", function()
      create("rf_once", "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(6)")
      local A = ar.Model{ name = name("RfOnce"), table = "rf_once", backend = db, fields = { id = "integer",
        name = "string" } }
      local B = ar.Model{ name = name("RfOnce"), table = "rf_once", backend = db }
      for i = #sent, 1, -1 do sent[i] = nil end
      for _ = 1, 3 do
        A:create{ name = "a" }
        B:create{ name = "b" }
        A:find(1)
        B:count()
      end
      assert.are.equal(1, introspections(sent)) -- the backend's cache serves the second model
      -- another backend reads the table once more, and only once
      local sent2 = {}
      local db2 = ar.connect(support.options{ pool = { size = 1 }, log = function(ev) sent2[#sent2 + 1] = ev.sql end })
      finally(function() -- busted keeps one finally per test: both here
        ar.set_default_backend(nil)
        db2:close()
      end)
      local C = ar.Model{ name = name("RfOnce"), table = "rf_once", backend = db2 }
      local D = ar.Model{ name = name("RfOnce"), table = "rf_once", fields = { id = "integer", name = "string" } }
      ar.set_default_backend(db2)
      for _ = 1, 3 do
        C:count()
        D:create{ name = "d" }
      end
      assert.are.equal(1, introspections(sent2))
      -- a model whose default backend changes reads the table on the new one
      for i = #sent, 1, -1 do sent[i] = nil end
      ar.set_default_backend(db)
      D:count()
      D:count()
      assert.are.equal(0, introspections(sent)) -- db's cache holds rf_once already
      assert.is_true(D:count() >= 3)
    end)

    it("reads the table again after DDL through the backend, refreshing declared options in place", function()
      create("rf_ddl", "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(5) NOT NULL, qty INT")
      local M = ar.Model{ name = name("RfDdl"), table = "rf_ddl", backend = db,
        fields = { id = "integer", name = "string", qty = "integer" } }
      local R = ar.Model{ name = name("RfDdlReflected"), table = "rf_ddl", backend = db }
      local name_field = M.fields.name
      assert.is_false(M.new{ name = "sixsix" }:valid())
      assert.is_false(R.new{ name = "sixsix" }:valid())
      M:count()
      local version = db._schema_version
      db:execute("ALTER TABLE rf_ddl MODIFY name VARCHAR(10) NOT NULL DEFAULT 'anon', ADD COLUMN later INT")
      assert.is_true(db._schema_version > version)
      assert.are.equal(0, M:count()) -- the next use reads the table again
      assert.are.equal(name_field, M.fields.name) -- the same field, refreshed
      assert.are.equal(10, M.fields.name.size)
      assert.is_true(M.new{ name = "sixsix" }:valid()) -- the validator was made again
      assert.are.equal("anon", M.new{}.name) -- and new() with the new default
      local r = R:create{ name = "sixsixsix" }
      assert.are.equal("sixsixsix", R:find(r.id).name)
      assert.is_nil(R.fields.later) -- a reflected model keeps the columns it first found
      -- a column dropped under a model: ConfigError at its next use
      db:execute("ALTER TABLE rf_ddl DROP COLUMN qty")
      local err = config_error(function() return M:count() end)
      assert.matches(".qty: table rf_ddl has no column qty", err.message, 1, true)
      config_error(function() return R:count() end)
      -- db:reset_schema_cache() (DDL made elsewhere) does the same
      db:execute("ALTER TABLE rf_ddl ADD COLUMN qty BIGINT")
      M:count()
      local other = support.connect()
      finally(function() other:close() end)
      other:execute("ALTER TABLE rf_ddl MODIFY name VARCHAR(12) NOT NULL")
      M:count()
      assert.are.equal(10, M.fields.name.size) -- the backend cannot know yet
      db:reset_schema_cache()
      M:count()
      assert.are.equal(12, M.fields.name.size)
    end)
  end)
end)

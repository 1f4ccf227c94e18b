-- JSON exactness (issue 12, "No record lies"): what a json field holds is
-- what the database holds. 64-bit integers are written exactly and floats
-- with the digits that round-trip (lua-cjson 2.1 printed 14 significant
-- digits: 1234567890123456789 became 1.2345678901235e+18 and 0.1 + 0.2 became
-- 0.3); empty arrays stay arrays both ways (ar.json_array()); NaN, infinities,
-- functions and mixed keys are refused before any SQL.
local ar = require("activerecord")
local support = require("support.db")
local core = support.core

local BIG = 1234567890123456789
local SUM = 0.1 + 0.2 -- 0.30000000000000004: needs 17 significant digits

describe("integrity: JSON fields", function()
  local db, raw, Doc

  -- the stored text, as the server holds it (CONCAT: plain text, not decoded)
  local function stored_text(id)
    return raw:execute("SELECT CONCAT(doc) AS t FROM integrity_docs WHERE id = ?", id).rows[1].t
  end

  setup(function()
    raw = support.connect()
    raw:execute("DROP TABLE IF EXISTS integrity_docs")
    raw:execute("CREATE TABLE integrity_docs (id INT PRIMARY KEY AUTO_INCREMENT, doc JSON) ENGINE=InnoDB")
    db = ar.connect(support.options{ pool = { size = 2 } })
    Doc = ar.Model{ name = "IntegrityDoc", table = "integrity_docs", backend = db,
      fields = { id = { type = "integer", primary_key = true }, doc = "json" } }
  end)

  teardown(function()
    raw:execute("DROP TABLE IF EXISTS integrity_docs")
    raw:close()
    db:close()
  end)

  it("ar.json_array is exported by require('activerecord') and marks a table", function()
    assert.is_function(ar.json_array)
    local t = { 1, 2 }
    assert.are.equal(t, ar.json_array(t))
    assert.are.equal(core.json_array_mt, getmetatable(t))
    assert.are.equal(core.json_array_mt, getmetatable(ar.json_array()))
    assert.are.equal("[]", core.json_encode(ar.json_array()))
    assert.are.equal("{}", core.json_encode({})) -- a plain empty table is an object
  end)

  describe("through a model", function()
    it("stores a 64-bit integer exactly and reads it back as the same integer", function()
      local rec = Doc:create{ doc = { n = BIG, neg = math.mininteger } }
      assert.truthy(stored_text(rec.id):find("1234567890123456789", 1, true), stored_text(rec.id))
      local back = Doc:find(rec.id).doc
      assert.are.equal(BIG, back.n)
      assert.are.equal("integer", math.type(back.n))
      assert.are.equal(math.mininteger, back.neg)
    end)

    it("stores 0.1 + 0.2 with the digits that read back equal", function()
      local rec = Doc:create{ doc = { f = SUM, third = 1 / 3, whole = 2.0 } }
      local back = Doc:find(rec.id).doc
      assert.is_true(back.f == SUM, ("%.17g"):format(back.f))
      assert.is_true(back.third == 1 / 3)
      assert.are.equal("float", math.type(back.whole)) -- 2.0 stays a float
      assert.is_true(back.whole == 2.0)
    end)

    it("keeps an empty array an array: stored as [], read back as one, re-encoded as []", function()
      local rec = Doc:create{ doc = { tags = ar.json_array(), meta = {} } }
      local text = stored_text(rec.id)
      assert.truthy(text:find('"tags":%s*%[%]'), text)
      assert.truthy(text:find('"meta":%s*{}'), text)
      local back = Doc:find(rec.id).doc
      assert.are.equal(core.json_array_mt, getmetatable(back.tags))
      assert.are.equal("[]", core.json_encode(back.tags))
      -- writing what was read keeps the array
      local copy = Doc:create{ doc = back }
      assert.truthy(stored_text(copy.id):find('"tags":%s*%[%]'), stored_text(copy.id))
      -- non-empty arrays read back are marked too
      local arr = Doc:create{ doc = { list = { 1, 2, 3 } } }
      assert.are.equal(core.json_array_mt, getmetatable(Doc:find(arr.id).doc.list))
    end)

    it("refuses NaN, infinities, functions and mixed keys before any SQL", function()
      local before = raw:execute("SELECT COUNT(*) AS n FROM integrity_docs").rows[1].n
      for _, bad in ipairs{ { x = 0 / 0 }, { x = math.huge }, { f = print }, { 1, 2, k = "v" } } do
        local ok, err = pcall(Doc.create, Doc, { doc = bad })
        assert.is_false(ok)
        assert.are.equal("ValidationError", err.kind, tostring(err))
      end
      assert.are.equal(before, raw:execute("SELECT COUNT(*) AS n FROM integrity_docs").rows[1].n)
    end)

    it("null (ar.null) is JSON null inside a document", function()
      local rec = Doc:create{ doc = { gone = ar.null, list = { 1, ar.null, 3 } } }
      local back = Doc:find(rec.id).doc
      assert.are.equal(ar.null, back.gone)
      assert.are.equal(ar.null, back.list[2])
      assert.are.equal(3, back.list[3])
    end)
  end)

  describe("through the raw core", function()
    it("json_encode / the column decoder round-trip integers, floats and empty arrays", function()
      local value = { n = BIG, f = SUM, tags = core.json_array(), nested = { { a = core.json_array() } } }
      local res = raw:execute("INSERT INTO integrity_docs (doc) VALUES (?)", core.json_encode(value))
      local row = raw:execute("SELECT doc FROM integrity_docs WHERE id = ?", res.insert_id).rows[1]
      assert.are.equal(BIG, row.doc.n)
      assert.is_true(row.doc.f == SUM)
      assert.are.equal("[]", core.json_encode(row.doc.tags))
      assert.are.equal('[{"a":[]}]', core.json_encode(row.doc.nested))
      -- and the same through a streaming cursor
      for r in raw:each("SELECT doc FROM integrity_docs WHERE id = ?", res.insert_id) do
        assert.are.equal(BIG, r.doc.n)
        assert.are.equal("[]", core.json_encode(r.doc.tags))
      end
    end)

    it("json_encode raises DataError naming where the bad value is", function()
      local cases = {
        { { a = { b = 0 / 0 } }, "NaN", "$.a.b" },
        { { list = { 1, -math.huge } }, "infinite", "$.list[2]" },
        { { f = print }, "function", "$.f" },
        { { 1, 2, x = 3 }, "integer and string keys", "$" },
        { { [1.5] = true }, "neither a string nor a positive integer", "$" },
        { setmetatable({ k = 1 }, core.json_array_mt), "json_array with a string key", "$" },
      }
      for _, case in ipairs(cases) do
        local ok, err = pcall(core.json_encode, case[1])
        assert.is_false(ok)
        assert.are.equal("DataError", err.kind)
        assert.truthy(err.message:find(case[2], 1, true), err.message)
        assert.truthy(err.message:find(case[3], 1, true), err.message)
      end
      local cycle = {}
      cycle.self = cycle
      local ok, err = pcall(core.json_encode, cycle)
      assert.is_false(ok)
      assert.truthy(err.message:find("cycle", 1, true), err.message)
    end)

    it("strings are escaped so the server reads them back byte for byte", function()
      local s = 'quote " backslash \\ newline \n tab \t nul \0 ctrl \1 utf8 é 😀'
      local res = raw:execute("INSERT INTO integrity_docs (doc) VALUES (?)", core.json_encode{ s = s })
      assert.are.equal(s, raw:execute("SELECT doc FROM integrity_docs WHERE id = ?", res.insert_id).rows[1].doc.s)
    end)
  end)
end)

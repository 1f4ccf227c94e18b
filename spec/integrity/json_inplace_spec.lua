-- JSON tables changed in place, as loaded by queries (issue 12): the C core
-- hashes each JSON value while it decodes it (`conn:execute_json_hashes`),
-- the model keeps that hash as what the row holds and compares it when the
-- record is saved, so a change made in place is written and an untouched
-- value written by another client in another spelling is not.
local ar = require("activerecord")
local support = require("support.db")

local core = ar.core

describe("integrity: JSON changed in place", function()
  local db, sqllog, Doc

  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function stored(id)
    local text = db:query("SELECT CAST(doc AS CHAR) AS d FROM int_json_docs WHERE id = ?", id)[1].d
    return core.json_decode(text)
  end

  -- what another client writes: its own spacing and key order
  local function insert_raw(text)
    return db:execute("INSERT INTO int_json_docs (name, doc) VALUES ('raw', ?)", text).insert_id
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 2 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    db:execute("DROP TABLE IF EXISTS int_json_docs")
    db:execute([[CREATE TABLE int_json_docs (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50),
      doc JSON, meta JSON) ENGINE=InnoDB]])
    Doc = ar.Model{ name = "IntJsonDoc", table = "int_json_docs", backend = db,
      fields = { id = "integer", name = "string", doc = "json", meta = "json" } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS int_json_docs")
    db:close()
  end)

  before_each(function() db:execute("DELETE FROM int_json_docs") end)

  describe("the core's hashes", function()
    it("row[-i] is json_hash of the decoded value of JSON column i", function()
      local conn <close> = support.connect()
      local texts = {
        '{"b": [1, 2.5, "x\\u00e9\\n", true, false, null, {"c": {}}], "a": 1e3, "d": -7}',
        '[]', '{}', '"just a string"', '12345678901234567', '[[[]]]', 'null',
        '{"long": "' .. string.rep("0123456789", 30) .. '"}',
      }
      for _, text in ipairs(texts) do
        local res = conn:execute_json_hashes("SELECT 7 AS n, JSON_COMPACT(?) AS j", text)
        local row = res.rows[1]
        assert.are.equal("j", res.columns[2].name)
        assert.is_not_nil(row[-2], text)
        assert.are.equal(core.json_hash(row.j), row[-2], text)
        assert.is_nil(row[-1]) -- no hash for a column that is not JSON
      end
      -- plain execute gives rows without them
      local plain = conn:execute("SELECT JSON_COMPACT(?) AS j", "{}").rows[1]
      assert.is_nil(plain[-1])
    end)

    it("json_hash sees structure: key order and spacing do not matter, values and kinds do", function()
      local h = core.json_hash
      assert.are.equal(h(core.json_decode('{"a":1,"b":[1,2]}')), h(core.json_decode('{ "b" : [1, 2], "a" : 1 }')))
      assert.are.equal(h({ x = 1 }), h({ x = 1.0 }))
      assert.are_not.equal(h({ x = 1 }), h({ x = "1" }))
      assert.are_not.equal(h({ 1, 2 }), h({ 2, 1 }))
      assert.are_not.equal(h(ar.json_array()), h({}))
      assert.are_not.equal(h({ a = { b = 1 } }), h({ a = { b = 2 } }))
      assert.are_not.equal(h({ a = 1 }), h({ a = 1, b = ar.null }))
      assert.is_false(h({ f = print }))
      local cycle = {}
      cycle.self = cycle
      assert.is_false(h(cycle))
    end)
  end)

  describe("records loaded by a query", function()
    it("an untouched value another client wrote in its own spelling is not dirty; nothing is sent", function()
      local id = insert_raw('{ "zeta" : 1,  "alpha" : [ 1 , 2 ] }')
      local r = Doc:where{ id = id }:all()[1]
      assert.are.equal(1, r.doc.zeta) -- handed out
      assert.is_false(r:is_dirty())
      local sent = statements(function() assert.are.equal(0, r:save()) end)
      assert.are.same({}, sent)
    end)

    it("a change made in place to a value read by all() is dirty, shows its old value and is saved", function()
      local id = insert_raw('{"browser": "firefox", "tags": ["a"]}')
      local r = Doc:where{ id = id }:all()[1]
      table.insert(r.doc.tags, "b")
      assert.are.same({ "doc" }, r:dirty_fields())
      assert.are.same({ browser = "firefox", tags = { "a" } }, r:old_value("doc"))
      assert.are.equal(1, r:save())
      assert.are.same({ browser = "firefox", tags = { "a", "b" } }, stored(id))
      assert.is_false(r:is_dirty())
    end)

    it("a table handed out by to_table() and changed is saved", function()
      local id = insert_raw('{"n": 1}')
      local r = Doc:find(id)
      r:to_table().doc.n = 2
      assert.is_true(r:is_dirty())
      r:save()
      assert.are.same({ n = 2 }, stored(id))
    end)

    it("each JSON field is followed on its own; an emptied array stays an array", function()
      local id = db:execute("INSERT INTO int_json_docs (doc, meta) VALUES (?, ?)",
        '{"list": [1]}', '{"m": 1}').insert_id
      local r = Doc:where{ id = id }:first()
      table.remove(r.doc.list)
      assert.are.equal(1, r.meta.m)
      assert.are.same({ "doc" }, r:dirty_fields())
      r:save()
      local text = db:query("SELECT CAST(doc AS CHAR) AS d FROM int_json_docs WHERE id = ?", id)[1].d
      assert.truthy(text:find('"list": ?%[%]'), text)
      r.meta.m = 2
      assert.are.same({ "meta" }, r:dirty_fields())
      r:save()
      assert.are.same({ m = 2 }, core.json_decode(
        db:query("SELECT CAST(meta AS CHAR) AS m FROM int_json_docs WHERE id = ?", id)[1].m))
    end)

    it("a record whose JSON was never read is saved without comparing it", function()
      local id = insert_raw('{"n": 1}')
      local r = Doc:find(id)
      r.name = "renamed"
      local sent = statements(function() r:save() end)
      assert.are.equal(1, #sent)
      assert.falsy(sent[1]:find("`doc`", 1, true), sent[1])
      assert.are.same({ n = 1 }, stored(id))
    end)
  end)

  describe("json_contains", function()
    it("binds a 64-bit integer exactly and matches an empty array as an array", function()
      local id = insert_raw('{"big": 1234567890123456789, "none": []}')
      insert_raw('{"big": 1, "none": {}}')
      local _, params = Doc:where(ar.json_contains("doc", 1234567890123456789, "$.big")):to_sql()
      local bound = {}
      for i = 1, params.n do bound[#bound + 1] = tostring(params[i]) end
      assert.truthy(table.concat(bound, " "):find("1234567890123456789", 1, true), table.concat(bound, " "))
      local hits = Doc:where(ar.json_contains("doc", ar.json_array(), "$.none")):all()
      assert.are.equal(1, #hits)
      assert.are.equal(id, hits[1].id)
    end)
  end)
end)

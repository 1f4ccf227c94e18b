-- db:json_path_query(table, column, path, value) matches by JSON kind (issue
-- 15): a boolean matches only JSON true/false (it used to compare the
-- unquoted text with 1/0 and match nothing), a number only a JSON number of
-- that value, a string only a JSON string, ar.null only a JSON null (not a
-- missing key); anything else is refused before any SQL.
local ar = require("activerecord")
local support = require("support.db")

describe("db:json_path_query", function()
  local db, sent

  -- the names of the rows the query returns, sorted
  local function names(path, value)
    local out = {}
    for i, row in ipairs(db:json_path_query("jpq_docs", "doc", path, value)) do out[i] = row.name end
    table.sort(out)
    return out
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if sent then sent[#sent + 1] = ev.sql end end })
    db:execute("DROP TABLE IF EXISTS jpq_docs")
    db:execute("CREATE TABLE jpq_docs (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20), doc JSON) ENGINE=InnoDB")
    for _, r in ipairs({
      { "t", '{"v": true}' }, { "f", '{"v": false}' },
      { "one", '{"v": 1}' }, { "one_f", '{"v": 1.0}' }, { "zero", '{"v": 0}' },
      { "s_one", '{"v": "1"}' }, { "s_true", '{"v": "true"}' }, { "s_x", '{"v": "x"}' },
      { "null", '{"v": null}' }, { "s_null", '{"v": "null"}' }, { "missing", '{"w": 1}' },
      { "big", '{"v": 9007199254740993}' }, { "half", '{"v": 2.5}' },
      { "arr", '{"v": [false, true, 1, "x"]}' },
    }) do
      db:execute("INSERT INTO jpq_docs (name, doc) VALUES (?, ?)", r[1], r[2])
    end
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS jpq_docs")
    db:close()
  end)

  it("matches a boolean only where the document holds that boolean", function()
    assert.same({ "t" }, names("$.v", true))
    assert.same({ "f" }, names("$.v", false))
  end)

  it("matches a number only against JSON numbers of that value", function()
    assert.same({ "one", "one_f" }, names("$.v", 1))
    assert.same({ "zero" }, names("$.v", 0))
    assert.same({ "half" }, names("$.v", 2.5))
    -- exact past 2^53: 9007199254740992 is a different integer
    assert.same({ "big" }, names("$.v", 9007199254740993))
    assert.same({}, names("$.v", 9007199254740992))
  end)

  it("matches a string only against JSON strings", function()
    assert.same({ "s_one" }, names("$.v", "1"))
    assert.same({ "s_true" }, names("$.v", "true"))
    assert.same({ "s_null" }, names("$.v", "null"))
    assert.same({ "s_x" }, names("$.v", "x"))
  end)

  it("matches ar.null only against a JSON null, not a missing key", function()
    assert.same({ "null" }, names("$.v", ar.null))
    assert.same({ "missing" }, names("$.w", 1))
  end)

  it("reaches into arrays by index", function()
    assert.same({ "arr" }, names("$.v[1]", true))
    assert.same({ "arr" }, names("$.v[2]", 1))
    assert.same({ "arr" }, names("$.v[3]", "x"))
  end)

  it("refuses nil, tables and non-finite numbers before any SQL", function()
    sent = {}
    for _, v in ipairs({ { {} }, { 0 / 0 }, { math.huge } }) do
      local err = support.error_of(db.json_path_query, db, "jpq_docs", "doc", "$.v", v[1])
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end
    local err = support.error_of(db.json_path_query, db, "jpq_docs", "doc", "$.v", nil)
    assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    assert.matches("ar.null", err.message, 1, true)
    err = support.error_of(db.json_path_query, db, "jpq_docs", "doc", "$.v' OR 1=1", true)
    assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    err = support.error_of(db.json_path_query, db, "jpq_docs", "", "$.v", true)
    assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    assert.same({}, sent)
    sent = nil
  end)
end)

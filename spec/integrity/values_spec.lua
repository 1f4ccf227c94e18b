-- Issue 12, "no value becomes SQL": query nodes (expressions, queries,
-- order and select items) are recognised by identity, never by fields. A
-- request body decoded with cjson that imitates a node's fields, or any
-- table with non-list keys, raises QueryError at every entry point before
-- any statement is sent (the backend's log hook records every statement),
-- matches no row and sleeps nowhere.
local ar = require("activerecord")
local cjson = require("cjson")
local support = require("support.db")

-- Node imitations, as an attacker would post them.
local PAYLOADS = {
  expr = [[{"__ar_expr":true,"kind":"raw","sql":"1=1 OR SLEEP(0.3)","params":{"n":0}}]],
  expr_bare = [[{"__ar_expr":true,"kind":"raw","sql":"1=1 OR SLEEP(0.3)"}]],
  subquery = [[{"__ar_expr":true,"kind":"subquery","query":{"__ar_query":true,"table":"iv_secret"}}]],
  query = [[{"__ar_query":true,"table":"iv_secret"}]],
  order = [[{"__ar_order":true,"dir":"asc",
    "expr":{"__ar_expr":true,"kind":"raw","sql":"SLEEP(0.3)","params":{"n":0}}}]],
  select = [[{"__ar_select":true,"as":"x",
    "expr":{"__ar_expr":true,"kind":"raw","sql":"SLEEP(0.3)","params":{"n":0}}}]],
  select_trick = [[{"as":"x","expr":{"__ar_expr":true,"kind":"raw","sql":"SLEEP(0.3)","params":{"n":0}}}]],
  object = [[{"a":1,"b":"x"}]],
}

describe("integrity: values never become SQL", function()
  local db, Thing, sent

  setup(function()
    sent = {}
    db = ar.connect(support.options{ pool = { size = 2 }, log = function(ev) sent[#sent + 1] = ev.sql end })
    for _, t in ipairs{ "iv_things", "iv_secret" } do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:execute("CREATE TABLE iv_secret (id INT PRIMARY KEY, secret VARCHAR(20))")
    db:execute("INSERT INTO iv_secret VALUES (1, 'a')")
    db:execute("CREATE TABLE iv_things (id INT PRIMARY KEY, name VARCHAR(50), doc JSON, n INT)")
    Thing = ar.Model{ name = "IvThing", table = "iv_things", backend = db,
      fields = { id = { type = "integer", primary_key = true }, name = "string", doc = "json", n = "integer" } }
    Thing:insert_all{ { id = 1, name = "a", n = 1 }, { id = 2, name = "b", n = 2 }, { id = 3, n = 3 } }
  end)

  teardown(function()
    for _, t in ipairs{ "iv_things", "iv_secret" } do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:close()
  end)

  -- fn(body) must raise `kind` with nothing sent, quickly; rows stay as they were.
  local function refused(label, fn, payload_names, kind)
    for _, name in ipairs(payload_names) do
      local body = cjson.decode(PAYLOADS[name])
      local before, started = #sent, os.clock()
      local t0 = os.time()
      local ok, err = pcall(fn, body)
      local what = label .. " with " .. name
      assert.is_false(ok, what .. ": accepted")
      assert.are.equal(kind or "QueryError", type(err) == "table" and err.kind, what .. ": " .. tostring(err))
      assert.are.equal(before, #sent, what .. ": a statement was sent: " .. tostring(sent[#sent]))
      assert.is_true(os.time() - t0 <= 1 and os.clock() - started < 1, what .. ": slow")
    end
    assert.are.same({ "a", "b" }, Thing:where(ar.col("name"):is_not_null()):order_by("id"):pluck("name"))
  end

  local ALL = { "expr", "expr_bare", "subquery", "query", "order", "select", "select_trick", "object" }
  -- where(body) reads the body's keys as column names (validated identifiers);
  -- these payloads nest a node in a value, which is what must be refused
  local NESTED = { "expr", "subquery", "order", "select", "select_trick" }

  it("where{}, find_by, having{} and not_where refuse a table that is not a list", function()
    refused("find_by", function(b) return Thing:find_by{ name = b } end, ALL)
    refused("where{}", function(b) return Thing:where{ name = b }:all() end, ALL)
    refused("or_where{}", function(b) return Thing:where{ id = 1 }:or_where{ name = b }:all() end, ALL)
    refused("not_where{}", function(b) return Thing:not_where{ name = b }:all() end, ALL)
    refused("where(body)", function(b) return Thing:where(b):all() end, NESTED)
    refused("table query where{}", function(b) return ar.table("iv_things", db):where{ name = b }:all() end, ALL)
    refused("having{}", function(b)
      return Thing:select("name"):group_by("name"):having{ name = b }:aggregate()
    end, ALL)
    refused("where{} list item", function(b) return Thing:where{ name = { "a", b } }:all() end, ALL)
    refused("find", function(b) return Thing:find(b) end, ALL)
    refused("find_or_fail", function(b) return Thing:find_or_fail(b) end, ALL)
  end)

  it("expression operands refuse it: eq, ne, gt, like, between, in_list, arithmetic, functions", function()
    local name = ar.col("name")
    refused("eq", function(b) return Thing:where(name:eq(b)):all() end, ALL)
    refused("ne", function(b) return Thing:where(name:ne(b)):all() end, ALL)
    refused("gt", function(b) return Thing:where(name:gt(b)):all() end, ALL)
    refused("like", function(b) return Thing:where(name:like(b)):all() end, ALL)
    refused("not_like", function(b) return Thing:where(name:not_like(b)):all() end, ALL)
    refused("Query:like", function(b) return Thing:like("name", b):all() end, ALL)
    refused("between", function(b) return Thing:between("id", b, 10):all() end, ALL)
    refused("in_list", function(b) return Thing:in_list("name", b):all() end, ALL)
    refused("not_in", function(b) return Thing:not_in("name", b):all() end, ALL)
    refused("in_list item", function(b) return Thing:in_list("name", { b }):all() end, ALL)
    refused("add", function(b) return Thing:where(ar.col("n"):add(b):gt(0)):all() end, ALL)
    refused("function argument", function(b) return Thing:where(ar.fn.lower(b):eq("a")):all() end, ALL)
    refused("ar.value", function(b) return Thing:where(name:eq(ar.value(b))):all() end, ALL)
    refused("raw fragment value", function(b) return Thing:where("name = ?", b):all() end, ALL)
    refused("or_", function(b) return Thing:where(name:eq("zz"):or_(b)):all() end, ALL)
    refused("and_", function(b) return Thing:where(name:eq("a"):and_(b)):all() end, ALL)
    refused("join ON value", function(b)
      return Thing:joins("iv_secret", { ["iv_secret.id"] = b }):all()
    end, ALL)
  end)

  it("order_by, select, group_by, windows, sources and subqueries refuse it", function()
    refused("order_by", function(b) return Thing:order_by(b):all() end, ALL)
    refused("reorder", function(b) return Thing:reorder(b):all() end, ALL)
    refused("select", function(b) return Thing:select(b):aggregate() end, ALL)
    refused("pluck", function(b) return Thing:pluck(b) end, ALL)
    refused("group_by", function(b) return Thing:select("name"):group_by(b):aggregate() end, ALL)
    refused("window order", function(b)
      return Thing:select(ar.row_number():over{ order_by = b }):aggregate()
    end, ALL)
    refused("window partition", function(b)
      return Thing:select(ar.row_number():over{ partition_by = b }):aggregate()
    end, ALL)
    refused("from", function(b) return Thing:query():from(b, "x"):all() end, ALL)
    refused("union", function(b) return Thing:query():union(b):all() end, ALL)
    refused("exists", function(b) return Thing:where_exists(b):all() end, ALL)
    refused("with_cte", function(b) return Thing:query():with_cte("c", b):all() end, ALL)
    refused("join target", function(b) return Thing:joins(b, "1 = 1"):all() end, ALL)
  end)

  it("update_all refuses it; a json field's document is a bound value, stored as given", function()
    refused("update_all", function(b) return Thing:where{ id = 1 }:update_all{ name = b } end, ALL)
    refused("update_all all rows", function(b) return Thing:query():update_all{ n = b } end, ALL)
    local body = cjson.decode(PAYLOADS.expr)
    assert.are.equal(1, Thing:where{ id = 3 }:update_all{ doc = body })
    assert.are.same(body, Thing:find(3).doc)
    assert.are.equal(3, Thing:count())
  end)

  it("writes refuse it before any SQL: create, insert_all, upsert_all, save{ upsert }", function()
    refused("create", function(b) return Thing:create{ id = 9, name = b } end, ALL, "ValidationError")
    refused("insert_all", function(b) return Thing:insert_all{ { id = 9, name = b } } end, ALL,
      "ValidationError")
    refused("upsert_all", function(b)
      return Thing:upsert_all({ { id = 1, name = b } }, { update = { "name" } })
    end, ALL, "ValidationError")
    refused("save upsert", function(b) return Thing.new{ id = 1, name = b }:save{ upsert = true } end, ALL,
      "ValidationError")
    assert.are.equal(3, Thing:count())
  end)

  it("node metatables cannot be taken from a node to dress up a table", function()
    local mt = getmetatable(ar.col("name"))
    assert.are_not.equal("table", type(mt))
    assert.is_nil(getmetatable(ar.col("name"):desc()).__index)
    assert.has_error(function() setmetatable(ar.col("name"), {}) end)
  end)

  it("nodes built by the API still make SQL; lists mean IN; ar.null and cjson.null mean IS NULL", function()
    assert.are.equal(ar.null, cjson.null)
    assert.are.same({ 1, 2 }, Thing:where(ar.raw("id < ?", 3)):order_by("id"):pluck("id"))
    assert.are.same({ 3, 2 }, Thing:where(ar.col("id"):lt(ar.col("n"):add(1))):order_by(ar.col("id"):desc())
      :limit(2):pluck("id"))
    assert.are.same({ 1 }, Thing:where{ name = ar.table("iv_secret", db):select("secret") }:pluck("id"))
    assert.are.same({ 1, 2 }, Thing:where(ar.col("name"):eq({ "a", "b" })):order_by("id"):pluck("id"))
    assert.are.same({ 3 }, Thing:where(ar.col("name"):ne({ "a", "b" }):or_(ar.col("name"):is_null()))
      :pluck("id"))
    assert.are.same({}, Thing:where{ name = {} }:pluck("id"))
    assert.are.same({ 3 }, Thing:where{ name = cjson.null }:pluck("id"))
    assert.are.same({ 1, 3 }, Thing:where{ name = { "a", ar.null } }:or_where{ name = ar.null }
      :order_by("id"):pluck("id"))
    local row = Thing:select(ar.col("name"):as("x"), { expr = ar.fn.upper("name"), as = "y" })
      :where{ id = 1 }:aggregate()[1]
    assert.are.same({ x = "a", y = "A" }, row)
    assert.are.equal(1, Thing:find(1).id)
  end)

  -- a number that reaches SQL text keeps its meaning: a statement time limit
  -- under a millisecond was printed as max_statement_time=0.000, "no limit"
  it("a sub-millisecond timeout still limits the statement", function()
    if not db:supports("max_execution_time") then return pending("no statement time limits") end
    local q = ar.table("iv_things", db):select(ar.raw("SLEEP(?) AS s", 2)):where{ id = 1 }:timeout(0.0004)
    local t0 = os.time()
    local err = support.error_of(q.all, q)
    assert.are.equal("QueryTimeout", err.kind)
    assert.is_true(os.time() - t0 <= 1)
  end)

  it("a select item table takes expr and as only", function()
    local err = support.error_of(function() return Thing:select({ expr = "name", as = "x", sql = "1" }) end)
    assert.are.equal("QueryError", err.kind)
  end)
end)

-- Injection attempts through values, identifiers (order_by, select,
-- group_by, table and column names), JSON paths, LIMIT/OFFSET and raw
-- fragments: values are bound (stored and compared literally), identifiers
-- are rejected. A canary table proves nothing was dropped and a secret
-- table proves no extra row was read.
local ar = require("activerecord")
local H = require("reliability.helpers")

H.pending = function(msg) pending(msg) end

local DROP = "x; DROP TABLE rel_canary; --"
local SECRET = "s3cret-row"

describe("reliability: injection", function()
  local db, Thing

  local function canary_intact()
    local rows = db:query("SELECT id, note FROM rel_canary")
    assert.are.equal(1, #rows)
    assert.are.equal("alive", rows[1].note)
    assert.are.equal(3, db:query("SELECT COUNT(*) AS n FROM rel_things")[1].n)
  end

  setup(function()
    db = ar.connect(H.support.options{ pool = { size = 2 } })
    for _, t in ipairs{ "rel_canary", "rel_secret", "rel_things" } do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:execute("CREATE TABLE rel_canary (id INT PRIMARY KEY, note VARCHAR(20))")
    db:execute("INSERT INTO rel_canary VALUES (1, 'alive')")
    db:execute("CREATE TABLE rel_secret (id INT PRIMARY KEY, secret VARCHAR(20))")
    db:execute("INSERT INTO rel_secret VALUES (1, ?)", SECRET)
    ar.schema.create_table(db, "rel_things", function(t)
      t:integer("id", { primary_key = true })
      t:string("name", { size = 100 })
      t:json("doc")
    end)
    Thing = ar.Model{ name = "RelThing", table = "rel_things", backend = db,
      fields = { id = { type = "integer", primary_key = true }, name = "string", doc = "json" } }
    Thing:insert_all{ { id = 1, name = "a", doc = { k = "a" } }, { id = 2, name = "b", doc = { k = "b" } },
                      { id = 3, name = "c", doc = { k = "c" } } }
  end)

  teardown(function()
    for _, t in ipairs{ "rel_canary", "rel_secret", "rel_things" } do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:close()
  end)

  after_each(canary_intact)

  it("values are bound: every classic payload matches nothing and is stored literally", function()
    local payloads = {
      "' OR '1'='1", "' OR 1=1 -- ", "a' UNION SELECT secret, 1, 1 FROM rel_secret -- ", DROP,
      "'); DROP TABLE rel_canary; --", "\\'; DROP TABLE rel_canary; --", "a\0' OR 1=1 -- ",
      "%' OR name LIKE '%", "\"; DROP TABLE rel_canary; --", "?", "? OR 1=1",
    }
    for i, p in ipairs(payloads) do
      assert.are.equal(0, #Thing:where{ name = p }:all(), p)
      assert.are.equal(0, #Thing:where("name = ?", p):all(), p)
      assert.are.equal(0, #db:query("SELECT * FROM rel_things WHERE name = ?", p), p)
      assert.is_nil(Thing:find_by{ name = p })
      assert.are.equal(0, Thing:where(ar.col("name"):like(p)):where{ id = { 1, 2, 3 } }
        :where(ar.col("name"):eq(p)):count())
      local rec = Thing:create{ id = 100 + i, name = p, doc = { v = p } }
      local back = Thing:find(rec.id)
      assert.are.equal(p, back.name)
      assert.are.equal(p, back.doc.v)
      assert.are.equal(1, Thing:where{ name = p }:count())
      back:delete()
    end
    H.counts.bad_inputs = H.counts.bad_inputs + #payloads * 7
  end)

  it("identifiers are rejected: order_by, select, group_by, table and column names", function()
    local q = Thing:query()
    H.run_cases{
      { "order_by column", function() return q:order_by("id; DROP TABLE rel_canary"):all() end, "QueryError" },
      { "order_by expression", function() return q:order_by("(SELECT secret FROM rel_secret)"):all() end,
        "QueryError" },
      { "order_by direction", function() return q:order_by("id", "desc; DROP TABLE rel_canary"):all() end,
        "QueryError" },
      { "order_by backtick", function() return q:order_by("id`; DROP TABLE rel_canary; -- "):all() end,
        "QueryError" },
      { "select subquery", function() return q:select("(SELECT secret FROM rel_secret) AS name"):all() end,
        "QueryError" },
      { "select star from", function() return q:select("* FROM rel_secret -- "):all() end, "QueryError" },
      { "select comment", function() return q:select("id /*"):all() end, "QueryError" },
      { "group_by", function() return q:group_by("name; DROP TABLE rel_canary"):count() end, "QueryError" },
      { "group_by union", function() return q:select("name"):group_by("name UNION SELECT secret FROM rel_secret")
          :all() end, "QueryError" },
      { "where key", function() return q:where{ ["name = name OR 1=1 -- "] = 1 }:all() end, "QueryError" },
      { "where key backtick", function() return q:where{ ["name` OR 1=1 -- "] = 1 }:all() end, "QueryError" },
      { "find_by key", function() return Thing:find_by{ ["1=1 OR name"] = "x" } end, "QueryError" },
      { "update_all key", function() return q:where{ id = 1 }:update_all{ ["name = 'x', id"] = 1 } end,
        "QueryError" },
      { "pluck", function() return q:pluck("secret FROM rel_secret -- ") end, "QueryError" },
      { "count", function() return q:count("*) FROM rel_secret -- ") end, "QueryError" },
      { "sum", function() return q:sum("id) FROM rel_secret -- ") end, "QueryError" },
      { "ar.table", function() return ar.table("rel_things; DROP TABLE rel_canary", db):all() end, "QueryError" },
      { "ar.table backtick", function() return ar.table("rel_things` WHERE 1=1; -- ", db):all() end,
        "QueryError" },
      { "ar.col", function() return q:where(ar.col("id`; DROP TABLE rel_canary"):eq(1)):all() end, "QueryError" },
      { "join target", function() return q:joins("rel_secret ON 1=1 -- "):all() end, "QueryError" },
      { "from alias", function() return q:from("rel_things", "t; DROP TABLE rel_canary"):all() end, "QueryError" },
      { "cte name", function() return q:with_cte("c AS (SELECT 1); DROP TABLE rel_canary; --", q):all() end,
        "QueryError" },
      { "in_list column", function() return q:in_list("id) OR (1=1", { 1 }):all() end, "QueryError" },
      { "json column", function() return q:where(ar.json_value("doc`, '$') OR 1=1 -- ", "$.k"):eq("a")):all() end,
        "QueryError" },
      { "schema drop_table name", function() return ar.schema.drop_table(db, "rel_canary; --") end,
        { "QueryError", "ConfigError" }, nil, "schema identifiers are quoted, not validated" },
    }
  end)

  it("JSON paths are validated and bound", function()
    local q = Thing:query()
    H.run_cases{
      { "quote break-out", function() return q:where(ar.json_value("doc", "$.k') OR 1=1 -- "):eq("a")):all() end,
        "QueryError", "path" },
      { "statement break-out", function() return q:where(ar.json_value("doc", "$.k'); DROP TABLE rel_canary; --")
          :eq("a")):all() end, "QueryError", "path" },
      { "no dollar", function() return q:where(ar.json_value("doc", "k")):all() end, "QueryError", "path" },
      { "extract", function() return q:where(ar.json_extract("doc", "$.k' OR '1'='1"):eq("a")):all() end,
        "QueryError", "path" },
      { "contains path", function() return q:where(ar.json_contains("doc", "1", "$) OR 1=1 -- ")):all() end,
        "QueryError", "path" },
      { "json_path_query table", function() return db:json_path_query("rel_things; DROP TABLE rel_canary", "doc",
          "$.k", "a") end, "QueryError" },
      { "json_path_query path", function() return db:json_path_query("rel_things", "doc", "$.k' OR 1=1 -- ", "a")
        end, "QueryError", "path" },
    }
    -- a legal path with odd characters is bound, and the value too
    assert.are.equal(1, #q:where(ar.json_value("doc", "$.k"):eq("a")):all())
    assert.are.equal(0, #q:where(ar.json_value("doc", '$."k\' OR 1=1 -- "'):eq("a")):all())
    assert.are.equal(0, #db:json_path_query("rel_things", "doc", "$.k", "a' OR '1'='1"))
  end)

  it("LIMIT and OFFSET accept only non-negative integers", function()
    local q = Thing:query()
    H.run_cases{
      { "limit text", function() return q:limit("1; DROP TABLE rel_canary"):all() end, "QueryError", "limit" },
      { "limit union", function() return q:limit("1 UNION SELECT secret, 1, 1 FROM rel_secret"):all() end,
        "QueryError", "limit" },
      { "limit numeric string", function() return q:limit("2"):all() end, "QueryError", "limit" },
      { "offset text", function() return q:offset("0; DROP TABLE rel_canary"):all() end, "QueryError", "offset" },
      { "limit float", function() return q:limit(1.0000001):all() end, "QueryError", "limit" },
      { "limit -1", function() return q:limit(-1):all() end, "QueryError", "limit" },
      { "limit table", function() return q:limit({ 1 }):all() end, "QueryError", "limit" },
    }
    assert.are.equal(2, #q:order_by("id"):limit(2):all())
    assert.are.equal(1, #q:order_by("id"):limit(2):offset(2):all())
  end)

  it("raw fragments bind their values and cannot run a second statement", function()
    assert.are.equal(0, #Thing:where("name = ?", "x' OR 1=1 -- "):all())
    assert.are.equal(0, #Thing:where(ar.raw("LOWER(name) = ?", "a' OR '1'='1")):all())
    assert.are.equal(1, #Thing:where(ar.raw("LOWER(name) = ?", "a")):all())
    H.run_cases{
      { "second statement in where", function() return Thing:where("id = 1; DROP TABLE rel_canary"):all() end,
        "QueryError" },
      { "second statement in execute", function() return db:execute("SELECT 1; DROP TABLE rel_canary") end,
        "QueryError" },
      { "placeholder count", function() return Thing:where("id = ? OR id = ?", 1):all() end, "QueryError",
        "placeholder" },
      { "schema raw with ;", function() return ar.schema.raw("1); DROP TABLE rel_canary; --") end, "QueryError" },
    }
    -- a UNION through a raw fragment is the caller's own SQL; it reads only what it names
    local rows = Thing:where("id = ?", "1 UNION SELECT 1, secret, NULL FROM rel_secret"):all()
    assert.is_true(#rows <= 1)
    for _, r in ipairs(rows) do assert.are_not.equal(SECRET, r.name) end
  end)
end)

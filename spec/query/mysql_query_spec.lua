-- MySQL/MariaDB-specific query builder behaviour (the shared suite holds the
-- rest): gating by flavor AND version through core.capabilities_for, forced
-- onto a real backend so the log hook proves no SQL was sent; the -> / ->>
-- operators; LAG/LEAD defaults per flavor; FULLTEXT search; EXPLAIN formats.
local ar = require("activerecord")
local Dialect = require("activerecord.backend.mysql.dialect")
local support = require("support.db")

describe("mysql query builder", function()
  local db, sent

  setup(function()
    sent = {}
    db = ar.connect(support.options{ pool = { size = 2 }, log = function(ev) sent[#sent + 1] = ev.sql end })
    db:execute("DROP TABLE IF EXISTS q_articles")
    db:execute("CREATE TABLE q_articles (id BIGINT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200), "
      .. "body TEXT, data JSON, FULLTEXT KEY ft_articles (title, body)) ENGINE=InnoDB")
    local rows = {
      { "MySQL tutorial", "DBMS stands for DataBase management", '{"user": {"name": "Ann"}, "tags": ["python"]}' },
      { "How to use Lua", "After you went through a tutorial", '{"user": {"name": "Bob"}, "tags": ["lua"]}' },
      { "Optimizing databases", "In this article we show indexes", '{"user": {"name": "Cid"}, "tags": []}' },
      { "Lua vs Python", "Comparing two languages, tutorial style",
        '{"user": {"name": "Dee"}, "tags": ["python", "lua"]}' },
    }
    for _, r in ipairs(rows) do
      db:execute("INSERT INTO q_articles (title, body, data) VALUES (?, ?, ?)", r[1], r[2], r[3])
    end
  end)

  teardown(function()
    db.dialect = Dialect.new{ flavor = db:server().flavor, version = db:server().version,
                              capabilities = db._capabilities }
    db:execute("DROP TABLE IF EXISTS q_articles")
    db:close()
  end)

  -- Runs fn with the backend's dialect set to another server's; returns the
  -- error fn raised and how many statements went out meanwhile.
  local function as_server(flavor, version, fn)
    local real = db.dialect
    db.dialect = Dialect.new{ flavor = flavor, version = version }
    local before = #sent
    local ok, err = pcall(fn)
    db.dialect = real
    return ok, err, #sent - before
  end

  local function gated(flavor, version, fn, words)
    local ok, err, n = as_server(flavor, version, fn)
    assert.is_false(ok, "expected a CapabilityError on " .. flavor .. " " .. table.concat(version, "."))
    assert.is_true(ar.errors.is(err, "CapabilityError"), tostring(err))
    assert.are.equal(0, n, "statements were sent")
    for _, w in ipairs(words) do assert.matches(w, tostring(err), 1, true) end
    return err
  end

  local function t() return ar.table("q_articles", db) end

  describe("capability gating by flavor and version", function()
    it("CTEs and window functions need MySQL 8", function()
      local cte = function() return ar.table("c", db):with_cte("c", t():select("id")):all() end
      local err = gated("mysql", { 5, 7, 40 }, cte, { "MySQL", "8.0", "5.7.40" })
      assert.are.equal("mysql", err.flavor)
      gated("mysql", { 5, 7, 40 }, function()
        return ar.table("c", db):with_cte("c", t():select("id"), { recursive = true }):all()
      end, { "WITH RECURSIVE", "5.7.40" })
      gated("mysql", { 5, 7, 40 }, function() return t():select(ar.rank():over{ order_by = "id" }):all() end,
        { "window functions", "MySQL 8.0.2+" })
      gated("mariadb", { 10, 1, 0 }, cte, { "MariaDB 10.2", "10.1.0" })
      -- and they compile on servers that have them
      local ok = as_server("mysql", { 8, 0, 36 }, function() return ar.table("c", db):with_cte("c", t()):to_sql() end)
      assert.is_true(ok)
    end)

    it("INTERSECT / EXCEPT need MySQL 8.0.31 or MariaDB 10.3", function()
      local q = function() return t():intersect(t()):all() end
      gated("mysql", { 8, 0, 30 }, q, { "INTERSECT", "8.0.31", "8.0.30" })
      gated("mysql", { 8, 0, 30 }, function() return t():except(t()):count() end, { "EXCEPT" })
      gated("mariadb", { 10, 2, 40 }, q, { "MariaDB 10.3" })
      assert.is_true((as_server("mysql", { 8, 0, 31 }, function() return t():intersect(t()):to_sql() end)))
    end)

    it("JSON_TABLE, NOWAIT and SKIP LOCKED by version", function()
      local jt = ar.json_table("data", "$.tags[*]", { { name = "tag", type = "string", path = "$" } })
      gated("mariadb", { 10, 5, 0 }, function() return t():cross_joins(jt, "jt"):all() end, { "JSON_TABLE" })
      gated("mysql", { 5, 7, 40 }, function() return t():for_update{ nowait = true }:all() end, { "NOWAIT" })
      gated("mariadb", { 10, 5, 0 }, function() return t():for_update{ skip_locked = true }:all() end,
        { "SKIP LOCKED", "10.6" })
    end)

    it("FOR SHARE is spelled for the server", function()
      local _, sql = as_server("mysql", { 8, 0, 36 }, function() return t():for_share():to_sql() end)
      assert.matches("FOR SHARE$", sql)
      _, sql = as_server("mysql", { 5, 7, 40 }, function() return t():for_share():to_sql() end)
      assert.matches("LOCK IN SHARE MODE$", sql)
    end)
  end)

  describe("JSON", function()
    it("the guide's raw -> form gives a clear CapabilityError on MariaDB, none on MySQL", function()
      local q = function() return t():where("data->'$.user.name' = ?", "Ann"):to_sql() end
      gated("mariadb", { 10, 11, 0 }, q, { "->", "MariaDB", "json_extract" })
      gated("mariadb", { 10, 11, 0 }, function() return t():where("data->>'$.user.name' = ?", "Ann"):all() end, {})
      assert.is_true((as_server("mysql", { 8, 0, 36 }, q)))
      -- an arrow inside a quoted string is just text
      assert.are.equal(0, t():where("title = '->'"):count())
    end)

    it("the guide's queries through the builder", function()
      assert.are.same({ "MySQL tutorial" }, t():where(ar.json_value("data", "$.user.name"):eq("Ann")):pluck("title"))
      assert.are.same({ "Lua vs Python", "MySQL tutorial" },
        t():where(ar.json_contains("data", "python", "$.tags")):order_by("title"):pluck("title"))
      local sql = t():where(ar.json_value("data", "$.user.name"):eq("Ann")):to_sql()
      assert.are.equal("SELECT * FROM `q_articles` WHERE (JSON_UNQUOTE(JSON_EXTRACT(`data`, ?)) = ?)", sql)
    end)

    it("LAG/LEAD defaults: an argument on MySQL, exact emulation on MariaDB", function()
      local q = function() return t():select(ar.lag("title", 1, "none"):over{ order_by = "id" }):to_sql() end
      local _, mysql_sql = as_server("mysql", { 8, 0, 36 }, q)
      assert.matches("LAG(`title`, 1, ?) OVER", mysql_sql, 1, true)
      local _, maria_sql = as_server("mariadb", { 10, 11, 0 }, q)
      assert.matches("CASE WHEN LAG(1, 1) OVER", maria_sql, 1, true)
      local ids = t():order_by("id"):pluck("id")
      t():where{ id = ids[2] }:update_all{ title = ar.null }
      local rows = t():select("id", ar.lag("title", 1, "none"):over{ order_by = "id" }:as("prev"))
        :order_by("id"):aggregate()
      assert.are.equal("none", rows[1].prev)
      assert.are.equal("MySQL tutorial", rows[2].prev)
      assert.is_nil(rows[3].prev) -- a NULL value at the offset stays NULL
    end)
  end)

  describe("full-text search", function()
    it("natural language and boolean mode on a FULLTEXT index", function()
      local natural = t():where(ar.match_against({ "title", "body" }, "tutorial")):order_by("id"):pluck("id")
      assert.are.equal(3, #natural)
      local boolean = t():where(ar.match_against({ "title", "body" }, "+tutorial -MySQL", "boolean")):pluck("id")
      assert.are.equal(2, #boolean)
      local sql, params = t():where(ar.match_against({ "title", "body" }, "x'y", "boolean")):to_sql()
      assert.matches("MATCH (`title`, `body`) AGAINST (? IN BOOLEAN MODE)", sql, 1, true)
      assert.are.same({ n = 1, "x'y" }, params)
      local scored = t():select("id", ar.match_against({ "title", "body" }, "tutorial"):as("score"))
        :where(ar.match_against({ "title", "body" }, "tutorial")):aggregate()
      assert.is_true(scored[1].score > 0)
      local err = select(2, pcall(ar.match_against, { "title" }, "x", "fuzzy"))
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)
  end)

  describe("explain", function()
    it("uses FORMAT=JSON where the server has it, EXPLAIN rows otherwise", function()
      local plan, format = t():where{ id = 1 }:explain()
      assert.are.equal("json", format)
      assert.is_table(plan.query_block)
      assert.matches("^EXPLAIN FORMAT=JSON SELECT", sent[#sent])
      local ok, res = as_server("mariadb", { 10, 1, 0 }, function() return { t():where{ id = 1 }:explain() } end)
      assert.is_true(ok, tostring(res))
      local rows, f2 = res[1], res[2]
      assert.are.equal("traditional", f2)
      assert.are.equal("q_articles", rows[1].table)
    end)
  end)
end)

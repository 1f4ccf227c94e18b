-- The SQL the ORM sends, pinned without a server: queries built with the
-- public builder are compiled for a MariaDB and a MySQL dialect and their
-- text and parameters compared with what they must be. A change to the
-- compiler that changes a statement shows up here first; values must always
-- be parameters, never text.
local ar = require("activerecord")
local Dialect = require("activerecord.backend.mysql.dialect")
local compiler = require("activerecord.backend.mysql.compiler")
local errors = require("activerecord.errors")

local mariadb = Dialect.new{ flavor = "mariadb", version = { 10, 11, 6 } }
local mariadb_102 = Dialect.new{ flavor = "mariadb", version = { 10, 2, 44 } }
local mysql8 = Dialect.new{ flavor = "mysql", version = { 8, 0, 36 } }
local mysql57 = Dialect.new{ flavor = "mysql", version = { 5, 7, 44 } }

local T = ar.table
local null = ar.null

-- { name, dialect, build, sql, params } (params: an array; null for NULL)
local SELECTS = {
  { "a whole table", mariadb, function() return T("users") end,
    "SELECT * FROM `users`", {} },
  { "an equality from where{}", mariadb, function() return T("users"):where{ name = "Ann" } end,
    "SELECT * FROM `users` WHERE (`name` = ?)", { "Ann" } },
  { "a list as IN", mariadb, function() return T("users"):where{ age = { 30, 31 } } end,
    "SELECT * FROM `users` WHERE (`age` IN (?, ?))", { 30, 31 } },
  { "ar.null as IS NULL", mariadb, function() return T("users"):where{ deleted_at = null } end,
    "SELECT * FROM `users` WHERE (`deleted_at` IS NULL)", {} },
  { "several keys, sorted", mariadb, function() return T("users"):where{ age = 3, active = true } end,
    "SELECT * FROM `users` WHERE ((`active` = ?) AND (`age` = ?))", { true, 3 } },
  { "a raw fragment keeps its ? parameters", mariadb,
    function() return T("users"):where("age > ? AND name LIKE ?", 18, "A%") end,
    "SELECT * FROM `users` WHERE (age > ? AND name LIKE ?)", { 18, "A%" } },
  { "a value that looks like SQL is a parameter", mariadb,
    function() return T("users"):where{ name = "x'; DROP TABLE users; --" } end,
    "SELECT * FROM `users` WHERE (`name` = ?)", { "x'; DROP TABLE users; --" } },
  { "between", mariadb, function() return T("users"):where(ar.col("score"):between(1, 5)) end,
    "SELECT * FROM `users` WHERE (`score` BETWEEN ? AND ?)", { 1, 5 } },
  { "or_where", mariadb, function() return T("users"):where{ id = 1 }:or_where{ name = "Bo" } end,
    "SELECT * FROM `users` WHERE (((`id` = ?)) OR (`name` = ?))", { 1, "Bo" } },
  { "not_where", mariadb, function() return T("users"):not_where{ active = false } end,
    "SELECT * FROM `users` WHERE (NOT (`active` = ?))", { false } },
  { "order, limit and offset (bound)", mariadb,
    function() return T("users"):order_by("id", "desc"):limit(10):offset(20) end,
    "SELECT * FROM `users` ORDER BY `id` DESC LIMIT ? OFFSET ?", { 10, 20 } },
  { "an offset alone", mariadb, function() return T("users"):offset(5) end,
    "SELECT * FROM `users` LIMIT 18446744073709551615 OFFSET ?", { 5 } },
  { "orders by an expression then a name", mariadb,
    function() return T("users"):order_by(ar.col("score"):desc()):order_by("id") end,
    "SELECT * FROM `users` ORDER BY `score` DESC, `id` ASC", {} },
  { "a column list", mariadb, function() return T("users"):select("id", "name") end,
    "SELECT `id`, `name` FROM `users`", {} },
  { "distinct", mariadb, function() return T("users"):distinct() end,
    "SELECT DISTINCT * FROM `users`", {} },
  { "comparisons chained", mariadb,
    function() return T("users"):where(ar.col("age"):gt(18)):where(ar.col("age"):le(65)) end,
    "SELECT * FROM `users` WHERE (`age` > ?) AND (`age` <= ?)", { 18, 65 } },
  { "ne and lt", mariadb, function() return T("users"):where(ar.col("age"):ne(3)):where(ar.col("age"):lt(9)) end,
    "SELECT * FROM `users` WHERE (`age` <> ?) AND (`age` < ?)", { 3, 9 } },
  { "like and not like", mariadb,
    function() return T("users"):where(ar.col("name"):like("A%")):where(ar.col("name"):not_like("%x")) end,
    "SELECT * FROM `users` WHERE (`name` LIKE ?) AND (`name` NOT LIKE ?)", { "A%", "%x" } },
  { "in_list and not_in", mariadb,
    function() return T("users"):where(ar.col("id"):in_list{ 1, 2, 3 }):where(ar.col("id"):not_in{ 4 }) end,
    "SELECT * FROM `users` WHERE (`id` IN (?, ?, ?)) AND (`id` NOT IN (?))", { 1, 2, 3, 4 } },
  { "is null and is not null", mariadb,
    function() return T("users"):where(ar.col("a"):is_null()):where(ar.col("b"):is_not_null()) end,
    "SELECT * FROM `users` WHERE (`a` IS NULL) AND (`b` IS NOT NULL)", {} },
  { "arithmetic against a column", mariadb,
    function() return T("users"):where(ar.col("score"):add(1):gt(ar.col("age"))) end,
    "SELECT * FROM `users` WHERE ((`score` + ?) > `age`)", { 1 } },
  { "a qualified column and ar.value", mariadb,
    function() return T("users"):where(ar.col("users.age"):ge(ar.value(3))) end,
    "SELECT * FROM `users` WHERE (`users`.`age` >= ?)", { 3 } },
  { "ar.raw as a condition", mariadb, function() return T("users"):where(ar.raw("LOWER(name) = ?", "ann")) end,
    "SELECT * FROM `users` WHERE (LOWER(name) = ?)", { "ann" } },
  { "a subquery as an IN list", mariadb,
    function() return T("posts"):where{ user_id = T("users"):select("id"):where("age > ?", 30) } end,
    "SELECT * FROM `posts` WHERE (`user_id` IN (SELECT `id` FROM `users` WHERE (age > ?)))", { 30 } },
  { "a correlated scalar subquery", mariadb, function()
      return T("users"):where(ar.subquery(T("posts"):select(ar.fn.count("*"))
        :where(ar.col("posts.user_id"):eq(ar.col("users.id")))):gt(5))
    end,
    "SELECT * FROM `users` WHERE ((SELECT COUNT(*) FROM `posts` WHERE (`posts`.`user_id` = `users`.`id`)) > ?)",
    { 5 } },
  { "group by and having", mariadb, function()
      return T("users"):group_by("team"):select("team", { expr = ar.fn.count("id"), as = "n" })
        :having("COUNT(id) > ?", 2)
    end,
    "SELECT `team`, COUNT(`id`) AS `n` FROM `users` GROUP BY `team` HAVING (COUNT(id) > ?)", { 2 } },
  { "an aggregate with an alias", mariadb,
    function() return T("users"):select({ expr = ar.fn.max("age"), as = "oldest" }) end,
    "SELECT MAX(`age`) AS `oldest` FROM `users`", {} },
  { "an inner join", mariadb,
    function() return T("posts"):joins("users", { ["users.id"] = "posts.user_id" }):where("users.name = ?", "Ann") end,
    "SELECT `posts`.* FROM `posts` INNER JOIN `users` ON `users`.`id` = `posts`.`user_id` WHERE (users.name = ?)",
    { "Ann" } },
  { "a left join", mariadb,
    function() return T("posts"):left_joins("comments", { ["comments.post_id"] = "posts.id" }) end,
    "SELECT `posts`.* FROM `posts` LEFT JOIN `comments` ON `comments`.`post_id` = `posts`.`id`", {} },
  { "a JSON value on MariaDB (no -> operator)", mariadb,
    function() return T("users"):where(ar.json_value("profile", "$.theme"):eq("dark")) end,
    "SELECT * FROM `users` WHERE (JSON_UNQUOTE(JSON_EXTRACT(`profile`, ?)) = ?)", { "$.theme", "dark" } },
  { "a JSON value on MySQL 8, the path bound too", mysql8,
    function() return T("users"):where(ar.json_value("profile", "$.a[0].b"):eq(1)) end,
    "SELECT * FROM `users` WHERE (JSON_UNQUOTE(JSON_EXTRACT(`profile`, ?)) = ?)", { "$.a[0].b", 1 } },
  { "json_contains encodes the document exactly", mariadb,
    function() return T("users"):where(ar.json_contains("profile", { 1234567890123456789 }, "$.ids")) end,
    "SELECT * FROM `users` WHERE (JSON_CONTAINS(`profile`, ?, ?))", { "[1234567890123456789]", "$.ids" } },
  { "json_contains of an empty array", mariadb,
    function() return T("users"):where(ar.json_contains("profile", ar.json_array(), "$.tags")) end,
    "SELECT * FROM `users` WHERE (JSON_CONTAINS(`profile`, ?, ?))", { "[]", "$.tags" } },
  { "FOR UPDATE SKIP LOCKED", mariadb,
    function() return T("users"):where{ id = 1 }:for_update{ skip_locked = true } end,
    "SELECT * FROM `users` WHERE (`id` = ?) FOR UPDATE SKIP LOCKED", { 1 } },
  { "FOR UPDATE NOWAIT on MySQL 8", mysql8,
    function() return T("users"):where{ id = 1 }:for_update{ nowait = true } end,
    "SELECT * FROM `users` WHERE (`id` = ?) FOR UPDATE NOWAIT", { 1 } },
  { "a shared lock on MariaDB", mariadb, function() return T("users"):where{ id = 1 }:for_share() end,
    "SELECT * FROM `users` WHERE (`id` = ?) LOCK IN SHARE MODE", { 1 } },
  { "a shared lock on MySQL 8", mysql8, function() return T("users"):where{ id = 1 }:for_share() end,
    "SELECT * FROM `users` WHERE (`id` = ?) FOR SHARE", { 1 } },
  { "union", mariadb, function() return T("users"):where("age < ?", 20):union(T("users"):where("age > ?", 60)) end,
    "SELECT * FROM `users` WHERE (age < ?) UNION SELECT * FROM `users` WHERE (age > ?)", { 20, 60 } },
  { "union all", mariadb,
    function() return T("users"):where("age < ?", 20):union_all(T("users"):where("age > ?", 10)) end,
    "SELECT * FROM `users` WHERE (age < ?) UNION ALL SELECT * FROM `users` WHERE (age > ?)", { 20, 10 } },
  { "intersect", mariadb,
    function() return T("users"):where("age < ?", 20):intersect(T("users"):where("age > ?", 10)) end,
    "SELECT * FROM `users` WHERE (age < ?) INTERSECT SELECT * FROM `users` WHERE (age > ?)", { 20, 10 } },
  { "except", mariadb,
    function() return T("users"):where("age < ?", 20):except(T("users"):where("age > ?", 10)) end,
    "SELECT * FROM `users` WHERE (age < ?) EXCEPT SELECT * FROM `users` WHERE (age > ?)", { 20, 10 } },
  { "a CTE from a query", mariadb,
    function() return T("t"):with_cte("t", T("users"):select("id"):where{ active = true }) end,
    "WITH `t` AS (SELECT `id` FROM `users` WHERE (`active` = ?)) SELECT * FROM `t`", { true } },
  { "a recursive CTE from a raw fragment", mariadb,
    function() return T("tree"):with_cte("tree", ar.raw("SELECT ? AS id", 7), { recursive = true }) end,
    "WITH RECURSIVE `tree` AS (SELECT ? AS id) SELECT * FROM `tree`", { 7 } },
  { "a window with a frame", mariadb, function()
      return T("users"):select("name", { expr = ar.fn.sum("score"):over{ partition_by = "team", order_by = "id",
        frame = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" }, as = "running" })
    end,
    "SELECT `name`, SUM(`score`) OVER (PARTITION BY `team` ORDER BY `id` ASC ROWS BETWEEN UNBOUNDED PRECEDING "
      .. "AND CURRENT ROW) AS `running` FROM `users`", {} },
  { "rank over a descending order", mariadb,
    function()
      return T("users"):select("name", { expr = ar.rank():over{ order_by = ar.col("score"):desc() }, as = "place" })
    end,
    "SELECT `name`, RANK() OVER (ORDER BY `score` DESC) AS `place` FROM `users`", {} },
  { "a statement time limit on MariaDB", mariadb, function() return T("users"):timeout(2) end,
    "SET STATEMENT max_statement_time=2.000 FOR SELECT * FROM `users`", {} },
  { "a statement time limit on MySQL", mysql8, function() return T("users"):timeout(2) end,
    "SELECT /*+ MAX_EXECUTION_TIME(2000) */ * FROM `users`", {} },
}

-- functions, windows, JSON helpers, full text, grouping, boolean composition
local MORE = {
  { "exists", mariadb, function()
      return T("users"):where(ar.exists(T("posts"):where(ar.col("posts.user_id"):eq(ar.col("users.id")))))
    end,
    "SELECT * FROM `users` WHERE (EXISTS (SELECT * FROM `posts` WHERE (`posts`.`user_id` = `users`.`id`)))", {} },
  { "not exists", mariadb, function()
      return T("users"):where(ar.not_exists(T("posts"):where(ar.col("posts.user_id"):eq(ar.col("users.id")))))
    end,
    "SELECT * FROM `users` WHERE (NOT EXISTS (SELECT * FROM `posts` WHERE (`posts`.`user_id` = `users`.`id`)))",
    {} },
  { "count distinct", mariadb,
    function() return T("users"):select({ expr = ar.count_distinct("team"), as = "teams" }) end,
    "SELECT COUNT(DISTINCT `team`) AS `teams` FROM `users`", {} },
  { "a function with a bound argument (a ? in a value stays a value)", mariadb,
    function() return T("users"):select({ expr = ar.fn.coalesce("nick", ar.value("?")), as = "shown" }) end,
    "SELECT COALESCE(`nick`, ?) AS `shown` FROM `users`", { "?" } },
  { "row_number", mariadb,
    function() return T("users"):select("id", { expr = ar.row_number():over{ order_by = "id" }, as = "rn" }) end,
    "SELECT `id`, ROW_NUMBER() OVER (ORDER BY `id` ASC) AS `rn` FROM `users`", {} },
  { "ntile takes a literal integer", mariadb,
    function() return T("users"):select("id", { expr = ar.ntile(4):over{ order_by = "score" }, as = "q" }) end,
    "SELECT `id`, NTILE(4) OVER (ORDER BY `score` ASC) AS `q` FROM `users`", {} },
  { "lag with a default (bound, outside the frame only)", mariadb,
    function()
      return T("users"):select("id", { expr = ar.lag("score", 1, 0):over{ order_by = "id" }, as = "prev" })
    end,
    "SELECT `id`, CASE WHEN LAG(1, 1) OVER (ORDER BY `id` ASC) IS NULL THEN ? ELSE LAG(`score`, 1) OVER "
      .. "(ORDER BY `id` ASC) END AS `prev` FROM `users`", { 0 } },
  { "lead over a partition", mariadb, function()
      return T("users"):select("id", { expr = ar.lead("score"):over{ partition_by = "team", order_by = "id" },
        as = "next" })
    end,
    "SELECT `id`, LEAD(`score`, 1) OVER (PARTITION BY `team` ORDER BY `id` ASC) AS `next` FROM `users`", {} },
  { "first_value", mariadb,
    function() return T("users"):select("id", { expr = ar.first_value("score"):over{ order_by = "id" }, as = "f" }) end,
    "SELECT `id`, FIRST_VALUE(`score`) OVER (ORDER BY `id` ASC) AS `f` FROM `users`", {} },
  { "nth_value", mariadb,
    function()
      return T("users"):select("id", { expr = ar.nth_value("score", 2):over{ order_by = "id" }, as = "n2" })
    end,
    "SELECT `id`, NTH_VALUE(`score`, 2) OVER (ORDER BY `id` ASC) AS `n2` FROM `users`", {} },
  { "dense_rank", mariadb,
    function() return T("users"):select("id", { expr = ar.dense_rank():over{ order_by = "score" }, as = "d" }) end,
    "SELECT `id`, DENSE_RANK() OVER (ORDER BY `score` ASC) AS `d` FROM `users`", {} },
  { "json_length", mariadb, function() return T("users"):where(ar.json_length("profile", "$.tags"):gt(2)) end,
    "SELECT * FROM `users` WHERE (JSON_LENGTH(`profile`, ?) > ?)", { "$.tags", 2 } },
  { "json_contains_path", mariadb,
    function() return T("users"):where(ar.json_contains_path("profile", "one", "$.a", "$.b")) end,
    "SELECT * FROM `users` WHERE (JSON_CONTAINS_PATH(`profile`, ?, ?, ?))", { "one", "$.a", "$.b" } },
  { "json_search", mariadb,
    function() return T("users"):where(ar.json_search("profile", "one", "x%", "$.tags"):is_not_null()) end,
    "SELECT * FROM `users` WHERE (JSON_SEARCH(`profile`, ?, ?, NULL, ?) IS NOT NULL)", { "one", "x%", "$.tags" } },
  { "json_extract in a select", mariadb,
    function() return T("users"):select({ expr = ar.json_extract("profile", "$.tags[0]"), as = "t0" }) end,
    "SELECT JSON_EXTRACT(`profile`, ?) AS `t0` FROM `users`", { "$.tags[0]" } },
  { "match against", mariadb, function() return T("posts"):where(ar.match_against({ "title", "body" }, "lua orm")) end,
    "SELECT * FROM `posts` WHERE (MATCH (`title`, `body`) AGAINST (?))", { "lua orm" } },
  { "match against in boolean mode", mariadb,
    function() return T("posts"):where(ar.match_against({ "title" }, "+lua -java", "boolean")) end,
    "SELECT * FROM `posts` WHERE (MATCH (`title`) AGAINST (? IN BOOLEAN MODE))", { "+lua -java" } },
  { "with rollup", mariadb, function()
      return T("users"):group_by("team"):with_rollup():select("team", { expr = ar.fn.sum("score"), as = "s" })
    end,
    "SELECT `team`, SUM(`score`) AS `s` FROM `users` GROUP BY `team` WITH ROLLUP", {} },
  { "limit before FOR UPDATE", mariadb, function() return T("users"):where{ id = 1 }:limit(1):for_update() end,
    "SELECT * FROM `users` WHERE (`id` = ?) LIMIT ? FOR UPDATE", { 1, 1 } },
  { "SKIP LOCKED on MySQL 8", mysql8,
    function() return T("users"):where{ id = 1 }:for_update{ skip_locked = true } end,
    "SELECT * FROM `users` WHERE (`id` = ?) FOR UPDATE SKIP LOCKED", { 1 } },
  { "in_list of a query", mariadb, function() return T("users"):where(ar.col("age"):in_list(T("ages"):select("a"))) end,
    "SELECT * FROM `users` WHERE (`age` IN (SELECT `a` FROM `ages`))", {} },
  { "nested arithmetic", mariadb,
    function() return T("users"):where(ar.col("score"):mul(2):sub(ar.col("age")):div(3):lt(10)) end,
    "SELECT * FROM `users` WHERE ((((`score` * ?) - `age`) / ?) < ?)", { 2, 3, 10 } },
  { "and_", mariadb, function() return T("users"):where(ar.col("a"):eq(1):and_(ar.col("b"):eq(2))) end,
    "SELECT * FROM `users` WHERE ((`a` = ?) AND (`b` = ?))", { 1, 2 } },
  { "or_", mariadb, function() return T("users"):where(ar.col("a"):eq(1):or_(ar.col("b"):eq(2))) end,
    "SELECT * FROM `users` WHERE ((`a` = ?) OR (`b` = ?))", { 1, 2 } },
  { "not_", mariadb, function() return T("users"):where(ar.col("a"):eq(1):not_()) end,
    "SELECT * FROM `users` WHERE (NOT (`a` = ?))", { 1 } },
  { "eq with a list is IN", mariadb, function() return T("users"):where(ar.col("name"):eq({ "a", "b" })) end,
    "SELECT * FROM `users` WHERE (`name` IN (?, ?))", { "a", "b" } },
  { "ne with a list is NOT IN", mariadb, function() return T("users"):where(ar.col("name"):ne({ "a", "b" })) end,
    "SELECT * FROM `users` WHERE (`name` NOT IN (?, ?))", { "a", "b" } },
  { "a qualified key in where{}", mariadb, function() return T("users"):where{ ["users.name"] = "a" } end,
    "SELECT * FROM `users` WHERE (`users`.`name` = ?)", { "a" } },
  { "a joined column with an alias", mariadb, function()
      return T("users"):select("users.*", { expr = ar.col("teams.name"), as = "team_name" })
        :joins("teams", { ["teams.id"] = "users.team_id" })
    end,
    "SELECT `users`.*, `teams`.`name` AS `team_name` FROM `users` INNER JOIN `teams` ON `teams`.`id` = "
      .. "`users`.`team_id`", {} },
  { "a datetime string is a value", mariadb,
    function() return T("users"):where(ar.col("created_at"):ge("2024-01-01 00:00:00")) end,
    "SELECT * FROM `users` WHERE (`created_at` >= ?)", { "2024-01-01 00:00:00" } },
  { "where calls chain with AND", mariadb,
    function() return T("users"):where{ active = true }:where{ team = "red" }:order_by("name"):limit(5) end,
    "SELECT * FROM `users` WHERE (`active` = ?) AND (`team` = ?) ORDER BY `name` ASC LIMIT ?", { true, "red", 5 } },
}
for _, case in ipairs(MORE) do SELECTS[#SELECTS + 1] = case end

-- { name, dialect, build, message pattern }: refused before any SQL exists
local REFUSED = {
  { "SKIP LOCKED on MySQL 5.7", mysql57, function() return T("users"):for_update{ skip_locked = true } end,
    "SKIP LOCKED needs MySQL 8%.0%.1%+ %(server: mysql 5%.7%.44%)" },
  { "INTERSECT on MariaDB 10.2", mariadb_102,
    function() return T("users"):intersect(T("users")) end, "INTERSECT needs MariaDB 10%.3%+" },
  { "a CTE on MySQL 5.7", mysql57, function() return T("t"):with_cte("t", ar.raw("SELECT 1")) end,
    "common table expressions%) needs MySQL 8%.0%.1%+" },
  { "a window function on MySQL 5.7", mysql57,
    function() return T("users"):select({ expr = ar.rank():over{ order_by = "id" }, as = "r" }) end,
    "window functions .* needs MySQL 8%.0%.2%+" },
}

local function plain(params)
  local out = {}
  for i = 1, params.n do out[i] = params[i] end
  return out
end

describe("the SQL of queries (no server)", function()
  for _, case in ipairs(SELECTS) do
    local name, d, build, sql, params = case[1], case[2], case[3], case[4], case[5]
    it(name, function()
      local got_sql, got = compiler.select(d, build():_final())
      assert.are.equal(sql, got_sql)
      assert.are.same(params, plain(got))
      assert.are.equal(#params, got.n)
    end)
  end

  for _, case in ipairs(REFUSED) do
    it(case[1] .. " is a CapabilityError", function()
      local ok, err = pcall(compiler.select, case[2], case[3]():_final())
      assert.is_false(ok)
      assert.is_true(errors.is(err, "CapabilityError"), tostring(err))
      assert.truthy(err.message:find(case[4]), err.message)
    end)
  end
end)

describe("the SQL of update_all and delete_all (no server)", function()
  it("UPDATE sets bound values, NULL included", function()
    local sql, params = compiler.update(mariadb, T("users"):where{ id = { 1, 2 } },
      { { column = "name", value = "x" }, { column = "score", value = null } })
    assert.are.equal("UPDATE `users` SET `name` = ?, `score` = ? WHERE (`id` IN (?, ?))", sql)
    assert.are.same({ "x", null, 1, 2 }, plain(params))
  end)

  it("UPDATE takes an expression on the right", function()
    local sql, params = compiler.update(mariadb, T("users"):where{ active = false },
      { { column = "score", value = ar.col("score"):add(1) } })
    assert.are.equal("UPDATE `users` SET `score` = (`score` + ?) WHERE (`active` = ?)", sql)
    assert.are.same({ 1, false }, plain(params))
  end)

  it("UPDATE without a column to set is refused", function()
    local ok, err = pcall(compiler.update, mariadb, T("users"), {})
    assert.is_false(ok)
    assert.is_true(errors.is(err, "QueryError"))
  end)

  it("DELETE keeps its conditions and a bound LIMIT", function()
    local sql, params = compiler.delete(mariadb, T("users"):where("age < ?", 18))
    assert.are.equal("DELETE FROM `users` WHERE (age < ?)", sql)
    assert.are.same({ 18 }, plain(params))
    sql, params = compiler.delete(mariadb, T("users"):where{ id = 5 }:limit(1))
    assert.are.equal("DELETE FROM `users` WHERE (`id` = ?) LIMIT ?", sql)
    assert.are.same({ 5, 1 }, plain(params))
  end)
end)

describe("the SQL of model queries (no server)", function()
  local tenant = 1
  local Doc = ar.Model{ name = "SqlSpecDoc", table = "docs",
    fields = { id = "integer", tenant_id = "integer", title = "string", deleted_at = "datetime" },
    scopes = { titled = function(q, t) return q:where{ title = t } end },
    mixins = { { default_scopes = { tenant = function(q) return q:where{ tenant_id = tenant } end } } } }

  it("default scopes are applied as the query runs", function()
    local sql, params = compiler.select(mariadb, Doc:where{ id = 9 }:_final())
    assert.are.equal("SELECT * FROM `docs` WHERE (`id` = ?) AND (`tenant_id` = ?)", sql)
    assert.are.same({ 9, 1 }, plain(params))
    tenant = 2
    sql, params = compiler.select(mariadb, Doc:titled("a"):_final())
    assert.are.equal("SELECT * FROM `docs` WHERE (`title` = ?) AND (`tenant_id` = ?)", sql)
    assert.are.same({ "a", 2 }, plain(params))
  end)

  it("unscoped drops them", function()
    local sql = compiler.select(mariadb, Doc:unscoped():where{ id = 9 }:_final())
    assert.are.equal("SELECT * FROM `docs` WHERE (`id` = ?)", sql)
  end)
end)

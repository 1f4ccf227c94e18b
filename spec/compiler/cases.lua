-- The pinned statements of the server-free compiler specs: queries built
-- with the public builder, the dialect they compile for, and the SQL text
-- and parameters they must compile to (spec/compiler/sql_spec.lua pins them,
-- spec/compiler/shape_spec.lua checks the shape cache against them).
local ar = require("activerecord")
local Dialect = require("activerecord.backend.mysql.dialect")

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


-- More statements: sources, joins, grouping, subqueries, locks and limits.
local EXTRA = {
  { "a table in another database", mariadb, function() return T("app.users"):where{ id = 1 } end,
    "SELECT * FROM `app`.`users` WHERE (`id` = ?)", { 1 } },
  { "a table alias qualifies the star", mariadb, function() return T("users"):from("users", "u") end,
    "SELECT `u`.* FROM `users` AS `u`", {} },
  { "a derived table", mariadb,
    function() return T("x"):from(T("users"):select("id"):where("age > ?", 3), "t"):where{ ["t.id"] = 9 } end,
    "SELECT `t`.* FROM (SELECT `id` FROM `users` WHERE (age > ?)) AS `t` WHERE (`t`.`id` = ?)", { 3, 9 } },
  { "a right join", mariadb,
    function() return T("posts"):right_joins("users", { ["users.id"] = "posts.user_id" }) end,
    "SELECT `posts`.* FROM `posts` RIGHT JOIN `users` ON `users`.`id` = `posts`.`user_id`", {} },
  { "a cross join with an alias", mariadb, function() return T("a"):cross_joins("b", "bb") end,
    "SELECT `a`.* FROM `a` CROSS JOIN `b` AS `bb`", {} },
  { "a join ON as SQL text with a value", mariadb,
    function() return T("users"):joins("posts", "posts.user_id = users.id AND posts.title <> ?", "zz") end,
    "SELECT `users`.* FROM `users` INNER JOIN `posts` ON posts.user_id = users.id AND posts.title <> ?", { "zz" } },
  { "a join ON with a bound value", mariadb,
    function() return T("users"):joins("posts", { ["posts.user_id"] = "users.id", ["posts.kind"] = ar.value(2) }) end,
    "SELECT `users`.* FROM `users` INNER JOIN `posts` ON (`posts`.`kind` = ?) AND (`posts`.`user_id` = `users`.`id`)",
    { 2 } },
  { "a join on a derived table", mariadb,
    function()
      return T("users"):joins({ table = T("posts"):select("user_id"), as = "p" }, { ["p.user_id"] = "users.id" })
    end,
    "SELECT `users`.* FROM `users` INNER JOIN (SELECT `user_id` FROM `posts`) AS `p` ON `p`.`user_id` = `users`.`id`",
    {} },
  { "two joins in order", mariadb, function()
      return T("a"):joins("b", { ["b.a_id"] = "a.id" }):left_joins("c", { ["c.b_id"] = "b.id" })
    end,
    "SELECT `a`.* FROM `a` INNER JOIN `b` ON `b`.`a_id` = `a`.`id` LEFT JOIN `c` ON `c`.`b_id` = `b`.`id`", {} },
  { "group by two columns", mariadb, function() return T("users"):group_by("team", "age"):select("team", "age") end,
    "SELECT `team`, `age` FROM `users` GROUP BY `team`, `age`", {} },
  { "having as an expression", mariadb, function()
      return T("users"):group_by("team"):select("team"):having(ar.fn.count("id"):gt(3))
    end,
    "SELECT `team` FROM `users` GROUP BY `team` HAVING (COUNT(`id`) > ?)", { 3 } },
  { "two having conditions", mariadb, function()
      return T("users"):group_by("team"):select("team"):having("COUNT(*) > ?", 1):having("SUM(score) < ?", 9)
    end,
    "SELECT `team` FROM `users` GROUP BY `team` HAVING (COUNT(*) > ?) AND (SUM(score) < ?)", { 1, 9 } },
  { "a named window", mariadb, function()
      return T("users"):select("id", { expr = ar.rank():over("w"), as = "r" }):window("w", { order_by = "score" })
    end,
    "SELECT `id`, RANK() OVER `w` AS `r` FROM `users` WINDOW `w` AS (ORDER BY `score` ASC)", {} },
  { "a window on a named base", mariadb, function()
      return T("users"):select("id", { expr = ar.fn.sum("score"):over{ window = "w", frame = "ROWS 2 PRECEDING" },
        as = "s" }):window("w", { partition_by = "team" })
    end,
    "SELECT `id`, SUM(`score`) OVER (`w` ROWS 2 PRECEDING) AS `s` FROM `users` WINDOW `w` AS (PARTITION BY `team`)",
    {} },
  { "reorder drops the order", mariadb, function() return T("users"):order_by("id"):reorder("name", "desc") end,
    "SELECT * FROM `users` ORDER BY `name` DESC", {} },
  { "an upper-case direction", mariadb, function() return T("users"):order_by("age", "DESC") end,
    "SELECT * FROM `users` ORDER BY `age` DESC", {} },
  { "limit 0 is bound", mariadb, function() return T("users"):limit(0) end,
    "SELECT * FROM `users` LIMIT ?", { 0 } },
  { "select added across calls", mariadb, function() return T("users"):select("id"):select("name") end,
    "SELECT `id`, `name` FROM `users`", {} },
  { "a scalar subquery in the select list", mariadb, function()
      return T("users"):select("id", { expr = T("posts"):select(ar.fn.count("*"))
        :where(ar.col("posts.user_id"):eq(ar.col("users.id"))), as = "n" })
    end,
    "SELECT `id`, (SELECT COUNT(*) FROM `posts` WHERE (`posts`.`user_id` = `users`.`id`)) AS `n` FROM `users`", {} },
  { "a select item as col:as", mariadb, function() return T("users"):select(ar.col("name"):as("n")) end,
    "SELECT `name` AS `n` FROM `users`", {} },
  { "a star of a table", mariadb, function() return T("users"):select("users.*") end,
    "SELECT `users`.* FROM `users`", {} },
  { "in_list helper of the query", mariadb, function() return T("users"):in_list("id", { 5, 6 }) end,
    "SELECT * FROM `users` WHERE (`id` IN (?, ?))", { 5, 6 } },
  { "not_in helper", mariadb, function() return T("users"):not_in("id", { 5 }) end,
    "SELECT * FROM `users` WHERE (`id` NOT IN (?))", { 5 } },
  { "an empty IN list matches nothing", mariadb, function() return T("users"):where{ id = {} } end,
    "SELECT * FROM `users` WHERE (1 = 0)", {} },
  { "an empty NOT IN list matches everything", mariadb, function() return T("users"):not_in("id", {}) end,
    "SELECT * FROM `users` WHERE (1 = 1)", {} },
  { "NULL inside an IN list is bound", mariadb, function() return T("users"):where{ id = { 1, null } } end,
    "SELECT * FROM `users` WHERE (`id` IN (?, ?))", { 1, null } },
  { "between helper", mariadb, function() return T("users"):between("age", 18, 30) end,
    "SELECT * FROM `users` WHERE (`age` BETWEEN ? AND ?)", { 18, 30 } },
  { "between columns", mariadb, function() return T("users"):where(ar.col("x"):between(ar.col("lo"), ar.col("hi"))) end,
    "SELECT * FROM `users` WHERE (`x` BETWEEN `lo` AND `hi`)", {} },
  { "like helper", mariadb, function() return T("users"):like("name", "A%") end,
    "SELECT * FROM `users` WHERE (`name` LIKE ?)", { "A%" } },
  { "is_null helper", mariadb, function() return T("users"):is_null("deleted_at") end,
    "SELECT * FROM `users` WHERE (`deleted_at` IS NULL)", {} },
  { "is_not_null helper", mariadb, function() return T("users"):is_not_null("deleted_at") end,
    "SELECT * FROM `users` WHERE (`deleted_at` IS NOT NULL)", {} },
  { "eq ar.null is IS NULL", mariadb, function() return T("users"):where(ar.col("a"):eq(null)) end,
    "SELECT * FROM `users` WHERE (`a` IS NULL)", {} },
  { "ne ar.null is IS NOT NULL", mariadb, function() return T("users"):where(ar.col("a"):ne(null)) end,
    "SELECT * FROM `users` WHERE (`a` IS NOT NULL)", {} },
  { "where_exists helper", mariadb, function() return T("users"):where_exists(T("posts"):where("posts.x = ?", 1)) end,
    "SELECT * FROM `users` WHERE (EXISTS (SELECT * FROM `posts` WHERE (posts.x = ?)))", { 1 } },
  { "where_not_exists helper", mariadb, function() return T("users"):where_not_exists(T("posts")) end,
    "SELECT * FROM `users` WHERE (NOT EXISTS (SELECT * FROM `posts`))", {} },
  { "a raw fragment with a NULL value", mariadb, function() return T("users"):where("a <=> ?", null) end,
    "SELECT * FROM `users` WHERE (a <=> ?)", { null } },
  { "a ? inside quotes is not a placeholder", mariadb,
    function() return T("users"):where("name <> '?' AND id = ?", 4) end,
    "SELECT * FROM `users` WHERE (name <> '?' AND id = ?)", { 4 } },
  { "or_where twice", mariadb, function() return T("users"):where{ a = 1 }:or_where{ b = 2 }:or_where{ c = 3 } end,
    "SELECT * FROM `users` WHERE (((((`a` = ?)) OR (`b` = ?))) OR (`c` = ?))", { 1, 2, 3 } },
  { "booleans and floats bound as they are", mariadb,
    function() return T("users"):where{ active = false, score = 1.5 } end,
    "SELECT * FROM `users` WHERE ((`active` = ?) AND (`score` = ?))", { false, 1.5 } },
  { "a function of a value and a column", mariadb,
    function() return T("users"):select({ expr = ar.func("concat", "first", ar.value(" "), "last"), as = "full" }) end,
    "SELECT CONCAT(`first`, ?, `last`) AS `full` FROM `users`", { " " } },
  { "percent_rank and cume_dist", mariadb, function()
      return T("users"):select({ expr = ar.percent_rank():over{ order_by = "s" }, as = "p" },
        { expr = ar.cume_dist():over{ order_by = "s" }, as = "c" })
    end,
    "SELECT PERCENT_RANK() OVER (ORDER BY `s` ASC) AS `p`, CUME_DIST() OVER (ORDER BY `s` ASC) AS `c` FROM `users`",
    {} },
  { "last_value over a frame", mariadb, function()
      return T("users"):select({ expr = ar.last_value("s"):over{ order_by = "id",
        frame = "rows between current row and unbounded following" }, as = "l" })
    end,
    "SELECT LAST_VALUE(`s`) OVER (ORDER BY `id` ASC ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS `l` "
      .. "FROM `users`", {} },
  { "grouping() with rollup", mysql8, function()
      return T("users"):group_by("team"):with_rollup():select("team", { expr = ar.grouping("team"), as = "g" })
    end,
    "SELECT `team`, GROUPING(`team`) AS `g` FROM `users` GROUP BY `team` WITH ROLLUP", {} },
  { "json_unquote of a column", mariadb,
    function() return T("users"):select({ expr = ar.json_unquote("j"), as = "u" }) end,
    "SELECT JSON_UNQUOTE(`j`) AS `u` FROM `users`", {} },
  { "json_length without a path", mariadb, function() return T("users"):where(ar.json_length("j"):eq(0)) end,
    "SELECT * FROM `users` WHERE (JSON_LENGTH(`j`) = ?)", { 0 } },
  { "json_contains without a path", mariadb, function() return T("users"):where(ar.json_contains("j", "x")) end,
    "SELECT * FROM `users` WHERE (JSON_CONTAINS(`j`, ?))", { '"x"' } },
  { "json_search without a path", mariadb,
    function() return T("users"):where(ar.json_search("j", "all", "a%"):is_null()) end,
    "SELECT * FROM `users` WHERE (JSON_SEARCH(`j`, ?, ?) IS NULL)", { "all", "a%" } },
  { "json_table as a join source", mariadb, function()
      return T("users"):cross_joins(ar.json_table("users.profile", "$.tags[*]",
        { { name = "tag", type = "string", path = "$" }, { name = "pos", type = "ordinality" } }), "jt")
    end,
    "SELECT `users`.* FROM `users` CROSS JOIN JSON_TABLE(`users`.`profile`, '$.tags[*]' COLUMNS (`tag` "
      .. "VARCHAR(255) PATH '$', `pos` FOR ORDINALITY)) AS `jt`", {} },
  { "match with query expansion", mariadb,
    function() return T("posts"):where(ar.match_against("title", "lua", "query_expansion")) end,
    "SELECT * FROM `posts` WHERE (MATCH (`title`) AGAINST (? WITH QUERY EXPANSION))", { "lua" } },
  { "FOR UPDATE NOWAIT on MariaDB", mariadb,
    function() return T("users"):where{ id = 1 }:for_update{ nowait = true } end,
    "SELECT * FROM `users` WHERE (`id` = ?) FOR UPDATE NOWAIT", { 1 } },
  { "a fractional time limit rounds up", mariadb, function() return T("users"):timeout(0.0004) end,
    "SET STATEMENT max_statement_time=0.001 FOR SELECT * FROM `users`", {} },
  { "a union ordered and limited as a whole", mariadb,
    function() return T("a"):union(T("b")):order_by("id"):limit(3) end,
    "SELECT * FROM `a` UNION SELECT * FROM `b` ORDER BY `id` ASC LIMIT ?", { 3 } },
  { "three-way union", mariadb, function() return T("a"):union(T("b")):union_all(T("c")) end,
    "SELECT * FROM `a` UNION SELECT * FROM `b` UNION ALL SELECT * FROM `c`", {} },
  { "a union member with its own limit", mariadb, function() return T("a"):limit(1):union(T("b")) end,
    "(SELECT * FROM `a` LIMIT ?) UNION SELECT * FROM `b`", { 1 } },
  { "a union filtered from outside", mariadb, function() return T("a"):union(T("b")):where{ x = 1 } end,
    "SELECT * FROM (SELECT * FROM `a` UNION SELECT * FROM `b`) AS `ar_compound` WHERE (`x` = ?)", { 1 } },
  { "a CTE with columns", mariadb,
    function() return T("c"):with_cte("c", ar.raw("SELECT 1, 2"), { columns = { "a", "b" } }) end,
    "WITH `c` (`a`, `b`) AS (SELECT 1, 2) SELECT * FROM `c`", {} },
  { "two CTEs", mariadb, function()
      return T("y"):with_cte("x", T("users"):where{ a = 1 }):with_cte("y", T("x"):where{ b = 2 })
    end,
    "WITH `x` AS (SELECT * FROM `users` WHERE (`a` = ?)), `y` AS (SELECT * FROM `x` WHERE (`b` = ?)) SELECT * FROM `y`",
    { 1, 2 } },
}
for _, case in ipairs(EXTRA) do SELECTS[#SELECTS + 1] = case end

-- The query finders' steps (issue 15): none() is WHERE 1=0 (its terminals
-- send nothing; inside another query it matches nothing), readonly() keeps
-- the text, merge() takes the other query's parts.
local FINDERS = {
  { "none() as a condition", mariadb, function() return T("users"):where{ a = 1 }:none() end,
    "SELECT * FROM `users` WHERE (`a` = ?) AND (1=0)", { 1 } },
  { "steps after none()", mariadb, function() return T("users"):none():where{ b = 2 }:order_by("id"):limit(3) end,
    "SELECT * FROM `users` WHERE (1=0) AND (`b` = ?) ORDER BY `id` ASC LIMIT ?", { 2, 3 } },
  { "none() inside a subquery", mariadb,
    function() return T("posts"):where{ user_id = T("users"):none():select("id") } end,
    "SELECT * FROM `posts` WHERE (`user_id` IN (SELECT `id` FROM `users` WHERE (1=0)))", {} },
  { "readonly() keeps the text", mariadb, function() return T("users"):readonly():where{ a = 1 }:limit(2) end,
    "SELECT * FROM `users` WHERE (`a` = ?) LIMIT ?", { 1, 2 } },
  { "merge: conditions, order, limit and offset", mariadb, function()
      return T("users"):where{ a = 1 }:order_by("id"):merge(T("users"):where{ b = 2 }:order_by("name", "desc")
        :limit(5):offset(10))
    end,
    "SELECT * FROM `users` WHERE (`a` = ?) AND (`b` = ?) ORDER BY `id` ASC, `name` DESC LIMIT ? OFFSET ?",
    { 1, 2, 5, 10 } },
  { "merge: a join taken once", mariadb, function()
      return T("users"):joins("posts", { ["posts.user_id"] = "users.id" })
        :merge(T("users"):joins("posts", { ["posts.user_id"] = "users.id" }):where{ ["posts.id"] = 7 })
    end,
    "SELECT `users`.* FROM `users` INNER JOIN `posts` ON `posts`.`user_id` = `users`.`id` WHERE (`posts`.`id` = ?)",
    { 7 } },
  { "merge keeps the other's limit over this one's", mariadb,
    function() return T("users"):limit(9):merge(T("users"):limit(2)) end,
    "SELECT * FROM `users` LIMIT ?", { 2 } },
}
for _, case in ipairs(FINDERS) do SELECTS[#SELECTS + 1] = case end

-- Every MariaDB statement above, pinned again for MySQL 8.0 and 5.7: the
-- same text but where listed here (a different text, or refused).
local ELSEWHERE = {
  { mysql8, "MySQL 8.0", {
    ["a shared lock on MariaDB"] = "SELECT * FROM `users` WHERE (`id` = ?) FOR SHARE",
    ["a statement time limit on MariaDB"] = "SELECT /*+ MAX_EXECUTION_TIME(2000) */ * FROM `users`",
    ["a fractional time limit rounds up"] = "SELECT /*+ MAX_EXECUTION_TIME(1) */ * FROM `users`",
    ["lag with a default (bound, outside the frame only)"] =
      "SELECT `id`, LAG(`score`, 1, ?) OVER (ORDER BY `id` ASC) AS `prev` FROM `users`",
  } },
  { mysql57, "MySQL 5.7", {
    ["a statement time limit on MariaDB"] = "SELECT /*+ MAX_EXECUTION_TIME(2000) */ * FROM `users`",
    ["a fractional time limit rounds up"] = "SELECT /*+ MAX_EXECUTION_TIME(1) */ * FROM `users`",
    ["FOR UPDATE SKIP LOCKED"] = false, ["FOR UPDATE NOWAIT on MariaDB"] = false, ["intersect"] = false,
    ["except"] = false, ["a CTE from a query"] = false, ["a recursive CTE from a raw fragment"] = false,
    ["a CTE with columns"] = false, ["two CTEs"] = false, ["a named window"] = false,
    ["a window on a named base"] = false, ["percent_rank and cume_dist"] = false,
    ["last_value over a frame"] = false, ["json_table as a join source"] = false, ["a window with a frame"] = false,
    ["rank over a descending order"] = false, ["row_number"] = false, ["ntile takes a literal integer"] = false,
    ["lag with a default (bound, outside the frame only)"] = false, ["lead over a partition"] = false,
    ["first_value"] = false, ["nth_value"] = false, ["dense_rank"] = false,
  } },
}
local base = {}
for _, case in ipairs(SELECTS) do
  if case[2] == mariadb then base[#base + 1] = case end
end
for _, other in ipairs(ELSEWHERE) do
  local d, label, differ = other[1], other[2], other[3]
  for _, case in ipairs(base) do
    local sql = differ[case[1]]
    if sql == nil then sql = case[4] end
    if sql then SELECTS[#SELECTS + 1] = { case[1] .. " (" .. label .. ")", d, case[3], sql, case[5] } end
  end
end

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

return {
  selects = SELECTS, refused = REFUSED,
  dialects = { mariadb = mariadb, mariadb_102 = mariadb_102, mysql8 = mysql8, mysql57 = mysql57 },
}

-- Advanced SQL through the builder: CTEs (a recursive tree walk), window
-- functions checked against values computed in Lua, named windows and
-- frames, set operations, JSON helpers, and capability gating that raises
-- CapabilityError before any SQL is sent.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")
local support = require("activerecord.testsuite.feature.query.support")

local provider = testsuite.provider()
local GROUP = "feature/query/advanced"

-- id, parent, name: a small tree (1 is the root).
local NODES = {
  { 1, nil, "root" }, { 2, 1, "a" }, { 3, 1, "b" }, { 4, 2, "a1" }, { 5, 2, "a2" },
  { 6, 4, "a1x" }, { 7, 3, "b1" }, { 8, nil, "other" },
}

-- exact decimal strings -> integer cents and back
local function cents(s)
  local whole, frac = s:match("^(%-?%d+)%.(%d%d)$")
  return math.tointeger(whole) * 100 + math.tointeger(frac)
end
local function money(c) return ("%d.%02d"):format(c // 100, c % 100) end

describe("advanced queries", function()
  local scenario = testsuite.default_scenario()
  local db, User, Post

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "posts", "nodes" })
    User, Post = support.models(db)
    support.seed(db, User, Post)
    for _, n in ipairs(NODES) do
      db:execute("INSERT INTO nodes (id, parent_id, name, position) VALUES (?, ?, ?, ?)", n[1],
        n[2] or ar.null, n[3], n[1])
    end
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  -- users as Lua tables, for computing expectations
  local function lua_users()
    local out = {}
    for _, u in ipairs(support.USERS) do out[#out + 1] = u end
    return out
  end

  describe("common table expressions", function()
    it("a CTE is a source for a table query and joins a model query", function()
      if not testsuite.requires_capabilities(db, "cte") then return end
      local rich = User:select("id", "name", "balance"):where("balance > ?", 50)
      local rows = ar.table("rich", db):with_cte("rich", rich):select("name"):order_by("name"):all()
      assert.are.same({ { name = "Cid" }, { name = "Eve" } }, rows)
      local users = User:with_cte("rich", rich):joins("rich", { ["rich.id"] = "users.id" }):order_by("users.name"):all()
      assert.are.same({ "Cid", "Eve" }, support.names(users))
      assert.are.equal("1234.56", users[1].balance)
      -- a model query can read a CTE as its table
      assert.are.same({ "Cid", "Eve" }, support.names(User:with_cte("r", rich):from("r"):order_by("name"):all()))
    end)

    it("takes raw SQL with its own values, and a column list", function()
      if not testsuite.requires_capabilities(db, "cte") then return end
      local rows = ar.table("nums", db):with_cte("nums", ar.raw("SELECT ? AS a UNION ALL SELECT ?", 1, 2),
        { columns = { "n" } }):order_by("n"):all()
      assert.are.same({ { n = 1 }, { n = 2 } }, rows)
      local sql, params = ar.table("nums", db):with_cte("nums", ar.raw("SELECT ? AS a", 7)):where("a > ?", 1):to_sql()
      assert.matches("^WITH `nums` AS %(SELECT %? AS a%) SELECT", sql)
      assert.are.same({ n = 2, 7, 1 }, params)
    end)

    it("walks a self-referencing tree recursively", function()
      if not testsuite.requires_capabilities(db, "recursive_cte") then return end
      local function walk(start)
        local anchor = ar.table("nodes", db):select("id", "parent_id", "name", ar.raw("0")):where{ name = start }
        local step = ar.table("nodes", db):from("nodes", "n"):joins("tree", { ["n.parent_id"] = "tree.id" })
          :select("n.id", "n.parent_id", "n.name", ar.col("tree.depth"):add(1))
        return ar.table("tree", db)
          :with_cte("tree", anchor:union_all(step),
            { recursive = true, columns = { "id", "parent_id", "name", "depth" } })
          :order_by("depth"):order_by("name"):all()
      end
      -- the same walk in Lua
      local function expected(start)
        local out, frontier = {}, {}
        for _, n in ipairs(NODES) do if n[3] == start then frontier = { { n, 0 } } end end
        while #frontier > 0 do
          local nxt = {}
          table.sort(frontier, function(x, y) return x[1][3] < y[1][3] end)
          for _, f in ipairs(frontier) do
            out[#out + 1] = { name = f[1][3], depth = f[2] }
            for _, n in ipairs(NODES) do
              if n[2] == f[1][1] then nxt[#nxt + 1] = { n, f[2] + 1 } end
            end
          end
          frontier = nxt
        end
        return out
      end
      for _, start in ipairs({ "root", "a", "b1" }) do
        local got = {}
        for i, r in ipairs(walk(start)) do got[i] = { name = r.name, depth = r.depth } end
        assert.are.same(expected(start), got)
      end
      assert.are.equal(7, #walk("root"))
    end)

    it("validates names and options", function()
      local q = ar.table("x", db)
      for _, args in ipairs({ { "bad name", "SELECT 1" }, { "c", 42 },
                              { "c", "SELECT 1", { columns = { "a;b" } } } }) do
        local err = testsuite.error_of(q.with_cte, q, table.unpack(args))
        assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      end
      -- an unknown option is a ConfigError, as everywhere
      local err = testsuite.error_of(q.with_cte, q, "c", "SELECT 1", { recurse = true })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("accepted: columns, recursive", err.message, 1, true)
    end)
  end)

  describe("window functions", function()
    local function by_name(rows)
      local out = {}
      for _, r in ipairs(rows) do out[r.name] = r end
      return out
    end

    it("row_number, rank, dense_rank match values computed in Lua", function()
      if not testsuite.requires_capabilities(db, "window_functions") then return end
      local rows = by_name(User:select("name",
        ar.row_number():over{ order_by = "score" }:as("rn"),
        ar.rank():over{ order_by = { "age", "desc" } }:as("rk"),
        ar.dense_rank():over{ order_by = { { "age", "desc" } } }:as("drk"),
        ar.row_number():over{ partition_by = "active", order_by = { ar.col("score"):desc() } }:as("prn")
      ):aggregate())
      local us = lua_users()
      for _, u in ipairs(us) do
        local rn, greater, distinct_greater, prn = 1, 0, {}, 1
        for _, o in ipairs(us) do
          if o.score < u.score then rn = rn + 1 end
          -- NULL sorts lowest: last in DESC order
          local og, ug = o.age or -math.huge, u.age or -math.huge
          if og > ug then greater, distinct_greater[og] = greater + 1, true end
          if o.active == u.active and o.score > u.score then prn = prn + 1 end
        end
        local n_distinct = 0
        for _ in pairs(distinct_greater) do n_distinct = n_distinct + 1 end
        local r = rows[u.name]
        assert.are.equal(rn, r.rn, u.name .. " row_number")
        assert.are.equal(greater + 1, r.rk, u.name .. " rank")
        assert.are.equal(n_distinct + 1, r.drk, u.name .. " dense_rank")
        assert.are.equal(prn, r.prn, u.name .. " partitioned row_number")
      end
    end)

    it("lag, lead, first_value, last_value, nth_value over ordered windows", function()
      if not testsuite.requires_capabilities(db, "window_functions") then return end
      local whole = { order_by = "score", frame = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING" }
      local rows = User:select("name",
        ar.lag("name", 1, "-"):over{ order_by = "score" }:as("prev"),
        ar.lead("name"):over{ order_by = "score" }:as("next"),
        ar.lag("name", 2):over{ order_by = "score" }:as("prev2"),
        ar.first_value("name"):over(whole):as("first"),
        ar.last_value("name"):over(whole):as("last"),
        ar.nth_value("name", 2):over(whole):as("second")
      ):order_by("score"):aggregate()
      local us = lua_users()
      table.sort(us, function(a, b) return a.score < b.score end)
      for i, u in ipairs(us) do
        local r = rows[i]
        assert.are.equal(u.name, r.name)
        assert.are.equal(i > 1 and us[i - 1].name or "-", r.prev)
        assert.are.equal(us[i + 1] and us[i + 1].name, r.next)
        assert.are.equal(i > 2 and us[i - 2].name or nil, r.prev2)
        assert.are.equal(us[1].name, r.first)
        assert.are.equal(us[#us].name, r.last)
        assert.are.equal(us[2].name, r.second)
      end
    end)

    it("running sums with frames stay exact, per partition too", function()
      if not testsuite.requires_capabilities(db, "window_functions") then return end
      local rows = User:select("name",
        ar.fn.sum("balance"):over{ order_by = "score", frame = "rows between unbounded preceding and current row" }
          :as("running"),
        ar.fn.sum("balance"):over{ partition_by = "active", order_by = "score",
          frame = "ROWS UNBOUNDED PRECEDING" }:as("running_active"),
        ar.fn.count("*"):over{ order_by = "score", frame = "ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING" }:as("near")
      ):order_by("score"):aggregate()
      local us = lua_users()
      table.sort(us, function(a, b) return a.score < b.score end)
      local total, per = 0, {}
      for i, u in ipairs(us) do
        total = total + cents(u.balance)
        per[u.active] = (per[u.active] or 0) + cents(u.balance)
        assert.are.equal(money(total), rows[i].running, u.name)
        assert.are.equal(money(per[u.active]), rows[i].running_active, u.name)
        assert.are.equal((i > 1 and 1 or 0) + 1 + (i < #us and 1 or 0), rows[i].near, u.name)
      end
    end)

    it("named windows", function()
      if not testsuite.requires_capabilities(db, "window_functions") then return end
      local rows = User:select("name", ar.row_number():over("w"):as("rn"), ar.lag("name"):over("w"):as("prev"))
        :window("w", { order_by = { "name", "desc" } }):order_by("name", "desc"):aggregate()
      assert.are.same({ "Eve", "Dee", "Cid", "Bob", "Ann" }, support.names(rows))
      for i, r in ipairs(rows) do
        assert.are.equal(i, r.rn)
        assert.are.equal(i > 1 and rows[i - 1].name or nil, r.prev)
      end
    end)

    it("frames follow a small grammar; anything else is a QueryError", function()
      for _, ok in ipairs({ "ROWS UNBOUNDED PRECEDING", "range between current row and unbounded following",
                            "ROWS BETWEEN 3 PRECEDING AND 2 FOLLOWING", "rows   current  row" }) do
        assert.is_string(ar.frame(ok))
      end
      assert.are.equal("ROWS CURRENT ROW", ar.frame("rows   current  row"))
      for _, bad in ipairs({ "ROWS BETWEEN 1 PRECEDING; DROP TABLE users", "GROUPS UNBOUNDED PRECEDING",
                             "ROWS BETWEEN CURRENT ROW AND", "ROWS -1 PRECEDING", "ROWS 1 PRECEDING --",
                             "RANGE INTERVAL 1 DAY PRECEDING", "", "ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING x" }) do
        local err = testsuite.error_of(function() return ar.row_number():over{ order_by = "id", frame = bad } end)
        assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      end
      local err = testsuite.error_of(function() return ar.rank():over{ order_by = "id", partiton_by = "x" } end)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err)) -- an unknown option, as everywhere
      err = testsuite.error_of(function() return ar.lag("name", -1) end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)
  end)

  describe("set operations", function()
    local teen = User:where{ age = 17 }
    local active = User:where{ active = true }

    it("union removes duplicates, union_all keeps them; order/limit apply to the whole", function()
      local both = teen:union(User:where{ name = "Bob" })
      assert.are.same({ "Bob", "Eve" }, support.names(both:order_by("name"):all()))
      assert.are.equal(3, #teen:union_all(User:where{ name = "Bob" }):all())
      assert.are.same({ "Eve" }, support.names(both:order_by("name", "desc"):limit(1):all()))
      assert.are.equal(2, both:count())
      local three = teen:union(active):union(User:where{ name = "Dee" })
      assert.are.same({ "Ann", "Bob", "Cid", "Dee", "Eve" }, support.names(three
        :order_by("name"):all()))
      -- a condition on a compound reads it as a derived table
      assert.are.same({ "Eve" }, support.names(both:where{ name = "Eve" }:all()))
    end)

    it("carries the members' values in order", function()
      local sql, params = User:where("age = ?", 1):union_all(User:where("age = ?", 2)):limit(3):to_sql()
      assert.matches("UNION ALL", sql, 1, true)
      assert.are.same({ n = 3, 1, 2, 3 }, params)
    end)

    it("intersect", function()
      if not testsuite.requires_capabilities(db, "intersect") then return end
      local q = active:intersect(User:where("age > ?", 18))
      assert.are.same({ "Ann", "Cid" }, support.names(q:order_by("name"):all()))
    end)

    it("except", function()
      if not testsuite.requires_capabilities(db, "except") then return end
      assert.are.same({ "Dee" }, support.names(active:except(User:where("age > ?", 18)):order_by("name"):all()))
    end)
  end)

  describe("JSON", function()
    local function names(q)
      local out = q:order_by("name"):pluck("name")
      return out
    end

    it("the guide's queries: a value at a path, and tags containing \"python\"", function()
      if not testsuite.requires_capabilities(db, "json") then return end
      assert.are.same({ "Ann" }, names(User:where(ar.json_value("profile", "$.user.name"):eq("Ann"))))
      assert.are.same({ "Ann", "Cid" }, names(User:where(ar.json_contains("profile", "python", "$.tags"))))
      assert.are.same({ "Ann", "Cid" }, names(User:where(ar.json_value("profile", "$.theme"):eq("dark"))))
      local sql, params = User:where(ar.json_value("profile", "$.user.name"):eq("Ann")):to_sql()
      assert.is_nil(sql:find("$.user", 1, true))
      assert.are.same({ n = 2, "$.user.name", "Ann" }, params)
    end)

    it("extract, unquote, length, contains_path and search", function()
      if not testsuite.requires_capabilities(db, "json") then return end
      local row = User:select(ar.json_extract("profile", "$.tags"):as("tags"),
        ar.json_unquote(ar.json_extract("profile", "$.theme")):as("theme"),
        ar.json_length("profile", "$.tags"):as("n"), ar.json_length("profile"):as("keys"))
        :where{ name = "Ann" }:aggregate()[1]
      local tags = row.tags
      if type(tags) == "string" then tags = require("cjson").decode(tags) end
      assert.are.same({ "python", "lua" }, tags)
      assert.are.equal("dark", row.theme)
      assert.are.equal(2, row.n)
      assert.are.equal(3, row.keys)
      local either = ar.json_contains_path("profile", "one", "$.user", "$.nope")
      assert.are.same({ "Ann", "Bob", "Cid" }, names(User:where(either)))
      assert.are.same({}, names(User:where(ar.json_contains_path("profile", "all", "$.user", "$.nope"))))
      assert.are.same({ "Bob" }, names(User:where(ar.json_search("profile", "one", "go"):is_not_null())))
      assert.are.same({ "Ann" }, names(User:where(ar.json_search("profile", "all", "lua", "$.tags"):is_not_null())))
      assert.are.same({ "Eve" }, names(User:where(ar.json_length("profile", "$.tags"):eq(0))))
      assert.are.same({ "Ann", "Bob", "Cid", "Eve" },
        names(User:where(ar.json_contains("profile", { theme = "dark" })):union(User:where{ active = false })))
    end)

    it("JSON_TABLE where supported", function()
      if not testsuite.requires_capabilities(db, "json_table") then return end
      local jt = ar.json_table("users.profile", "$.tags[*]", {
        { name = "pos", type = "ordinality" }, { name = "tag", type = "string", size = 50, path = "$" } })
      local rows = User:cross_joins(jt, "jt"):select("users.name", "jt.tag", "jt.pos")
        :order_by("users.name"):order_by("jt.pos"):aggregate()
      assert.are.same({ { name = "Ann", tag = "python", pos = 1 }, { name = "Ann", tag = "lua", pos = 2 },
        { name = "Bob", tag = "go", pos = 1 }, { name = "Cid", tag = "python", pos = 1 } }, rows)
      local err = testsuite.error_of(ar.json_table, "profile", "$", { { name = "x", type = "text; DROP", path = "$" } })
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)

    it("hostile values round-trip as bound parameters", function()
      if not testsuite.requires_capabilities(db, "json") then return end
      local v = "'; DROP TABLE users; -- \" \\ ✓"
      local u = User:create{ name = "json hostile", email = "jh@example.com",
        profile = { user = { name = v }, tags = { v } } }
      assert.are.same({ u.id }, User:where(ar.json_value("profile", "$.user.name"):eq(v)):pluck("id"))
      assert.are.same({ u.id }, User:where(ar.json_contains("profile", v, "$.tags")):pluck("id"))
      u:delete()
    end)

    it("invalid paths raise QueryError before any SQL", function()
      for _, bad in ipairs({ "$.a'; DROP TABLE users; --", "user.name", "$[", "$.a b", '$."open', "$**", 42,
                             "$.a) OR 1=1 --" }) do
        support.raises_before_sql(db, "QueryError", function()
          return User:where(ar.json_value("profile", bad):eq("x")):all()
        end)
        support.raises_before_sql(db, "QueryError", function()
          return User:where(ar.json_contains("profile", "x", bad)):all()
        end)
        support.raises_before_sql(db, "QueryError", function()
          return User:select(ar.json_length("profile", bad)):all()
        end)
      end
    end)
  end)

  describe("capability gating", function()
    local gated

    setup(function()
      -- a second backend whose dialect is told the server lacks these features
      gated = provider.new_backend(scenario, { pool = { size = 1 } })
      for _, name in ipairs({ "cte", "recursive_cte", "window_functions", "intersect", "except", "json_table",
                              "nowait", "skip_locked", "json" }) do
        gated.dialect.capabilities[name] = false
      end
    end)

    teardown(function()
      if gated then gated:close() end
    end)

    it("raises CapabilityError naming the feature and the server, with no SQL sent", function()
      local GUser = support.models(gated)
      ar.check_models{ models = { GUser } } -- its table read before statements are counted
      local server = gated:server()
      local cases = {
        function() return ar.table("c", gated):with_cte("c", GUser:select("id")):all() end,
        function() return ar.table("c", gated):with_cte("c", GUser:select("id"), { recursive = true }):all() end,
        function() return GUser:select(ar.row_number():over{ order_by = "id" }):all() end,
        function() return GUser:select(ar.row_number():over("w")):window("w", { order_by = "id" }):aggregate() end,
        function() return GUser:query():intersect(GUser:query()):all() end,
        function() return GUser:query():except(GUser:query()):count() end,
        function() return GUser:where(ar.json_value("profile", "$.a"):eq(1)):all() end,
        function()
          local jt = ar.json_table("profile", "$[*]", { { name = "x", type = "json", path = "$" } })
          return GUser:cross_joins(jt, "jt"):all()
        end,
        function() return GUser:for_update{ nowait = true }:all() end,
        function() return GUser:for_update{ skip_locked = true }:first() end,
        function() return GUser:where{ id = GUser:select("id"):intersect(GUser:select("id")) }:exists() end,
      }
      for i, fn in ipairs(cases) do
        local err = support.raises_before_sql(gated, "CapabilityError", fn)
        local text = tostring(err):lower()
        assert.matches(server.flavor, text, 1, true, "case " .. i)
        assert.matches(table.concat(server.version, "."), text, 1, true, "case " .. i)
      end
      -- the same queries run where the capability is present
      assert.are.equal(5, #ar.table("c", db):with_cte("c", User:select("id")):all())
    end)
  end)
end)

-- Conditions: every where form, subqueries in where and from, scopes,
-- immutability, to_sql, hostile values that round-trip and identifiers
-- that are refused before any SQL is sent.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")
local support = require("activerecord.testsuite.feature.query.support")

local provider = testsuite.provider()
local GROUP = "feature/query/conditions"

local function sorted(t)
  table.sort(t)
  return t
end

describe("query conditions", function()
  local scenario = testsuite.default_scenario()
  local db, User, Post, users

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "posts" })
    User, Post = support.models(db, {
      scopes = {
        adults = function(q) return q:where("age >= ?", 18) end,
        named = function(q, name) return q:where{ name = name } end,
      },
    })
    users = support.seed(db, User, Post)
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  local function names(q) return sorted(support.names(q:all())) end

  describe("where forms", function()
    it("takes a table: equality, IN lists and ar.null", function()
      assert.are.same({ "Ann" }, names(User:where{ name = "Ann" }))
      assert.are.same({ "Ann", "Cid" }, names(User:where{ name = { "Ann", "Cid", "Nobody" } }))
      assert.are.same({ "Dee" }, names(User:where{ age = ar.null }))
      assert.are.same({ "Bob", "Eve" }, names(User:where{ age = 17, active = false }))
      assert.are.same({}, names(User:where{ name = {} }))
    end)

    it("takes SQL text with ? and its values", function()
      assert.are.same({ "Ann", "Cid" }, names(User:where("age > ? AND name LIKE ?", 18, "%")))
      assert.are.same({ "Eve" }, names(User:where("name = ?", "Eve")))
    end)

    it("takes expressions", function()
      assert.are.same({ "Ann", "Cid" }, names(User:where(ar.col("age"):gt(18))))
      assert.are.same({ "Ann", "Bob", "Eve" }, names(User:where(ar.col("age"):le(31))))
      assert.are.same({ "Bob", "Cid", "Dee", "Eve" }, names(User:where(ar.col("name"):ne("Ann"))))
      assert.are.same({ "Ann", "Dee" },
        names(User:where(ar.col("age"):eq(31):or_(ar.col("age"):is_null()))))
      assert.are.same({ "Cid" }, names(User:where(ar.col("age"):ge(18):and_(ar.col("score"):lt(1)))))
      assert.are.same({ "Ann", "Cid" }, names(User:where(ar.col("age"):add(1):gt(19))))
    end)

    it("has or_where, not_where and the helpers", function()
      assert.are.same({ "Ann", "Bob" }, names(User:where{ name = "Ann" }:or_where{ name = "Bob" }))
      assert.are.same({ "Bob", "Cid", "Dee", "Eve" }, names(User:not_where{ name = "Ann" }))
      assert.are.same({ "Bob", "Eve" }, names(User:in_list("name", { "Bob", "Eve" })))
      assert.are.same({ "Ann", "Cid", "Dee" }, names(User:not_in("name", { "Bob", "Eve" })))
      assert.are.same({ "Ann", "Bob", "Eve" }, names(User:between("age", 17, 31)))
      assert.are.same({ "Cid" }, names(User:like("name", "C%")))
      assert.are.same({ "Dee" }, names(User:is_null("age")))
      assert.are.same({ "Ann", "Bob", "Cid", "Eve" }, names(User:is_not_null("age")))
      assert.are.same({ "Ann", "Bob", "Dee", "Eve" }, names(User:where(ar.col("name"):not_like("C%"))))
    end)

    it("orders, limits and offsets; the direction is validated", function()
      local q = User:order_by("age", "desc"):order_by("name")
      assert.are.same({ "Cid", "Ann", "Bob", "Eve", "Dee" }, support.names(q:all()))
      assert.are.same({ "Ann", "Bob" }, support.names(q:limit(2):offset(1):all()))
      assert.are.same({ "Eve" }, support.names(User:order_by(ar.col("name"):desc()):limit(1):all()))
      for _, bad in ipairs({ "DESC; DROP TABLE users", "sideways", "desc --" }) do
        local base = User:query()
        local err = testsuite.error_of(base.order_by, base, "name", bad)
        assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      end
    end)
  end)

  describe("subqueries", function()
    it("in where{ col = subquery } and col:in_list(subquery)", function()
      local authors = Post:select("user_id")
      assert.are.same({ "Ann", "Bob", "Eve" }, names(User:where{ id = authors }))
      assert.are.same({ "Ann", "Bob", "Eve" }, names(User:where(ar.col("id"):in_list(authors))))
      assert.are.same({ "Cid", "Dee" }, names(User:where(ar.col("id"):not_in(authors))))
    end)

    it("carries the subquery's values in order with the outer ones", function()
      local authors = Post:select("user_id"):where("title LIKE ?", "a%")
      local q = User:where("age > ?", 1):where{ id = authors }:where{ active = true }
      local sql, params = q:to_sql()
      assert.are.same({ n = 3, 1, "a%", 1 }, params) -- the boolean as the field stores it
      assert.matches("IN (SELECT", sql, 1, true)
      assert.are.same({ "Ann" }, names(q))
    end)

    it("in EXISTS / NOT EXISTS, correlated by column", function()
      local has_posts = Post:where{ ["posts.user_id"] = ar.col("users.id") }
      assert.are.same({ "Ann", "Bob", "Eve" }, names(User:where(ar.exists(has_posts))))
      assert.are.same({ "Cid", "Dee" }, names(User:where_not_exists(has_posts)))
      assert.are.same({ "Ann" }, names(User:where_exists(has_posts:where("title = ?", "a2"))))
    end)

    it("as a scalar operand", function()
      local max_age = User:select(ar.fn.max("age"))
      assert.are.same({ "Cid" }, names(User:where(ar.col("age"):eq(max_age))))
      local n_posts = Post:select(ar.fn.count("*")):where{ ["posts.user_id"] = ar.col("users.id") }
      local rows = User:select("name", { expr = n_posts, as = "n" }):order_by("name"):aggregate()
      local counts = {}
      for _, r in ipairs(rows) do counts[r.name] = r.n end
      assert.are.same({ Ann = 3, Bob = 1, Cid = 0, Dee = 0, Eve = 2 }, counts)
    end)

    it("in from(subquery, alias)", function()
      local adults = User:where("age >= ?", 18)
      local q = User:from(adults, "adults"):where{ ["adults.active"] = true }
      local sql = q:to_sql()
      assert.matches("FROM (SELECT", sql, 1, true)
      assert.are.same({ "Ann", "Cid" }, names(q))
      local rows = ar.table("users", db):from(adults:select("name", "age"), "a")
        :order_by("a.age", "desc"):all()
      assert.are.same({ "Cid", "Ann" }, support.names(rows))
      assert.are.same(45, rows[1].age)
      local q2 = User:query()
      local err = testsuite.error_of(q2.from, q2, adults)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)
  end)

  describe("scopes", function()
    it("give class methods that chain both ways", function()
      assert.are.same({ "Ann", "Cid" }, names(User:adults()))
      assert.are.same({ "Cid" }, names(User:adults():where("age > ?", 40)))
      assert.are.same({ "Cid" }, names(User:where("age > ?", 40):adults()))
      assert.are.same({ "Ann" }, names(User:adults():named("Ann")))
      assert.are.same({}, names(User:named("Bob"):adults()))
      assert.are.equal(2, User:adults():count())
    end)
  end)

  describe("immutability", function()
    it("never changes the original query", function()
      local base = User:where{ active = true }
      local before_sql, before_params = base:to_sql()
      local derived = {
        base:where("age > ?", 1), base:or_where{ name = "x" }, base:not_where{ name = "x" },
        base:order_by("name"), base:limit(1), base:offset(1), base:select("name"), base:distinct(),
        base:group_by("age"), base:having("COUNT(*) > ?", 0), base:joins("posts", { ["posts.user_id"] = "users.id" }),
        base:for_update(), base:with_cte("c", User:select("id")), base:union(User:query()),
        base:window("w", { order_by = "id" }), base:from(User:query(), "u"), base:group_by("age"):with_rollup(),
        base:adults(),
      }
      local after_sql, after_params = base:to_sql()
      assert.are.equal(before_sql, after_sql)
      assert.are.same(before_params, after_params)
      for _, q in ipairs(derived) do assert.are_not.equal(before_sql, (q:to_sql())) end
      assert.are.same({ "Ann", "Cid", "Dee" }, names(base))
    end)

    it("lets two branches of one query diverge", function()
      local base = User:where{ active = false }
      local a, b = base:where{ name = "Bob" }, base:where{ name = "Eve" }
      assert.are.same({ "Bob" }, names(a))
      assert.are.same({ "Eve" }, names(b))
      assert.are.same({ "Bob", "Eve" }, names(base))
    end)
  end)

  describe("to_sql", function()
    it("shows ? for every value and returns the values apart", function()
      local q = User:where{ name = "Ann' OR '1'='1" }:where("age > ?", 18)
        :where(ar.col("email"):like("%@example.com")):in_list("id", { 1, 2 }):limit(5)
      local sql, params = q:to_sql()
      assert.is_nil(sql:find("Ann", 1, true))
      assert.is_nil(sql:find("example", 1, true))
      assert.is_nil(sql:find("18", 1, true))
      assert.is_nil(sql:find("5", 1, true))
      assert.are.same({ n = 6, "Ann' OR '1'='1", 18, "%@example.com", 1, 2, 5 }, params)
    end)
  end)

  describe("hostile values", function()
    local VALUES = {
      "O'Brien", 'say "hi"', "back\\slash\\", "nul\0byte", "'; DROP TABLE users; --",
      "unicodé ✓ 𝄞 日本", "%_wild", "\\'; SELECT 1; --",
    }

    it("round-trip through every where form and match nothing else", function()
      for i, v in ipairs(VALUES) do
        local u = User:create{ name = v, email = "hostile" .. i .. "@example.com" }
        local function only(q) return #q:all() == 1 and q:first().id == u.id end
        assert.is_true(only(User:where{ name = v }), v)
        assert.is_true(only(User:where("name = ?", v)), v)
        assert.is_true(only(User:where(ar.col("name"):eq(v))), v)
        assert.is_true(only(User:in_list("name", { v, "zz" })), v)
        assert.is_true(only(User:where(ar.col("name"):between(v, v))), v)
        assert.is_true(only(User:where{ id = User:select("id"):where{ name = v } }), v)
        assert.are.same({ v }, User:where{ id = u.id }:pluck("name"))
        assert.are.equal(1, User:where{ name = v }:update_all{ email = v .. i })
        assert.are.equal(v .. i, User:find(u.id).email)
        assert.are.equal(1, User:where{ name = v }:delete_all())
      end
      assert.are.equal(#support.USERS, User:count())
    end)
  end)

  describe("identifiers", function()
    local BAD = {
      "name; DROP TABLE users", "name`", "name --", "na me", "name)", "1", "a.b.c.d", "",
      "name'", "LOWER(name)", "*name",
    }

    it("are validated in where, select, order_by, group_by and pluck before any SQL", function()
      for _, bad in ipairs(BAD) do
        support.raises_before_sql(db, "QueryError", function() return User:where{ [bad] = 1 }:all() end)
        support.raises_before_sql(db, "QueryError", function() return User:select(bad):all() end)
        support.raises_before_sql(db, "QueryError", function() return User:order_by(bad):all() end)
        support.raises_before_sql(db, "QueryError", function() return User:group_by(bad):aggregate() end)
        support.raises_before_sql(db, "QueryError", function() return User:pluck(bad) end)
        support.raises_before_sql(db, "QueryError", function() return User:count(bad) end)
      end
    end)

    it("are validated for tables, aliases and joins", function()
      support.raises_before_sql(db, "QueryError", function() return ar.table("users; DROP", db):all() end)
      support.raises_before_sql(db, "QueryError", function()
        return User:select(ar.col("name"):as("n`; x")):all()
      end)
      support.raises_before_sql(db, "QueryError", function()
        return User:joins("posts p", { ["posts.user_id"] = "users.id" }):all()
      end)
      support.raises_before_sql(db, "QueryError", function()
        return User:joins("posts", { ["posts.user_id"] = "users.id; --" }):all()
      end)
      support.raises_before_sql(db, "QueryError", function() return User:from(User:query(), "a b"):all() end)
    end)

    it("a raw fragment's placeholders must match its values", function()
      support.raises_before_sql(db, "QueryError", function() return User:where("name = ? AND age = ?", "x"):all() end)
      support.raises_before_sql(db, "QueryError", function() return User:where("name = 'a?b'", 1):all() end)
      assert.are.equal(0, User:where("name = 'a?b'"):count())
    end)
  end)

  it("uses existing records as a reference", function()
    assert.are.equal("Ann", User:find(users.Ann.id).name)
  end)
end)

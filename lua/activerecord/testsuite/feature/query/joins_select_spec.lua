-- Joins (inner, left, right, cross; explicit ON or a relation), select
-- lists with expressions and aliases, distinct, group_by / having / WITH
-- ROLLUP, and table queries without a model.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")
local support = require("activerecord.testsuite.feature.query.support")

local provider = testsuite.provider()
local GROUP = "feature/query/joins"

describe("query joins and select lists", function()
  local scenario = testsuite.default_scenario()
  local db, User, Post

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "posts" })
    User, Post = support.models(db)
    support.seed(db, User, Post)
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  local ON = { ["posts.user_id"] = "users.id" }

  describe("joins", function()
    it("inner join with a raw ON, a column table or an expression", function()
      local forms = {
        User:joins("posts", "posts.user_id = users.id"),
        User:joins("posts", ON),
        User:joins("posts", ar.col("posts.user_id"):eq(ar.col("users.id"))),
        User:inner_joins("posts", "posts.user_id = users.id AND posts.title <> ?", "zz"),
      }
      for _, q in ipairs(forms) do
        local rows = q:order_by("posts.title"):all()
        assert.are.same({ "Ann", "Ann", "Ann", "Bob", "Eve", "Eve" }, support.names(rows))
        -- the model's own columns only: ids are the users', not the posts'
        assert.are.equal(User:find_by{ name = "Ann" }.id, rows[1].id)
      end
    end)

    it("select across both tables with aliases", function()
      local rows = User:joins("posts", ON):select("users.name", ar.col("posts.title"):as("title"))
        :where{ ["posts.title"] = { "a2", "e1" } }:order_by("posts.title"):aggregate()
      assert.are.same({ { name = "Ann", title = "a2" }, { name = "Eve", title = "e1" } }, rows)
    end)

    it("left and right joins keep the unmatched side", function()
      local rows = User:left_joins("posts", ON):select("users.name", ar.col("posts.title"):as("title"))
        :where(ar.col("posts.id"):is_null()):order_by("users.name"):aggregate()
      assert.are.same({ { name = "Cid" }, { name = "Dee" } }, rows)
      local right = Post:right_joins("users", ON):select("users.name", ar.col("posts.id"):as("post_id"))
        :where(ar.col("posts.id"):is_null()):order_by("users.name"):aggregate()
      assert.are.same({ "Cid", "Dee" }, support.names(right))
    end)

    it("cross join pairs every row, and takes no ON", function()
      assert.are.equal(5 * 6, User:cross_joins("posts"):count())
      local q = User:query()
      local err = testsuite.error_of(q.join, q, "cross", "posts", ON)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      err = testsuite.error_of(q.joins, q, "posts")
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("ON", tostring(err), 1, true)
    end)

    it("joins a derived table with an alias", function()
      local counts = Post:select("user_id", ar.fn.count("*"):as("n")):group_by("user_id")
      local rows = User:joins({ counts, "pc" }, { ["pc.user_id"] = "users.id" })
        :select("users.name", "pc.n"):order_by("pc.n", "desc"):aggregate()
      assert.are.same({ { name = "Ann", n = 3 }, { name = "Eve", n = 2 }, { name = "Bob", n = 1 } }, rows)
    end)

    it("joins by relation name through rel:join_spec(kind)", function()
      local seen = {}
      -- a stand-in relation: the relations module provides the real join_spec
      rawset(User.relations, "posts", {
        join_spec = function(_, kind)
          seen[#seen + 1] = kind
          return { table = "posts", on = ar.col("posts.user_id"):eq(ar.col("users.id")) }
        end,
      })
      local ok, err = pcall(function()
        assert.are.equal(6, User:joins("posts"):count())
        assert.are.equal(8, User:left_joins("posts"):count())
        assert.are.same({ "Ann" }, User:joins("posts"):where{ ["posts.title"] = "a3" }:pluck("name"))
      end)
      User.relations.posts = nil
      assert(ok, err)
      assert.are.same({ "inner", "left", "inner" }, seen)
    end)

    it("update_all and delete_all through a join", function()
      local ok, err = pcall(db.transaction, db, function()
        assert.are.equal(3, Post:joins("users", ON):where{ ["users.name"] = "Ann" }
          :update_all{ body = "by ann" })
        assert.are.equal(3, Post:where{ body = "by ann" }:count())
        assert.are.equal(2, Post:joins("users", ON):where{ ["users.name"] = "Eve" }:delete_all())
        assert.are.equal(4, Post:count())
        error("undo", 0)
      end)
      assert.is_false(ok)
      assert.are.equal("undo", err)
      assert.are.equal(6, Post:count())
    end)
  end)

  describe("select", function()
    it("takes names, expressions, functions and aliases", function()
      local row = User:select("name", ar.col("age"):as("years"), { expr = ar.fn.upper("name"), as = "shout" },
        { expr = ar.raw("age * ?", 2), as = "double_age" }):where{ name = "Ann" }:aggregate()[1]
      assert.are.same({ name = "Ann", years = 31, shout = "ANN", double_age = 62 }, row)
    end)

    it("loads model instances from a partial select", function()
      local u = User:select("id", "name"):where{ name = "Bob" }:first()
      assert.are.equal("Bob", u.name)
      assert.is_nil(u.age)
    end)

    it("distinct", function()
      assert.are.same({ 17, 31, 45 }, User:select("age"):distinct():is_not_null("age"):order_by("age"):pluck("age"))
      assert.are.equal(4, User:select("age"):distinct():count())
    end)
  end)

  describe("grouping", function()
    it("group_by and having give plain rows", function()
      local rows = User:select("age", ar.fn.count("*"):as("n"), ar.fn.sum("balance"):as("total"))
        :group_by("age"):having("COUNT(*) > ?", 1):aggregate()
      assert.are.same({ { age = 17, n = 2, total = "100.19" } }, rows)
      local by_post = Post:select("user_id", ar.fn.count("*"):as("n")):group_by("user_id")
        :having(ar.fn.count("*"):ge(2)):order_by("user_id"):aggregate()
      assert.are.equal(2, #by_post)
      assert.is_nil(getmetatable(by_post[1]))
    end)

    it("WITH ROLLUP adds the super-aggregate row", function()
      local rows = User:select("active", ar.fn.sum("balance"):as("total")):group_by("active"):with_rollup()
        :aggregate()
      local totals = {}
      for _, r in ipairs(rows) do totals[r.active == nil and "all" or tostring(r.active)] = r.total end
      assert.are.same({ ["0"] = "100.19", ["1"] = "1244.67", all = "1344.86" }, totals)
    end)

    it("GROUPING() where the server has it", function()
      if not testsuite.requires_capabilities(db, "grouping_function") then return end
      local rows = User:select("active", ar.grouping("active"):as("g")):group_by("active"):with_rollup():aggregate()
      assert.are.equal(1, rows[#rows].g)
    end)
  end)

  describe("table queries", function()
    it("ar.table(name, db) returns plain rows", function()
      local rows = ar.table("users", db):select("name"):where{ age = 17 }:order_by("name"):all()
      assert.are.same({ { name = "Bob" }, { name = "Eve" } }, rows)
      assert.are.equal(5, ar.table("users", db):count())
      assert.are.same({ name = "Cid" }, ar.table("users", db):select("name"):where{ age = 45 }:one())
    end)
  end)
end)

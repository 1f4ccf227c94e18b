-- Eager loading with Query:with(): one statement per relation level
-- (WHERE key IN (...), chunked), nested levels, scoped loads, every
-- instance's cache filled and kept separate, a self-referencing tree, and
-- the N+1 proof (1,000 users with 10 posts each in exactly 2 statements).
local ar = require("activerecord")
local relations = require("activerecord.relations")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/relation"

describe("eager loading", function()
  local scenario = testsuite.default_scenario()
  local db
  local User, Post, Comment, Tag, Order, Node

  local function count(fn) return (testsuite.count_statements(db, fn)) end

  -- SELECTs only: what eager loading itself sends
  local function selects(fn) return testsuite.count_statements(db, fn, "^SELECT") end

  local function sorted(list)
    table.sort(list)
    return list
  end

  local function clear()
    for _, t in ipairs({ "post_tags", "comments", "orders", "tags", "posts", "users", "nodes" }) do
      db:execute("DELETE FROM " .. t)
    end
  end

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "posts", "comments", "orders", "tags", "post_tags", "nodes" })
    User = ar.Model{ name = "User", table = "users", backend = db,
      fields = { id = "integer", name = "string", email = "string" },
      relations = {
        posts = ar.has_many("Post", { foreign_key = "user_id", inverse_of = "author", order_by = "id" }),
        first_post = ar.has_one("Post", { foreign_key = "user_id", order_by = "id" }),
        orders = ar.has_many("Order", { foreign_key = "user_id", order_by = "id" }),
      } }
    Post = ar.Model{ name = "Post", table = "posts", backend = db,
      fields = { id = "integer", user_id = "integer", title = "string" },
      relations = {
        author = ar.belongs_to("User", { foreign_key = "user_id" }),
        comments = ar.has_many("Comment", { foreign_key = "post_id", inverse_of = "post", order_by = "id" }),
        tags = ar.has_many_through("Tag", { through = "post_tags", source_key = "post_id", target_key = "tag_id" }),
        tags_by_name = ar.has_many_through("Tag", { through = "post_tags", source_key = "post_id",
                                                    target_key = "tag_id", order_by = "name" }),
      } }
    Comment = ar.Model{ name = "Comment", table = "comments", backend = db,
      fields = { id = "integer", post_id = "integer", user_id = "integer", body = "text" },
      relations = {
        post = ar.belongs_to("Post", { foreign_key = "post_id" }),
        commenter = ar.belongs_to("User", { foreign_key = "user_id" }),
      } }
    Tag = ar.Model{ name = "Tag", table = "tags", backend = db, fields = { id = "integer", name = "string" } }
    Order = ar.Model{ name = "Order", table = "orders", backend = db,
      fields = { id = "integer", user_id = "integer", status = "string", total = { type = "decimal", precision = 12,
                 scale = 2 } } }
    Node = ar.Model{ name = "Node", table = "nodes", backend = db,
      fields = { id = "integer", parent_id = "integer", name = "string", position = "integer" },
      relations = {
        parent = ar.belongs_to("Node", { foreign_key = "parent_id" }),
        children = ar.has_many("Node", { foreign_key = "parent_id", inverse_of = "parent", order_by = "position" }),
      } }
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  describe("a small blog", function()
    -- users u1..u4; u1 and u2 write posts; comments on some posts; tags
    local u, posts
    before_each(function()
      clear()
      u = {}
      for i = 1, 4 do u[i] = User:create{ name = "user " .. i, email = ("u%d@example.com"):format(i) } end
      posts = {}
      for i = 1, 3 do posts[#posts + 1] = Post:create{ user_id = u[1].id, title = "u1 post " .. i } end
      for i = 1, 2 do posts[#posts + 1] = Post:create{ user_id = u[2].id, title = "u2 post " .. i } end
      -- comments: post 1 has 2, post 2 has 1, post 4 has 3
      for _, spec in ipairs({ { 1, 2 }, { 2, 1 }, { 4, 3 } }) do
        for j = 1, spec[2] do
          Comment:create{ post_id = posts[spec[1]].id, user_id = u[3].id, body = ("c%d.%d"):format(spec[1], j) }
        end
      end
      local tags = { Tag:create{ name = "lua" }, Tag:create{ name = "sql" } }
      for _, pair in ipairs({ { 1, 1 }, { 1, 2 }, { 4, 2 } }) do
        db:execute("INSERT INTO post_tags (post_id, tag_id) VALUES (?, ?)", posts[pair[1]].id, tags[pair[2]].id)
      end
      for i, status in ipairs({ "paid", "pending", "paid", "cancelled" }) do
        Order:create{ user_id = u[(i - 1) % 2 + 1].id, status = status, total = "10.00" }
      end
    end)

    it("loads a has_many level in one statement and fills every owner's cache", function()
      local users
      assert.are.equal(2, count(function() users = User:query():with("posts"):order_by("id"):all() end))
      assert.are.equal(0, count(function()
        local titles = {}
        for i, p in ipairs(users[1]:posts()) do titles[i] = p.title end
        assert.are.same({ "u1 post 1", "u1 post 2", "u1 post 3" }, titles)
        assert.are.equal(2, #users[2]:posts())
        assert.are.same({}, users[3]:posts())
        assert.are.same({}, users[4]:posts())
      end))
    end)

    it("keeps every owner's list its own, empty ones included", function()
      local users = User:query():with("posts"):order_by("id"):all()
      assert.is_false(rawequal(users[3]:posts(), users[4]:posts()))
      users[3]:posts()[1] = "junk"
      assert.are.same({}, users[4]:posts())
      -- a separately loaded instance of the same row has its own cache
      local again = User:find(u[1].id)
      assert.are.equal(1, count(function() again:posts() end))
      assert.is_false(rawequal(again:posts(), users[1]:posts()))
    end)

    it("sets inverse_of on eagerly loaded children", function()
      local users = User:query():with("posts"):all()
      assert.are.equal(0, count(function()
        for _, user in ipairs(users) do
          for _, post in ipairs(user:posts()) do assert.is_true(rawequal(user, post:author())) end
        end
      end))
    end)

    it("loads belongs_to and has_one levels with one statement each", function()
      local all
      assert.are.equal(2, count(function() all = Post:query():with("author"):order_by("id"):all() end))
      assert.are.equal(0, count(function()
        for _, p in ipairs(all) do
          assert.are.equal(p.user_id, p:author().id)
        end
        -- posts of the same author share that author's row, loaded once
        assert.are.equal(all[1]:author().name, all[2]:author().name)
      end))
      local users
      assert.are.equal(2, count(function() users = User:query():with("first_post"):order_by("id"):all() end))
      assert.are.equal(0, count(function()
        assert.are.equal(posts[1].id, users[1]:first_post().id)
        assert.are.equal(posts[4].id, users[2]:first_post().id)
        assert.is_nil(users[3]:first_post())
      end))
    end)

    it("loads three levels deep plus a has_many_through in one statement per level", function()
      local users
      local n, events = selects(function()
        users = User:query():with("posts", "posts.comments", "posts.comments.commenter", "posts.tags")
          :order_by("id"):all()
      end)
      -- users, posts, comments, commenters, tags
      assert.are.equal(5, n)
      for _, e in ipairs(events) do assert.is_nil(e.sql:find("LIMIT", 1, true), e.sql) end
      assert.are.equal(0, count(function()
        local u1posts = users[1]:posts()
        assert.are.equal(2, #u1posts[1]:comments())
        assert.are.equal(1, #u1posts[2]:comments())
        assert.are.same({}, u1posts[3]:comments())
        assert.are.same({ "lua", "sql" }, sorted({ u1posts[1]:tags()[1].name, u1posts[1]:tags()[2].name }))
        assert.are.same({}, u1posts[2]:tags())
        local u2posts = users[2]:posts()
        assert.are.equal(3, #u2posts[1]:comments())
        assert.are.equal("sql", u2posts[1]:tags()[1].name)
        for _, c in ipairs(u2posts[1]:comments()) do
          assert.are.equal("user 3", c:commenter().name) -- third level
          assert.is_true(rawequal(u2posts[1], c:post())) -- inverse_of one level down
        end
      end))
    end)

    it("orders a has_many_through level by its order_by, like the lazy accessor", function()
      local p = Post:create{ user_id = u[4].id, title = "ordered" }
      for _, name in ipairs({ "zeta", "mu", "alpha" }) do -- ids in the opposite order of names
        db:execute("INSERT INTO post_tags (post_id, tag_id) VALUES (?, ?)", p.id, Tag:create{ name = name }.id)
      end
      local function tag_names(list)
        local out = {}
        for i, t in ipairs(list) do out[i] = t.name end
        return out
      end
      assert.are.same({ "alpha", "mu", "zeta" }, tag_names(Post:find(p.id):tags_by_name()))
      local eager = Post:where{ id = p.id }:with("tags_by_name"):all()[1]
      assert.are.same({ "alpha", "mu", "zeta" }, tag_names(eager:tags_by_name()))
    end)

    it("loads belongs_to with NULL keys: nil owners, and no statement when every key is NULL", function()
      Comment:create{ post_id = posts[1].id, body = "anonymous" }
      local comments
      assert.are.equal(2, count(function()
        comments = Comment:query():with("commenter"):order_by("id"):all()
      end))
      assert.are.equal(0, count(function()
        assert.are.equal("user 3", comments[1]:commenter().name)
        assert.is_nil(comments[#comments]:commenter())
      end))
      assert.are.equal(1, count(function()
        comments = Comment:where{ user_id = ar.null }:with("commenter"):all()
      end))
      assert.are.equal(1, #comments)
      assert.are.equal(0, count(function() assert.is_nil(comments[1]:commenter()) end))
    end)

    it("names each level once even when listed twice or implied by a deeper path", function()
      local n = selects(function()
        User:query():with("posts.comments", "posts", "posts.comments"):all()
      end)
      assert.are.equal(3, n)
    end)

    it("applies a scope to a level: { name, function(q) ... end }", function()
      local users
      assert.are.equal(2, count(function()
        users = User:query():with({ "orders", function(q) return q:where{ status = "paid" } end })
          :order_by("id"):all()
      end))
      for _, user in ipairs(users) do
        for _, o in ipairs(user:orders()) do assert.are.equal("paid", o.status) end
      end
      assert.are.equal(2, #users[1]:orders())
      assert.are.same({}, users[2]:orders()) -- only pending/cancelled ones
      -- the scope does not stick to the relation: the lazy accessor loads all
      assert.are.equal(2, #User:find(u[2].id):orders())
    end)

    it("applies a scope to a nested level only", function()
      local users = User:query():with("posts", { "posts.comments", function(q)
        return q:where("body LIKE ?", "%.1")
      end }):order_by("id"):all()
      assert.are.equal(3, #users[1]:posts())
      assert.are.equal(1, #users[1]:posts()[1]:comments())
      assert.are.equal(1, #users[2]:posts()[1]:comments())
    end)

    it("composes with where/order/limit on the outer query", function()
      local users
      assert.are.equal(2, count(function()
        users = User:where{ name = "user 2" }:with("posts"):limit(5):all()
      end))
      assert.are.equal(1, #users)
      assert.are.equal(2, #users[1]:posts())
      local first = User:query():with("posts"):order_by("id"):first()
      assert.are.equal(3, #first:posts())
      -- with() straight from the class, and after a scope-like builder call
      assert.are.equal(2, count(function() users = User:with("posts"):all() end))
      assert.are.equal(4, #users)
      assert.are.equal(2, count(function() users = User:where("name <> ?", "user 1"):with("posts"):all() end))
      assert.are.equal(3, #users)
    end)

    it("sends nothing more when the outer query finds no rows", function()
      assert.are.equal(1, count(function()
        assert.are.same({}, User:where{ name = "nobody" }:with("posts", "posts.comments"):all())
      end))
    end)

    it("splits large key lists into chunks of relations.chunk_size", function()
      local saved = relations.chunk_size
      relations.chunk_size = 3
      local ok, err = pcall(function()
        local users
        -- 4 users: posts in ceil(4 / 3) = 2 statements; 5 posts: comments in 2, tags in 2
        local n = selects(function()
          users = User:query():with("posts.comments", "posts.tags"):order_by("id"):all()
        end)
        assert.are.equal(1 + 2 + 2 + 2, n)
        assert.are.equal(2, #users[1]:posts()[1]:tags())
        assert.are.equal(1, #users[2]:posts()[1]:tags())
        assert.are.equal(3, #users[1]:posts())
        assert.are.equal(2, #users[2]:posts())
        assert.are.equal(3, #users[2]:posts()[1]:comments())
      end)
      relations.chunk_size = saved
      assert(ok, err)
    end)

    it("refuses a malformed with() entry", function()
      local err = testsuite.error_of(function() return User:query():with({ "posts", "not a function" }):all() end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      err = testsuite.error_of(function() return User:query():with(42):all() end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)
  end)

  describe("a self-referencing tree", function()
    -- root -> 3 children -> 2 grandchildren each -> 1 great-grandchild each
    local root
    before_each(function()
      clear()
      root = Node:create{ name = "root", position = 0 }
      for i = 1, 3 do
        -- created in reverse so that position, not id, gives the order
        local child = Node:create{ parent_id = root.id, name = "c" .. (4 - i), position = 4 - i }
        for j = 1, 2 do
          local g = Node:create{ parent_id = child.id, name = ("c%d.%d"):format(4 - i, j), position = j }
          Node:create{ parent_id = g.id, name = ("c%d.%d.1"):format(4 - i, j), position = 1 }
        end
      end
    end)

    -- names down to `max` levels below node, without asking deeper
    local function walk(node, out, depth, max)
      out[#out + 1] = ("%s%s"):format(("-"):rep(depth), node.name)
      if depth < max then
        for _, c in ipairs(node:children()) do walk(c, out, depth + 1, max) end
      end
      return out
    end

    it("loads children three levels deep in one statement per level", function()
      local roots
      assert.are.equal(4, count(function()
        roots = Node:where{ parent_id = ar.null }:with("children.children.children"):all()
      end))
      assert.are.equal(1, #roots)
      local lines
      assert.are.equal(0, count(function() lines = walk(roots[1], {}, 0, 3) end))
      assert.are.same({ "root", "-c1", "--c1.1", "---c1.1.1", "--c1.2", "---c1.2.1",
        "-c2", "--c2.1", "---c2.1.1", "--c2.2", "---c2.2.1",
        "-c3", "--c3.1", "---c3.1.1", "--c3.2", "---c3.2.1" }, lines)
      -- asking one level further finds the leaves' (empty) children in one more statement
      assert.are.equal(5, count(function()
        roots = Node:where{ parent_id = ar.null }:with("children.children.children.children"):all()
      end))
      assert.are.equal(0, count(function() walk(roots[1], {}, 0, 4) end))
      -- and an eager load stops early once a level finds nothing
      assert.are.equal(2, count(function()
        Node:where{ name = "c1.1.1" }:with("children.children.children"):all()
      end))
    end)

    it("walks up with parent, and inverse_of links children to their loaded parent", function()
      local roots = Node:where{ parent_id = ar.null }:with("children.children"):all()
      assert.are.equal(0, count(function()
        for _, c in ipairs(roots[1]:children()) do
          assert.is_true(rawequal(roots[1], c:parent()))
          for _, g in ipairs(c:children()) do assert.is_true(rawequal(c, g:parent())) end
        end
      end))
      local leaves
      assert.are.equal(4, count(function()
        leaves = Node:where{ name = "c2.1.1" }:with("parent.parent.parent"):all()
      end))
      assert.are.equal(0, count(function()
        local leaf = leaves[1]
        assert.are.equal("c2.1", leaf:parent().name)
        assert.are.equal("c2", leaf:parent():parent().name)
        assert.are.equal("root", leaf:parent():parent():parent().name)
        assert.is_nil(leaf:parent():parent():parent():parent())
      end))
    end)
  end)

  describe("N+1", function()
    setup(function()
      clear()
      local rows = {}
      for i = 1, 1000 do rows[i] = { name = "user " .. i, email = ("bulk%d@example.com"):format(i) } end
      local users = User:insert_all(rows).records
      local post_rows = {}
      for _, user in ipairs(users) do
        assert.is_not_nil(user.id)
        for j = 1, 10 do
          post_rows[#post_rows + 1] = { user_id = user.id, title = ("%s / post %d"):format(user.name, j) }
        end
      end
      Post:insert_all(post_rows)
    end)

    it("is gone: 1,000 users with 10 posts each load in exactly 2 statements", function()
      local users
      local touched = 0
      local n, events = testsuite.count_statements(db, function()
        users = User:query():with("posts"):all()
        for _, user in ipairs(users) do
          local list = user:posts()
          assert.are.equal(10, #list)
          for _, post in ipairs(list) do
            assert.are.equal(user.name .. " / post ", post.title:sub(1, #user.name + 8))
            touched = touched + 1
          end
        end
      end)
      assert.are.equal(2, n)
      assert.matches("IN %(", events[2].sql)
      assert.are.equal(1000, #users)
      assert.are.equal(10000, touched)
    end)

    it("without with() it is 1 + N statements (what the eager load saves)", function()
      local users = User:query():limit(20):all()
      assert.are.equal(20, count(function()
        for _, user in ipairs(users) do user:posts() end
      end))
    end)
  end)
end)

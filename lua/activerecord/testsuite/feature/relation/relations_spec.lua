-- Relations: belongs_to, has_one, has_many and has_many_through accessors
-- (load once, cached per instance, reload), query accessors, inverse_of, and
-- moving a child by assigning its foreign key.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/relation"

describe("relations", function()
  local scenario = testsuite.default_scenario()
  local db
  local User, Post, Comment, Tag
  local ann, bob, cy
  local p1, p2, p3

  local function count(fn) return (testsuite.count_statements(db, fn)) end

  local function ids(records)
    local out = {}
    for i, r in ipairs(records) do out[i] = r.id end
    return out
  end

  local function names(records, field)
    local out = {}
    for i, r in ipairs(records) do out[i] = r[field or "name"] end
    table.sort(out)
    return out
  end

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "posts", "comments", "tags", "post_tags" })
    User = ar.Model{ name = "User", table = "users", backend = db,
      fields = { id = "integer", name = { type = "string", required = true }, email = "string" },
      relations = {
        posts = ar.has_many("Post", { foreign_key = "user_id", inverse_of = "author", order_by = "id" }),
        first_post = ar.has_one("Post", { foreign_key = "user_id", order_by = "id" }),
        comments = ar.has_many("Comment", { foreign_key = "user_id", order_by = "id" }),
      } }
    Post = ar.Model{ name = "Post", table = "posts", backend = db,
      fields = { id = "integer", user_id = "integer", title = { type = "string", required = true }, body = "text" },
      relations = {
        author = ar.belongs_to("User", { foreign_key = "user_id" }),
        comments = ar.has_many("Comment", { foreign_key = "post_id", inverse_of = "post", order_by = "id" }),
        tags = ar.has_many_through("Tag", { through = "post_tags", source_key = "post_id", target_key = "tag_id" }),
      } }
    Comment = ar.Model{ name = "Comment", table = "comments", backend = db,
      fields = { id = "integer", post_id = "integer", user_id = "integer", body = "text" },
      relations = {
        post = ar.belongs_to("Post", { foreign_key = "post_id" }),
        commenter = ar.belongs_to("User", { foreign_key = "user_id" }),
      } }
    Tag = ar.Model{ name = "Tag", table = "tags", backend = db,
      fields = { id = "integer", name = "string" },
      relations = {
        posts = ar.has_many_through("Post", { through = "post_tags", source_key = "tag_id", target_key = "post_id",
                                              order_by = "id" }),
      } }
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    for _, t in ipairs({ "post_tags", "comments", "tags", "posts", "users" }) do db:execute("DELETE FROM " .. t) end
    ann = User:create{ name = "Ann", email = "ann@example.com" }
    bob = User:create{ name = "Bob", email = "bob@example.com" }
    cy = User:create{ name = "Cy", email = "cy@example.com" } -- no posts
    p1 = Post:create{ user_id = ann.id, title = "Ann one" }
    p2 = Post:create{ user_id = ann.id, title = "Ann two" }
    p3 = Post:create{ user_id = bob.id, title = "Bob one" }
    Comment:create{ post_id = p1.id, user_id = bob.id, body = "nice" }
    Comment:create{ post_id = p1.id, body = "anonymous" }
    local lua, sql, orm = Tag:create{ name = "lua" }, Tag:create{ name = "sql" }, Tag:create{ name = "orm" }
    for _, pair in ipairs({ { p1, lua }, { p1, sql }, { p2, lua }, { p3, orm } }) do
      db:execute("INSERT INTO post_tags (post_id, tag_id) VALUES (?, ?)", pair[1].id, pair[2].id)
    end
  end)

  describe("belongs_to", function()
    it("loads the owner once and caches it on the instance", function()
      local post = Post:find(p3.id)
      local author
      assert.are.equal(1, count(function() author = post:author() end))
      assert.are.equal("Bob", author.name)
      assert.are.equal(0, count(function()
        assert.is_true(rawequal(author, post:author()))
      end))
    end)

    it("gives nil without a statement when the foreign key is NULL", function()
      local anon = Comment:find_by{ body = "anonymous" }
      assert.are.equal(0, count(function() assert.is_nil(anon:commenter()) end))
    end)

    it("reloads on request", function()
      local post = Post:find(p1.id)
      assert.are.equal("Ann", post:author().name)
      db:execute("UPDATE users SET name = ? WHERE id = ?", "Annie", ann.id)
      assert.are.equal("Ann", post:author().name)
      assert.are.equal(1, count(function()
        assert.are.equal("Annie", post:author{ reload = true }.name)
      end))
      assert.are.equal("Annie", post:author().name)
    end)
  end)

  describe("has_one", function()
    it("loads the first matching record by its order and caches it", function()
      local user = User:find(ann.id)
      local first
      assert.are.equal(1, count(function() first = user:first_post() end))
      assert.are.equal(p1.id, first.id)
      assert.are.equal(0, count(function() assert.is_true(rawequal(first, user:first_post())) end))
    end)

    it("caches a missing record too: nil, then no further statement", function()
      local user = User:find(cy.id)
      assert.are.equal(1, count(function() assert.is_nil(user:first_post()) end))
      assert.are.equal(0, count(function() assert.is_nil(user:first_post()) end))
    end)
  end)

  describe("has_many", function()
    it("loads the children in the relation's order, once", function()
      local user = User:find(ann.id)
      local posts
      assert.are.equal(1, count(function() posts = user:posts() end))
      assert.are.same({ p1.id, p2.id }, ids(posts))
      assert.are.same({ "Ann one", "Ann two" }, names(posts, "title"))
      assert.are.equal(0, count(function() assert.is_true(rawequal(posts, user:posts())) end))
    end)

    it("gives an empty list for an owner without children", function()
      local user = User:find(cy.id)
      assert.are.same({}, user:posts())
      assert.are.equal(0, count(function() user:posts() end))
    end)

    it("keeps caches separate per instance, even for the same row", function()
      local a1, a2 = User:find(ann.id), User:find(ann.id)
      local l1 = a1:posts()
      -- a2 has its own cache: loading a1 did not fill it
      local l2
      assert.are.equal(1, count(function() l2 = a2:posts() end))
      assert.is_false(rawequal(l1, l2))
      table.remove(l1) -- changing one instance's list leaves the other alone
      assert.are.equal(1, #a1:posts())
      assert.are.equal(2, #a2:posts())
      assert.are.same({ p3.id }, ids(User:find(bob.id):posts()))
    end)

    it("reloads with { reload = true } and after rec:reload()", function()
      local user = User:find(ann.id)
      assert.are.equal(2, #user:posts())
      Post:create{ user_id = ann.id, title = "Ann three" }
      assert.are.equal(2, #user:posts()) -- still the cached list
      assert.are.equal(1, count(function() assert.are.equal(3, #user:posts{ reload = true }) end))
      Post:create{ user_id = ann.id, title = "Ann four" }
      user:reload()
      assert.are.equal(4, #user:posts())
    end)

    it("hands out a chainable query that leaves the cache alone", function()
      local user = User:find(ann.id)
      local q = user:posts_query()
      assert.are.equal(2, q:count())
      assert.are.same({ "Ann two" }, q:where{ title = "Ann two" }:pluck("title"))
      assert.are.equal(1, q:where("title LIKE ?", "%one"):count())
      assert.are.equal(p2.id, q:offset(1):limit(1):all()[1].id)
      -- the accessor still loads (and caches) on first use
      assert.are.equal(1, count(function() user:posts() end))
    end)

    it("moves a child when its foreign key is assigned and saved", function()
      local post = Post:find(p2.id)
      assert.are.equal("Ann", post:author().name)
      post.user_id = bob.id
      post:save()
      assert.are.equal("Bob", post:author{ reload = true }.name)
      assert.are.same({ p1.id }, ids(User:find(ann.id):posts()))
      assert.are.same({ p2.id, p3.id }, ids(User:find(bob.id):posts()))
    end)

    it("returns no children for an owner that was never saved", function()
      local nobody = User.new{ name = "Nobody" }
      assert.are.same({}, nobody:posts())
      assert.are.equal(0, nobody:posts_query():count())
      assert.is_nil(User.new{ name = "Nobody" }:first_post())
    end)
  end)

  describe("has_many_through", function()
    it("loads the targets through the join table, both ways", function()
      local post = Post:find(p1.id)
      local tags
      assert.are.equal(1, count(function() tags = post:tags() end))
      assert.are.same({ "lua", "sql" }, names(tags))
      assert.are.equal(0, count(function() post:tags() end))
      local lua = Tag:find_by{ name = "lua" }
      assert.are.same({ p1.id, p2.id }, ids(lua:posts()))
      assert.are.same({}, Tag:create{ name = "unused" }:posts())
    end)

    it("reloads after the join table changes, and chains", function()
      local post = Post:find(p3.id)
      assert.are.same({ "orm" }, names(post:tags()))
      local sql = Tag:find_by{ name = "sql" }
      db:execute("INSERT INTO post_tags (post_id, tag_id) VALUES (?, ?)", p3.id, sql.id)
      assert.are.same({ "orm" }, names(post:tags()))
      assert.are.same({ "orm", "sql" }, names(post:tags{ reload = true }))
      assert.are.same({ "sql" }, post:tags_query():where{ name = "sql" }:pluck("name"))
    end)
  end)

  describe("inverse_of", function()
    it("points each loaded child back at the very owner instance", function()
      local user = User:find(ann.id)
      local posts = user:posts()
      assert.are.equal(0, count(function()
        for _, post in ipairs(posts) do assert.is_true(rawequal(user, post:author())) end
      end))
    end)

    it("is per owner: another instance of the same row gets its own children", function()
      local a1, a2 = User:find(ann.id), User:find(ann.id)
      local post1, post2 = a1:posts()[1], a2:posts()[1]
      assert.is_false(rawequal(post1, post2))
      assert.is_true(rawequal(a1, post1:author()))
      assert.is_true(rawequal(a2, post2:author()))
    end)

    it("leaves a relation without inverse_of to load its owner itself", function()
      local user = User:find(bob.id)
      local comment = user:comments()[1]
      assert.are.equal(1, count(function() assert.are.equal(bob.id, comment:commenter().id) end))
    end)
  end)

  describe("definition errors", function()
    it("refuses unknown options and dependent values", function()
      local err = testsuite.error_of(ar.has_many, "Post", { foreign_kee = "user_id" })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      err = testsuite.error_of(ar.has_many, "Post", { dependent = "cascade" })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      err = testsuite.error_of(ar.has_many_through, "Tag", {})
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    end)

    it("names an unknown target model when the relation is first used", function()
      local Lonely = ar.Model{ name = "Lonely", table = "users", backend = db,
        fields = { id = "integer", name = "string" },
        relations = { ghosts = ar.has_many("NoSuchModel", { foreign_key = "user_id" }) } }
      local rec = Lonely:find(ann.id)
      local err = testsuite.error_of(function() return rec:ghosts() end)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("NoSuchModel", tostring(err), 1, true)
    end)

    it("refuses an eager load of an unknown relation", function()
      local err = testsuite.error_of(function() return User:query():with("nope"):all() end)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("nope", tostring(err), 1, true)
    end)
  end)
end)

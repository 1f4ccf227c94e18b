-- A blog: authors (the users fixture), posts with timestamps and soft
-- delete, comments (soft delete too, moderated), tags many-to-many through a
-- join table. The front page eager-loads every level with one statement per
-- level; a deleted post disappears from the front page, the tag pages and
-- the counts, keeps its comments and comes back with restore(); tag and
-- comment counts are computed by the server and must agree with what the
-- eager-loaded pages show. After every spec: no join row or comment points
-- at a missing post, and the counts agree.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "realworld_blog"

describe("realworld: a blog", function()
  local scenario = testsuite.default_scenario()
  local db
  local Author, Post, Comment, Tag
  local ann, bo
  local TABLES = { "blog_post_tags", "blog_comments", "blog_tags", "blog_posts" }

  local function names(records, field)
    local out = {}
    for i, r in ipairs(records) do out[i] = r[field or "name"] end
    return out
  end

  local function tag(post, ...)
    for _, name in ipairs({ ... }) do
      local t = Tag:find_by{ name = name } or Tag:create{ name = name }
      db:execute("INSERT INTO blog_post_tags (post_id, tag_id) VALUES (?, ?)", post.id, t.id)
    end
  end

  local function count_of(sql, ...) return db:query(sql, ...)[1].n end

  -- Checked after every spec: referential integrity and counts that agree.
  local function check_invariants()
    -- join rows and comments always point at existing posts (deleted or not)
    assert.are.equal(0, count_of("SELECT COUNT(*) AS n FROM blog_post_tags pt "
      .. "WHERE NOT EXISTS (SELECT 1 FROM blog_posts p WHERE p.id = pt.post_id) "
      .. "OR NOT EXISTS (SELECT 1 FROM blog_tags t WHERE t.id = pt.tag_id)"))
    assert.are.equal(0, count_of("SELECT COUNT(*) AS n FROM blog_comments c "
      .. "WHERE NOT EXISTS (SELECT 1 FROM blog_posts p WHERE p.id = c.post_id)"))
    -- per-post visible comment counts from SQL agree with the eager-loaded pages
    local by_sql = {}
    for _, row in ipairs(Comment:query():select("post_id", ar.fn.count("*"):as("n")):group_by("post_id"):aggregate()) do
      by_sql[row.post_id] = row.n
    end
    for _, p in ipairs(Post:with_deleted():with("comments", "tags"):all()) do
      assert.are.equal(by_sql[p.id] or 0, #p:comments(), "comments of post " .. p.id)
      assert.are.equal(p:tags_query():count(), #p:tags(), "tags of post " .. p.id)
    end
    -- the visible posts are exactly the ones without deleted_at
    assert.are.equal(Post:query():count(), Post:with_deleted():is_null("deleted_at"):count())
  end

  setup(function()
    db = provider.setup(GROUP, scenario, { "users" })
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    ar.schema.create_table(db, "blog_posts", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("user_id", { nullable = false, index = true, references = { table = "users", on_delete = "cascade" } })
      t:string("title", { size = 200, nullable = false })
      t:text("body")
      t:string("status", { size = 20, nullable = false, default = "draft" })
      t:datetime("created_at", { precision = 6 })
      t:datetime("updated_at", { precision = 6 })
      t:datetime("deleted_at", { precision = 6 })
    end)
    ar.schema.create_table(db, "blog_comments", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("post_id", { nullable = false, index = true,
        references = { table = "blog_posts", on_delete = "cascade" } })
      t:bigint("user_id", { references = { table = "users", on_delete = "set null" } })
      t:text("body", { nullable = false })
      t:boolean("approved", { nullable = false, default = false })
      t:datetime("deleted_at", { precision = 6 })
    end)
    ar.schema.create_table(db, "blog_tags", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 64, nullable = false, unique = true })
    end)
    ar.schema.create_table(db, "blog_post_tags", function(t)
      t:bigint("post_id", { nullable = false, references = { table = "blog_posts", on_delete = "cascade" } })
      t:bigint("tag_id", { nullable = false, references = { table = "blog_tags", on_delete = "cascade" } })
      t:primary_key({ "post_id", "tag_id" })
      t:index("tag_id")
    end)

    Author = ar.Model{ name = "BlogAuthor", table = "users", backend = db,
      fields = { id = "integer", name = { type = "string", required = true }, email = "string" },
      relations = { posts = ar.has_many("BlogPost", { foreign_key = "user_id", order_by = "id" }) } }
    Post = ar.Model{ name = "BlogPost", table = "blog_posts", backend = db,
      mixins = { "timestamps", "soft_delete" },
      fields = { id = "integer", user_id = "integer", title = { type = "string", required = true, size = 200 },
                 body = "text", status = { type = "string", one_of = { "draft", "published" } } },
      scopes = { published = function(q) return q:where{ status = "published" } end },
      relations = {
        author = ar.belongs_to("BlogAuthor", { foreign_key = "user_id" }),
        comments = ar.has_many("BlogComment", { foreign_key = "post_id", order_by = "id", inverse_of = "post" }),
        tags = ar.has_many_through("BlogTag", { through = "blog_post_tags", source_key = "post_id",
                                                target_key = "tag_id", order_by = "name" }),
      } }
    Comment = ar.Model{ name = "BlogComment", table = "blog_comments", backend = db,
      mixins = { "soft_delete" },
      fields = { id = "integer", post_id = "integer", user_id = "integer",
                 body = { type = "text", required = true }, approved = "boolean" },
      scopes = { approved = function(q) return q:where{ approved = true } end },
      relations = {
        post = ar.belongs_to("BlogPost", { foreign_key = "post_id" }),
        author = ar.belongs_to("BlogAuthor", { foreign_key = "user_id" }),
      } }
    Tag = ar.Model{ name = "BlogTag", table = "blog_tags", backend = db,
      fields = { id = "integer", name = { type = "string", required = true, format = "^[%l%d-]+$" } },
      relations = {
        posts = ar.has_many_through("BlogPost", { through = "blog_post_tags", source_key = "tag_id",
                                                  target_key = "post_id", order_by = "id" }),
      } }
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  local posts -- title -> post
  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
    db:execute("DELETE FROM users")
    ann = Author:create{ name = "Ann", email = "ann@blog.test" }
    bo = Author:create{ name = "Bo", email = "bo@blog.test" }
    posts = {}
    local function post(author, title, status, ...)
      local p = Post:create{ user_id = author.id, title = title, body = title .. "...", status = status }
      tag(p, ...)
      posts[title] = p
      return p
    end
    post(ann, "Hello Lua", "published", "lua", "intro")
    post(ann, "Prepared statements", "published", "sql", "lua")
    post(bo, "Window functions", "published", "sql")
    post(bo, "Unfinished", "draft", "lua")
    local function comment(p, who, body, approved)
      return Comment:create{ post_id = p.id, user_id = who and who.id, body = body, approved = approved }
    end
    comment(posts["Hello Lua"], bo, "Nice intro", true)
    comment(posts["Hello Lua"], nil, "Buy cheap watches", false)
    comment(posts["Hello Lua"], ann, "Thanks!", true)
    comment(posts["Prepared statements"], bo, "Finally no SQL injection", true)
  end)

  after_each(function() check_invariants() end)

  it("renders the front page with one statement per level", function()
    local page = {}
    local n = testsuite.count_statements(db, function()
      local front = Post:published()
        :with("author", "tags", { "comments", function(q) return q:approved() end }, "comments.author")
        :order_by("id", "desc"):limit(10):all()
      for _, p in ipairs(front) do
        local commenters = {}
        for i, c in ipairs(p:comments()) do commenters[i] = c:author() and c:author().name or "anonymous" end
        page[#page + 1] = ("%s by %s [%s] %d comments (%s)"):format(p.title, p:author().name,
          table.concat(names(p:tags()), ","), #p:comments(), table.concat(commenters, ","))
      end
    end)
    assert.are.equal(5, n) -- posts, authors, tags, comments, comment authors
    assert.are.same({
      "Window functions by Bo [sql] 0 comments ()",
      "Prepared statements by Ann [lua,sql] 1 comments (Bo)",
      "Hello Lua by Ann [intro,lua] 2 comments (Bo,Ann)",
    }, page)
  end)

  it("counts posts per tag and comments per post in SQL", function()
    local per_tag = ar.table("blog_post_tags", db):joins("blog_tags", { ["blog_tags.id"] = "blog_post_tags.tag_id" })
      :select("blog_tags.name", ar.fn.count("*"):as("n")):group_by("blog_tags.name"):order_by("blog_tags.name")
      :aggregate()
    local cloud = {}
    for _, row in ipairs(per_tag) do cloud[#cloud + 1] = row.name .. "=" .. row.n end
    assert.are.same({ "intro=1", "lua=3", "sql=2" }, cloud)
    assert.are.equal(3, Comment:approved():count())
    assert.are.equal(4, Comment:query():count())
    assert.are.equal(2, Comment:where{ post_id = posts["Hello Lua"].id }:approved():count())
    assert.are.equal(2, Author:find(ann.id):posts_query():published():count())
    assert.are.equal(1, Post:query():where(ar.exists(
      ar.table("blog_comments"):where("blog_comments.post_id = blog_posts.id AND blog_comments.approved = ?", false)))
      :count())
  end)

  it("navigates tags both ways and finds posts carrying two tags", function()
    local lua = Tag:find_by{ name = "lua" }
    assert.are.same({ "Hello Lua", "Prepared statements", "Unfinished" }, names(lua:posts(), "title"))
    assert.are.same({ "lua", "sql" }, names(posts["Prepared statements"]:tags()))
    -- posts tagged lua AND sql: two IN subqueries on the join table
    local function tagged(name)
      return ar.table("blog_post_tags"):joins("blog_tags", { ["blog_tags.id"] = "blog_post_tags.tag_id" })
        :where{ ["blog_tags.name"] = name }:select("blog_post_tags.post_id")
    end
    local both = Post:where{ id = tagged("lua") }:where{ id = tagged("sql") }:all()
    assert.are.same({ "Prepared statements" }, names(both, "title"))
    -- untagging removes only the link
    db:execute("DELETE FROM blog_post_tags WHERE post_id = ? AND tag_id = ?", posts["Unfinished"].id, lua.id)
    assert.are.equal(2, #lua:posts{ reload = true })
    assert.is_not_nil(Post:find(posts["Unfinished"].id))
  end)

  it("soft-deletes a post: hidden everywhere, comments kept, restored intact", function()
    local p = Post:find(posts["Hello Lua"].id)
    p:delete()
    assert.is_true(p:is_deleted())
    assert.is_nil(Post:find(p.id))
    assert.are.equal(2, Post:published():count())
    -- gone from the tag page and the front page
    assert.are.same({ "Prepared statements", "Unfinished" }, names(Tag:find_by{ name = "lua" }:posts(), "title"))
    local front = Post:published():with("comments"):order_by("id"):all()
    assert.are.same({ "Prepared statements", "Window functions" }, names(front, "title"))
    -- the row, its tags and its comments are all still there
    local deleted = Post:only_deleted():with("comments", "tags"):all()
    assert.are.equal(1, #deleted)
    assert.are.equal(3, #deleted[1]:comments())
    assert.are.same({ "intro", "lua" }, names(deleted[1]:tags()))
    -- restore brings everything back
    deleted[1]:restore()
    assert.are.equal(3, Post:published():count())
    assert.are.same({ "Hello Lua", "Prepared statements", "Unfinished" },
      names(Tag:find_by{ name = "lua" }:posts{ reload = true }, "title"))
    assert.are.equal(3, #Post:find(p.id):comments())
  end)

  it("moderates comments: spam soft-deleted, then purged for good", function()
    local spam = Comment:where{ approved = false }:all()
    assert.are.equal(1, #spam)
    spam[1]:delete()
    assert.are.equal(3, Comment:query():count())
    assert.are.equal(4, Comment:with_deleted():count())
    assert.are.equal(2, #Post:find(posts["Hello Lua"].id):comments())
    -- purge: really delete every soft-deleted comment in one statement
    assert.are.equal(1, Comment:only_deleted():delete_all())
    assert.are.equal(3, Comment:with_deleted():count())
  end)

  it("destroys a post for good: its comments and tag links go with it", function()
    local p = Post:find(posts["Hello Lua"].id)
    p:destroy()
    assert.is_nil(Post:with_deleted():where{ id = p.id }:first())
    assert.are.equal(0, Comment:with_deleted():where{ post_id = p.id }:count())
    assert.are.equal(0, count_of("SELECT COUNT(*) AS n FROM blog_post_tags WHERE post_id = ?", p.id))
    -- the tag itself stays, with its other posts
    assert.are.equal(2, #Tag:find_by{ name = "lua" }:posts())
  end)

  it("publishes a draft and stamps updated_at, never created_at", function()
    local p = Post:find(posts["Unfinished"].id)
    local created, updated = p.created_at, p.updated_at
    testsuite.sleep(0.002)
    p:update{ status = "published", title = "Finished" }
    local again = Post:find(p.id)
    assert.are.equal(created, again.created_at)
    assert.is_true(again.updated_at > updated)
    assert.are.equal(4, Post:published():count())
    -- a status outside the list is refused and nothing changes
    local err = testsuite.error_of(again.update, again, { status = "archived" })
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.are.equal("published", Post:find(p.id).status)
  end)

  it("deleting an author removes their posts with everything attached", function()
    db:execute("DELETE FROM users WHERE id = ?", bo.id)
    assert.are.same({ "Hello Lua", "Prepared statements" }, names(Post:with_deleted():order_by("id"):all(), "title"))
    -- Bo's comments on Ann's posts stay, now anonymous
    local c = Comment:where{ body = "Nice intro" }:one()
    assert.is_nil(c.user_id)
    assert.is_nil(c:author())
  end)
end)

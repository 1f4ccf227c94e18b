-- Relations: belongs_to, has_many, has_one and has_many_through; lazy
-- accessors that load once and cache; eager loading with one statement per
-- relation level. The log hook counts the statements, so the N+1 problem is
-- visible, and then gone.
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/relations.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")


local counting = false
local statements = 0
local db <close> = ar.connect(ar.config_from_env{
  log = function() if counting then statements = statements + 1 end end,
})
ar.set_default_backend(db)

-- Runs fn and returns how many statements it sent.
local function count(fn)
  statements, counting = 0, true
  fn()
  counting = false
  return statements
end

local TABLES = { "example_post_tags", "example_comments", "example_tags", "example_profiles",
                 "example_posts", "example_authors" }
for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end

ar.schema.create_table(db, "example_authors", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 100, nullable = false })
end)
ar.schema.create_table(db, "example_profiles", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("author_id", { nullable = false, references = { table = "example_authors", on_delete = "cascade" } })
  t:string("bio", { size = 200 })
end)
ar.schema.create_table(db, "example_posts", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("author_id", { nullable = false, references = { table = "example_authors", on_delete = "cascade" } })
  t:string("title", { size = 200, nullable = false })
end)
ar.schema.create_table(db, "example_comments", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("post_id", { nullable = false, references = { table = "example_posts", on_delete = "cascade" } })
  t:text("body", { nullable = false })
end)
ar.schema.create_table(db, "example_tags", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 50, nullable = false, unique = true })
end)
ar.schema.create_table(db, "example_post_tags", function(t)
  t:bigint("post_id", { nullable = false, references = { table = "example_posts", on_delete = "cascade" } })
  t:bigint("tag_id", { nullable = false, references = { table = "example_tags", on_delete = "cascade" } })
  t:primary_key({ "post_id", "tag_id" })
end)

local Author = ar.Model{
  name = "Author", table = "example_authors",
  fields = { id = "integer", name = { type = "string", required = true } },
  relations = {
    posts = ar.has_many("Post", { foreign_key = "author_id", order_by = "id", inverse_of = "author" }),
    profile = ar.has_one("Profile", { foreign_key = "author_id" }),
  },
}
ar.Model{
  name = "Profile", table = "example_profiles",
  fields = { id = "integer", author_id = "integer", bio = "string" },
}
local Post = ar.Model{
  name = "Post", table = "example_posts",
  fields = { id = "integer", author_id = "integer", title = { type = "string", required = true } },
  relations = {
    author = ar.belongs_to("Author", { foreign_key = "author_id" }),
    comments = ar.has_many("Comment", { foreign_key = "post_id", order_by = "id", dependent = "delete" }),
    tags = ar.has_many_through("Tag", { through = "example_post_tags", source_key = "post_id",
                                        target_key = "tag_id", order_by = "name" }),
  },
}
local Comment = ar.Model{
  name = "Comment", table = "example_comments",
  fields = { id = "integer", post_id = "integer", body = { type = "string", required = true } },
}
local Tag = ar.Model{
  name = "Tag", table = "example_tags",
  fields = { id = "integer", name = { type = "string", required = true } },
}

-- Every model reads its table once, on first use; do it now (and check
-- each declaration against its table) so the counts below show only the
-- statements the relations send.
ar.check_models()

-- Data: 3 authors, 2 posts each, 2 comments per post, tags on every post.
local tags = {}
for _, name in ipairs({ "lua", "mysql", "orm" }) do tags[name] = Tag:create{ name = name } end
for a, name in ipairs({ "Ann", "Bo", "Cy" }) do
  local author = Author:create{ name = name }
  db:execute("INSERT INTO example_profiles (author_id, bio) VALUES (?, ?)", author.id, name .. " writes")
  for p = 1, 2 do
    local post = Post:create{ author_id = author.id, title = ("%s's post %d"):format(name, p) }
    for c = 1, 2 do Comment:create{ post_id = post.id, body = ("comment %d on %s"):format(c, post.title) } end
    db:execute("INSERT INTO example_post_tags (post_id, tag_id) VALUES (?, ?), (?, ?)",
      post.id, tags.lua.id, post.id, (a + p) % 2 == 0 and tags.mysql.id or tags.orm.id)
  end
end

-- Accessors load on first use and cache.
local ann = Author:find_by{ name = "Ann" }
local n = count(function()
  ann:posts()
  ann:posts() -- cached: no statement
end)
print(("ann:posts() twice: %d posts, %d statement"):format(#ann:posts(), n))
local first = ann:posts()[1]
print(("inverse_of: post:author() is the same object, no query: %s"):format(tostring(rawequal(first:author(), ann))))
print(("ann:posts_query() is chainable: %d post with 'post 2' in its title"):format(
  ann:posts_query():where("title LIKE ?", "%post 2"):count()))

-- The N+1 way: one statement for the authors, then one per author and per post.
local lines_lazy = {}
local lazy = count(function()
  for _, author in ipairs(Author:query():order_by("id"):all()) do
    for _, post in ipairs(author:posts()) do
      lines_lazy[#lines_lazy + 1] = ("%s / %s / %d comments / %d tags"):format(author.name, post.title,
        #post:comments(), #post:tags())
    end
  end
end)
print(("lazy loading: %d lines with %d statements (N+1)"):format(#lines_lazy, lazy))

-- Eager: one statement per level, whatever the number of rows.
local lines_eager = {}
local eager = count(function()
  local authors = Author:query():with("profile", "posts", "posts.comments", "posts.tags"):order_by("id"):all()
  for _, author in ipairs(authors) do
    for _, post in ipairs(author:posts()) do
      lines_eager[#lines_eager + 1] = ("%s / %s / %d comments / %d tags"):format(author.name, post.title,
        #post:comments(), #post:tags())
    end
  end
end)
print(("eager loading: %d lines with %d statements (authors, profiles, posts, comments, tags)"):format(
  #lines_eager, eager))
print(("same result both ways: %s"):format(tostring(table.concat(lines_lazy, "\n") == table.concat(lines_eager, "\n"))))
print("  " .. lines_eager[1])

-- A scope on an eager level: only the comments mentioning "comment 1".
local scoped = count(function()
  local posts = Post:query():with({ "comments", function(q) return q:where("body LIKE ?", "comment 1%") end })
    :order_by("id"):all()
  print(("scoped eager load: first post has %d of its 2 comments"):format(#posts[1]:comments()))
end)
print(("  %d statements"):format(scoped))

-- Joins through a relation, and counts in SQL.
local with_orm = Post:query():joins("author"):where{ ["example_authors.name"] = "Bo" }:count()
print(("posts joined to their author named Bo: %d"):format(with_orm))
local per_tag = ar.table("example_post_tags"):select("tag_id", ar.fn.count("*"):as("n"))
  :group_by("tag_id"):order_by("tag_id"):aggregate()
local shown = {}
for _, row in ipairs(per_tag) do
  shown[#shown + 1] = ("%s=%d"):format(Tag:find(row.tag_id).name, row.n)
end
print(("posts per tag: %s"):format(table.concat(shown, ", ")))

-- dependent = "delete": a post's comments go with it.
local doomed = Post:find_by{ title = "Cy's post 2" }
doomed:delete()
print(("deleting a post deleted its comments: %d comments left of 12"):format(Comment:query():count()))

for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
print("cleaned up")

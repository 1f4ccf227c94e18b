-- Associations that write: `post.author = ann`, children built through a
-- relation and saved with their owner in one transaction, many-to-many
-- links with attributes, polymorphic comments on posts and photos (eager
-- loaded one query per type), counter caches kept in SQL, dependents
-- deleted through their model, and a line item keyed by (order_id, line_no).
--
--   make examples      (or, against a running server:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/associations.lua)
--
-- Connection settings come from AR_MYSQL_HOST / AR_MYSQL_PORT /
-- AR_MYSQL_SOCKET / AR_MYSQL_USER / AR_MYSQL_PASSWORD / AR_MYSQL_DATABASE.
local ar = require("activerecord")

local selects, counting = 0, false
local db <close> = ar.connect(ar.config_from_env{
  log = function(ev) if counting and ev.sql:match("^SELECT") then selects = selects + 1 end end,
})
ar.set_default_backend(db)

local TABLES = { "ex_line_items", "ex_orders", "ex_comments", "ex_post_tags", "ex_tags", "ex_photos",
                 "ex_posts", "ex_authors" }
for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end

local S = ar.schema
S.create_table(db, "ex_authors", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 50, nullable = false })
  t:integer("posts_count", { nullable = false, default = 0 })
end)
S.create_table(db, "ex_posts", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:bigint("author_id", { index = true })
  t:string("title", { size = 100, nullable = false })
  t:integer("comments_count", { nullable = false, default = 0 })
end)
S.create_table(db, "ex_photos", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("url", { size = 100, nullable = false })
  t:integer("comments_count", { nullable = false, default = 0 })
end)
S.create_table(db, "ex_comments", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("commentable_type", { size = 40 })
  t:bigint("commentable_id")
  t:string("body", { size = 200, nullable = false })
  t:index({ "commentable_type", "commentable_id" })
end)
S.create_table(db, "ex_tags", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("name", { size = 50, nullable = false })
end)
S.create_table(db, "ex_post_tags", function(t)
  t:bigint("post_id", { nullable = false })
  t:bigint("tag_id", { nullable = false })
  t:integer("position")
  t:primary_key({ "post_id", "tag_id" })
end)
S.create_table(db, "ex_orders", function(t)
  t:bigint("id", { primary_key = true, auto_increment = true })
  t:string("ref", { size = 20, nullable = false })
end)
S.create_table(db, "ex_line_items", function(t)
  t:bigint("order_id", { nullable = false })
  t:integer("line_no", { nullable = false })
  t:string("sku", { size = 20, nullable = false })
  t:integer("qty", { nullable = false, default = 1 })
  t:primary_key({ "order_id", "line_no" })
end)

local deleted_comments = 0
local Author = ar.Model{ name = "ExAuthor", table = "ex_authors",
  fields = { id = "integer", name = { type = "string", required = true }, posts_count = "integer" },
  relations = { posts = ar.has_many("ExPost", { foreign_key = "author_id", dependent = "destroy", order_by = "id" }) } }
local Post = ar.Model{ name = "ExPost", table = "ex_posts",
  fields = { id = "integer", author_id = "integer", title = { type = "string", required = true },
             comments_count = "integer" },
  relations = {
    author = ar.belongs_to("ExAuthor", { foreign_key = "author_id", counter_cache = true }),
    comments = ar.has_many("ExComment", { as = "commentable", dependent = "destroy", order_by = "id" }),
    tags = ar.has_many_through("ExTag", { through = "ex_post_tags", source_key = "post_id",
                                          target_key = "tag_id", order_by = "name" }),
  } }
local Photo = ar.Model{ name = "ExPhoto", table = "ex_photos",
  fields = { id = "integer", url = "string", comments_count = "integer" },
  relations = { comments = ar.has_many("ExComment", { as = "commentable" }) } }
local Comment = ar.Model{ name = "ExComment", table = "ex_comments",
  fields = { id = "integer", commentable_type = "string", commentable_id = "integer", body = "string" },
  relations = { commentable = ar.belongs_to("commentable", { polymorphic = true, counter_cache = true }) },
  events = { after_delete = function() deleted_comments = deleted_comments + 1 end } }
local Tag = ar.Model{ name = "ExTag", table = "ex_tags", fields = { id = "integer", name = "string" } }
local Order = ar.Model{ name = "ExOrder", table = "ex_orders", fields = { id = "integer", ref = "string" },
  relations = { line_items = ar.has_many("ExLineItem", { foreign_key = "order_id", dependent = "delete" }) } }
local LineItem = ar.Model{ name = "ExLineItem", table = "ex_line_items",
  primary_key = { "order_id", "line_no" },
  fields = { order_id = "integer", line_no = "integer", sku = "string", qty = "integer" },
  relations = { order = ar.belongs_to("ExOrder", { foreign_key = "order_id" }) } }

local function rows(t) return db:query("SELECT COUNT(*) AS n FROM " .. t)[1].n end

-- 1. An unsaved author, assigned to an unsaved post: one save writes both.
local ann = Author:new{ name = "Ann" }
local hello = Post:new{ title = "Hello" }
hello.author = ann
hello:save()
print(("post.author = ann: author saved first (id %d), post.author_id = %d, posts_count = %d")
  :format(ann.id, hello.author_id, Author:find(ann.id).posts_count))

-- 2. Children built on an unsaved owner are saved with it, in one transaction.
local bob = Author:new{ name = "Bob" }
bob:posts_query():build{ title = "Draft one" }
local bad = bob:posts_query():build{} -- no title: invalid
local ok, err = pcall(bob.save, bob)
print(("autosave with an invalid child: %s (%s); authors named Bob: %d, still new: %s")
  :format(tostring(ok), err.kind, db:query("SELECT COUNT(*) AS n FROM ex_authors WHERE name = 'Bob'")[1].n,
    tostring(bob:is_new())))
bad.title = "Draft two"
bob:save()
print(("fixed and saved: Bob has %d posts in the table, %d in bob:posts(), posts_count = %d")
  :format(db:query("SELECT COUNT(*) AS n FROM ex_posts WHERE author_id = ?", bob.id)[1].n, #bob:posts(),
    db:query("SELECT posts_count FROM ex_authors WHERE id = ?", bob.id)[1].posts_count))

-- 3. Many-to-many: join rows with their own columns.
local lua, sql = Tag:create{ name = "lua" }, Tag:create{ name = "sql" }
hello:tags_query():add(lua, { position = 1 })
hello:tags_query():add(sql, { position = 2 })
local names = {}
for _, t in ipairs(hello:tags()) do names[#names + 1] = t.name end
hello:tags_query():remove(sql)
print(("tags added: %s; after remove(sql): %d tag, %d join row, %d tags kept")
  :format(table.concat(names, ", "), #hello:tags(), rows("ex_post_tags"), rows("ex_tags")))

-- 4. Polymorphic comments on posts and photos.
local photo = Photo:create{ url = "sunset.jpg" }
hello:comments_query():create{ body = "Nice post" }
hello:comments_query():create{ body = "Agreed" }
photo:comments_query():create{ body = "Lovely light" }
counting, selects = true, 0
local list = Comment:query():order_by("id"):with("commentable"):all()
local seen = {}
for _, c in ipairs(list) do
  local owner = c:commentable()
  seen[#seen + 1] = owner:model().name:sub(3) .. ":" .. c.body
end
counting = false
print(("comments with their owners in %d SELECTs (comments, posts, photos): %s")
  :format(selects, table.concat(seen, ", ")))
print(("comment counters: post %d, photo %d"):format(
  db:query("SELECT comments_count FROM ex_posts WHERE id = ?", hello.id)[1].comments_count,
  db:query("SELECT comments_count FROM ex_photos WHERE id = ?", photo.id)[1].comments_count))

-- 5. dependent = "destroy": posts and their comments go through their
-- models (their events run), in the author's transaction.
Author:find(ann.id):delete()
print(("deleting Ann: %d posts left, %d comments left, %d comment after_delete events")
  :format(rows("ex_posts"), rows("ex_comments"), deleted_comments))

-- 6. A line item keyed by (order_id, line_no).
local order = Order:create{ ref = "A-1" }
order:line_items_query():create{ line_no = 1, sku = "apple", qty = 3 }
local pear = order:line_items_query():create{ line_no = 2, sku = "pear" }
pear:update{ qty = 5 }
local again = LineItem:find{ order_id = order.id, line_no = 2 }
print(("line item %d/%d: %s x%d (the table's default qty read back, then updated by the full key); "
  .. "line 1 still x%d"):format(again.order_id, again.line_no, again.sku, again.qty,
  LineItem:find{ order_id = order.id, line_no = 1 }.qty))
pear:delete()
print(("deleted line 2 by its full key: %d line item left"):format(rows("ex_line_items")))

for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
print("cleaned up")

-- Polymorphic relations (issue 16): belongs_to("commentable", { polymorphic
-- = true }) over commentable_type + commentable_id, has_many(..., { as =
-- "commentable" }) on each owner; eager loading runs one query per owner
-- type; assignment sets both columns; the owner-aware query sets both.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/relation"

describe("polymorphic relations", function()
  local scenario = testsuite.default_scenario()
  local db
  local Post, Photo, Comment
  local TABLES = { "pm_comments", "pm_posts", "pm_photos" }

  local function count_rows(t, where, ...)
    return db:query("SELECT COUNT(*) AS n FROM " .. t .. (where and (" WHERE " .. where) or ""), ...)[1].n
  end

  -- How many SELECTs `fn` sends.
  local function selects(fn) return (testsuite.count_statements(db, fn, "^SELECT")) end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    local S = ar.schema
    S.create_table(db, "pm_posts", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("title", { size = 50 })
    end, { force = true })
    S.create_table(db, "pm_photos", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("url", { size = 50 })
    end, { force = true })
    S.create_table(db, "pm_comments", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("commentable_type", { size = 40 })
      t:bigint("commentable_id")
      t:string("body", { size = 50 })
      t:index({ "commentable_type", "commentable_id" })
    end, { force = true })
    Post = ar.Model{ name = "PmPost", table = "pm_posts", backend = db,
      fields = { id = "integer", title = "string" },
      relations = { comments = ar.has_many("PmComment", { as = "commentable", order_by = "id",
                                                          dependent = "destroy" }) } }
    Photo = ar.Model{ name = "PmPhoto", table = "pm_photos", backend = db,
      fields = { id = "integer", url = "string" },
      relations = { comments = ar.has_many("PmComment", { as = "commentable", order_by = "id" }) } }
    Comment = ar.Model{ name = "PmComment", table = "pm_comments", backend = db,
      fields = { id = "integer", commentable_type = "string", commentable_id = "integer", body = "string" },
      relations = { commentable = ar.belongs_to("commentable", { polymorphic = true }) } }
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
  end)

  it("the owner's query sets key and type; each owner sees only its own comments", function()
    local post, photo = Post:create{ title = "p" }, Photo:create{ url = "u" }
    -- the same id under two types
    db:execute("UPDATE pm_photos SET id = ? WHERE id = ?", post.id, photo.id)
    photo = Photo:find(post.id)
    local c = post:comments_query():create{ body = "on post" }
    photo:comments_query():create{ body = "on photo" }
    assert.equal("PmPost", c.commentable_type)
    assert.equal(post.id, c.commentable_id)
    assert.equal(1, #post:comments())
    assert.equal("on post", post:comments()[1].body)
    assert.equal("on photo", photo:comments()[1].body)
    assert.equal("p", c:commentable().title)
  end)

  it("assignment sets both columns; an unsaved target is saved first; nil clears both", function()
    local c = Comment:new{ body = "x" }
    local photo = Photo:new{ url = "new" }
    c.commentable = photo
    c:save()
    assert.is_false(photo:is_new())
    local row = db:query("SELECT commentable_type, commentable_id FROM pm_comments")[1]
    assert.equal("PmPhoto", row.commentable_type)
    assert.equal(photo.id, row.commentable_id)
    assert.equal(photo, c:commentable())
    local post = Post:create{ title = "p" }
    c.commentable = post
    assert.equal("PmPost", c.commentable_type)
    assert.equal(post, c:commentable())
    c.commentable = nil
    assert.is_nil(c.commentable_type)
    assert.is_nil(c.commentable_id)
    assert.is_nil(c:commentable())
  end)

  it("eager loading issues one query per owner type", function()
    for i = 1, 3 do
      Post:create{ title = "p" .. i }:comments_query():create{ body = "c" .. i }
      Photo:create{ url = "u" .. i }:comments_query():create{ body = "d" .. i }
    end
    local list
    local n = selects(function() list = Comment:query():order_by("id"):with("commentable"):all() end)
    assert.equal(3, n) -- the comments, the posts, the photos
    local none = selects(function()
      for _, c in ipairs(list) do
        local owner = c:commentable()
        assert.equal(c.commentable_type, owner:model().name)
        assert.equal(c.commentable_id, owner.id)
      end
    end)
    assert.equal(0, none)
  end)

  it("eager loads the next level per model, and has_many as eager-loads by type", function()
    local post = Post:create{ title = "p" }
    post:comments_query():create{ body = "a" }
    post:comments_query():create{ body = "b" }
    local photo = Photo:create{ url = "u" }
    photo:comments_query():create{ body = "c" }
    local posts
    assert.equal(2, selects(function() posts = Post:query():with("comments"):all() end))
    assert.equal(2, #posts[1]:comments())
    local comments = Comment:query():with("commentable.comments"):all()
    local n = 0
    for _, c in ipairs(comments) do n = n + #c:commentable():comments() end
    assert.equal(2 + 2 + 1, n)
  end)

  it("dependent = destroy on an as relation removes only that owner type's rows", function()
    local post = Post:create{ title = "p" }
    post:comments_query():create{ body = "a" }
    db:execute("UPDATE pm_photos SET id = id") -- (no photos)
    local photo = Photo:create{ url = "u" }
    db:execute("UPDATE pm_photos SET id = ? WHERE id = ?", post.id, photo.id)
    Photo:find(post.id):comments_query():create{ body = "keep" }
    post:delete()
    assert.equal(0, count_rows("pm_comments", "commentable_type = 'PmPost'"))
    assert.equal(1, count_rows("pm_comments", "commentable_type = 'PmPhoto'"))
  end)

  it("a type naming no model is a ConfigError; joins() is refused", function()
    db:execute("INSERT INTO pm_comments (commentable_type, commentable_id, body) VALUES ('Nope', 1, 'x')")
    local c = Comment:query():first()
    local ok, err = pcall(c.commentable, c)
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    ok, err = pcall(function() return Comment:query():joins("commentable"):all() end)
    assert.is_false(ok)
    assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
  end)

  it("with single-table inheritance the type names the base; records load as their class", function()
    ar.schema.create_table(db, "pm_vehicles", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("type", { size = 40, nullable = false })
    end, { force = true })
    local ok, err = pcall(function()
      local Vehicle = ar.Model{ name = "PmVehicle", table = "pm_vehicles", backend = db, inheritance_column = "type",
        fields = { id = "integer", type = "string" },
        relations = { comments = ar.has_many("PmComment", { as = "commentable" }) } }
      local Car = ar.Model{ extends = Vehicle, name = "PmCar" }
      local car = Car:create{}
      local c = Comment:new{ body = "vroom" }
      c.commentable = car
      c:save()
      assert.equal("PmVehicle", c.commentable_type)
      assert.equal(Car, Comment:query():with("commentable"):first():commentable():model())
      assert.equal(1, #Car:find(car.id):comments())
      assert.equal("PmVehicle", car:comments_query():create{ body = "x" }.commentable_type)
    end)
    ar.schema.drop_table(db, "pm_vehicles", { if_exists = true })
    if not ok then error(err, 0) end
  end)

  it("options are checked at definition", function()
    local ok, err = pcall(ar.belongs_to, "commentable", { polymorphic = "yes" })
    assert.is_false(ok)
    assert.matches("polymorphic", err.message)
    ok, err = pcall(ar.belongs_to, "commentable", { foreign_type = "kind" })
    assert.is_false(ok)
    assert.matches("polymorphic = true", err.message)
    ok = pcall(ar.has_many, "PmComment", { as = "bad name" })
    assert.is_false(ok)
  end)
end)

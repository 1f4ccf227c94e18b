-- Writing through relations (issue 16): belongs_to assignment, the
-- owner-aware query of has_many / has_one / has_many_through (build,
-- create, add, remove, clear), autosave of what waits for an unsaved owner
-- (one transaction: a child's failure leaves nothing written), the cached
-- accessor following every write, and dependent = "destroy" running the
-- children's events inside the owner's transaction.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/relation"

describe("relation writes", function()
  local scenario = testsuite.default_scenario()
  local db
  local Writer, Article, Label
  local deleted -- ids of notes whose delete events ran
  local TABLES = { "wr_article_labels", "wr_labels", "wr_notes", "wr_profiles", "wr_articles", "wr_writers" }

  local function count_rows(t, where, ...)
    return db:query("SELECT COUNT(*) AS n FROM " .. t .. (where and (" WHERE " .. where) or ""), ...)[1].n
  end

  local function error_of(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error")
    return err
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    local S = ar.schema
    S.create_table(db, "wr_writers", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50, nullable = false })
    end, { force = true })
    S.create_table(db, "wr_articles", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("writer_id", { index = true })
      t:string("title", { size = 50, nullable = false })
    end, { force = true })
    S.create_table(db, "wr_notes", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("article_id", { index = true })
      t:string("body", { size = 50, nullable = false })
    end, { force = true })
    S.create_table(db, "wr_profiles", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("writer_id", { index = true })
      t:string("bio", { size = 50 })
    end, { force = true })
    S.create_table(db, "wr_labels", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50, nullable = false })
    end, { force = true })
    S.create_table(db, "wr_article_labels", function(t)
      t:bigint("article_id", { nullable = false })
      t:bigint("label_id", { nullable = false })
      t:integer("position")
      t:primary_key({ "article_id", "label_id" })
    end, { force = true })
    Writer = ar.Model{ name = "WrWriter", table = "wr_writers", backend = db,
      fields = { id = "integer", name = { type = "string", required = true } },
      relations = {
        articles = ar.has_many("WrArticle", { foreign_key = "writer_id", dependent = "destroy", order_by = "id" }),
        profile = ar.has_one("WrProfile", { foreign_key = "writer_id" }),
      } }
    Article = ar.Model{ name = "WrArticle", table = "wr_articles", backend = db,
      fields = { id = "integer", writer_id = "integer", title = { type = "string", required = true } },
      relations = {
        writer = ar.belongs_to("WrWriter", { foreign_key = "writer_id" }),
        notes = ar.has_many("WrNote", { foreign_key = "article_id", dependent = "destroy", order_by = "id" }),
        labels = ar.has_many_through("WrLabel", { through = "wr_article_labels", source_key = "article_id",
                                                  target_key = "label_id", order_by = "id" }),
      } }
    ar.Model{ name = "WrNote", table = "wr_notes", backend = db,
      fields = { id = "integer", article_id = "integer", body = { type = "string", required = true } },
      events = {
        after_delete = function(rec) deleted[#deleted + 1] = rec.id end,
        before_delete = function(rec)
          if rec.body == "undeletable" then error("this note stays") end
        end,
      } }
    Label = ar.Model{ name = "WrLabel", table = "wr_labels", backend = db,
      fields = { id = "integer", name = { type = "string", required = true } } }
    ar.Model{ name = "WrProfile", table = "wr_profiles", backend = db,
      fields = { id = "integer", writer_id = "integer", bio = "string" } }
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    deleted = {}
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
  end)

  describe("belongs_to assignment", function()
    it("sets the key from a saved owner, and nil clears it", function()
      local ann = Writer:create{ name = "Ann" }
      local a = Article:create{ title = "t" }
      a.writer = ann
      assert.equal(ann.id, a.writer_id)
      assert.equal(ann, a:writer())
      a:save()
      assert.equal(ann.id, db:query("SELECT writer_id FROM wr_articles WHERE id = ?", a.id)[1].writer_id)
      a.writer = nil
      assert.is_nil(a.writer_id)
      assert.is_nil(a:writer())
      a:save()
      assert.equal(1, count_rows("wr_articles", "writer_id IS NULL"))
    end)

    it("saves an unsaved owner first, in the same transaction as the record", function()
      local ann = Writer:new{ name = "Ann" }
      local a = Article:new{ title = "first" }
      a.writer = ann
      assert.equal(ann, a:writer()) -- the waiting owner answers before any save
      a:save()
      assert.is_false(ann:is_new())
      assert.equal(ann.id, a.writer_id)
      assert.equal(ann.id, db:query("SELECT writer_id FROM wr_articles")[1].writer_id)
    end)

    it("an invalid record leaves its new owner unwritten too", function()
      local ann = Writer:new{ name = "Ann" }
      local a = Article:new{ title = "x" }
      a.writer = ann
      a.title = nil
      local err = error_of(a.save, a)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.equal(0, count_rows("wr_writers"))
      assert.is_true(ann:is_new())
      -- fixed, the next save writes both
      a.title = "x"
      a:save()
      assert.equal(1, count_rows("wr_writers"))
      assert.equal(ann.id, a.writer_id)
    end)

    it("new and create take the relation's name too", function()
      local ann = Writer:create{ name = "Ann" }
      local a = Article:create{ writer = ann, title = "t" }
      assert.equal(ann.id, a.writer_id)
      assert.equal(ann, a:writer())
      local b = Article:create{ writer = Writer:new{ name = "Bob" }, title = "u" }
      assert.equal(2, count_rows("wr_writers"))
      assert.equal(b.writer_id, db:query("SELECT id FROM wr_writers WHERE name = 'Bob'")[1].id)
      local err = error_of(Article.new, Article, { writer = { id = ann.id }, title = "x" })
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)

    it("refuses what is not a record of the target, and a decoded JSON body", function()
      local a = Article:new{ title = "t" }
      local err = error_of(function() a.writer = { id = 1, name = "mallory" } end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("WrWriter record", err.message)
      err = error_of(function() a.writer = Label:new{ name = "x" } end)
      assert.matches("got a WrLabel", err.message)
      assert.is_nil(a.writer_id)
    end)

    it("the accessor loads again once the key names another owner", function()
      local ann, bob = Writer:create{ name = "Ann" }, Writer:create{ name = "Bob" }
      local a = Article:create{ title = "t", writer_id = ann.id }
      assert.equal("Ann", a:writer().name)
      a.writer_id = bob.id
      assert.equal("Bob", a:writer().name)
    end)
  end)

  describe("has_many through its query", function()
    it("build: an unsaved child with the key; create: saved; both in the cached list", function()
      local ann = Writer:create{ name = "Ann" }
      assert.same({}, ann:articles())
      local built = ann:articles_query():build{ title = "draft" }
      assert.is_true(built:is_new())
      assert.equal(ann.id, built.writer_id)
      local made = ann:articles_query():create{ title = "live" }
      assert.is_false(made:is_new())
      assert.equal(1, count_rows("wr_articles"))
      local list = ann:articles()
      assert.equal(2, #list)
      assert.equal(built, list[1])
      assert.equal(made, list[2])
      -- the owner's save saves the built one
      ann:save()
      assert.is_false(built:is_new())
      assert.equal(2, count_rows("wr_articles", "writer_id = ?", ann.id))
    end)

    it("the owner's key wins over attributes that name another owner (a request body)", function()
      local ann, bob = Writer:create{ name = "Ann" }, Writer:create{ name = "Bob" }
      local a = ann:articles_query():create{ title = "mine", writer_id = bob.id }
      assert.equal(ann.id, a.writer_id)
      local b = ann:articles_query():build{ title = "also mine", writer_id = bob.id }
      assert.equal(ann.id, b.writer_id)
      assert.equal(0, bob:articles_query():count())
    end)

    it("keeps the query's builder steps and its owner", function()
      local ann = Writer:create{ name = "Ann" }
      ann:articles_query():create{ title = "a" }
      ann:articles_query():create{ title = "b" }
      Article:create{ title = "a" }
      local q = ann:articles_query():where{ title = "a" }
      assert.equal(1, q:count())
      local c = q:create{ title = "c" }
      assert.equal(ann.id, c.writer_id)
    end)

    it("create on an unsaved owner says to save it first", function()
      local ann = Writer:new{ name = "Ann" }
      local err = error_of(function() return ann:articles_query():create{ title = "x" } end)
      assert.is_true(ar.errors.is(err, "QueryError"))
      assert.matches("not saved yet", err.message)
      assert.equal(0, count_rows("wr_articles"))
    end)

    it("add sets the key and saves; remove clears it (nullify) and the cache follows", function()
      local ann = Writer:create{ name = "Ann" }
      local stray = Article:create{ title = "stray" }
      local Plain = ar.Model{ name = "WrPlainWriter", table = "wr_writers", backend = db,
        relations = { articles = ar.has_many("WrArticle", { foreign_key = "writer_id" }) } }
      local owner = Plain:find(ann.id)
      assert.same({}, owner:articles())
      owner:articles_query():add(stray)
      assert.equal(ann.id, db:query("SELECT writer_id FROM wr_articles WHERE id = ?", stray.id)[1].writer_id)
      assert.equal(1, #owner:articles())
      owner:articles_query():remove(stray)
      assert.equal(0, #owner:articles())
      assert.equal(1, count_rows("wr_articles", "writer_id IS NULL"))
      assert.equal(1, count_rows("wr_articles"))
    end)

    it("remove refuses a record of another owner", function()
      local ann, bob = Writer:create{ name = "Ann" }, Writer:create{ name = "Bob" }
      local bobs = bob:articles_query():create{ title = "bob's" }
      local err = error_of(function() return ann:articles_query():remove(bobs) end)
      assert.matches("does not belong", err.message)
      assert.equal(bob.id, db:query("SELECT writer_id FROM wr_articles")[1].writer_id)
    end)

    it("remove and clear with dependent = destroy delete through the model (events run)", function()
      local a = Article:create{ title = "t" }
      local n1 = a:notes_query():create{ body = "one" }
      a:notes_query():create{ body = "two" }
      a:notes_query():create{ body = "three" }
      a:notes_query():remove(n1)
      assert.same({ n1.id }, deleted)
      assert.equal(2, #a:notes())
      assert.equal(2, a:notes_query():clear())
      assert.equal(3, #deleted)
      assert.equal(0, count_rows("wr_notes"))
      assert.same({}, a:notes())
    end)

    it("clear without dependent nullifies in one statement", function()
      local ann = Writer:create{ name = "Ann" }
      local Plain = ar.Model{ name = "WrPlainWriter2", table = "wr_writers", backend = db,
        relations = { articles = ar.has_many("WrArticle", { foreign_key = "writer_id" }) } }
      local owner = Plain:find(ann.id)
      owner:articles_query():create{ title = "a" }
      owner:articles_query():create{ title = "b" }
      assert.equal(2, owner:articles_query():clear())
      assert.equal(2, count_rows("wr_articles", "writer_id IS NULL"))
      assert.same({}, owner:articles())
    end)

    it("add refuses what is not a record of the target", function()
      local ann = Writer:create{ name = "Ann" }
      local err = error_of(function() return ann:articles_query():add({ title = "x", writer_id = 99 }) end)
      assert.is_true(ar.errors.is(err, "QueryError"))
      assert.equal(0, count_rows("wr_articles"))
    end)
  end)

  describe("has_one assignment", function()
    it("links the new one, clears the one it replaces, and nil clears it", function()
      local ann = Writer:create{ name = "Ann" }
      local first = ann:profile_query():create{ bio = "first" }
      local Profile = first:model()
      local second = Profile:new{ bio = "second" }
      ann.profile = second
      assert.is_false(second:is_new())
      assert.equal(ann.id, second.writer_id)
      assert.is_nil(Profile:find(first.id).writer_id)
      assert.equal(second, ann:profile())
      ann.profile = nil
      assert.equal(0, count_rows("wr_profiles", "writer_id IS NOT NULL"))
      assert.is_nil(ann:profile())
      assert.is_nil(ann:profile{ reload = true })
    end)

    it("on an unsaved owner waits for its save", function()
      local bob = Writer:new{ name = "Bob" }
      local Profile = Writer.relations.profile:target()
      local p = Profile:new{ bio = "hi" }
      bob.profile = p
      assert.is_true(p:is_new())
      bob:save()
      assert.equal(bob.id, db:query("SELECT writer_id FROM wr_profiles")[1].writer_id)
    end)
  end)

  describe("autosave", function()
    it("saves an unsaved owner and its built children in one transaction", function()
      local ann = Writer:new{ name = "Ann" }
      local a1 = ann:articles_query():build{ title = "one" }
      local a2 = ann:articles_query():build{ title = "two" }
      assert.equal(2, #ann:articles())
      ann:save()
      assert.equal(2, count_rows("wr_articles", "writer_id = ?", ann.id))
      assert.equal(ann.id, a1.writer_id)
      assert.is_false(a2:is_new())
      -- saved once: a second save writes nothing more
      ann:save()
      assert.equal(2, count_rows("wr_articles"))
    end)

    it("a child's validation failure rolls back the owner and every child", function()
      local ann = Writer:new{ name = "Ann" }
      local ok_child = ann:articles_query():build{ title = "fine" }
      local bad = ann:articles_query():build{}
      local err = error_of(ann.save, ann)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.equal(0, count_rows("wr_writers"))
      assert.equal(0, count_rows("wr_articles"))
      assert.is_true(ann:is_new())
      assert.is_true(ok_child:is_new())
      -- fixed, it all goes in
      bad.title = "now fine"
      ann:save()
      assert.equal(1, count_rows("wr_writers"))
      assert.equal(2, count_rows("wr_articles", "writer_id = ?", ann.id))
    end)

    it("add on an unsaved owner waits for its save; has_one build too", function()
      local ann = Writer:new{ name = "Ann" }
      local stray = Article:create{ title = "stray" }
      ann:articles_query():add(stray)
      local p = ann:profile_query():build{ bio = "hi" }
      assert.equal(p, ann:profile())
      assert.is_nil(db:query("SELECT writer_id FROM wr_articles")[1].writer_id)
      ann:save()
      assert.equal(ann.id, db:query("SELECT writer_id FROM wr_articles")[1].writer_id)
      assert.equal(ann.id, db:query("SELECT writer_id FROM wr_profiles")[1].writer_id)
    end)

    it("a failure inside an outer transaction rolls back with it", function()
      local ann = Writer:new{ name = "Ann" }
      ann:articles_query():build{ title = "one" }
      local ok = pcall(db.transaction, db, function()
        ann:save()
        error("the caller gives up")
      end)
      assert.is_false(ok)
      assert.equal(0, count_rows("wr_writers"))
      assert.equal(0, count_rows("wr_articles"))
      -- the records are new again, and the built child waits again
      assert.is_true(ann:is_new())
      ann:save()
      assert.equal(1, count_rows("wr_articles", "writer_id = ?", ann.id))
    end)
  end)

  describe("has_many_through through its query", function()
    it("add inserts the join row with its attributes; remove and clear delete join rows only", function()
      local a = Article:create{ title = "t" }
      local red, blue = Label:create{ name = "red" }, Label:create{ name = "blue" }
      a:labels_query():add(red, { position = 2 })
      a:labels_query():add(blue)
      assert.equal(2, db:query("SELECT position FROM wr_article_labels WHERE label_id = ?", red.id)[1].position)
      assert.equal(2, #a:labels())
      a:labels_query():remove(red)
      assert.equal(1, #a:labels())
      assert.equal(1, count_rows("wr_article_labels"))
      assert.equal(1, a:labels_query():clear())
      assert.equal(0, count_rows("wr_article_labels"))
      assert.equal(2, count_rows("wr_labels"))
      assert.same({}, a:labels())
    end)

    it("create saves the target and links it; build and add wait for an unsaved owner", function()
      local a = Article:create{ title = "t" }
      local green = a:labels_query():create({ name = "green" }, { position = 1 })
      assert.is_false(green:is_new())
      assert.equal(1, count_rows("wr_article_labels", "label_id = ? AND position = 1", green.id))
      local b = Article:new{ title = "new" }
      local built = b:labels_query():build{ name = "built" }
      b:labels_query():add(green, { position = 5 })
      assert.equal(0, count_rows("wr_article_labels", "position = 5"))
      b:save()
      assert.is_false(built:is_new())
      assert.equal(2, count_rows("wr_article_labels", "article_id = ?", b.id))
      assert.equal(2, #b:labels{ reload = true })
    end)

    it("refuses join attributes that are tables (a decoded request body) before any SQL", function()
      local a = Article:create{ title = "t" }
      local red = Label:create{ name = "red" }
      local err = error_of(function() return a:labels_query():add(red, { position = { 1 } }) end)
      assert.is_true(ar.errors.is(err, "QueryError"))
      err = error_of(function() return a:labels_query():add(red, { article_id = 7 }) end)
      assert.is_true(ar.errors.is(err, "QueryError"))
      assert.equal(0, count_rows("wr_article_labels"))
    end)
  end)

  describe("over a composite key", function()
    it("build, create, remove and assignment set and clear every key part", function()
      ar.schema.create_table(db, "wr_lines", function(t)
        t:bigint("order_id", { nullable = false })
        t:integer("line_no", { nullable = false })
        t:string("sku", { size = 20 })
        t:primary_key({ "order_id", "line_no" })
      end, { force = true })
      ar.schema.create_table(db, "wr_line_notes", function(t)
        t:bigint("id", { primary_key = true, auto_increment = true })
        t:bigint("order_id")
        t:integer("line_no")
        t:string("body", { size = 20 })
      end, { force = true })
      local Line = ar.Model{ name = "WrLine", table = "wr_lines", backend = db, primary_key = { "order_id", "line_no" },
        fields = { order_id = "integer", line_no = "integer", sku = "string" },
        relations = { notes = ar.has_many("WrLineNote", { foreign_key = { "order_id", "line_no" } }) } }
      local LineNote = ar.Model{ name = "WrLineNote", table = "wr_line_notes", backend = db,
        fields = { id = "integer", order_id = "integer", line_no = "integer", body = "string" },
        relations = { line = ar.belongs_to("WrLine", { foreign_key = { "order_id", "line_no" } }) } }
      local ok, err = pcall(function()
        local line = Line:new{ order_id = 7, line_no = 2, sku = "x" }
        local n1 = line:notes_query():build{ body = "one" }
        line:save()
        assert.same({ 7, 2 }, { n1.order_id, n1.line_no })
        local other = Line:create{ order_id = 7, line_no = 3, sku = "y" }
        local waiting = Line:new{ order_id = 8, line_no = 1, sku = "z" }
        local n0 = LineNote:new{ body = "zero" }
        n0.line = waiting
        assert.equal(waiting, n0:line()) -- before any save
        n0:save()
        assert.is_false(waiting:is_new())
        assert.same({ 8, 1 }, { n0.order_id, n0.line_no })
        local n2 = LineNote:new{ body = "two" }
        n2.line = line
        n2:save()
        assert.same({ 7, 2 }, { n2.order_id, n2.line_no })
        assert.equal(2, #line:notes())
        assert.equal(0, #other:notes())
        line:notes_query():remove(n2)
        assert.same({}, db:query("SELECT order_id FROM wr_line_notes WHERE body = 'two' AND order_id IS NOT NULL"))
        assert.equal(1, #line:notes())
        n2.line = other
        n2:save()
        assert.same({ 7, 3 }, { n2.order_id, n2.line_no })
      end)
      ar.schema.drop_table(db, "wr_line_notes", { if_exists = true })
      ar.schema.drop_table(db, "wr_lines", { if_exists = true })
      if not ok then error(err, 0) end
    end)
  end)

  describe("dependent = destroy", function()
    it("deletes each child through its model, its own dependents too", function()
      local ann = Writer:create{ name = "Ann" }
      local a = ann:articles_query():create{ title = "a" }
      local n1 = a:notes_query():create{ body = "one" }
      local n2 = a:notes_query():create{ body = "two" }
      ann:delete()
      table.sort(deleted)
      assert.same({ n1.id, n2.id }, deleted)
      assert.equal(0, count_rows("wr_writers"))
      assert.equal(0, count_rows("wr_articles"))
      assert.equal(0, count_rows("wr_notes"))
    end)

    it("soft_delete's hard_delete runs its dependents in its transaction too", function()
      db:execute("ALTER TABLE wr_writers ADD COLUMN deleted_at DATETIME(6) NULL")
      local ok, err = pcall(function()
        local Soft = ar.Model{ name = "WrSoftWriter", table = "wr_writers", backend = db, mixins = { "soft_delete" },
          fields = { id = "integer", name = "string" },
          relations = { articles = ar.has_many("WrArticle", { foreign_key = "writer_id", dependent = "destroy" }) } }
        local w = Soft:create{ name = "soft" }
        Article:create{ writer_id = w.id, title = "first" }:notes_query():create{ body = "fine" }
        Article:create{ writer_id = w.id, title = "second" }:notes_query():create{ body = "undeletable" }
        local hard_ok = pcall(w.hard_delete, w)
        assert.is_false(hard_ok)
        -- the first article and its note, deleted before the failure, are back
        assert.equal(1, count_rows("wr_writers"))
        assert.equal(2, count_rows("wr_articles"))
        assert.equal(2, count_rows("wr_notes"))
        db:execute("UPDATE wr_notes SET body = 'fine'")
        w:hard_delete()
        assert.equal(0, count_rows("wr_writers"))
        assert.equal(0, count_rows("wr_articles"))
        assert.equal(0, count_rows("wr_notes"))
      end)
      db:execute("ALTER TABLE wr_writers DROP COLUMN deleted_at")
      if not ok then error(err, 0) end
    end)

    it("a child's handler that raises leaves the owner and every child in place", function()
      local ann = Writer:create{ name = "Ann" }
      local a = ann:articles_query():create{ title = "a" }
      a:notes_query():create{ body = "one" }
      a:notes_query():create{ body = "undeletable" }
      local err = error_of(ann.delete, ann)
      assert.matches("this note stays", tostring(err))
      assert.equal(1, count_rows("wr_writers"))
      assert.equal(1, count_rows("wr_articles"))
      assert.equal(2, count_rows("wr_notes"))
      assert.is_false(ann:is_new())
      assert.is_false(a:is_new())
    end)
  end)
end)

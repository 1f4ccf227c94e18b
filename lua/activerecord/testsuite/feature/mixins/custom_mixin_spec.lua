-- A user's own mixins, registered with ar.register_mixin, work exactly like
-- the built-ins: fields, events, scopes, a default scope (removable with
-- unscope/unscoped), methods, class methods, options, write guards and a
-- setup hook; and they combine with the built-ins on one model.
local ar = require("activerecord")
local registry = require("activerecord.registry")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

-- publishable: a slug made from the title, published_at, an `archived`
-- flag hidden by default, and the scopes and methods to go with them.
local function slugify(s) return (s:lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")) end

local publishable = {
  fields = {
    slug = { type = "string" },
    published_at = { type = "datetime" },
    archived = { type = "boolean", default = false, nullable = false },
  },
  events = {
    before_save = function(rec)
      if rec.slug == nil and rec.title ~= nil then rec.slug = slugify(rec.title) end
    end,
  },
  scopes = {
    published = function(q) return q:is_not_null("published_at") end,
    drafts = function(q) return q:is_null("published_at") end,
    with_archived = function(q) return q:unscope("not_archived") end,
  },
  default_scopes = {
    not_archived = function(q) return q:where{ archived = false } end,
  },
  methods = {
    publish = function(rec, at)
      rec.published_at = at or "2026-01-01 00:00:00"
      return rec:save()
    end,
    is_published = function(rec) return rec.published_at ~= nil end,
  },
  class_methods = {
    find_by_slug = function(cls, slug) return cls:find_by{ slug = slug } end,
  },
}

-- tenant: a mixin with options (a function of them, like uuid's): rows
-- carry tenant_id, queries see only the tenant's rows, and every UPDATE and
-- DELETE is guarded by the tenant too. setup() records the models using it.
local tenant_models = {}
local function tenant(opts)
  local id = assert(opts.id, "tenant mixin needs { id = ... }")
  return {
    options = { id = "number" }, -- the options it takes (others are refused)
    -- its default: the column's own (0) would fill new records otherwise
    fields = { tenant_id = { type = "integer", nullable = false, default = id } },
    -- before_validate, not before_create: tenant_id is required, and
    -- validation runs before the save events
    events = {
      before_validate = function(rec) if rec:is_new() and rec.tenant_id == nil then rec.tenant_id = id end end,
    },
    default_scopes = { tenant = function(q) return q:where{ tenant_id = id } end },
    write_guards = function() return "tenant_id", id end,
    setup = function(model) tenant_models[#tenant_models + 1] = model.name end,
  }
end

describe("a user-written mixin", function()
  local scenario = testsuite.default_scenario()
  local db
  local Article

  local function raw(sql, ...) return db:query(sql, ...) end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_custom_articles", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("tenant_id", { nullable = false, default = 0 })
      t:string("title", { size = 100, nullable = false })
      t:string("slug", { size = 100 })
      t:datetime("published_at", { precision = 6 })
      t:boolean("archived", { nullable = false, default = false })
      t:datetime("created_at", { precision = 6 })
      t:datetime("updated_at", { precision = 6 })
      t:datetime("deleted_at", { precision = 6 })
    end, { force = true })
    ar.register_mixin("publishable", publishable)
    ar.register_mixin("tenant", tenant)
    Article = ar.Model{ name = "CustomArticle", table = "mx_custom_articles", backend = db,
      mixins = { "publishable" }, fields = { id = "integer", title = "string" } }
  end)

  teardown(function()
    ar.schema.drop_table(db, "mx_custom_articles", { if_exists = true })
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM mx_custom_articles")
  end)

  it("is registered where the built-ins are", function()
    assert.are.equal(publishable, registry.mixin("publishable"))
    for _, name in ipairs({ "timestamps", "soft_delete", "optimistic_lock", "uuid" }) do
      assert.is_not_nil(registry.mixin(name), name)
    end
  end)

  it("adds its fields, with their defaults and casts", function()
    local a = Article.new{ title = "Hello" }
    assert.is_false(a.archived)
    a.published_at = "2026-02-03T04:05:06"
    assert.are.equal("2026-02-03 04:05:06", a.published_at)
  end)

  it("runs its events", function()
    local a = Article:create{ title = "Hello, World!" }
    assert.are.equal("hello-world", a.slug)
    assert.are.equal("hello-world", raw("SELECT slug FROM mx_custom_articles")[1].slug)
    local b = Article:create{ title = "Same", slug = "custom" }
    assert.are.equal("custom", b.slug)
  end)

  it("gives the model its scopes, chainable from the class and from queries", function()
    local a = Article:create{ title = "A" }
    Article:create{ title = "B" }
    a:publish()
    assert.is_true(a:is_published())
    assert.are.same({ "A" }, Article:published():pluck("title"))
    assert.are.same({ "B" }, Article:drafts():pluck("title"))
    assert.are.same({ "A" }, Article:where{ slug = "a" }:published():pluck("title"))
    assert.are.equal(0, Article:query():drafts():where{ title = "A" }:count())
  end)

  it("applies its default scope to every query, removable by name or altogether", function()
    Article:create{ title = "live" }
    local old = Article:create{ title = "old" }
    old:update{ archived = true }
    assert.are.same({ "live" }, Article:query():pluck("title"))
    assert.is_nil(Article:find(old.id))
    assert.are.equal(1, Article:query():count())
    assert.are.equal(2, Article:with_archived():count())
    assert.are.equal(2, Article:query():unscope("not_archived"):count())
    assert.are.equal(2, Article:unscoped():count())
  end)

  it("adds its class methods", function()
    Article:create{ title = "Find Me" }
    assert.are.equal("Find Me", Article:find_by_slug("find-me").title)
  end)

  it("combines with the built-ins on one model", function()
    local Combo = ar.Model{ name = "CustomCombo", table = "mx_custom_articles", backend = db,
      mixins = { "timestamps", "soft_delete", "publishable" }, fields = { id = "integer", title = "string" } }
    local a = Combo:create{ title = "Both Worlds" }
    assert.are.equal("both-worlds", a.slug)
    assert.is_not_nil(a.created_at)
    local b = Combo:create{ title = "Archived" }
    b:update{ archived = true }
    local c = Combo:create{ title = "Deleted" }
    c:delete()
    -- both default scopes apply, and each can be lifted on its own
    assert.are.same({ "Both Worlds" }, Combo:query():pluck("title"))
    assert.are.same({ "Archived", "Both Worlds" }, Combo:with_archived():order_by("title"):pluck("title"))
    assert.are.same({ "Both Worlds", "Deleted" }, Combo:with_deleted():order_by("title"):pluck("title"))
    assert.are.equal(3, Combo:with_deleted():with_archived():count())
  end)

  it("takes options, guards writes and runs its setup hook", function()
    local T7 = ar.Model{ name = "CustomT7", table = "mx_custom_articles", backend = db,
      mixins = { { "tenant", { id = 7 } } }, fields = { id = "integer", title = "string" } }
    local T8 = ar.Model{ name = "CustomT8", table = "mx_custom_articles", backend = db,
      mixins = { { "tenant", { id = 8 } } }, fields = { id = "integer", title = "string" } }
    assert.are.same({ "CustomT7", "CustomT8" }, { tenant_models[#tenant_models - 1], tenant_models[#tenant_models] })
    local mine = T7:create{ title = "seven" }
    T8:create{ title = "eight" }
    assert.are.equal(7, mine.tenant_id)
    assert.are.same({ "seven" }, T7:query():pluck("title"))
    assert.are.same({ "eight" }, T8:query():pluck("title"))
    assert.is_nil(T8:find(mine.id))
    -- a record of tenant 7 handed to tenant 8's model cannot be written by it
    local foreign = T8:unscoped():where{ title = "seven" }:first()
    assert.are.equal(7, foreign.tenant_id)
    foreign.title = "hijacked"
    local sqls = {}
    local stop = testsuite.listen(db, function(e) sqls[#sqls + 1] = e.sql end)
    local err = testsuite.error_of(foreign.save, foreign)
    stop()
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.matches("tenant_id", sqls[1], 1, true)
    assert.are.equal("seven", raw("SELECT title FROM mx_custom_articles WHERE id = ?", mine.id)[1].title)
  end)

  it("is checked like a built-in: unknown names and keys are refused", function()
    local err = testsuite.error_of(ar.Model, { name = "Bad1", table = "mx_custom_articles", backend = db,
      mixins = { "no_such_mixin" } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("no_such_mixin", tostring(err), 1, true)
    ar.register_mixin("typo", { feilds = {} })
    err = testsuite.error_of(ar.Model, { name = "Bad2", table = "mx_custom_articles", backend = db,
      mixins = { "typo" } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    assert.matches("feilds", tostring(err), 1, true)
    ar.register_mixin("bad_event", { events = { before_sav = function() end } })
    err = testsuite.error_of(ar.Model, { name = "Bad3", table = "mx_custom_articles", backend = db,
      mixins = { "bad_event" } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
  end)

  it("can be given inline, without registering", function()
    local calls = 0
    local Inline = ar.Model{ name = "CustomInline", table = "mx_custom_articles", backend = db,
      mixins = { { events = { after_create = function() calls = calls + 1 end } } },
      fields = { id = "integer", title = "string" } }
    Inline:create{ title = "inline" }
    assert.are.equal(1, calls)
  end)
end)

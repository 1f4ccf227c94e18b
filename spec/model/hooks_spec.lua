-- The public hook API mixins extend models with (activerecord.model.hooks),
-- without a server: additions after the definition reach the model's class,
-- its queries and its records at once.
local ar = require("activerecord")
local model = require("activerecord.model")

local hooks = model.hooks

local fake_backend = require("model.fake_backend")

describe("model.hooks", function()
  local db, M
  before_each(function()
    db = fake_backend()
    M = ar.Model{ name = "SpecHooks", table = "hooked", backend = db,
      fields = { id = "integer", name = "string", tenant = "integer" } }
  end)

  it("add_scope: Model:name() and q:name() after the definition", function()
    hooks.add_scope(M, "named", function(q, n) return q:where{ name = n } end)
    assert.are.equal("SELECT * FROM `hooked` WHERE (`name` = ?)", (M:named("a"):to_sql()))
    assert.are.equal("SELECT * FROM `hooked` WHERE (`id` = ?) AND (`name` = ?)",
      (M:where{ id = 1 }:named("a"):to_sql()))
  end)

  it("a query method of the query class keeps precedence over a scope of its name", function()
    hooks.add_scope(M, "limit", function() error("not called") end)
    assert.are.equal("SELECT * FROM `hooked` LIMIT ?", (M:limit(1):to_sql()))
  end)

  it("add_query_method, add_method, add_class_method", function()
    hooks.add_query_method(M, "ten", function(q) return q:limit(10) end)
    hooks.add_method(M, "shout", function(rec) return rec.name:upper() end)
    hooks.add_class_method(M, "label", function(cls) return "model " .. cls.name end)
    assert.are.equal("SELECT * FROM `hooked` LIMIT ?", (M:ten():to_sql()))
    assert.are.equal("SELECT * FROM `hooked` WHERE (`id` = ?) LIMIT ?", (M:where{ id = 1 }:ten():to_sql()))
    assert.are.equal("ANN", M.new{ name = "ann" }:shout())
    assert.are.equal("model SpecHooks", M:label())
  end)

  it("add_default_scope applies to every query, unscope drops it", function()
    hooks.add_default_scope(M, "tenant", function(q) return q:where{ tenant = 7 } end)
    assert.are.equal("SELECT * FROM `hooked` WHERE (`tenant` = ?)", (M:query():to_sql()))
    assert.are.equal("SELECT * FROM `hooked`", (M:query():unscope("tenant"):to_sql()))
  end)

  it("add_write_guard adds a condition to UPDATE and DELETE", function()
    hooks.add_write_guard(M, function(rec)
      if hooks.is_persisted(rec) then return "tenant", rec:old_value("tenant") end
    end)
    local r = M:create{ name = "a", tenant = 3 }
    r.name = "b"
    r:save()
    assert.are.equal("UPDATE `hooked` SET `name` = ? WHERE (`id` = ?) AND (`tenant` = ?)",
      db.executed[#db.executed].sql)
    hooks.delete_row(r)
    assert.are.equal("DELETE FROM `hooked` WHERE (`id` = ?) AND (`tenant` = ?)", db.executed[#db.executed].sql)
    assert.is_false(hooks.is_persisted(r))
  end)

  it("on, has_handlers, run_event; a mixin's setup gets the hooks", function()
    local seen = {}
    assert.is_false(hooks.has_handlers(M, "after_save"))
    hooks.on(M, "after_save", function(rec, n) seen[#seen + 1] = rec.name .. n end)
    assert.is_true(hooks.has_handlers(M, "after_save"))
    local r = M.new{ name = "x" }
    hooks.run_event(r, "after_save", 5)
    assert.are.same({ "x5" }, seen)
    local got
    ar.Model{ name = "SpecHooksSetup", table = "hooked2", backend = db,
      mixins = { { setup = function(m, h) got = { m, h } end } } }
    assert.are.equal(hooks, got[2])
    assert.are.equal("SpecHooksSetup", got[1].name)
  end)

  it("a record is one table: state and values in its array part, no hidden tables", function()
    local r = M.new{ name = "a" }
    local keys = 0
    for k in next, r do
      assert.are.equal("number", type(k))
      keys = keys + 1
    end
    assert.is_true(keys >= 4)
  end)
end)

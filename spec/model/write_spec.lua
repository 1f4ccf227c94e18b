-- The model layer's one write path (issue 13), without a server: a fake
-- backend records what the compiler is asked and what is executed. save,
-- update and delete compile the primary-key query once per column set (and
-- write guard), bind only values, and a validated JSON table is encoded once.
local ar = require("activerecord")
local json = require("activerecord.json")
local compiler = require("activerecord.backend.mysql.compiler")

local fake_backend = require("model.fake_backend")

local function last(db, prefix)
  for i = #db.executed, 1, -1 do
    local e = db.executed[i]
    if not prefix or e.sql:find("^" .. prefix) then return e end
  end
end

local function count(list, kind)
  local n = 0
  for _, k in ipairs(list) do if k == kind then n = n + 1 end end
  return n
end

describe("model writes through the compiler", function()
  local db, Item
  before_each(function()
    db = fake_backend()
    Item = ar.Model{ name = "SpecWriteItem", table = "items", backend = db,
      fields = { id = "integer", name = "string", score = "float", doc = "json" } }
  end)

  it("an INSERT is compiled once per column set; values are bound in field order", function()
    Item:create{ name = "a", score = 1.5 }
    Item:create{ name = "b", score = 2.5 }
    assert.are.equal(1, count(db.compiled, "insert"))
    assert.are.equal(compiler.insert(db.dialect, "items", { "name", "score" }, 1), last(db, "INSERT").sql)
    assert.are.same({ "b", 2.5, n = 2 }, last(db, "INSERT").params)
    -- the field it left out (doc) is read back by the primary-key query, compiled once too
    assert.are.equal(1, count(db.compiled, "select"))
    assert.are.equal("SELECT `id`, `doc` FROM `items` WHERE (`id` = ?)", last(db, "SELECT").sql)
    Item:create{ name = "c" }
    assert.are.equal(2, count(db.compiled, "insert"))
  end)

  it("an UPDATE is the primary-key query compiled once per changed column set", function()
    local a, b = Item:create{ name = "a" }, Item:create{ name = "b" }
    db.compiled = {}
    a.score = 1.0
    a:save()
    assert.are.equal("UPDATE `items` SET `score` = ? WHERE (`id` = ?)", last(db).sql)
    assert.are.same({ 1.0, a.id, n = 2 }, last(db).params)
    b.score = 2.0
    b:save()
    assert.are.same({ b.id }, { last(db).params[2] })
    assert.are.same({ "update" }, db.compiled)
    b.name, b.score = "bb", 3.0
    b:save()
    assert.are.equal("UPDATE `items` SET `name` = ?, `score` = ? WHERE (`id` = ?)", last(db).sql)
    assert.are.same({ "update", "update" }, db.compiled)
  end)

  it("a DELETE is the primary-key query compiled once", function()
    local a, b = Item:create{ name = "a" }, Item:create{ name = "b" }
    db.compiled = {}
    a:delete()
    b:delete()
    assert.are.equal("DELETE FROM `items` WHERE (`id` = ?)", last(db).sql)
    assert.are.same({ b.id, n = 1 }, last(db).params)
    assert.are.same({ "delete" }, db.compiled)
    assert.is_true(a:is_new())
  end)

  it("a write guard is one more condition; a write that matches no row is stale", function()
    local Locked = ar.Model{ name = "SpecWriteLocked", table = "locked", backend = db,
      mixins = { "optimistic_lock" }, fields = { id = "integer", name = "string" } }
    local r = Locked:create{ name = "a", version = 3 }
    r.name = "b"
    r:save()
    assert.are.equal("UPDATE `locked` SET `name` = ?, `version` = ? WHERE (`id` = ?) AND (`version` = ?)",
      last(db).sql)
    assert.are.same({ "b", 4, r.id, 3, n = 4 }, last(db).params)
    db.affected = 0
    r.name = "c"
    local ok, err = pcall(r.save, r)
    assert.is_false(ok)
    assert.are.equal("StaleObjectError", err.kind)
    ok, err = pcall(r.delete, r)
    assert.is_false(ok)
    assert.are.equal("StaleObjectError", err.kind)
    assert.are.equal("DELETE FROM `locked` WHERE (`id` = ?) AND (`version` = ?)", last(db).sql)
  end)

  it("a validated JSON table is encoded once per INSERT", function()
    local encode, n = json.encode, 0
    json.encode = function(v) n = n + 1 return encode(v) end
    local ok, err = pcall(function()
      local r = Item:create{ name = "a", doc = { x = 1 } }
      assert.are.equal('{"x":1}', last(db, "INSERT").params[1])
      assert.are.equal(1, n)
      r.doc = { x = 2 }
      r:save()
      assert.are.equal(2, n)
      Item:create({ name = "b", doc = { y = 1 } }, { validate = false }) -- no validation: encoded by the write
      assert.are.equal(3, n)
    end)
    json.encode = encode
    assert(ok, err)
  end)

  it("a before_save handler's in-place change of a JSON table is written", function()
    Item:on("before_save", function(rec) if rec.doc then rec.doc.seen = true end end)
    Item:create{ name = "a", doc = { x = 1 } }
    assert.are.same({ seen = true, x = 1 }, json.decode(last(db, "INSERT").params[1]))
  end)
end)

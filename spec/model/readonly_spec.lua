-- Read-only records against the real server: a record marked with
-- record.mark_readonly (what a readonly() query does) refuses save, update
-- and delete with ReadOnlyRecord before any SQL is sent.
local ar = require("activerecord")
local record = require("activerecord.record")
local support = require("support.db")

describe("model: read-only records", function()
  local db, sent
  local TABLE = "spec_readonly_items"

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if sent then sent[#sent + 1] = ev.sql end end })
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:execute("CREATE TABLE " .. TABLE .. " (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50)) ENGINE=InnoDB")
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:close()
  end)

  local Item = nil
  before_each(function()
    db:execute("DELETE FROM " .. TABLE)
    Item = Item or ar.Model{ name = "SpecReadonlyItem", table = TABLE, backend = db,
      fields = { id = { type = "integer", primary_key = true }, name = "string" } }
  end)

  local function names()
    local out = {}
    for _, r in ipairs(db:query("SELECT name FROM " .. TABLE .. " ORDER BY id")) do out[#out + 1] = r.name end
    return out
  end

  it("save, update and delete raise ReadOnlyRecord and send nothing", function()
    Item:create{ name = "a" }
    local rec = Item:find_by{ name = "a" }
    assert.is_false(record.is_readonly(rec))
    assert.are.equal(rec, record.mark_readonly(rec))
    assert.is_true(record.is_readonly(rec))
    sent = {}
    rec.name = "changed"
    for _, call in ipairs({
      function() return rec:save() end,
      function() return rec:update{ name = "other" } end,
      function() return rec:delete() end,
      function() return rec:save{ upsert = true } end,
    }) do
      local err = support.error_of(call)
      assert.are.equal("ReadOnlyRecord", err.kind)
      assert.are.equal("SpecReadonlyItem", err.model)
      assert.matches("SpecReadonlyItem", err.message)
      assert.matches("readonly%(%)", err.message)
    end
    local statements = sent
    sent = nil
    assert.are.same({}, statements)
    assert.are.same({ "a" }, names())
    assert.are.equal("changed", rec.name) -- update refused before assigning
  end)

  it("other records of the model are not affected; the mark stays across reload", function()
    local a, b = Item:create{ name = "a" }, Item:create{ name = "b" }
    record.mark_readonly(a)
    b:update{ name = "b2" }
    a:reload()
    assert.is_true(record.is_readonly(a))
    assert.are.equal("ReadOnlyRecord", support.error_of(a.delete, a).kind)
    assert.are.same({ "a", "b2" }, names())
  end)

  it("mark_readonly takes records only", function()
    assert.are.equal("ConfigError", support.error_of(record.mark_readonly, { 1 }).kind)
  end)
end)

-- The soft_delete mixin: delete() sets deleted_at and keeps the row;
-- default queries skip deleted rows; with_deleted(), only_deleted(),
-- restore(); destroy()/hard_delete() really delete.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

describe("mixin soft_delete", function()
  local scenario = testsuite.default_scenario()
  local db
  local Doc, Folder
  local a, b, c

  local function raw_count(where, ...)
    return db:query("SELECT COUNT(*) AS n FROM mx_sd_docs" .. (where and (" WHERE " .. where) or ""), ...)[1].n
  end

  local function titles(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.title end
    table.sort(out)
    return out
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_sd_folders", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50 })
    end, { force = true })
    ar.schema.create_table(db, "mx_sd_docs", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("folder_id", { index = true })
      t:string("title", { size = 100, nullable = false })
      t:datetime("deleted_at", { precision = 6 })
    end, { force = true })
    Doc = ar.Model{ name = "SdDoc", table = "mx_sd_docs", backend = db, mixins = { "soft_delete" },
      fields = { id = "integer", folder_id = "integer", title = { type = "string", required = true } },
      relations = { folder = ar.belongs_to("SdFolder", { foreign_key = "folder_id" }) } }
    Folder = ar.Model{ name = "SdFolder", table = "mx_sd_folders", backend = db,
      fields = { id = "integer", name = "string" },
      relations = { docs = ar.has_many("SdDoc", { foreign_key = "folder_id", order_by = "id" }) } }
  end)

  teardown(function()
    ar.schema.drop_table(db, "mx_sd_docs", { if_exists = true })
    ar.schema.drop_table(db, "mx_sd_folders", { if_exists = true })
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM mx_sd_docs")
    db:execute("DELETE FROM mx_sd_folders")
    local f = Folder:create{ name = "inbox" }
    a = Doc:create{ folder_id = f.id, title = "a" }
    b = Doc:create{ folder_id = f.id, title = "b" }
    c = Doc:create{ folder_id = f.id, title = "c" }
  end)

  it("delete() sets deleted_at and keeps the row", function()
    assert.is_false(b:is_deleted())
    local before = os.time()
    assert.are.equal(1, b:delete())
    assert.is_true(b:is_deleted())
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+$", b.deleted_at)
    assert.is_true(b.deleted_at:sub(1, 19) >= os.date("!%Y-%m-%d %H:%M:%S", before)) -- UTC
    assert.are.equal(3, raw_count())
    assert.are.equal(1, raw_count("deleted_at IS NOT NULL AND id = ?", b.id))
    -- it is an UPDATE, not a DELETE
    local _, events = testsuite.count_statements(db, function() c:delete() end)
    assert.are.equal(1, #events)
    assert.matches("^UPDATE", events[1].sql)
  end)

  it("hides deleted rows from default queries", function()
    b:delete()
    assert.are.same({ "a", "c" }, titles(Doc:all()))
    assert.are.same({ "a", "c" }, titles(Doc:query():all()))
    assert.is_nil(Doc:find(b.id))
    assert.is_nil(Doc:find_by{ title = "b" })
    assert.are.equal(2, Doc:query():count())
    assert.are.equal(0, Doc:where{ title = "b" }:count())
    assert.is_false(Doc:where{ title = "b" }:exists())
    assert.are.same({ "a", "c" }, Doc:query():order_by("id"):pluck("title"))
    assert.are.equal(a.id, Doc:query():first().id)
    local err = testsuite.error_of(Doc.find_or_fail, Doc, b.id)
    assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
  end)

  it("hides deleted rows from relations, lazy and eager", function()
    b:delete()
    local f = Folder:find_by{ name = "inbox" }
    assert.are.same({ "a", "c" }, titles(f:docs()))
    local eager = Folder:query():with("docs"):all()[1]
    assert.are.same({ "a", "c" }, titles(eager:docs()))
    assert.are.equal(2, f:docs_query():count())
  end)

  it("with_deleted() includes them and only_deleted() lists just them; both chain", function()
    b:delete()
    assert.are.same({ "a", "b", "c" }, titles(Doc:with_deleted():all()))
    assert.are.same({ "b" }, titles(Doc:only_deleted():all()))
    assert.are.equal(3, Doc:with_deleted():count())
    assert.are.same({ "b" }, titles(Doc:with_deleted():where{ title = "b" }:all()))
    assert.are.same({ "b" }, titles(Doc:where{ title = "b" }:with_deleted():all()))
    assert.are.same({}, titles(Doc:only_deleted():where{ title = "a" }:all()))
    assert.are.equal(b.id, Doc:with_deleted():where{ id = b.id }:first().id)
    assert.are.same({ "a", "b", "c" }, titles(Doc:unscoped():all()))
  end)

  it("restore() brings a row back", function()
    b:delete()
    local gone = Doc:only_deleted():where{ id = b.id }:first()
    assert.is_true(gone:is_deleted())
    assert.are.equal(1, gone:restore())
    assert.is_false(gone:is_deleted())
    assert.are.same({ "a", "b", "c" }, titles(Doc:all()))
    assert.are.equal(0, raw_count("deleted_at IS NOT NULL"))
  end)

  it("reload() finds a deleted record", function()
    local copy = Doc:find(b.id)
    b:delete()
    copy:reload()
    assert.is_true(copy:is_deleted())
  end)

  it("destroy() and hard_delete() remove the row for good", function()
    assert.are.equal(1, a:destroy())
    assert.are.equal(0, raw_count("id = ?", a.id))
    b:delete() -- a soft-deleted row can be purged too
    assert.are.equal(1, b:hard_delete())
    assert.are.equal(0, raw_count("id = ?", b.id))
    assert.are.same({ "c" }, titles(Doc:with_deleted():all()))
  end)

  it("runs the delete events on a soft delete", function()
    local seen = {}
    local before = Doc:on("before_delete", function(rec) seen[#seen + 1] = "before " .. rec.title end)
    local after = Doc:on("after_delete", function(rec) seen[#seen + 1] = "after " .. rec.title end)
    local ok, err = pcall(function() a:delete() end)
    Doc:off("before_delete", before)
    Doc:off("after_delete", after)
    assert(ok, err)
    assert.are.same({ "before a", "after a" }, seen)
  end)

  it("leaves deleted rows alone in update_all and delete_all of a default query", function()
    b:delete()
    assert.are.equal(2, Doc:query():update_all{ title = "renamed" })
    assert.are.same({ "b" }, titles(Doc:only_deleted():all()))
    assert.are.equal(2, Doc:query():delete_all())
    assert.are.equal(1, raw_count())
  end)

  it("refuses to delete a record that was never saved", function()
    local err = testsuite.error_of(function() return Doc.new{ title = "draft" }:delete() end)
    assert.is_true(ar.errors.is(err, "RecordNotFound"), tostring(err))
    assert.are.equal(3, raw_count())
  end)
end)

-- dependent = "delete" | "nullify" | "restrict" on has_many, has_one and
-- has_many_through. The tables here have no foreign keys, so what happens to
-- the children is the library's doing, not the server's ON DELETE.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/relation"

describe("relation dependents", function()
  local scenario = testsuite.default_scenario()
  local db
  local Item, Label
  local TABLES = { "dep_links", "dep_labels", "dep_items", "dep_owners" }

  local function count_rows(t, where, ...)
    return db:query("SELECT COUNT(*) AS n FROM " .. t .. (where and (" WHERE " .. where) or ""), ...)[1].n
  end

  -- An owner model on dep_owners whose relations use `dependent`.
  local function owner_model(name, dependent)
    return ar.Model{ name = name, table = "dep_owners", backend = db,
      fields = { id = "integer", name = "string" },
      relations = {
        items = ar.has_many("DepItem", { foreign_key = "owner_id", dependent = dependent }),
        main_item = ar.has_one("DepItem", { foreign_key = "owner_id", order_by = "id" }),
        labels = ar.has_many_through("DepLabel", { through = "dep_links", source_key = "owner_id",
                                                   target_key = "label_id", dependent = dependent }),
      } }
  end

  local function seed(Owner)
    local o = Owner:create{ name = "owner" }
    local other = Owner:create{ name = "other" }
    for i = 1, 3 do Item:create{ owner_id = o.id, name = "item " .. i } end
    Item:create{ owner_id = other.id, name = "other's" }
    local l1, l2 = Label:create{ name = "red" }, Label:create{ name = "blue" }
    db:execute("INSERT INTO dep_links (owner_id, label_id) VALUES (?, ?), (?, ?), (?, ?)",
      o.id, l1.id, o.id, l2.id, other.id, l1.id)
    return o, other
  end

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "dep_owners", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50 })
    end, { force = true })
    ar.schema.create_table(db, "dep_items", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("owner_id", { index = true }) -- nullable, no foreign key
      t:string("name", { size = 50 })
    end, { force = true })
    ar.schema.create_table(db, "dep_labels", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50 })
    end, { force = true })
    ar.schema.create_table(db, "dep_links", function(t)
      t:bigint("owner_id", { nullable = false })
      t:bigint("label_id", { nullable = false })
      t:primary_key({ "owner_id", "label_id" })
    end, { force = true })
    Item = ar.Model{ name = "DepItem", table = "dep_items", backend = db,
      fields = { id = "integer", owner_id = "integer", name = "string" } }
    Label = ar.Model{ name = "DepLabel", table = "dep_labels", backend = db,
      fields = { id = "integer", name = "string" } }
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
  end)

  it("delete: removes the children and the join rows, not the join targets or others' rows", function()
    local Owner = owner_model("DepOwnerDelete", "delete")
    local o, other = seed(Owner)
    o:items() -- a cached list must not outlive the delete
    assert.are.equal(1, o:delete())
    assert.are.equal(0, count_rows("dep_owners", "id = ?", o.id))
    assert.are.equal(0, count_rows("dep_items", "owner_id = ?", o.id))
    assert.are.equal(0, count_rows("dep_links", "owner_id = ?", o.id))
    assert.are.equal(2, count_rows("dep_labels")) -- shared targets stay
    assert.are.equal(1, count_rows("dep_items", "owner_id = ?", other.id))
    assert.are.equal(1, count_rows("dep_links", "owner_id = ?", other.id))
  end)

  it("delete: runs before the owner's own DELETE", function()
    local Owner = owner_model("DepOwnerDelete2", "delete")
    local o = seed(Owner)
    local _, events = testsuite.count_statements(db, function() o:delete() end, "^DELETE")
    assert.are.equal(3, #events)
    assert.matches("dep_owners", events[#events].sql, 1, true)
  end)

  it("nullify: clears the children's foreign key and keeps them", function()
    local Owner = owner_model("DepOwnerNullify", "nullify")
    local o, other = seed(Owner)
    o:delete()
    assert.are.equal(0, count_rows("dep_owners", "id = ?", o.id))
    assert.are.equal(3, count_rows("dep_items", "owner_id IS NULL"))
    assert.are.equal(1, count_rows("dep_items", "owner_id = ?", other.id))
    -- a has_many_through has no key of its own to clear: its join rows go
    assert.are.equal(0, count_rows("dep_links", "owner_id = ?", o.id))
    assert.are.equal(2, count_rows("dep_labels"))
    assert.are.equal(1, count_rows("dep_links", "owner_id = ?", other.id))
  end)

  it("restrict: refuses to delete an owner that has children, and deletes nothing", function()
    local Owner = owner_model("DepOwnerRestrict", "restrict")
    local o = seed(Owner)
    local err = testsuite.error_of(function() return o:delete() end)
    assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
    -- names the relation that still has rows (items or labels: both do)
    assert.is_truthy(tostring(err):find("items", 1, true) or tostring(err):find("labels", 1, true), tostring(err))
    assert.are.equal(1, count_rows("dep_owners", "id = ?", o.id))
    assert.are.equal(3, count_rows("dep_items", "owner_id = ?", o.id))
    assert.are.equal(2, count_rows("dep_links", "owner_id = ?", o.id))
    assert.is_false(o:is_new()) -- still a stored record
  end)

  it("restrict: lets a childless owner go", function()
    local Owner = ar.Model{ name = "DepOwnerRestrict2", table = "dep_owners", backend = db,
      fields = { id = "integer", name = "string" },
      relations = { items = ar.has_many("DepItem", { foreign_key = "owner_id", dependent = "restrict" }) } }
    local o = Owner:create{ name = "lonely" }
    assert.are.equal(1, o:delete())
    assert.are.equal(0, count_rows("dep_owners"))
  end)

  it("applies to has_one as well", function()
    local Owner = ar.Model{ name = "DepOwnerHasOne", table = "dep_owners", backend = db,
      fields = { id = "integer", name = "string" },
      relations = { item = ar.has_one("DepItem", { foreign_key = "owner_id", dependent = "delete" }) } }
    local o = Owner:create{ name = "single" }
    Item:create{ owner_id = o.id, name = "only" }
    assert.are.equal("only", o:item().name)
    o:delete()
    assert.are.equal(0, count_rows("dep_items"))
  end)

  it("is refused on belongs_to", function()
    local err = testsuite.error_of(ar.Model, { name = "DepBad", table = "dep_items", backend = db,
      fields = { id = "integer", owner_id = "integer" },
      relations = { owner = ar.belongs_to("DepOwnerDelete", { foreign_key = "owner_id", dependent = "delete" }) } })
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
  end)

  it("rolls the dependents back with the owner when the transaction fails", function()
    local Owner = owner_model("DepOwnerTx", "delete")
    local o = seed(Owner)
    local err = testsuite.error_of(db.transaction, db, function()
      o:delete()
      error("changed my mind", 0)
    end)
    assert.are.equal("changed my mind", err)
    assert.are.equal(1, count_rows("dep_owners", "id = ?", o.id))
    assert.are.equal(3, count_rows("dep_items", "owner_id = ?", o.id))
    assert.are.equal(2, count_rows("dep_links", "owner_id = ?", o.id))
  end)
end)

-- The uuid mixin: the primary key is a client-generated UUID, v4 (random)
-- or v7 (time-ordered), stored as CHAR(36) or BINARY(16).
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/mixins"

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-(%x)%x%x%x%-(%x)%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- version and variant nibbles of a UUID string
local function version_of(id)
  local v, variant = id:match(UUID)
  return v and tonumber(v, 16), variant
end

-- the 48-bit Unix milliseconds at the start of a v7 UUID
local function v7_millis(id)
  return tonumber(id:gsub("%-", ""):sub(1, 12), 16)
end

describe("mixin uuid", function()
  local scenario = testsuite.default_scenario()
  local db
  local TABLES = { "mx_uu_parts", "mx_uu_char", "mx_uu_bin" }

  setup(function()
    db = provider.setup(GROUP, scenario, {})
    ar.schema.create_table(db, "mx_uu_char", function(t)
      t:uuid("id", { primary_key = true })
      t:string("name", { size = 50 })
    end, { force = true })
    ar.schema.create_table(db, "mx_uu_bin", function(t)
      t:uuid("id", { primary_key = true, binary = true })
      t:string("name", { size = 50 })
    end, { force = true })
    ar.schema.create_table(db, "mx_uu_parts", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:uuid("machine_id", { binary = true, index = true })
      t:string("name", { size = 50 })
    end, { force = true })
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
  end)

  describe("v4 in CHAR(36)", function()
    local Thing
    setup(function()
      Thing = ar.Model{ name = "UuThing", table = "mx_uu_char", backend = db, mixins = { "uuid" },
        fields = { name = "string" } }
    end)

    it("gives every new record a random v4 key before it is saved", function()
      local t = Thing.new{ name = "a" }
      assert.is_true(t:is_new())
      local v, variant = version_of(t.id)
      assert.are.equal(4, v)
      assert.matches("[89ab]", variant)
      assert.are.equal(t.id:lower(), t.id)
      t:save()
      assert.are.equal(t.id, db:query("SELECT id FROM mx_uu_char")[1].id)
      -- nothing comes back from the server: the key was ours
      assert.are.equal("a", Thing:find(t.id).name)
    end)

    it("generates distinct keys", function()
      local seen, rows = {}, {}
      for i = 1, 500 do rows[i] = { name = "n" .. i } end
      for _, rec in ipairs(Thing:insert_all(rows).records) do
        assert.is_nil(seen[rec.id])
        seen[rec.id] = true
      end
      assert.are.equal(500, db:query("SELECT COUNT(DISTINCT id) AS n FROM mx_uu_char")[1].n)
    end)

    it("keeps a key given explicitly", function()
      local id = "0b7e3f5c-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
      Thing:create{ id = id, name = "given" }
      assert.are.equal("given", Thing:find(id).name)
    end)

    it("updates, reloads and deletes by its key", function()
      local t = Thing:create{ name = "old" }
      t:update{ name = "new" }
      assert.are.equal("new", Thing:find(t.id):reload().name)
      t:delete()
      assert.is_nil(Thing:find(t.id))
    end)
  end)

  describe("v7", function()
    local Thing
    setup(function()
      Thing = ar.Model{ name = "UuThing7", table = "mx_uu_char", backend = db, mixins = { { "uuid", { version = 7 } } },
        fields = { name = "string" } }
    end)

    it("puts the current Unix milliseconds first", function()
      local before = os.time()
      local t = Thing:create{ name = "now" }
      assert.are.equal(7, (version_of(t.id)))
      local ms = v7_millis(t.id)
      assert.is_true(ms >= (before - 1) * 1000 and ms <= (os.time() + 1) * 1000, tostring(ms))
    end)

    it("sorts keys made later after earlier ones, so rows append to the index", function()
      local made = {}
      for i = 1, 5 do
        made[i] = Thing:create{ name = "n" .. i }.id
        testsuite.sleep(0.002) -- v7 orders by millisecond
      end
      local sorted = {}
      for i, id in ipairs(made) do sorted[i] = id end
      table.sort(sorted)
      assert.are.same(made, sorted)
      local names = {}
      for i, rec in ipairs(Thing:query():order_by("id"):all()) do names[i] = rec.name end
      assert.are.same({ "n1", "n2", "n3", "n4", "n5" }, names)
    end)
  end)

  describe("BINARY(16)", function()
    local Machine, Part
    setup(function()
      Machine = ar.Model{ name = "UuMachine", table = "mx_uu_bin", backend = db,
        mixins = { { "uuid", { version = 7, binary = true } } },
        fields = { name = "string" },
        relations = { parts = ar.has_many("UuPart", { foreign_key = "machine_id", order_by = "id" }) } }
      Part = ar.Model{ name = "UuPart", table = "mx_uu_parts", backend = db,
        fields = { id = "integer", machine_id = { type = "uuid", binary = true }, name = "string" },
        relations = { machine = ar.belongs_to("UuMachine", { foreign_key = "machine_id" }) } }
    end)

    it("stores 16 bytes and reads back the text form", function()
      local m = Machine:create{ name = "lathe" }
      assert.are.equal(7, (version_of(m.id)))
      local row = db:query("SELECT LENGTH(id) AS len, LOWER(HEX(id)) AS hex FROM mx_uu_bin")[1]
      assert.are.equal(16, row.len)
      assert.are.equal(m.id:gsub("%-", ""), row.hex)
      local loaded = Machine:query():all()[1]
      assert.are.equal(m.id, loaded.id)
      assert.are.equal("lathe", loaded.name)
    end)

    it("updates and deletes by the binary key", function()
      local m = Machine:create{ name = "lathe" }
      local loaded = Machine:query():all()[1]
      assert.are.equal(1, loaded:update{ name = "mill" })
      assert.are.equal("mill", db:query("SELECT name FROM mx_uu_bin")[1].name)
      assert.are.equal(1, m:delete())
      assert.are.equal(0, db:query("SELECT COUNT(*) AS n FROM mx_uu_bin")[1].n)
    end)

    it("finds by the text form of the key", function()
      local m = Machine:create{ name = "lathe" }
      local found = Machine:find(m.id)
      assert.is_not_nil(found, "find(id) did not match the BINARY(16) key")
      assert.are.equal("lathe", found.name)
    end)

    it("reloads by the binary key", function()
      local m = Machine:create{ name = "lathe" }
      db:execute("UPDATE mx_uu_bin SET name = ?", "drill")
      assert.are.equal("drill", m:reload().name)
    end)

    it("matches the text form of the key in where{}", function()
      local m = Machine:create{ name = "lathe" }
      Machine:create{ name = "other" }
      assert.are.equal(1, Machine:where{ id = m.id }:count())
      assert.are.equal(1, Machine:where{ id = { m.id } }:count())
      assert.are.equal("lathe", Machine:find_by{ id = m.id }.name)
    end)

    it("works as a relation key, lazy and eager", function()
      local m1, m2 = Machine:create{ name = "one" }, Machine:create{ name = "two" }
      for i = 1, 3 do Part:create{ machine_id = m1.id, name = "p" .. i } end
      Part:create{ machine_id = m2.id, name = "q1" }
      assert.are.equal(m1.id, Part:query():order_by("id"):first().machine_id)
      assert.are.equal(3, #m1:parts())
      local owner = Part:find_by{ name = "q1" }:machine()
      assert.is_not_nil(owner, "belongs_to did not match the BINARY(16) key")
      assert.are.equal("two", owner.name)
      local machines = Machine:query():with("parts"):all()
      local by_name = {}
      for _, m in ipairs(machines) do by_name[m.name] = #m:parts() end
      assert.are.same({ one = 3, two = 1 }, by_name)
      local parts = Part:query():with("machine"):order_by("id"):all()
      assert.are.equal("one", parts[1]:machine().name)
      assert.are.equal("two", parts[4]:machine().name)
    end)
  end)
end)

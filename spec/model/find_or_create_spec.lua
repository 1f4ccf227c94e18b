-- find_or_create_by / create_or_find_by against the server: extra
-- attributes only on a created record, a duplicate key answered by the row
-- that won, inside a transaction a savepoint keeps the outer transaction
-- alive (and a locking read sees a row committed after its snapshot), and
-- two OS processes racing for one key end with one row and one id. Also
-- find_by with SQL text and values.
local ar = require("activerecord")
local support = require("support.db")
local h = require("migrate.helpers")

describe("model: find_or_create_by / create_or_find_by", function()
  local db, Tag

  local function count(where, ...)
    return db:query("SELECT COUNT(*) AS n FROM foc_tags" .. (where and (" WHERE " .. where) or ""), ...)[1].n
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 3 } })
    db:execute("DROP TABLE IF EXISTS foc_tags")
    db:execute([[CREATE TABLE foc_tags (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL,
      color VARCHAR(20), UNIQUE KEY uq_foc_tags_name (name)) ENGINE=InnoDB]])
    db:execute("DROP TABLE IF EXISTS foc_gate")
    db:execute("CREATE TABLE foc_gate (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(20)) ENGINE=InnoDB")
    Tag = ar.Model{ name = "FocTag", table = "foc_tags", backend = db,
      fields = { id = "integer", name = { type = "string", size = 50 }, color = { type = "string", size = 20 } } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS foc_tags")
    db:execute("DROP TABLE IF EXISTS foc_gate")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM foc_tags")
    db:execute("DELETE FROM foc_gate")
  end)

  describe("find_or_create_by", function()
    it("creates with attrs + extra when none matches, finds (extra ignored) when one does", function()
      local a, created = Tag:find_or_create_by({ name = "bug" }, { color = "red" })
      assert.is_true(created)
      assert.same({ name = "bug", color = "red" }, db:query("SELECT name, color FROM foc_tags")[1])
      local b, created2 = Tag:find_or_create_by({ name = "bug" }, { color = "blue" })
      assert.is_false(created2)
      assert.equal(a.id, b.id)
      assert.equal("red", b.color)
      assert.equal(1, count())
    end)

    it("refuses an extra attribute that repeats one of attrs, and empty attrs", function()
      local err = support.error_of(Tag.find_or_create_by, Tag, { name = "x" }, { name = "y" })
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("'name' is both", err.message, 1, true)
      err = support.error_of(Tag.find_or_create_by, Tag, {})
      assert.matches("non-empty table", err.message, 1, true)
      assert.equal(0, count())
    end)

    it("inside a transaction: a row committed after the snapshot is found by a locking read, "
      .. "and the outer transaction commits its own work", function()
      local other = support.connect()
      local got, created
      db:transaction(function()
        Tag:create{ name = "mine" }
        assert.equal(0, Tag:where{ name = "shared" }:count()) -- the snapshot has no "shared"
        other:execute("INSERT INTO foc_tags (name, color) VALUES ('shared', 'green')")
        got, created = Tag:find_or_create_by({ name = "shared" }, { color = "pink" })
      end)
      other:close()
      assert.is_false(created)
      assert.equal("green", got.color)
      assert.equal(db:query("SELECT id FROM foc_tags WHERE name = 'shared'")[1].id, got.id)
      assert.equal(2, count()) -- "mine" committed with the outer transaction
    end)
  end)

  describe("create_or_find_by", function()
    it("inserts first; on the duplicate key returns the existing row", function()
      local a, created = Tag:create_or_find_by({ name = "ops" }, { color = "grey" })
      assert.is_true(created)
      local b, created2 = Tag:create_or_find_by({ name = "ops" }, { color = "black" })
      assert.is_false(created2)
      assert.equal(a.id, b.id)
      assert.equal("grey", b.color)
      assert.equal(1, count())
    end)

    it("inside a transaction: the failed INSERT is a savepoint rolled back, the outer one survives", function()
      Tag:create{ name = "dup", color = "c1" }
      local got
      db:transaction(function()
        Tag:create{ name = "before" }
        got = Tag:create_or_find_by({ name = "dup" }, { color = "c2" })
        Tag:create{ name = "after" } -- the transaction is still usable
      end)
      assert.equal("c1", got.color)
      assert.equal(3, count())
      assert.equal(2, count("name IN ('before', 'after')"))
    end)

    it("re-raises a duplicate on another key than the one attrs cover", function()
      Tag:create{ name = "taken" }
      local err = support.error_of(Tag.create_or_find_by, Tag, { color = "x" }, { name = "taken" })
      assert.is_true(ar.errors.is(err, "IntegrityError") or ar.errors.is(err, "ValidationError"), tostring(err))
      assert.equal(1, count())
    end)
  end)

  describe("two processes racing for one key", function()
    -- Each child's before_create waits (on its own connection) until both
    -- children reached it: both looked and found nothing, then both insert.
    local function child(method)
      return ([[
        local ar = require("activerecord")
        local opts = ar.config_from_env()
        local db, gate = ar.connect(opts), ar.connect(opts)
        local me = tostring(math.random(1e9))
        local Tag = ar.Model{ name = "FocTag", table = "foc_tags", backend = db,
          fields = { id = "integer", name = { type = "string", size = 50 }, color = "string" },
          events = { before_create = function()
            gate:execute("INSERT INTO foc_gate (who) VALUES (?)", me)
            for _ = 1, 200 do
              if gate:query("SELECT COUNT(*) AS n FROM foc_gate")[1].n >= 2 then break end
              gate:execute("DO SLEEP(0.05)")
            end
          end } }
        local rec, created = Tag:%s({ name = "race" }, { color = me })
        io.write("id:", rec.id, " created:", tostring(created), "\n")
        db:close()
        gate:close()
      ]]):format(method)
    end

    for _, method in ipairs({ "find_or_create_by", "create_or_find_by" }) do
      it(method .. ": exactly one row, both get its id, one created it", function()
        local cmd = h.lua_env() .. " lua5.4 -e " .. h.quote(child(method))
        local a, b = h.start(cmd), h.start(cmd)
        local code_a, out_a = a()
        local code_b, out_b = b()
        assert.equal(0, code_a, out_a)
        assert.equal(0, code_b, out_b)
        assert.equal(2, db:query("SELECT COUNT(*) AS n FROM foc_gate")[1].n) -- both reached the INSERT
        assert.equal(1, count("name = 'race'"))
        local id = db:query("SELECT id FROM foc_tags WHERE name = 'race'")[1].id
        assert.equal(tostring(id), out_a:match("id:(%d+)"), out_a)
        assert.equal(tostring(id), out_b:match("id:(%d+)"), out_b)
        local created = { out_a:match("created:(%a+)"), out_b:match("created:(%a+)") }
        table.sort(created)
        assert.same({ "false", "true" }, created)
      end)
    end
  end)

  describe("find_by", function()
    it("takes SQL text with ? and its values (bound), as well as a table", function()
      Tag:create{ name = "MixedCase", color = "c" }
      assert.equal("c", Tag:find_by("lower(name) = ?", "mixedcase").color)
      assert.is_nil(Tag:find_by("lower(name) = ?", "x' OR '1'='1"))
      assert.equal("c", Tag:find_by{ name = "MixedCase" }.color)
      local err = support.error_of(Tag.find_by, Tag, { name = "x" }, "extra")
      assert.matches("values follow SQL text only", err.message, 1, true)
      err = support.error_of(Tag.find_by, Tag, 42)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)
  end)
end)

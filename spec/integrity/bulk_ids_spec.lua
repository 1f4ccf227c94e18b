-- Bulk writes leave each record with its real id (issue 12, design §8 "Ids
-- are never guessed"): save{ upsert = true }, upsert_all and insert_all{
-- ignore = true } give records the id of the row they wrote (an ignored row's
-- record stays new, without an id); without RETURNING, ids from the insert id
-- range follow the session's auto_increment_increment; a rolled-back
-- transaction gives bulk-inserted records their state back.
local ar = require("activerecord")
local support = require("support.db")

local TABLE = "integ_bulk_ids"

-- id of the row holding `email`, read from the table
local function table_id(db, email)
  local row = db:query("SELECT id FROM " .. TABLE .. " WHERE email = ?", email)[1]
  return row and row.id
end

local function count(db)
  return db:query("SELECT COUNT(*) AS n FROM " .. TABLE)[1].n
end

-- Each way of talking to the server: with RETURNING (MariaDB), and as a
-- server without it (the backend's capability turned off, so the bulk code
-- takes its insert-id-range and read-back paths, as on MySQL).
for _, variant in ipairs({ "with RETURNING", "without RETURNING" }) do
  describe("integrity: bulk write ids (" .. variant .. ")", function()
    local db, User

    setup(function()
      db = ar.connect(support.options{ pool = { size = 3 } })
      if variant == "without RETURNING" then db._capabilities.returning = false end
      assert.equal(variant == "with RETURNING", db:supports("returning"))
      db:execute("DROP TABLE IF EXISTS " .. TABLE)
      db:execute("CREATE TABLE " .. TABLE .. " (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        .. "email VARCHAR(100) NOT NULL, name VARCHAR(100), note VARCHAR(20) NOT NULL DEFAULT 'fresh', "
        .. "UNIQUE KEY (email)) ENGINE=InnoDB")
      User = ar.Model{
        name = "BulkIdsUser" .. (variant == "with RETURNING" and "R" or "N"), table = TABLE, backend = db,
        fields = { id = "integer", email = { type = "string", required = true }, name = "string",
                   note = { type = "string", server_default = true } },
      }
    end)

    teardown(function()
      db:execute("DROP TABLE IF EXISTS " .. TABLE)
      db:close()
    end)

    before_each(function()
      db:execute("DELETE FROM " .. TABLE)
    end)

    it("save{ upsert = true } of an existing key: the existing row's id; a later save() changes that row",
      function()
        local existing = User:create{ email = "a@x", name = "old" }
        local u = User.new{ email = "a@x", name = "new" }
        local n, what = u:save{ upsert = true }
        assert.same({ 2, "updated" }, { n, what })
        assert.is_false(u:is_new())
        assert.equal(existing.id, u.id)
        u.name = "changed later"
        assert.equal(1, u:save())
        assert.equal("changed later", db:query("SELECT name FROM " .. TABLE .. " WHERE id = ?", existing.id)[1].name)
        -- unchanged: still the row's id
        local same = User.new{ email = "a@x", name = "changed later" }
        assert.same({ 0, "unchanged" }, { same:save{ upsert = true } })
        assert.equal(existing.id, same.id)
      end)

    it("save{ upsert = true } leaves the record holding its row: columns it did not write are read back",
      function()
        User:create{ email = "k@x", name = "old", note = "kept" }
        local u = User.new{ email = "k@x", name = "new" }
        u:save{ upsert = true }
        assert.equal("kept", u.note) -- the update left it; the record says so
        assert.is_false(u:is_dirty())
        local fresh = User.new{ email = "f@x" }
        fresh:save{ upsert = true }
        assert.equal("fresh", fresh.note) -- the column's default
      end)

    it("save{ upsert = true } of a new key: the new row's id", function()
      User:create{ email = "first@x" }
      local u = User.new{ email = "b@x", name = "bee" }
      assert.same({ 1, "inserted" }, { u:save{ upsert = true } })
      assert.is_not_nil(u.id)
      assert.equal(table_id(db, "b@x"), u.id)
    end)

    it("upsert_all: every record gets the id of the row it wrote", function()
      local old = User:create{ email = "c@x", name = "c" }
      local res = User:upsert_all({ { email = "d@x", name = "d" }, { email = "c@x", name = "c2" },
                                    { email = "e@x", name = "e" } }, { unique_by = "email" })
      for _, r in ipairs(res.records) do
        assert.is_false(r:is_new())
        assert.equal(table_id(db, r.email), r.id)
      end
      assert.equal(old.id, res.records[2].id)
      assert.same({}, res.unknown)
    end)

    it("insert_all{ ignore = true }: inserted records hold their rows' ids, ignored ones are new without an id",
      function()
        local a = User:create{ email = "a@x", name = "already" }
        local res = User:insert_all({
          { email = "n1@x", name = "one" },
          { email = "a@x", name = "dup of an existing row" },
          { email = "n2@x", name = "two" },
          { email = "n1@x", name = "dup inside the batch" },
          { email = "n3@x", name = "three" },
        }, { ignore = true })
        assert.equal(3, res.affected_rows)
        local r = res.records
        for _, i in ipairs({ 1, 3, 5 }) do
          assert.is_false(r[i]:is_new())
          assert.equal(table_id(db, r[i].email), r[i].id)
        end
        for _, i in ipairs({ 2, 4 }) do
          assert.is_true(r[i]:is_new())
          assert.is_nil(r[i].id)
        end
        assert.equal(2, #res.ignored)
        assert.same({}, res.unknown)
        -- the ignored record was never written: the existing row keeps its name
        assert.equal("already", db:query("SELECT name FROM " .. TABLE .. " WHERE id = ?", a.id)[1].name)
        -- and a later save() of an inserted record changes its own row
        r[3].name = "two!"
        assert.equal(1, r[3]:save())
        assert.equal("two!", db:query("SELECT name FROM " .. TABLE .. " WHERE email = 'n2@x'")[1].name)
      end)

    it("insert_all: ids follow auto_increment_increment (SET SESSION on the transaction's connection)", function()
      db:transaction(function()
        db:execute("SET SESSION auto_increment_increment = 3")
        local rows = {}
        for i = 1, 5 do rows[i] = { email = ("inc%d@x"):format(i) } end
        local res = User:insert_all(rows)
        for _, r in ipairs(res.records) do assert.equal(table_id(db, r.email), r.id) end
        assert.equal(3, res.records[2].id - res.records[1].id)
        -- the same with an ignored row in the middle
        res = User:insert_all({ { email = "inc1@x" }, { email = "inc6@x" }, { email = "inc7@x" } }, { ignore = true })
        assert.is_true(res.records[1]:is_new())
        assert.equal(table_id(db, "inc6@x"), res.records[2].id)
        assert.equal(table_id(db, "inc7@x"), res.records[3].id)
        db:execute("SET SESSION auto_increment_increment = 1")
      end)
    end)

    it("insert_all: rows with explicit ids mixed in; every record holds its row's id", function()
      local res = User:insert_all({ { email = "m1@x" }, { id = 1000, email = "m2@x" }, { email = "m3@x" },
                                    { email = "m4@x" } })
      for _, r in ipairs(res.records) do
        assert.is_false(r:is_new())
        assert.equal(table_id(db, r.email), r.id)
      end
      assert.equal(1000, res.records[2].id)
    end)

    it("insert_all: a row that leaves a column out gets the table's default, not NULL; ids in row order",
      function()
        local res = User:insert_all({ { email = "d1@x", note = "given" }, { email = "d2@x" },
                                      { email = "d3@x", name = "n3" }, { email = "d4@x", note = "x4" } })
        assert.equal(4, res.affected_rows)
        local got = db:query("SELECT id, email, name, note FROM " .. TABLE .. " ORDER BY id")
        assert.same({ "d1@x", "d2@x", "d3@x", "d4@x" }, { got[1].email, got[2].email, got[3].email, got[4].email })
        assert.same({ "given", "fresh", "fresh", "x4" }, { got[1].note, got[2].note, got[3].note, got[4].note })
        assert.equal("n3", got[3].name)
        for i, r in ipairs(res.records) do assert.equal(got[i].id, r.id) end
        -- a failure in a later run takes the earlier runs with it
        local ok, err = pcall(User.insert_all, User, { { email = "e1@x" }, { email = "e2@x", note = "y" },
                                                       { email = "d1@x", name = "dup" } })
        assert.is_false(ok)
        assert.equal("IntegrityError", err.kind)
        assert.equal(4, count(db))
      end)

    it("upsert_all: a row that leaves a column out keeps the stored value of it on conflict", function()
      User:create{ email = "k1@x", name = "kept", note = "stored" }
      User:create{ email = "k2@x", name = "old2", note = "stored2" }
      User:upsert_all({ { email = "k1@x", note = "changed" }, { email = "k2@x", name = "new2" } },
                      { unique_by = "email" })
      local k1 = db:query("SELECT name, note FROM " .. TABLE .. " WHERE email = 'k1@x'")[1]
      local k2 = db:query("SELECT name, note FROM " .. TABLE .. " WHERE email = 'k2@x'")[1]
      assert.same({ "kept", "changed" }, { k1.name, k1.note })
      assert.same({ "new2", "stored2" }, { k2.name, k2.note })
    end)

    it("a rolled-back transaction gives bulk-inserted records their state back", function()
      local records
      local ok = pcall(db.transaction, db, function()
        records = User:insert_all({ { email = "rb1@x" }, { email = "rb2@x" } }).records
        assert.is_not_nil(records[1].id)
        error("roll back")
      end)
      assert.is_false(ok)
      assert.equal(0, count(db))
      for _, r in ipairs(records) do
        assert.is_true(r:is_new())
        assert.is_nil(r.id)
      end
      -- saving again writes the row (it would have updated nothing before)
      assert.equal(1, records[1]:save())
      assert.equal(table_id(db, "rb1@x"), records[1].id)
      -- an upsert too
      local u = User.new{ email = "rb3@x" }
      pcall(db.transaction, db, function()
        u:save{ upsert = true }
        error("roll back")
      end)
      assert.is_true(u:is_new())
      assert.is_nil(u.id)
    end)
  end)
end

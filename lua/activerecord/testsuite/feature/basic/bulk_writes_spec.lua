-- Bulk writes (issue 7): Model:insert_all with batching, ignore, validation
-- and events on/off, RETURNING; upsert_all and save{ upsert = true } with the
-- 1 / 2 / 0 affected-row semantics; a failure mid-batch writes nothing.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/basic/bulk"

describe("model bulk writes", function()
  local scenario = testsuite.default_scenario()
  local db, observer, User
  local events = {}

  setup(function()
    db = provider.setup(GROUP, scenario, { "users" })
    observer = provider.new_backend(scenario, { pool = { size = 1 } })
    User = ar.Model{ name = "BulkUser", table = "users", backend = db,
      fields = {
        id = { type = "integer", primary_key = true },
        name = { type = "string", size = 100, required = true },
        email = { type = "string", size = 191 },
        age = { type = "integer", min = 0 },
        score = "float",
        created_at = "datetime",
      },
      events = {
        before_save = function(self)
          events[#events + 1] = "before_save"
          if self.name == "shout" then self.name = "SHOUT" end
        end,
        before_create = function() events[#events + 1] = "before_create" end,
        after_create = function() events[#events + 1] = "after_create" end,
        after_save = function() events[#events + 1] = "after_save" end,
      },
    }
  end)

  teardown(function()
    if observer then observer:close() end
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM users")
    for i = #events, 1, -1 do events[i] = nil end
  end)

  local function count()
    return observer:query("SELECT COUNT(*) AS n FROM users")[1].n
  end

  local function rows(n, from)
    local out = {}
    for i = 1, n do
      local k = (from or 0) + i
      out[i] = { name = "user " .. k, email = ("u%d@example.com"):format(k), age = k % 90 }
    end
    return out
  end

  local function inserts(fn)
    return testsuite.count_statements(db, fn, "^INSERT")
  end

  describe("insert_all", function()
    it("writes every row in one statement and fills the ids", function()
      local res
      local n = inserts(function() res = User:insert_all(rows(50)) end)
      assert.are.equal(1, n)
      assert.are.equal(50, res.affected_rows)
      assert.are.equal(50, count())
      assert.are.equal(50, #res.records)
      for i, rec in ipairs(res.records) do
        assert.is_false(rec:is_new())
        assert.are.equal("user " .. i, observer:query("SELECT name FROM users WHERE id = ?", rec.id)[1].name)
      end
    end)

    it("splits into batch_size statements, all in one transaction", function()
      local res
      local n = inserts(function() res = User:insert_all(rows(10), { batch_size = 3 }) end)
      assert.are.equal(4, n)
      assert.are.equal(10, res.affected_rows)
      assert.are.equal(10, count())
      local ids = {}
      for i, rec in ipairs(res.records) do ids[i] = rec.id end
      for i = 2, #ids do assert.is_true(ids[i] > ids[i - 1]) end
    end)

    it("writes 100,000 rows in few statements, with validation and events on and off", function()
      local res
      local n = inserts(function() res = User:insert_all(rows(50000)) end)
      assert.are.equal(50000, res.affected_rows)
      assert.is_true(n <= 50, n .. " statements")
      assert.are.equal(50000, #events / 4) -- before_save, before_create, after_create, after_save
      local n2 = inserts(function()
        res = User:insert_all(rows(50000, 50000), { validate = false, events = false })
      end)
      assert.are.equal(50000, res.affected_rows)
      assert.is_true(n2 <= 50, n2 .. " statements")
      assert.are.equal(200000, #events) -- none added by the second call
      assert.are.equal(100000, count())
      -- the ids of both calls are distinct and filled
      assert.are.equal(100000, observer:query("SELECT COUNT(DISTINCT id) AS n FROM users")[1].n)
      assert.is_not_nil(res.records[50000].id)
    end)

    it("splits batches to stay under max_allowed_packet", function()
      if not testsuite.requires_operations(provider, "set_max_packet") then return end
      local restore = provider.set_max_packet(scenario, 1024 * 1024)
      local small = provider.new_backend(scenario)
      local ok, err = pcall(function()
        local Big = ar.Model{ name = "BulkBig", table = "users", backend = small,
          fields = { id = "integer", name = "string", email = "string", profile = "json" } }
        local payload = ("x"):rep(100 * 1024)
        local list = {}
        for i = 1, 30 do list[i] = { name = "big " .. i, profile = { data = payload } } end
        local n = testsuite.count_statements(small, function() Big:insert_all(list) end, "^INSERT")
        -- 30 rows of 100 KiB cannot travel in one 1 MiB packet
        assert.is_true(n >= 3, n .. " statement(s)")
        assert.are.equal(30, count())
      end)
      small:close()
      restore()
      assert(ok, err)
    end)

    it("ignore = true skips duplicates and reports only the rows written", function()
      User:create{ name = "first", email = "u2@example.com" }
      local res = User:insert_all(rows(3), { ignore = true })
      assert.are.equal(2, res.affected_rows)
      assert.are.equal(3, count())
      assert.are.equal("first", observer:query("SELECT name FROM users WHERE email = ?",
        "u2@example.com")[1].name)
    end)

    it("validates every row unless validate = false", function()
      local bad = rows(3)
      bad[2].age = -1
      local err = testsuite.error_of(function() return User:insert_all(bad) end)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.is_table(err.errors.age)
      assert.are.equal(2, err.row)
      assert.are.equal(0, count())
      local res = User:insert_all(bad, { validate = false })
      assert.are.equal(3, res.affected_rows)
      assert.are.equal(-1, observer:query("SELECT age FROM users WHERE email = ?", "u2@example.com")[1].age)
    end)

    it("runs the create events per row unless events = false", function()
      User:insert_all({ { name = "shout" }, { name = "quiet" } })
      assert.are.equal(2, #observer:query("SELECT id FROM users WHERE name IN ('SHOUT', 'quiet')"))
      local counts = {}
      for _, e in ipairs(events) do counts[e] = (counts[e] or 0) + 1 end
      assert.are.same({ before_save = 2, before_create = 2, after_create = 2, after_save = 2 }, counts)
      for i = #events, 1, -1 do events[i] = nil end
      User:insert_all({ { name = "shout", email = "s@example.com" } }, { events = false })
      assert.are.same({}, events)
      assert.are.equal("shout", observer:query("SELECT name FROM users WHERE email = ?",
        "s@example.com")[1].name)
    end)

    it("returns the RETURNING columns where the server has RETURNING", function()
      if not testsuite.requires_capabilities(db, "returning") then return end
      local res = User:insert_all(rows(3), { returning = { "id", "created_at" } })
      assert.are.equal(3, #res.rows)
      for i, r in ipairs(res.rows) do
        assert.are.equal(res.records[i].id, r.id)
        assert.is_string(r.created_at)
      end
    end)

    it("refuses unknown options", function()
      local err = testsuite.error_of(function() return User:insert_all(rows(1), { batchsize = 2 }) end)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("batchsize", err.message, 1, true)
      assert.are.equal(0, count())
    end)

    it("a failure mid-batch writes nothing, alone or inside db:transaction", function()
      local data = rows(10)
      data[8].email = data[1].email -- duplicate in the third batch
      local err = testsuite.error_of(function() return User:insert_all(data, { batch_size = 3 }) end)
      assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
      assert.are.equal(0, count())

      User:create{ name = "before", email = "before@example.com" }
      err = testsuite.error_of(function()
        db:transaction(function()
          User:create{ name = "inside", email = "inside@example.com" }
          User:insert_all(data, { batch_size = 3 })
        end)
      end)
      assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
      assert.are.equal(1, count())
    end)
  end)

  describe("upsert_all", function()
    it("reports 1 per insert, 2 per update and 0 per unchanged row", function()
      User:insert_all({ { name = "a", email = "a@example.com", score = 1.0, age = 10 },
                        { name = "b", email = "b@example.com", score = 2.0, age = 20 } })
      local res = User:upsert_all({
        { name = "a2", email = "a@example.com", score = 1.5, age = 99 }, -- update: 2
        { name = "b", email = "b@example.com", score = 2.0, age = 99 },  -- unchanged: 0
        { name = "c", email = "c@example.com", score = 3.0, age = 30 },  -- insert: 1
      }, { unique_by = "email", update = { "name", "score" } })
      assert.are.equal(3, res.affected_rows)
      assert.are.equal(3, count())
      local a = observer:query("SELECT name, score, age FROM users WHERE email = ?", "a@example.com")[1]
      -- every listed column updated, the others kept
      assert.are.equal("a2", a.name)
      assert.are.equal(1.5, a.score)
      assert.are.equal(10, a.age)
      assert.are.equal(20, observer:query("SELECT age FROM users WHERE email = ?", "b@example.com")[1].age)
    end)

    it("save{ upsert = true } tells inserted, updated and unchanged apart", function()
      local n, what = User.new{ name = "a", email = "a@example.com", score = 1.0 }:save{ upsert = true }
      assert.are.equal(1, n)
      assert.are.equal("inserted", what)
      n, what = User.new{ name = "a2", email = "a@example.com", score = 1.0 }:save{ upsert = true }
      assert.are.equal(2, n)
      assert.are.equal("updated", what)
      n, what = User.new{ name = "a2", email = "a@example.com", score = 1.0 }:save{ upsert = true }
      assert.are.equal(0, n)
      assert.are.equal("unchanged", what)
      assert.are.equal(1, count())
      assert.are.equal("a2", observer:query("SELECT name FROM users")[1].name)
    end)
  end)
end)

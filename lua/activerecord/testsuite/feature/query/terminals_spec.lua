-- Terminals: count / sum / avg / min / max (exact decimals), first, one,
-- exists, pluck, aggregate, explain, each, find_each (keyset batches in
-- constant memory), update_all, delete_all, and row locking.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")
local support = require("activerecord.testsuite.feature.query.support")

local provider = testsuite.provider()
local GROUP = "feature/query/terminals"

describe("query terminals", function()
  local scenario = testsuite.default_scenario()
  local db, User, Post

  setup(function()
    db = provider.setup(GROUP, scenario, { "users", "posts" })
    User, Post = support.models(db)
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    support.seed(db, User, Post)
  end)

  describe("aggregates", function()
    it("count: rows, non-NULL values, distinct values, and what limit/group return", function()
      assert.are.equal(5, User:count())
      assert.are.equal(4, User:count("age"))
      assert.are.equal(3, User:count("age", true))
      assert.are.equal(2, User:where{ age = 17 }:count())
      assert.are.equal(0, User:where{ name = "nobody" }:count())
      assert.are.equal(2, User:order_by("id"):limit(2):count())
      assert.are.equal(1, User:offset(4):count())
      assert.are.equal(4, User:group_by("age"):count())
      assert.are.equal(4, User:select("age"):distinct():count())
    end)

    it("sum, avg, min and max keep DECIMAL exact (strings)", function()
      assert.are.equal("1344.86", User:sum("balance"))
      assert.are.equal("0.01", User:min("balance"))
      assert.are.equal("1234.56", User:max("balance"))
      assert.are.equal(45, User:max("age"))
      assert.are.equal(17, User:min("age"))
      assert.is_nil(User:where{ name = "nobody" }:sum("balance"))
      for i = 1, 10 do User:create{ name = "dime" .. i, email = "dime" .. i .. "@x", balance = "0.10" } end
      local dimes = User:like("name", "dime%")
      assert.are.equal("1.00", dimes:sum("balance"))
      assert.matches("^0%.10*$", dimes:avg("balance"))
      -- the float sum drifts; the exact one does not
      local float_sum = 0
      for _ = 1, 10 do float_sum = float_sum + 0.1 end
      assert.are_not.equal(1.0, float_sum)
      for i = 1, 3 do User:create{ name = "rich" .. i, email = "rich" .. i .. "@x", balance = "9999999999.99" } end
      assert.are.equal("29999999999.97", User:like("name", "rich%"):sum("balance"))
    end)

    it("refuses sum on a grouped query (aggregate() is the tool)", function()
      local err = testsuite.error_of(function() return User:group_by("age"):sum("balance") end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)
  end)

  describe("row terminals", function()
    it("first orders by the primary key unless ordered", function()
      local ids = User:order_by("id"):pluck("id")
      assert.are.equal(ids[1], User:first().id)
      assert.are.equal("Eve", User:order_by("name", "desc"):first().name)
      assert.is_nil(User:where{ name = "nobody" }:first())
    end)

    it("one: the record, nil for none, QueryError for several", function()
      assert.are.equal("Cid", User:where{ age = 45 }:one().name)
      assert.is_nil(User:where{ age = 99 }:one())
      local err = testsuite.error_of(function() return User:where{ age = 17 }:one() end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
      assert.matches("more than one", tostring(err), 1, true)
    end)

    it("exists", function()
      assert.is_true(User:where{ name = "Ann" }:exists())
      assert.is_false(User:where{ name = "nobody" }:exists())
      assert.is_true(User:group_by("age"):having("COUNT(*) > ?", 1):exists())
      assert.is_false(User:group_by("age"):having("COUNT(*) > ?", 2):exists())
    end)

    it("pluck converts like the model's fields", function()
      assert.are.same({ "Ann", "Bob", "Cid", "Dee", "Eve" }, User:order_by("name"):pluck("name"))
      assert.are.same({ true, false }, User:in_list("name", { "Ann", "Bob" }):order_by("name"):pluck("active"))
      local profiles = User:where{ name = "Ann" }:pluck("profile")
      assert.are.same({ "python", "lua" }, profiles[1].tags)
      assert.are.same({ "ANN" }, User:where{ name = "Ann" }:pluck(ar.fn.upper("name")))
      -- a select on the query does not leak into pluck
      assert.are.same({ "Bob" }, User:select("id", "age"):where{ name = "Bob" }:pluck("name"))
    end)

    it("aggregate returns plain tables", function()
      local rows = Post:select("user_id", ar.fn.count("*"):as("n")):group_by("user_id"):order_by("n"):aggregate()
      assert.are.same({ 1, 2, 3 }, { rows[1].n, rows[2].n, rows[3].n })
      assert.is_nil(getmetatable(rows[1]))
    end)
  end)

  describe("explain", function()
    it("returns the server's plan as tables", function()
      local plan, format = User:where{ name = "Ann" }:explain()
      assert.are.equal("table", type(plan))
      if db:supports("explain_json") then
        assert.are.equal("json", format)
        assert.is_not_nil(plan.query_block)
      else
        assert.are.equal("traditional", format)
      end
      local rows, f2 = User:joins("posts", { ["posts.user_id"] = "users.id" }):explain{ format = "traditional" }
      assert.are.equal("traditional", f2)
      assert.is_true(#rows >= 2)
      assert.is_not_nil(rows[1].table)
    end)
  end)

  describe("streaming", function()
    it("each streams every matching row as an instance", function()
      local seen = {}
      User:where{ active = true }:order_by("name"):each(function(u) seen[#seen + 1] = u.name end)
      assert.are.same({ "Ann", "Cid", "Dee" }, seen)
      local rows = {}
      ar.table("users", db):select("name"):where{ age = 17 }:order_by("name"):each(function(r) rows[#rows + 1] = r end)
      assert.are.same({ { name = "Bob" }, { name = "Eve" } }, rows)
    end)
  end)

  describe("writes", function()
    it("update_all sets values and expressions; returns affected rows", function()
      assert.are.equal(2, User:where{ age = 17 }:update_all{ active = true, balance = "5.00" })
      assert.are.same({ true, true }, User:where{ age = 17 }:pluck("active"))
      assert.are.equal(4, User:is_not_null("age"):update_all{ age = ar.col("age"):add(1) })
      assert.are.same({ 18, 18, 32, 46 }, User:is_not_null("age"):order_by("age"):pluck("age"))
      assert.are.equal(1, User:where{ name = "Cid" }:update_all{ age = ar.null })
      local err = testsuite.error_of(function() return User:where{ name = "x" }:update_all{} end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)

    it("delete_all deletes what matches", function()
      assert.are.equal(2, Post:where{ user_id = User:where{ name = "Eve" }:select("id") }:delete_all())
      assert.are.equal(4, Post:count())
      assert.are.equal(0, Post:where{ title = "none" }:delete_all())
    end)
  end)

  describe("locking", function()
    it("compiles for_update / for_share with nowait and skip_locked", function()
      local cases = {
        { User:for_update(), "FOR UPDATE$" },
        { User:for_update{ nowait = true }, "FOR UPDATE NOWAIT$", "nowait" },
        { User:for_update{ skip_locked = true }, "FOR UPDATE SKIP LOCKED$", "skip_locked" },
        { User:for_share(), db:supports("for_share") and "FOR SHARE$" or "LOCK IN SHARE MODE$" },
      }
      for _, c in ipairs(cases) do
        if not c[3] or db:supports(c[3]) then
          assert.matches(c[2], (c[1]:where{ id = 1 }:to_sql()))
          db:transaction(function() c[1]:where{ name = "Ann" }:all() end)
        else
          support.raises_before_sql(db, "CapabilityError", function() return c[1]:all() end)
        end
      end
      local err = testsuite.error_of(function()
        return User:for_update{ nowait = true, skip_locked = true }:to_sql()
      end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end)

    it("nowait fails fast and skip_locked skips rows another session holds", function()
      if not testsuite.requires_operations(provider, "concurrent_session") then return end
      if not testsuite.requires_capabilities(db, "nowait", "skip_locked") then return end
      local ann = User:find_by{ name = "Ann" }
      local session = provider.concurrent_session(scenario, {
        { sql = "SELECT id FROM users WHERE id = " .. math.tointeger(ann.id) .. " FOR UPDATE" },
        { signal = true }, { sleep = 3 },
      })
      assert.is_true(session:wait_signal())
      local ok, err = pcall(function()
        db:transaction(function()
          local started = testsuite.now()
          local e = testsuite.error_of(function()
            return User:where{ id = ann.id }:for_update{ nowait = true }:all()
          end)
          assert.is_true(ar.errors.is(e), tostring(e))
          assert.is_true(testsuite.now() - started < 2)
        end)
        db:transaction(function()
          local rows = User:for_update{ skip_locked = true }:order_by("name"):all()
          assert.are.same({ "Bob", "Cid", "Dee", "Eve" }, support.names(rows))
        end)
      end)
      session:finish()
      assert(ok, err)
    end)
  end)
end)

describe("query find_each over many rows", function()
  local scenario = testsuite.default_scenario()
  local group = GROUP .. "/batches"
  local db, User
  local N = 6000

  setup(function()
    db = provider.setup(group, scenario, { "users" })
    User = support.models(db)
    local cols = { "name", "email", "age", "balance", "active" }
    db:transaction(function(tx)
      for start = 1, N, 500 do
        local params, n = {}, 0
        for i = start, math.min(start + 499, N) do
          n = n + 1
          for _, v in ipairs({ "bulk" .. i, "bulk" .. i .. "@example.com", i % 90, "1.00", i % 3 ~= 0 }) do
            params[#params + 1] = v
          end
        end
        tx:execute(tx:compile("insert", "users", cols, n), table.unpack(params))
      end
    end)
  end)

  teardown(function()
    provider.teardown(group, scenario)
  end)

  it("visits every matching row once, in key order, respecting conditions", function()
    local q = User:like("name", "bulk%"):where{ active = true }
    local expected_n, expected_sum = q:count(), q:sum("id")
    local n, sum, last, batches = 0, 0, -1, 0
    local statements = testsuite.count_statements(db, function()
      q:find_each({ batch_size = 250 }, function(u)
        assert.is_true(u.id > last)
        assert.is_true(u.active)
        last = u.id
        n, sum = n + 1, sum + u.id
      end)
    end, "^SELECT")
    for _ in q:find_batches{ batch_size = 1000 } do batches = batches + 1 end
    assert.are.equal(4000, expected_n)
    assert.are.equal(expected_n, n)
    assert.are.equal(math.tointeger(tonumber(expected_sum)), sum)
    assert.are.equal(4000 // 250 + 1, statements) -- a last, empty batch ends it
    assert.are.equal(4, batches)
  end)

  it("keeps memory flat: one batch at a time", function()
    local samples = {}
    local i = 0
    User:like("name", "bulk%"):find_each({ batch_size = 200 }, function()
      i = i + 1
      if i % 200 == 1 then
        collectgarbage("collect")
        samples[#samples + 1] = collectgarbage("count")
      end
    end)
    assert.are.equal(N, i)
    assert.are.equal(N // 200, #samples)
    local base, peak = samples[2], 0
    for k = 2, #samples do peak = math.max(peak, samples[k]) end
    -- 6000 instances at once would take megabytes; one batch at a time stays level
    assert.is_true(peak - base < 256, ("heap grew %.0f KiB over %d batches"):format(peak - base, #samples))
  end)

  it("iterates without a callback, and on table queries with a key", function()
    local count = 0
    for rec in User:like("name", "bulk1%"):find_each{ batch_size = 100 } do
      assert.matches("^bulk1", rec.name)
      count = count + 1
    end
    assert.are.equal(User:like("name", "bulk1%"):count(), count)
    local rows = 0
    ar.table("users", db):where("age = ?", 5):find_each({ batch_size = 7, key = "id" }, function(r)
      assert.are.equal(5, r.age)
      rows = rows + 1
    end)
    assert.are.equal(ar.table("users", db):where("age = ?", 5):count(), rows)
  end)

  it("refuses orderings and limits it would ignore", function()
    for _, q in ipairs({ User:order_by("name"), User:limit(3) }) do
      local err = testsuite.error_of(function() q:find_each({}, function() end) end)
      assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
    end
    local err = testsuite.error_of(function() ar.table("users", db):find_each({}, function() end) end)
    assert.is_true(ar.errors.is(err, "QueryError"), tostring(err))
  end)
end)

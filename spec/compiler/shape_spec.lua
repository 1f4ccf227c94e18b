-- The shape cache of the compiler, without a server: a statement compiled
-- through the cache (`compiler.select/update/delete`) must give exactly the
-- text and parameters of a fresh compile (`compiler.uncached`), on the miss
-- that fills the cache and on every hit after it, whatever the values;
-- statements whose SQL differs must never share an entry; values never
-- reach the SQL text.
local ar = require("activerecord")
local compiler = require("activerecord.backend.mysql.compiler")
local errors = require("activerecord.errors")
local query = require("activerecord.query")
local cases = require("compiler.cases")

local mariadb, mysql8 = cases.dialects.mariadb, cases.dialects.mysql8
local T, null = ar.table, ar.null
local cache, fresh = compiler.cache, compiler.uncached

local function plain(params)
  local out = { n = params.n }
  for i = 1, params.n do out[i] = params[i] end
  return out
end

-- Compiles q through the cache and fresh; both must agree. Returns the
-- cached text and parameters.
local function same_as_fresh(d, q, kind, extra)
  kind = kind or "select"
  local sql, params = compiler[kind](d, q, extra)
  local want_sql, want = fresh[kind](d, q, extra)
  assert.are.equal(want_sql, sql)
  assert.are.same(plain(want), plain(params))
  return sql, params
end

describe("the shape cache (no server)", function()
  before_each(function() cache.clear() end)

  describe("every pinned statement", function()
    for _, case in ipairs(cases.selects) do
      local name, d, build, sql = case[1], case[2], case[3], case[4]
      it(name .. ": the miss and the hit give the fresh compile's text and parameters", function()
        local got = same_as_fresh(d, build():_final()) -- the miss
        assert.are.equal(sql, got)
        local size = cache.size()
        same_as_fresh(d, build():_final()) -- the hit
        assert.are.equal(size, cache.size(), "a repeated statement adds nothing to the cache")
      end)
    end
  end)

  -- Shapes built with a set of values: compiled with one set (the miss),
  -- then with another (a hit), which must be the fresh compile of the
  -- second set, its values in the parameters.
  local VARIED = {
    { "where{} equality", function(v) return T("users"):where{ name = v.s } end },
    { "two keys", function(v) return T("users"):where{ name = v.s, age = v.i } end },
    { "IN of three", function(v) return T("users"):where{ id = { v.i, v.j, v.k } } end },
    { "raw fragment", function(v) return T("users"):where("a > ? AND b < ?", v.i, v.s) end },
    { "comparisons", function(v) return T("users"):where(ar.col("a"):gt(v.i)):where(ar.col("b"):le(v.j)) end },
    { "between and like", function(v)
        return T("users"):where(ar.col("a"):between(v.i, v.j)):where(ar.col("n"):like(v.s))
      end },
    { "arithmetic", function(v) return T("users"):where(ar.col("a"):add(v.i):mul(v.j):lt(v.k)) end },
    { "limit and offset", function(v) return T("users"):where{ a = v.s }:limit(v.i):offset(v.j) end },
    { "offset alone", function(v) return T("users"):offset(v.i) end },
    { "a subquery's values in order", function(v)
        return T("posts"):where{ title = v.s }:where{ user_id = T("users"):select("id"):where("age > ?", v.i) }
          :limit(v.j)
      end },
    { "a CTE's values first", function(v)
        return T("t"):with_cte("t", T("users"):where{ a = v.i }):where{ b = v.j }
      end },
    { "a union", function(v) return T("a"):where{ x = v.i }:union(T("b"):where{ y = v.j }):limit(v.k) end },
    { "a function argument", function(v)
        return T("users"):select({ expr = ar.fn.coalesce("nick", ar.value(v.s)), as = "n" })
      end },
    { "lag default", function(v)
        return T("users"):select({ expr = ar.lag("s", 1, v.i):over{ order_by = "id" }, as = "p" })
      end },
    { "json value and search", function(v)
        return T("users"):where(ar.json_value("p", "$.a"):eq(v.s)):where(ar.json_search("p", "one", v.s):is_null())
      end },
    { "match against", function(v) return T("posts"):where(ar.match_against("title", v.s)) end },
    { "a join ON value", function(v) return T("a"):joins("b", "b.x = a.x AND b.y = ?", v.i):where{ z = v.j } end },
    { "having", function(v) return T("u"):group_by("t"):select("t"):having("COUNT(*) > ?", v.i) end },
    { "FOR UPDATE", function(v) return T("users"):where{ id = v.i }:limit(1):for_update() end },
    { "exists", function(v) return T("u"):where(ar.exists(T("p"):where("p.x = ?", v.i))):where{ y = v.j } end },
  }
  local V1 = { s = "ann", i = 101, j = 102, k = 103 }
  local V2 = { s = "bo", i = 10, j = 20, k = 30 }

  describe("a shape compiled again with other values", function()
    for _, case in ipairs(VARIED) do
      it(case[1] .. " hits and equals a fresh compile", function()
        local sql1 = same_as_fresh(mariadb, case[2](V1):_final())
        local size = cache.size()
        local sql2, params = same_as_fresh(mariadb, case[2](V2):_final())
        assert.are.equal(size, cache.size())
        assert.are.equal(sql1, sql2)
        for i = 1, params.n do
          for _, v in pairs(V1) do
            assert.are_not.equal(v, params[i], "a value of the first query leaked into the second")
          end
        end
      end)
    end
  end)

  -- Pairs that look alike but compile differently (in their text, or in a
  -- parameter the compiler makes, like a JSON path or document): compiled
  -- one after the other, each must still be its own fresh compile.
  local tenant = 1
  local Scoped = ar.Model{ name = "ShapeSpecScoped", table = "docs",
    fields = { id = "integer", tenant_id = "integer" },
    mixins = { { default_scopes = { tenant = function(q)
      if tenant == nil then return q:where{ tenant_id = null } end
      return q:where{ tenant_id = tenant }
    end } } } }
  local A = ar.Model{ name = "ShapeSpecA", table = "things", fields = { id = "integer",
    label = { type = "string", column = "label_a" } } }
  local B = ar.Model{ name = "ShapeSpecB", table = "things", fields = { id = "integer",
    label = { type = "string", column = "label_b" } } }
  local PAIRS = {
    { "IN lists of two and three items", function() return T("u"):where{ id = { 1, 2 } } end,
      function() return T("u"):where{ id = { 1, 2, 3 } } end },
    { "different raw texts", function() return T("u"):where("a = ?", 1) end,
      function() return T("u"):where("b = ?", 1) end },
    { "a value and NULL (IS NULL)", function() return T("u"):where{ a = 1 } end,
      function() return T("u"):where{ a = null } end },
    { "eq a value and eq NULL", function() return T("u"):where(ar.col("a"):eq(1)) end,
      function() return T("u"):where(ar.col("a"):ne(null)) end },
    { "a value and a column", function() return T("u"):where(ar.col("a"):eq("b")) end,
      function() return T("u"):where(ar.col("a"):eq(ar.col("b"))) end },
    { "a limit and none", function() return T("u"):where{ a = 1 } end,
      function() return T("u"):where{ a = 1 }:limit(1) end },
    { "limit+offset and offset alone", function() return T("u"):limit(1):offset(2) end,
      function() return T("u"):offset(2) end },
    { "asc and desc", function() return T("u"):order_by("a") end, function() return T("u"):order_by("a", "desc") end },
    { "FOR UPDATE and FOR SHARE", function() return T("u"):for_update() end, function() return T("u"):for_share() end },
    { "NOWAIT and SKIP LOCKED", function() return T("u"):for_update{ nowait = true } end,
      function() return T("u"):for_update{ skip_locked = true } end },
    { "two time limits", function() return T("u"):timeout(2) end, function() return T("u"):timeout(3) end },
    { "an integral and a fractional time limit", function() return T("u"):timeout(2) end,
      function() return T("u"):timeout(2.5) end },
    { "two tables", function() return T("u"):where{ a = 1 } end, function() return T("v"):where{ a = 1 } end },
    { "two columns", function() return T("u"):where{ a = 1 } end, function() return T("u"):where{ b = 1 } end },
    { "two operators", function() return T("u"):where(ar.col("a"):gt(1)) end,
      function() return T("u"):where(ar.col("a"):ge(1)) end },
    { "AND and OR", function() return T("u"):where(ar.col("a"):eq(1):and_(ar.col("b"):eq(2))) end,
      function() return T("u"):where(ar.col("a"):eq(1):or_(ar.col("b"):eq(2))) end },
    { "IN and NOT IN", function() return T("u"):in_list("a", { 1 }) end,
      function() return T("u"):not_in("a", { 1 }) end },
    { "distinct or not", function() return T("u") end, function() return T("u"):distinct() end },
    { "two JSON paths", function() return T("u"):where(ar.json_value("p", "$.a"):eq(1)) end,
      function() return T("u"):where(ar.json_value("p", "$.b"):eq(1)) end },
    { "JSON documents that encode differently", function() return T("u"):where(ar.json_contains("p", {})) end,
      function() return T("u"):where(ar.json_contains("p", ar.json_array())) end },
    { "ntile buckets", function() return T("u"):select({ expr = ar.ntile(2):over{ order_by = "a" }, as = "q" }) end,
      function() return T("u"):select({ expr = ar.ntile(3):over{ order_by = "a" }, as = "q" }) end },
    { "two select aliases", function() return T("u"):select(ar.col("a"):as("x")) end,
      function() return T("u"):select(ar.col("a"):as("y")) end },
    { "two where calls and one", function() return T("u"):where{ a = 1 }:where{ b = 2 } end,
      function() return T("u"):where{ a = 1, b = 2 } end },
    { "a raw fragment with one value and with a NULL", function() return T("u"):where("a <=> ?", 1) end,
      function() return T("u"):where("a <=> ?", null) end },
    { "two models with other columns for a field", function() return A:where{ label = "x" } end,
      function() return B:where{ label = "x" } end },
    { "a default scope whose structure follows state", function()
        tenant = 1
        return Scoped:where{ id = 1 }
      end, function()
        tenant = nil
        return Scoped:where{ id = 1 }
      end },
  }

  describe("statements whose SQL differs", function()
    for _, case in ipairs(PAIRS) do
      it(case[1] .. " do not share an entry", function()
        same_as_fresh(mariadb, case[2]():_final())
        same_as_fresh(mariadb, case[3]():_final())
        -- and the first again, now that both are cached
        same_as_fresh(mariadb, case[2]():_final())
      end)
    end

    it("one shape on two dialects compiles for each", function()
      local a = same_as_fresh(mariadb, T("u"):for_share())
      local b = same_as_fresh(mysql8, T("u"):for_share())
      assert.are.equal("SELECT * FROM `u` LOCK IN SHARE MODE", a)
      assert.are.equal("SELECT * FROM `u` FOR SHARE", b)
    end)

    it("a raw fragment given too many values is refused, never answered from the cache", function()
      same_as_fresh(mariadb, T("u"):where("a = ?", 1))
      local ok, err = pcall(compiler.select, mariadb, T("u"):where("a = ?", 1, 2))
      assert.is_false(ok)
      assert.is_true(errors.is(err, "QueryError"), tostring(err))
    end)

    it("a capability refused once is refused again (nothing cached for it)", function()
      local mysql57 = cases.dialects.mysql57
      for _ = 1, 2 do
        local ok, err = pcall(compiler.select, mysql57, T("u"):for_update{ skip_locked = true })
        assert.is_false(ok)
        assert.is_true(errors.is(err, "CapabilityError"), tostring(err))
      end
    end)

    it("a bad JSON path is refused on a hit too", function()
      same_as_fresh(mariadb, T("u"):where(ar.json_value("p", "$.a"):eq(1)))
      local ok, err = pcall(compiler.select, mariadb, T("u"):where(ar.json_value("p", "$..bad"):eq(1)))
      assert.is_false(ok)
      assert.is_true(errors.is(err, "QueryError"), tostring(err))
    end)
  end)

  describe("hostile values", function()
    local HOSTILE = {
      "x'; DROP TABLE users; --", "`) OR 1=1 -- ", "?", "??", "' OR '1'='1", "\0", "\\", "\"", "$.a') OR ('1",
      "*/ SELECT 1 /*", "NULL", "1 = 1", string.rep("A", 5000),
    }
    local SHAPES = {
      function(h) return T("users"):where{ name = h } end,
      function(h) return T("users"):where("name = ?", h) end,
      function(h) return T("users"):where{ name = { h, "b" } } end,
      function(h) return T("users"):where(ar.col("name"):like(h)):where(ar.col("n"):between(h, h)) end,
      function(h) return T("users"):where(ar.json_value("p", "$.a"):eq(h)) end,
      function(h) return T("users"):where(ar.match_against("t", h)) end,
      function(h) return T("users"):select({ expr = ar.fn.coalesce("a", ar.value(h)), as = "c" }) end,
    }
    for n, build in ipairs(SHAPES) do
      it("never reach the SQL text (shape " .. n .. ")", function()
        local benign = same_as_fresh(mariadb, build("benign"))
        for _, h in ipairs(HOSTILE) do
          local sql, params = same_as_fresh(mariadb, build(h))
          assert.are.equal(benign, sql)
          if #h > 2 then assert.is_nil(sql:find(h, 1, true)) end
          local found = false
          for i = 1, params.n do found = found or params[i] == h end
          assert.is_true(found, "the value is a parameter")
        end
      end)
    end
  end)

  describe("UPDATE and DELETE", function()
    it("UPDATE hits across values and equals a fresh compile", function()
      local function build(v) return T("users"):where{ id = { v, v + 1 } } end
      local function sets(v) return { { column = "name", value = "n" .. v }, { column = "score", value = null } } end
      local sql1 = same_as_fresh(mariadb, build(1), "update", sets(1))
      local size = cache.size()
      local sql2, params = same_as_fresh(mariadb, build(5), "update", sets(5))
      assert.are.equal(sql1, sql2)
      assert.are.equal(size, cache.size())
      assert.are.same({ n = 4, "n5", null, 5, 6 }, plain(params))
    end)

    it("UPDATE with an expression and with a value are two shapes", function()
      local q = T("users"):where{ id = 1 }
      local a = same_as_fresh(mariadb, q, "update", { { column = "s", value = 1 } })
      local b = same_as_fresh(mariadb, q, "update", { { column = "s", value = ar.col("s"):add(1) } })
      assert.are_not.equal(a, b)
    end)

    it("UPDATE slots stay where the compiler bound them", function()
      local slot = query.slot("v")
      same_as_fresh(mariadb, T("users"):where{ id = 1 }, "update", { { column = "a", value = slot } })
      local _, params = same_as_fresh(mariadb, T("users"):where{ id = 2 }, "update", { { column = "a", value = slot } })
      assert.are.equal(slot, params[1])
      assert.are.equal(2, params[2])
    end)

    it("DELETE with a limit hits across values", function()
      same_as_fresh(mariadb, T("users"):where("age < ?", 18):limit(5), "delete")
      local size = cache.size()
      local _, params = same_as_fresh(mariadb, T("users"):where("age < ?", 30):limit(7), "delete")
      assert.are.equal(size, cache.size())
      assert.are.same({ n = 2, 30, 7 }, plain(params))
    end)

    it("DELETE ... RETURNING is its own shape", function()
      local a = same_as_fresh(mariadb, T("users"):where{ id = 1 }, "delete")
      local b = same_as_fresh(mariadb, T("users"):where{ id = 1 }, "delete", { returning = { "id" } })
      assert.are_not.equal(a, b)
    end)
  end)

  describe("bounds and limits", function()
    it("is bounded: past its size it starts over", function()
      local old = cache.limit(200)
      for i = 1, 300 do
        same_as_fresh(mariadb, T("users"):where("col_" .. i .. " = ?", i))
        assert.is_true(cache.size() <= 200 + 40, "size " .. cache.size())
      end
      cache.limit(old)
    end)

    it("a query it cannot read is compiled as it is, and not cached", function()
      -- changing a query's fields is done on a clone (which has no builder
      -- shape: the walk reads every field)
      local q = T("users"):where{ id = 1 }:clone()
      q.custom = function() end -- not data: nothing says it cannot change the SQL
      local size = cache.size()
      same_as_fresh(mariadb, q)
      assert.are.equal(size, cache.size())
    end)

    it("a slot is bound as itself, at its place", function()
      local slot = query.slot("<id>")
      local function build() return T("users"):where(ar.col("id"):eq(slot)):limit(1) end
      local _, p1 = same_as_fresh(mariadb, build())
      local _, p2 = same_as_fresh(mariadb, build())
      assert.are.equal(slot, p1[1])
      assert.are.equal(slot, p2[1])
      assert.are.equal(1, p2[2])
    end)
  end)
end)

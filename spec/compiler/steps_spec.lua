-- The builder's incremental shape (activerecord.query.shape), without a
-- server: a query built by shaped steps carries its trie node and its
-- values; its compiled entry sits on the node. Every statement must still
-- compile to the fresh compile's text and parameters, on the miss and on
-- every hit, whatever the values; look-alike chains never share an entry;
-- values never reach the SQL text; a terminal on a hit skips the compiler.
local ar = require("activerecord")
local compiler = require("activerecord.backend.mysql.compiler")
local qshape = require("activerecord.query.shape")
local cases = require("compiler.cases")

local mariadb = cases.dialects.mariadb
local T, null = ar.table, ar.null
local fresh = compiler.uncached

local function plain(params)
  local out = { n = params.n }
  for i = 1, params.n do out[i] = params[i] end
  return out
end

local function same_as_fresh(q)
  local sql, params = compiler.select(mariadb, q)
  local want_sql, want = fresh.select(mariadb, q)
  assert.are.equal(want_sql, sql)
  assert.are.same(plain(want), plain(params))
  return sql, params
end

-- the compiled entry on a query's node, or nil
local function entry(q) return q._shape and q._shape[mariadb] end

describe("the builder's incremental shape (no server)", function()
  before_each(function() compiler.cache.clear() end)

  it("most pinned statements are built by shaped steps, and every one compiles as fresh on miss and hit", function()
    local shaped = 0
    for _, case in ipairs(cases.selects) do
      if case[2] == mariadb then
        local q = case[3]():_final()
        same_as_fresh(q)
        local q2 = case[3]():_final()
        same_as_fresh(q2)
        if q._shape then
          assert.are.equal(q._shape, q2._shape, case[1] .. ": one chain, one node")
          assert.is_truthy(entry(q2), case[1] .. ": the entry is on the node")
          shaped = shaped + 1
        end
      end
    end
    assert.is_true(shaped >= 45, "shaped statements: " .. shaped)
  end)

  local Bool = ar.Model{ name = "StepsSpecBool", table = "flags",
    fields = { id = "integer", active = "boolean", name = "string" } }

  -- chains built with two sets of values: one node, the second a hit
  local VARIED = {
    { "where{} one key", function(v) return T("u"):where{ id = v.i } end },
    { "where{} keys sorted", function(v) return T("u"):where{ b = v.s, a = v.i } end },
    { "an IN list", function(v) return T("u"):where{ id = { v.i, v.j } } end },
    { "a raw fragment", function(v) return T("u"):where("a = ? AND b > ?", v.s, v.i) end },
    { "expressions", function(v)
        return T("u"):where(ar.col("a"):gt(v.i)):where(ar.col("b"):between(v.i, v.j)):where(ar.col("n"):like(v.s))
      end },
    { "and/or/not", function(v)
        return T("u"):where(ar.col("a"):eq(v.i):or_(ar.col("b"):ne(v.j))):not_where{ c = v.s }
      end },
    { "select, order, limit, offset", function(v)
        return T("u"):select("id", "name"):where{ a = v.s }:order_by("id", "desc"):limit(v.i):offset(v.j)
      end },
    { "limit given twice (the last counts)", function(v) return T("u"):limit(v.i):where{ a = v.s }:limit(v.j) end },
    { "reorder drops the order before it", function(v)
        return T("u"):order_by(ar.col("a"):add(v.i)):where{ a = v.s }:reorder("b"):limit(v.j)
      end },
    { "a boolean false value", function(v) return T("u"):where{ active = v.b } end },
    { "a model's field types convert", function(v) return Bool:where{ active = v.b, name = v.s }:limit(v.i) end },
    { "first()", function(v) return T("u"):where{ a = v.i }:order_by("id"):limit(1) end },
  }
  local V1 = { s = "ann", i = 101, j = 102, b = true }
  local V2 = { s = "bo", i = 10, j = 20, b = false }

  for _, case in ipairs(VARIED) do
    it(case[1] .. ": one node, the second set of values a hit equal to a fresh compile", function()
      local q1, q2 = case[2](V1):_final(), case[2](V2):_final()
      assert.is_truthy(q1._shape, "shaped")
      assert.are.equal(q1._shape, q2._shape)
      local sql1 = same_as_fresh(q1)
      assert.is_truthy(entry(q1), "learned")
      local sql2, params = same_as_fresh(q2)
      assert.are.equal(sql1, sql2)
      for i = 1, params.n do
        for k, v in pairs(V1) do
          if V2[k] ~= v then assert.are_not.equal(v, params[i], "a value of the first query in the second") end
        end
      end
    end)
  end

  it("a model's boolean is bound as the column stores it, on a hit too", function()
    local _, p1 = same_as_fresh(Bool:where{ active = true }:_final())
    local _, p2 = same_as_fresh(Bool:where{ active = false }:_final())
    assert.are.same({ n = 1, 1 }, plain(p1))
    assert.are.same({ n = 1, 0 }, plain(p2))
  end)

  local tenant = 1
  local Scoped = ar.Model{ name = "StepsSpecScoped", table = "docs",
    fields = { id = "integer", tenant_id = "integer" },
    mixins = { { default_scopes = { tenant = function(q)
      if tenant == nil then return q:where{ tenant_id = null } end
      return q:where{ tenant_id = tenant }
    end } } } }
  local A = ar.Model{ name = "StepsSpecA", table = "things", fields = { id = "integer",
    label = { type = "string", column = "label_a" } } }
  local B = ar.Model{ name = "StepsSpecB", table = "things", fields = { id = "integer",
    label = { type = "string", column = "label_b" } } }

  -- chains that look alike and compile differently: never one node
  local PAIRS = {
    { "IN lengths", function() return T("u"):where{ id = { 1, 2 } } end,
      function() return T("u"):where{ id = { 1, 2, 3 } } end },
    { "NULL and a value", function() return T("u"):where{ a = 1 } end, function() return T("u"):where{ a = null } end },
    { "eq NULL and eq a value", function() return T("u"):where(ar.col("a"):eq(null)) end,
      function() return T("u"):where(ar.col("a"):eq(1)) end },
    { "raw texts", function() return T("u"):where("a = ?", 1) end, function() return T("u"):where("b = ?", 1) end },
    { "column names", function() return T("u"):where{ a = 1 } end, function() return T("u"):where{ b = 1 } end },
    { "order directions", function() return T("u"):order_by("a") end,
      function() return T("u"):order_by("a", "desc") end },
    { "limit present or not", function() return T("u"):where{ a = 1 } end,
      function() return T("u"):where{ a = 1 }:limit(1) end },
    { "limit or offset", function() return T("u"):limit(5) end, function() return T("u"):offset(5) end },
    { "one where{} or two", function() return T("u"):where{ a = 1, b = 2 } end,
      function() return T("u"):where{ a = 1 }:where{ b = 2 } end },
    { "where and not_where", function() return T("u"):where{ a = 1 } end,
      function() return T("u"):not_where{ a = 1 } end },
    { "between and not between", function() return T("u"):where(ar.col("a"):between(1, 2)) end,
      function() return T("u"):where(ar.col("a"):between(1, 2):not_()) end },
    { "like and not like", function() return T("u"):where(ar.col("a"):like("x")) end,
      function() return T("u"):where(ar.col("a"):not_like("x")) end },
    { "IN and NOT IN", function() return T("u"):in_list("a", { 1 }) end,
      function() return T("u"):not_in("a", { 1 }) end },
    { "two tables", function() return T("u"):where{ a = 1 } end, function() return T("v"):where{ a = 1 } end },
    { "an order kept or dropped", function() return T("u"):order_by("a"):order_by("b") end,
      function() return T("u"):order_by("a"):reorder("b") end },
    { "select lists", function() return T("u"):select("a") end, function() return T("u"):select("a", "b") end },
    { "an alias", function() return T("u"):select(ar.col("a"):as("x")) end,
      function() return T("u"):select(ar.col("a"):as("y")) end },
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

  for _, case in ipairs(PAIRS) do
    it(case[1] .. ": two nodes, each its own fresh compile", function()
      local a1 = case[2]():_final()
      local b1 = case[3]():_final()
      local sa = same_as_fresh(a1)
      local sb = same_as_fresh(b1)
      same_as_fresh(case[2]():_final())
      same_as_fresh(case[3]():_final())
      if sa ~= sb then
        assert.is_truthy(a1._shape and b1._shape, "both shaped")
        assert.are_not.equal(a1._shape, b1._shape)
      end
    end)
  end

  describe("hostile values", function()
    local HOSTILE = { "x'; DROP TABLE users; --", "`) OR 1=1 -- ", "?", "' OR '1'='1", "\0", "\\", "NULL",
      string.rep("A", 3000) }
    local SHAPES = {
      function(h) return T("users"):where{ name = h } end,
      function(h) return T("users"):where("name = ?", h):limit(1) end,
      function(h) return T("users"):where{ name = { h, "b" } } end,
      function(h) return T("users"):where(ar.col("name"):like(h)):where(ar.col("n"):between(h, h)) end,
    }
    for n, build in ipairs(SHAPES) do
      it("stay parameters (shape " .. n .. ")", function()
        local benign = same_as_fresh(build("benign"):_final())
        for _, h in ipairs(HOSTILE) do
          local q = build(h):_final()
          local sql, params = same_as_fresh(q)
          assert.is_truthy(entry(q))
          assert.are.equal(benign, sql)
          if #h > 2 then assert.is_nil(sql:find(h, 1, true)) end
          local found = false
          for i = 1, params.n do found = found or params[i] == h end
          assert.is_true(found, "the value is a parameter")
        end
      end)
    end

    it("a bad column name is refused when the query is built", function()
      assert.has_error(function() T("u"):where{ ["a; DROP"] = 1 } end)
      assert.has_error(function() T("u"):select("a b") end)
    end)
  end)

  describe("correct by default", function()
    it("a clone has no shape: code that changes its fields is compiled by the walk", function()
      local q = T("u"):where{ a = 1 }
      local c = q:clone()
      assert.is_nil(c._shape)
      c._limit = 3
      same_as_fresh(c)
    end)

    it("steps the shape does not know leave none", function()
      assert.is_nil(T("u"):where{ a = 1 }:group_by("a")._shape)
      assert.is_nil(T("u"):joins("v", "v.id = u.id")._shape)
      assert.is_nil(T("u"):where{ a = 1 }:for_update()._shape)
      assert.is_nil(T("u"):where{ a = T("v"):select("id") }._shape)
      assert.is_nil(T("u"):where{ a = { 1, null } }._shape)
      assert.is_nil(T("u"):where(ar.fn.lower("a"):eq("x"))._shape)
      same_as_fresh(T("u"):where{ a = { 1, null } })
    end)

    it("a value that cannot be checked against itself (NaN) is compiled without an entry", function()
      local q = T("u"):where{ a = 0 / 0 }
      local sql, params = compiler.select(mariadb, q)
      assert.are.equal("SELECT * FROM `u` WHERE (`a` = ?)", sql)
      assert.are_not.equal(params[1], params[1])
      assert.is_false(entry(q))
      same_as_fresh(T("u"):where{ a = 1 })
    end)

    it("a slot is bound as itself", function()
      local slot = require("activerecord.query").slot("<id>")
      local q = T("u"):where(ar.col("id"):eq(slot)):limit(1)
      local _, p = same_as_fresh(q)
      local _, p2 = same_as_fresh(T("u"):where(ar.col("id"):eq(slot)):limit(1))
      assert.are.equal(slot, p[1])
      assert.are.equal(slot, p2[1])
    end)

    it("stand-ins are placed by the steps, values in build order", function()
      local q = T("u"):limit(7):where("b = ?", "x"):where{ a = 5 }
      same_as_fresh(q)
      assert.are.same({ 7, "x", 5 }, q._vals)
      local qc = qshape.standin(q)
      assert.is_truthy(qc)
      local _, params = fresh.select(mariadb, qc)
      local idx = {}
      for i = 1, params.n do idx[i] = qshape.marker_index[params[i]] end
      assert.are.same({ 2, 3, 1 }, idx) -- WHERE b, WHERE a, LIMIT
    end)

    it("query.for_model makes the model's query in one table, on the model's root", function()
      local query = require("activerecord.query")
      local q = query.for_model(A, getmetatable(A:query()), nil)
      assert.are.equal(A:query()._shape, q._shape)
      assert.are.equal(A:where{ label = "x" }._shape, q:where{ label = "x" }._shape)
      local sql = compiler.select(mariadb, q:where{ label = "x" })
      assert.are.equal("SELECT * FROM `things` WHERE (`label_a` = ?)", sql)
    end)

    it("the trie is bounded", function()
      local old = compiler.cache.limit(100)
      for i = 1, 200 do
        T("u" .. i):where{ a = i }
        assert.is_true(qshape.size() <= 100 + 10, "size " .. qshape.size())
      end
      compiler.cache.limit(old)
    end)
  end)

  describe("terminals", function()
    local function fake_db()
      local db = { dialect = mariadb, compiles = 0, sent = {} }
      function db:compile(kind, ...)
        self.compiles = self.compiles + 1
        return compiler[kind](self.dialect, ...)
      end
      function db:execute(sql, ...)
        self.sent[#self.sent + 1] = { sql = sql, params = table.pack(...) }
        return { rows = {}, columns = {} }
      end
      return db
    end

    it("all() on a hit goes straight to execute, with this query's values", function()
      local db = fake_db()
      T("users", db):where{ id = 1 }:select("c"):all()
      assert.are.equal(1, db.compiles)
      T("users", db):where{ id = 2 }:select("c"):all()
      T("users", db):where("x = ? AND y = ?", 3, false):limit(2):all()
      T("users", db):where("x = ? AND y = ?", 4, true):limit(5):all()
      assert.are.equal(2, db.compiles)
      assert.are.equal("SELECT `c` FROM `users` WHERE (`id` = ?)", db.sent[2].sql)
      assert.are.same({ n = 1, 2 }, db.sent[2].params)
      assert.are.same({ n = 3, 4, true, 5 }, db.sent[4].params)
    end)

    it("run() passes parameters past three and constants", function()
      local got
      local exec = function(_, sql, ...) got = { sql = sql, n = select("#", ...), ... } end
      qshape.run(exec, nil, { sql = "S", n = 4, 2, 0, 1, 2, consts = { [2] = "k" } }, { "a", false })
      assert.are.same({ sql = "S", n = 4, false, "k", "a", false }, got)
      qshape.run(exec, nil, { sql = "S", n = 2, 1, 2, consts = {} }, { false, "b" })
      assert.are.same({ sql = "S", n = 2, false, "b" }, got)
    end)
  end)
end)

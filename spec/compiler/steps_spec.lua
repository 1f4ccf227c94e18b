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

  -- chains built with two sets of values: one node, the second a hit. `u`
  -- is given the chain's root: as it is (shaped) or cloned (a plain query,
  -- every step building its nodes): the shaped query must compile to the
  -- plain one's fresh compile.
  local function shaped_root(q) return q end
  local function plain_root(q) return q:clone() end
  local VARIED = {
    { "where{} one key", function(v, u) return u(T("u")):where{ id = v.i } end },
    { "where{} keys sorted", function(v, u) return u(T("u")):where{ b = v.s, a = v.i } end },
    { "an IN list", function(v, u) return u(T("u")):where{ id = { v.i, v.j } } end },
    { "a list and a value in one where{}", function(v, u) return u(T("u")):where{ a = { v.i, v.j }, b = v.s } end },
    { "NULL then a value", function(v, u) return u(T("u")):where{ a = null }:where{ b = v.i } end },
    { "a raw fragment", function(v, u) return u(T("u")):where("a = ? AND b > ?", v.s, v.i) end },
    { "a raw fragment twice", function(v, u)
        return u(T("u")):where("a = ?", v.s):where("a = ?", v.i):where("a = ?", v.j)
      end },
    { "expressions", function(v, u)
        return u(T("u")):where(ar.col("a"):gt(v.i)):where(ar.col("b"):between(v.i, v.j)):where(ar.col("n"):like(v.s))
      end },
    { "in_list and not_in", function(v, u) return u(T("u")):in_list("a", { v.i, v.j }):not_in("b", { v.s }) end },
    { "and/or/not", function(v, u)
        return u(T("u")):where(ar.col("a"):eq(v.i):or_(ar.col("b"):ne(v.j))):not_where{ c = v.s }
      end },
    { "select, order, limit, offset", function(v, u)
        return u(T("u")):select("id", "name"):where{ a = v.s }:order_by("id", "desc"):limit(v.i):offset(v.j)
      end },
    { "select items with values, several in one step", function(v, u)
        return u(T("u")):select(ar.raw("LOWER(?)", v.s):as("a"), ar.raw("? + 1", v.i):as("b"), "c")
          :where{ id = v.j }
      end },
    { "select by name, twice", function(v, u) return u(T("u")):select("a"):select("b"):where{ id = v.i } end },
    { "order by names and expressions", function(v, u)
        return u(T("u")):order_by("a", "desc"):order_by("b"):order_by(ar.col("c"):add(v.i)):where{ id = v.j }
      end },
    { "distinct", function(v, u)
        return u(T("u")):where(ar.col("id"):between(v.i, v.j)):select("c"):distinct():order_by("c")
      end },
    { "limit given twice (the last counts)", function(v, u)
        return u(T("u")):limit(v.i):where{ a = v.s }:limit(v.j)
      end },
    { "reorder drops the order before it", function(v, u)
        return u(T("u")):order_by(ar.col("a"):add(v.i)):where{ a = v.s }:reorder("b"):limit(v.j)
      end },
    { "a boolean false value", function(v, u) return u(T("u")):where{ active = v.b } end },
    { "a model's field types convert", function(v, u)
        return u(Bool:query()):where{ active = v.b, name = v.s }:limit(v.i)
      end },
    { "a model's field type converts on a one-key where{}", function(v, u)
        return u(Bool:query()):where{ active = v.b }:where{ id = v.i }
      end },
    { "first()", function(v, u) return u(T("u")):where{ a = v.i }:order_by("id"):limit(1) end },
  }
  local V1 = { s = "ann", i = 101, j = 102, b = true }
  local V2 = { s = "bo", i = 10, j = 20, b = false }

  local function same_as_plain(q, plain_q)
    local sql, params = compiler.select(mariadb, q)
    local want_sql, want = fresh.select(mariadb, plain_q)
    assert.are.equal(want_sql, sql)
    assert.are.same(plain(want), plain(params))
    return sql, params
  end

  for _, case in ipairs(VARIED) do
    it(case[1] .. ": one node, the second set of values a hit equal to a fresh compile", function()
      local q1, q2 = case[2](V1, shaped_root):_final(), case[2](V2, shaped_root):_final()
      assert.is_truthy(q1._shape, "shaped")
      assert.are.equal(q1._shape, q2._shape)
      assert.is_nil(case[2](V1, plain_root)._shape, "the plain build has no shape")
      local sql1 = same_as_fresh(q1)
      same_as_plain(q1, case[2](V1, plain_root):_final())
      assert.is_truthy(entry(q1), "learned")
      local sql2, params = same_as_fresh(q2)
      same_as_plain(q2, case[2](V2, plain_root):_final())
      assert.are.equal(sql1, sql2)
      for i = 1, params.n do
        for k, v in pairs(V1) do
          if V2[k] ~= v then assert.are_not.equal(v, params[i], "a value of the first query in the second") end
        end
      end
    end)
  end

  it("queries branched from one query keep their own values (the values list is shared copy-on-write)", function()
    local base = T("u"):where{ a = 1 }
    local x = base:where{ b = 2 }
    local y = base:where{ b = 3 }
    local z = base:limit(4)
    local x2 = x:where{ c = 5 }
    local y2 = y:where{ c = 6 }
    local function params_of(q) return plain(select(2, compiler.select(mariadb, q))) end
    assert.are.same({ n = 1, 1 }, params_of(base))
    assert.are.same({ n = 2, 1, 2 }, params_of(x))
    assert.are.same({ n = 2, 1, 3 }, params_of(y))
    assert.are.same({ n = 2, 1, 4 }, params_of(z))
    assert.are.same({ n = 3, 1, 2, 5 }, params_of(x2))
    assert.are.same({ n = 3, 1, 3, 6 }, params_of(y2))
    assert.are.same({ n = 2, 1, 2 }, params_of(x))
  end)

  it("a shaped query holds no clause lists: materialize() builds them from its path", function()
    local q = T("u"):select("c"):where{ id = 7 }:order_by("c"):limit(3)
    assert.is_nil(rawget(q, "_where"))
    assert.is_nil(rawget(q, "_select"))
    local m = qshape.materialize(q)
    assert.is_nil(m._shape)
    assert.are.equal(1, #m._where)
    assert.are.equal(1, #m._select)
    assert.are.equal(1, #m._order)
    assert.are.equal(3, m._limit)
    assert.are.same({ order = 1, select = 1, limit = true, offset = false, distinct = false, where = 1 },
      qshape.info(q._shape))
  end)

  it("every expression kind the steps walk has only the fields the walk reads", function()
    local col = ar.col("a")
    local made = {
      col, col:eq(1), col:ne(1), col:gt(1), col:ge(1), col:lt(1), col:le(1), col:add(1), col:between(1, 2),
      col:between(1, 2):not_(), col:like("x"), col:not_like("x"), col:is_null(), col:is_not_null(),
      col:in_list({ 1 }), col:not_in({ 1 }), col:eq(1):and_(col:eq(2)), col:eq(1):or_(col:eq(2)),
      ar.raw("a = ?", 1), ar.value(1), ar.col("b"):eq({ 1, 2 }),
    }
    for _, e in ipairs(made) do
      local allowed = {}
      for _, f in ipairs(qshape.FIELDS[e.kind]) do allowed[f] = true end
      for k in pairs(e) do assert.is_true(allowed[k], e.kind .. " has field " .. tostring(k)) end
    end
  end)

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
      T("u"):where("a = ? AND b = ?", 1, 2)
      local q = T("u"):where("a = ? AND b = ?", 1, nil) -- a NULL among a fragment's values: no shape
      assert.is_nil(q._shape)
      assert.are.same({ n = 2, 1, nil }, plain(select(2, compiler.select(mariadb, q))))
      assert.has_error(function() T("u"):where("a = ? AND b = ?", 1, {}) end)
    end)

    it("a value that cannot be checked against itself (NaN) is compiled without an entry", function()
      local q = T("u"):where{ a = 0 / 0 }
      compiler.select(mariadb, q) -- the node's first statement: compiled as it is
      assert.is_nil(entry(q))
      local sql, params = compiler.select(mariadb, q) -- the second: learned, or marked
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

    it("a model query keeps its source on its metatable while shaped; as a plain query, as its own fields", function()
      local q = A:where{ label = "x" }:limit(3)
      assert.is_nil(rawget(q, "table"))
      assert.are.equal("things", q.table)
      assert.are.equal(A, q.model)
      local c = q:clone()
      assert.are.equal("things", rawget(c, "table"))
      assert.are.equal(A, rawget(c, "model"))
      assert.are.equal(getmetatable(A:query():clone()), getmetatable(c))
      local u = q:union(B:where{ label = "y" })
      assert.is_nil(u.table, "a compound query has no table of its own")
      assert.are.equal("SELECT * FROM `things` WHERE (`label_a` = ?) LIMIT ?", (compiler.select(mariadb, q)))
    end)

    it("query.model_root: one shared root per model, left as it is by the chains started on it", function()
      local query = require("activerecord.query")
      local mt = getmetatable(A:query())
      local root = query.model_root(A, mt, nil)
      assert.are.equal(root, query.model_root(A, mt, nil))
      local before = {}
      for k, v in pairs(root) do before[k] = v end
      local q = root:where{ label = "x" }:select("id"):order_by("id"):limit(2)
      assert.are.equal(A:query():where{ label = "x" }:select("id"):order_by("id"):limit(2)._shape, q._shape)
      root:clone()._limit = 5
      root:_final()
      local after = {}
      for k, v in pairs(root) do after[k] = v end
      assert.are.same(before, after)
      compiler.cache.clear() -- the trie starts over: a new root
      assert.are_not.equal(root, query.model_root(A, mt, nil))
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
      T("users", db):where{ id = 1 }:select("c"):all() -- the node's first: compiled as it is
      assert.are.equal(1, db.compiles)
      T("users", db):where{ id = 2 }:select("c"):all() -- the second: its entry learned
      assert.are.equal(2, db.compiles)
      T("users", db):where{ id = 3 }:select("c"):all()
      assert.are.equal(2, db.compiles)
      for i, b in ipairs({ false, true, false }) do
        T("users", db):where("x = ? AND y = ?", i, b):limit(i + 1):all()
      end
      assert.are.equal(4, db.compiles)
      assert.are.equal("SELECT `c` FROM `users` WHERE (`id` = ?)", db.sent[3].sql)
      assert.are.same({ n = 1, 3 }, db.sent[3].params)
      assert.are.same({ n = 3, 3, false, 4 }, db.sent[6].params)
    end)

    -- the statement a build sends through a shaped root and through a
    -- plain one (every step building its nodes): the same text and values
    local function both(db, build)
      build(T("users", db))
      local a = db.sent[#db.sent]
      build(T("users", db):clone())
      local b = db.sent[#db.sent]
      assert.are.equal(b.sql, a.sql)
      assert.are.same(b.params, a.params)
      return a.sql, a.params
    end

    local function range(q, v) return q:where(ar.col("id"):between(v, v + 99)) end
    local AGGREGATES = {
      function(q, v) return range(q, v):sum("k") end,
      function(q, v) return range(q, v):count() end,
      function(q, v) return range(q, v):count("k") end,
      function(q, v) return range(q, v):count("k", true) end,
      function(q, v) return range(q, v):max("k") end,
      function(q, v) return range(q, v):min("c") end,
      function(q, v) return range(q, v):avg("k") end,
      function(q, v) return range(q, v):select("c"):distinct():count() end,
      function(q, v) return range(q, v):limit(v):max("k") end,
      function(q, v) return range(q, v):order_by("c"):sum("k") end, -- the order dropped: the text of the first
    }

    it("count/sum/avg/min/max: equal to the plain query's statement for two value sets, look-alikes apart", function()
      local db = fake_db()
      local first = {}
      for round, v in ipairs({ 1, 500 }) do
        local size = qshape.size()
        for i, build in ipairs(AGGREGATES) do
          local sql, params = both(db, function(q) return build(q, v) end)
          if round == 1 and i == #AGGREGATES then
            assert.are.equal(first[1], sql)
            first[i] = sql
          elseif round == 1 then
            for j = 1, i - 1 do assert.are_not.equal(first[j], sql, "aggregates " .. i .. " and " .. j) end
            first[i] = sql
          else
            assert.are.equal(first[i], sql)
          end
          assert.are.equal(v, params[1])
        end
        if round == 2 then assert.are.equal(size, qshape.size(), "no new nodes on the second round") end
      end
      assert.has_error(function() T("users", db):sum("a b") end)
    end)

    local WRITES = {
      function(q, v) return q:where{ id = v }:update_all{ k = ar.col("k"):add(v) } end,
      function(q, v) return q:where{ id = v }:update_all{ k = ar.col("k"):sub(v) } end,
      function(q, v) return q:where{ id = v }:update_all{ c = "x" .. v } end,
      function(q, v) return q:where{ id = v }:update_all{ k = "x" .. v } end,
      function(q, v) return q:where{ id = v }:update_all{ c = ar.col("k") } end,
      function(q, v) return q:where{ id = v }:update_all{ c = v, k = v + 1 } end,
      function(q, v) return q:where{ id = v }:limit(v):update_all{ c = v } end,
      function(q, v) return q:where{ id = v }:delete_all() end,
      function(q, v) return q:where{ id = { v, v + 1 } }:delete_all() end,
      function(q, v) return q:where{ id = v }:delete_all{ returning = { "id" } } end,
    }

    it("update_all and delete_all: equal to the plain query's statement for two value sets, look-alikes apart",
      function()
        local db = fake_db()
        local first = {}
        for round, v in ipairs({ 7, 9000 }) do
          for i, build in ipairs(WRITES) do
            local sql, params = both(db, function(q) return build(q, v) end)
            if round == 1 then
              for j = 1, i - 1 do assert.are_not.equal(first[j], sql, "writes " .. i .. " and " .. j) end
              first[i] = sql
            else
              assert.are.equal(first[i], sql)
            end
            local found = false
            for k = 1, params.n do found = found or params[k] == v end
            assert.is_true(found, "the value is a parameter: " .. sql)
          end
        end
      end)

    it("update_all with NULL: the same text as a value, bound", function()
      local db = fake_db()
      local sql, params = both(db, function(q) return q:where{ id = 3 }:update_all{ c = null } end)
      assert.are.equal("UPDATE `users` SET `c` = ? WHERE (`id` = ?)", sql)
      assert.are.equal(null, params[1])
      assert.are.equal(3, params[2])
      local q = T("users", db):where{ id = 4 }
      q:update_all{ c = null }
      q:delete_all()
      local u, d = q._shape[qshape.UPDATE], q._shape[qshape.DELETE]
      assert.is_truthy(u and d, "the statements' nodes are under the query's")
      assert.is_truthy(d[mariadb], "the DELETE entry is on its node")
    end)

    it("update_all keeps hostile values parameters", function()
      local db = fake_db()
      for _, h in ipairs({ "x'; DROP TABLE users; --", "?", "`) OR 1=1 -- " }) do
        local sql, params = both(db, function(q) return q:where{ id = 1 }:update_all{ c = h } end)
        if #h > 2 then assert.is_nil(sql:find(h, 1, true)) end
        assert.are.equal(h, params[1])
      end
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

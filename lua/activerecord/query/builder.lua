--- The query builder: a query's fields, `clone`, and the chain methods that
-- add conditions, order, limits, the select list, grouping, windows and
-- default scopes (`where`, `order_by`, `limit`, `select`, `group_by`, ...).
-- A query is a value: every builder call returns a new query and never
-- changes the one it was called on.
-- One job: build queries; sources (from, joins, CTEs, set operations,
-- locks) are in `query.sources`, running them in `query.terminals`.
-- @module activerecord.query.builder
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local functions = require("activerecord.query.functions")
local registry = require("activerecord.registry")
local qshape = require("activerecord.query.shape")
local trie = qshape.trie

local M = {}

-- hot paths: globals read once (a global is a table lookup per use)
local type, next, select = type, next, select
local setmetatable, getmetatable = setmetatable, getmetatable

local Query = {}
Query.__index = Query
M.Query = Query

-- A new query holds no lists of its own: until a builder call gives it one
-- (`own`), it reads these shared empty lists from the class, so a query
-- costs one table and a clone copies a handful of fields. They are never
-- written (writing one raises).
local EMPTY_MT = { __newindex = function() error("a query's shared empty list is read-only", 2) end }
for _, key in ipairs({ "_where", "_order", "_select", "_group", "_having", "_joins", "_ctes", "_windows" }) do
  Query[key] = setmetatable({}, EMPTY_MT)
end

local query_error, show, node = nodes.query_error, nodes.show, nodes.node
local getmt, Order, Select, QUERY = nodes.getmt, nodes.Order, nodes.Select, nodes.QUERY
local is_expr, is_query = nodes.is_expr, nodes.is_query
local check_name = nodes.check_name
local as_expr, condition, order_entry = expr.as_expr, expr.condition, expr.order_entry

-- ---- building ------------------------------------------------------------

--- A new query (models use `Model:query()`; plain tables `table`).
-- @tparam table opts `table` (required), `model`, `backend` (or a function
--   returning one), `resolve` (field name -> column name)
-- @treturn Query the query
function M.new(opts)
  local t, resolve = opts.table, opts.resolve
  return setmetatable({
    [QUERY] = true,
    table = t, model = opts.model, backend = opts.backend, resolve = resolve,
    -- a source's shape starts at its root (see activerecord.query.shape)
    _shape = type(t) == "string" and qshape.root(t, resolve) or nil,
  }, Query)
end

-- A model query while shaped is a small table: [QUERY], `_shape`, `_vals`,
-- `_rare`; its source's fields (table, model, backend, resolve) are read
-- from its metatable, one per model query class and backend: a copy of the
-- class with `__index` a table of those fields that falls back to the
-- class's methods. `materialize` (a plain query) gives them back as its
-- own fields, under the class itself. The rare fields' defaults sit there
-- too, so reading them costs one lookup; `_rare` there says "a root: look".
local SOURCE, BASE = qshape.SOURCE, qshape.BASE
local sources = setmetatable({}, { __mode = "k" })

local function source_mt(model, mt, backend)
  local by = sources[mt]
  local key = backend or false
  local smt = by and by[key]
  if smt ~= nil then return smt end
  local index = mt.__index
  if type(index) ~= "table" then return false end -- a class not made of tables: fields stay on the query
  local fields = setmetatable({ table = model.table, model = model, backend = backend, resolve = model.resolve,
    _rare = "root", _scoped = false, skip_all_scopes = false, skip_scopes = false, after_load = false,
    _none = false, _readonly = false },
    { __index = index })
  smt = {}
  for k, v in next, mt do smt[k] = v end
  smt.__index, smt[SOURCE], smt[BASE] = fields, fields, mt
  if not by then
    by = {}
    sources[mt] = by
  end
  by[key] = smt
  return smt
end

--- A model's query in one table (what `Model:query()` needs): `mt` the
-- model's query class, `backend` its backend (or a function returning it).
function M.for_model(model, mt, backend)
  if mt[SOURCE] then mt = mt[BASE] end
  local t, resolve = model.table, model.resolve
  local smt = source_mt(model, mt, backend)
  if smt then return setmetatable({ [QUERY] = true, _shape = qshape.root(t, resolve) }, smt) end
  return setmetatable({
    [QUERY] = true, table = t, model = model, backend = backend, resolve = resolve,
    _shape = qshape.root(t, resolve),
  }, mt)
end

--- The class of a query as a plain query (a shaped model query's metatable
-- holds its source; see `for_model`).
function M.class_of(q)
  local mt = getmetatable(q)
  if mt[SOURCE] then return mt[BASE] end
  return mt
end

-- A model's shared root query, for code that starts a chain on the model
-- and hands the root to no one (the class-level forwarders: `User:where{...}`
-- is `User:query():where{...}`): one table per model instead of one per
-- call. Nothing writes to it (every builder step makes a new query; code
-- that sets fields, as `unscoped` does, takes its own from `for_model`).
-- Kept per query class and backend; made again when the trie starts over.
local shared, shared_epoch = setmetatable({}, { __mode = "k" }), setmetatable({}, { __mode = "k" })

function M.model_root(model, mt, backend)
  local q = shared[mt]
  if q and q.backend == backend and shared_epoch[q] == trie.epoch then return q end
  q = M.for_model(model, mt, backend)
  q._rare = false -- never given fields from outside
  shared[mt], shared_epoch[q] = q, trie.epoch
  return q
end

local function default_backend() return registry.default_backend() end

--- A query without a model: `ar.table("users"):where{ id = 1 }:all()` gives plain rows.
-- @tparam string name the table (`"t"` or `"db.t"`)
-- @tparam[opt] activerecord.backend.mysql.Backend backend defaults to the default backend
-- @treturn Query the query
-- @raise `QueryError` for an invalid table name
function M.table(name, backend)
  return M.new{ table = check_name(name, "table name", true), backend = backend or default_backend }
end


--- A query is a value: every builder method returns a new query and never
-- changes the one it was called on; SQL is compiled once, when a terminal
-- method (`all`, `first`, `count`, ...) runs, with every value bound.
-- @type Query

--- A copy of the query.
-- @treturn Query the copy
-- The lists (conditions, order, ...) are shared between a query and its
-- clones and never changed in place: a builder call that extends one copies
-- that list only (`own`), so a clone costs one table, not nine.
-- A shaped query (activerecord.query.shape) holds no lists: its fields are
-- these few, named one by one (cheaper than a `next` pass), and its clause
-- lists are on its path. The fields a query rarely has (scope bookkeeping,
-- after_load) are copied when present: `_rare` (an own field of every
-- query made here, so reading it costs no metatable walk) says whether to
-- look; a root query (made by `new`/`for_model`, whose fields code may set,
-- as `unscoped` does) has none, and is looked at. `_none` and `_readonly`
-- (query.finders: `none()`, `readonly()`) are rare fields too.
local function to(self, at, vals)
  local mt = getmetatable(self)
  local q
  if mt[SOURCE] then -- a model query: its source's fields are on its metatable
    q = setmetatable({ [QUERY] = true, _shape = at, _vals = vals, _rare = false }, mt)
  else
    q = setmetatable({ [QUERY] = true, table = self.table, model = self.model, backend = self.backend,
      resolve = self.resolve, _shape = at, _vals = vals, _rare = false }, mt)
  end
  if self._rare ~= false then
    local a, b, c, d = self._scoped, self.skip_all_scopes, self.skip_scopes, self.after_load
    local e, f = self._none, self._readonly
    if a or b or c or d or e or f then
      q._scoped, q.skip_all_scopes, q.skip_scopes, q.after_load, q._rare = a, b, c, d, true
      q._none, q._readonly = e, f
    end
  end
  return q
end

local function copy(self)
  if self._shape then return to(self, self._shape, self._vals) end
  -- the constructor sizes the table for the usual fields (the values are
  -- filled below), so copying does not grow it step by step
  local q = { [QUERY] = true, table = nil, model = nil, backend = nil, resolve = nil,
              _where = nil, _limit = nil, _select = nil }
  for k, v in next, self do q[k] = v end
  return setmetatable(q, getmetatable(self))
end

-- Code that clones a query and changes its fields is not a builder step
-- the shape knows: the copy is a plain query, its lists built (its
-- statement is compiled by a walk).
local materialize = qshape.materialize
function Query:clone()
  if self._shape then return materialize(self) end
  return copy(self)
end

-- A private copy of list `key` on the (fresh) query q, ready to extend.
local function own(q, key)
  local src, dst = q[key] or {}, {}
  for i = 1, #src do dst[i] = src[i] end
  q[key] = dst
  return dst
end

-- The usual lists have one or two items: made whole by a constructor.
local function append(q, key, value)
  local src = q[key]
  local n = #src
  if n == 0 then
    q[key] = { value }
  elseif n == 1 then
    q[key] = { src[1], value }
  else
    local list = own(q, key)
    list[n + 1] = value
  end
  return q
end

local function with(self, key, value)
  return append(self:clone(), key, value)
end

local function set(self, key, value)
  local q = self:clone()
  q[key] = value
  return q
end

-- ---- shaped steps ---------------------------------------------------------
-- A shaped step moves the query's `_shape` to the child for its structure
-- and appends its values to `_vals` (activerecord.query.shape); on a node
-- seen before that is all it does (no expression nodes, no lists). The
-- first query on a new node leaves the step's ops there (a template of
-- its items). When the structure is one the shape does not know, the step
-- is done on the plain query (`with`).

local order_walk, select_walk = qshape.order_walk, qshape.select_walk
local finish, template, marker = qshape.finish, qshape.template, qshape.marker
local grow = qshape.grow
local DESC, ADD, SET, RESET = qshape.DESC, qshape.ADD, qshape.SET, qshape.RESET
local SELECT, ORDER, REORDER, LIMIT, OFFSET = qshape.SELECT, qshape.ORDER, qshape.REORDER, qshape.LIMIT,
  qshape.OFFSET
local SELECT_NAME, ORDER_NAME, DISTINCT, AGGREGATE = qshape.SELECT_NAME, qshape.ORDER_NAME, qshape.DISTINCT,
  qshape.AGGREGATE

-- The list to append this step's values to, and how many self has: the
-- values list is shared along a chain and read up to each query's count
-- (its node's `total`), so a step appends in place unless another query
-- already appended past self's values (then it copies them first).
local function vals_for(self)
  local old = self._vals
  if old == nil then return { nil, nil, nil, nil }, 0 end
  local d = self._shape[DESC]
  local n = d and d.total or 0
  if old[n + 1] == nil then return old, n end
  local new = { nil, nil, nil, nil, nil, nil, nil, nil } -- sized: no growing while copying
  for i = 1, n do new[i] = old[i] end
  return new, n
end

-- self's values with one more: `{ v }` for a query without values.
local function push1(self, v)
  local old = self._vals
  if old == nil then return { v } end
  local vals, n = vals_for(self)
  vals[n + 1] = v
  return vals
end

-- The query after a step that ended at `cur` (nil: not a shape this knows)
-- adding `item` to `clause` and taking `nv` values: a new node learns the
-- step's ops from the item (`walker` walks it).
local function add_step(self, cur, s, vals, nv, clause, item, walker)
  if cur then
    if cur[DESC] then return to(self, cur, vals) end
    local t, n = template(walker, item)
    if t ~= nil and n == nv then
      finish(cur, s, { { clause, ADD, { t } } }, nv)
      return to(self, cur, vals)
    end
  end
  return with(self, clause, item)
end

--- Adds an ORDER BY item.
-- @tparam string|Expr|table col a column, an expression, or `ar.col(x):desc()`
-- @tparam[opt="asc"] string dir `"asc"` or `"desc"` (nothing else is accepted)
-- @treturn Query the new query
-- @raise `QueryError` for another direction or a bad column
function Query:order_by(col, dir)
  local s = self._shape
  -- order_by("name"[, "asc"|"desc"]) on a node seen before: a move
  local by_name = s and type(col) == "string" and (dir == nil or dir == "asc" or dir == "desc")
  if by_name then
    local c = s[ORDER_NAME]
    c = c and c[dir or "asc"]
    c = c and c[col]
    if c and c[DESC] then return to(self, c, self._vals) end
  end
  dir = dir and tostring(dir):lower() or "asc"
  if dir ~= "asc" and dir ~= "desc" then
    query_error(("order direction must be \"asc\" or \"desc\", got %s"):format(show(dir)))
  end
  local entry = getmt(col) == Order and col or order_entry(as_expr(col), dir)
  if not s then return with(self, "_order", entry) end
  if by_name then
    local c = s[ORDER_NAME] or grow(s, ORDER_NAME)
    c = c[dir] or grow(c, dir)
    c = c[col] or grow(c, col)
    return to(self, finish(c, s, { { "_order", ADD, { entry } } }, 0), self._vals)
  end
  local vals, n = vals_for(self)
  local cur = order_walk(s[ORDER] or grow(s, ORDER), entry, vals, false)
  return add_step(self, cur, s, vals, #vals - n, "_order", entry, order_walk)
end

--- Drops any ordering, then (optionally) orders by `col`.
-- @tparam[opt] string|Expr col the column
-- @tparam[opt] string dir `"asc"` or `"desc"`
-- @treturn Query the new query
function Query:reorder(col, dir)
  local q
  local s = self._shape
  if s then
    q = to(self, finish(s[REORDER] or grow(s, REORDER), s, { { "_order", RESET } }, 0), self._vals)
  else
    q = set(self, "_order", {})
  end
  if col == nil then return q end
  return q:order_by(col, dir)
end

local function count_arg(n, what)
  if math.type(n) ~= "integer" or n < 0 then
    query_error(what .. " must be a non-negative integer")
  end
  return n
end

-- LIMIT/OFFSET: present is shape, the number a value.
local function count_step(self, key, tok, n)
  local s = self._shape
  if not s then return set(self, key, n) end
  local cur = s[tok] or grow(s, tok)
  if not cur[DESC] then finish(cur, s, { { key, SET, marker(1) } }, 1) end
  return to(self, cur, push1(self, n))
end

--- `LIMIT n`.
-- @tparam integer n a non-negative integer
-- @treturn Query the new query
-- @raise `QueryError` for anything else
function Query:limit(n) return count_step(self, "_limit", LIMIT, count_arg(n, "limit")) end

--- `OFFSET n`.
-- @tparam integer n a non-negative integer
-- @treturn Query the new query
-- @raise `QueryError` for anything else
function Query:offset(n) return count_step(self, "_offset", OFFSET, count_arg(n, "offset")) end

local SELECT_KEYS = { expr = true, as = true }

-- A select item: a column name, an expression, a query (scalar subquery),
-- col:as("alias") or { expr = ..., as = "alias" } (those two keys only; the
-- expr is itself a column name, an expression or a query).
local function select_item(s)
  if getmt(s) == Select then return s end
  if type(s) == "table" and not is_expr(s) and not is_query(s) then
    for k in next, s do
      if not SELECT_KEYS[k] then query_error("a select item table takes expr and as only, got " .. show(k)) end
    end
    return setmetatable({ expr = as_expr(s.expr), as = s.as and check_name(s.as, "alias") }, Select)
  end
  return setmetatable({ expr = as_expr(s) }, Select)
end

--- Sets the select list (added to any earlier `select`).
-- @param ... column names, expressions, queries (scalar subqueries),
--   `expr:as("alias")` or `{ expr = ..., as = "alias" }`
-- @treturn Query the new query
-- @raise `QueryError` for a bad name or alias
-- select("name"): one item per name, made once (items are never changed).
local named_items, nnamed = {}, 0
local function named_item(name)
  local item = named_items[name]
  if item then return item end
  item = select_item(name)
  if nnamed >= 1000 then named_items, nnamed = {}, 0 end
  named_items[name], nnamed = item, nnamed + 1
  return item
end

-- select("name") on a node seen before: a move.
local function select_name(self, s, name)
  local c = s[SELECT_NAME]
  c = c and c[name]
  if c and c[DESC] then return to(self, c, self._vals) end
  local item = named_item(name) -- checks the name first
  c = s[SELECT_NAME] or grow(s, SELECT_NAME)
  c = c[name] or grow(c, name)
  return to(self, finish(c, s, { { "_select", ADD, { item } } }, 0), self._vals)
end

-- The items of a select(...) on a shaped query, as one step (nil: not shaped).
local function select_step(self, s, items, n)
  local vals, at = vals_for(self)
  local cur = s[SELECT] or grow(s, SELECT)
  cur = cur[n] or grow(cur, n)
  for i = 1, n do
    cur = select_walk(cur, items[i], vals, false)
    if cur == nil then return nil end
  end
  if cur[DESC] then return to(self, cur, vals) end
  local tmpl, counter = {}, { n = 0 }
  for i = 1, n do
    local t = template(select_walk, items[i], counter)
    if t == nil then return nil end
    tmpl[i] = t
  end
  local count = counter.n
  if count ~= #vals - at then return nil end
  return to(self, finish(cur, s, { { "_select", ADD, tmpl } }, count), vals)
end

function Query:select(...)
  local s = self._shape
  local n = select("#", ...)
  if s and n == 1 and type((...)) == "string" then return select_name(self, s, (...)) end
  local items = {}
  for i = 1, n do
    local v = select(i, ...)
    items[i] = type(v) == "string" and named_item(v) or select_item(v)
  end
  if s then
    local q = select_step(self, s, items, n)
    if q then return q end
  end
  local q = self:clone()
  local list = own(q, "_select")
  local at = #list
  for i = 1, n do list[at + i] = items[i] end
  return q
end

--- `SELECT DISTINCT`.
-- @treturn Query the new query
function Query:distinct()
  local s = self._shape
  if not s then return set(self, "_distinct", true) end
  local c = s[DISTINCT] or grow(s, DISTINCT)
  if not c[DESC] then finish(c, s, { { "_distinct", SET, true } }, 0) end
  return to(self, c, self._vals)
end

-- count()/sum()/...: the query with its select list replaced by
-- `FN([DISTINCT] col) AS value` and no order, as one shaped step (terminals
-- run it); nil when the query or the column is not one the shape knows.
local AGG_STAR = node({ kind = "raw", sql = "*", params = { n = 0 } })
M.AGG_STAR = AGG_STAR

function M.aggregate(self, fn, col, distinct)
  local s = self._shape
  if not s or not (col == nil or type(col) == "string") then return nil end
  distinct = distinct and true or false
  local c = s[AGGREGATE]
  c = c and c[fn]
  c = c and c[distinct]
  c = c and c[col or AGG_STAR]
  if c and c[DESC] then return to(self, c, self._vals) end
  local arg = col and as_expr(col) or AGG_STAR -- checks the name first
  local item = setmetatable({ expr = node({ kind = "func", name = fn, args = { arg }, distinct = distinct }),
    as = "value" }, Select)
  c = s[AGGREGATE] or grow(s, AGGREGATE)
  c = c[fn] or grow(c, fn)
  c = c[distinct] or grow(c, distinct)
  c = c[col or AGG_STAR] or grow(c, col or AGG_STAR)
  finish(c, s, { { "_select", RESET }, { "_select", ADD, { item } }, { "_order", RESET } }, 0)
  return to(self, c, self._vals)
end

--- `GROUP BY` columns or expressions.
-- @param ... the columns
-- @treturn Query the new query
-- @raise `QueryError` for a bad column
function Query:group_by(...)
  local q = self:clone()
  local list = own(q, "_group")
  for i = 1, select("#", ...) do list[#list + 1] = as_expr(select(i, ...)) end
  return q
end

--- `GROUP BY ... WITH ROLLUP`: super-aggregate rows with NULL group columns.
-- @treturn Query the new query
function Query:with_rollup() return set(self, "_rollup", true) end

--- Adds a HAVING condition; arguments as for `where`.
-- @param ... the condition
-- @treturn Query the new query
function Query:having(...) return with(self, "_having", condition(...)) end

--- `WINDOW name AS (spec)`, referenced by `fn:over("name")`.
-- @tparam string name the window's name
-- @tparam table spec as for `Expr:over`
-- @treturn Query the new query
-- @raise `QueryError` for a bad name or spec
function Query:window(name, spec)
  return with(self, "_windows", { name = check_name(name, "window name"), spec = functions.window_spec(spec) })
end

-- ---- default scopes ------------------------------------------------------

--- Drops one named default scope (e.g. soft_delete's `"soft_delete"`) from this query.
-- @tparam string name the default scope's name
-- @treturn Query the new query
function Query:unscope(name)
  local m = self.model
  local known = false
  for _, s in ipairs(m and m._default_scopes or {}) do
    if s.name == name then known = true end
  end
  if not known then
    query_error(("unscope: %s has no default scope '%s'"):format(m and m.name or "this query", tostring(name)))
  end
  local q = copy(self)
  local skip = {}
  for k, v in pairs(self.skip_scopes or {}) do skip[k] = v end
  skip[name] = true
  q.skip_scopes = skip
  if q._shape then q._rare = true end
  return q
end

-- The query as it runs: the model's default scopes applied once, at the end.
function Query:_final()
  local m = self.model
  if not m or self._scoped or self.skip_all_scopes or self._compound
      or #m._default_scopes == 0 then
    return self
  end
  local q = copy(self)
  q._scoped = true
  for _, s in ipairs(m._default_scopes) do
    if not (self.skip_scopes and self.skip_scopes[s.name]) then
      q = s.fn(q)
      q._scoped = true
    end
  end
  return q
end

M.with, M.set = with, set
-- for the where steps (activerecord.query.where)
M.to, M.vals_for, M.push1, M.add_step = to, vals_for, push1, add_step

return M

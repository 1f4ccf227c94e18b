--- Query-level finders: `ids`, `last`, `none`, `merge`, `paginate` and
-- `readonly`. Models reach them through their class forwarders too
-- (`User:ids()`, `User:last()`, `User:none()`, `User:paginate{...}`).
-- One job: these methods; running is `query.terminals`, the chain steps
-- `query.builder`.
-- @module activerecord.query.finders
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local builder = require("activerecord.query.builder")
local terminals = require("activerecord.query.terminals")
local qshape = require("activerecord.query.shape")
local errors = require("activerecord.errors")
local options = require("activerecord.options")

local Query = builder.Query
local type, math_type = type, math.type
local Order, is_query = nodes.Order, nodes.is_query
local query_error, check_name = nodes.query_error, nodes.check_name
local materialize = qshape.materialize
local pk_ref = terminals.pk_ref

local M = {}

--- The largest `per_page` `paginate` takes.
M.MAX_PER_PAGE = 1000

-- A copy of the query with the rare field `key` set (kept by every later
-- builder step; a shaped query stays on its node).
local function flagged(self, key)
  local q
  if self._shape then
    q = builder.to(self, self._shape, self._vals)
    q._rare = true
  else
    q = self:clone()
  end
  q[key] = true
  return q
end

--- The primary keys of the matching rows, typed like the key field.
-- @tparam[opt] string key the key column (a table query: default `"id"`;
--   a model query: its primary key)
-- @treturn table the keys, in the query's order
-- @raise the errors of `pluck`
function Query:ids(key)
  local ref, refs, _
  if key ~= nil then
    ref = expr.col(check_name(key, "key"))
  else
    ref, _, refs = pk_ref(self)
    if refs then return M.composite_ids(self) end
    ref = ref or expr.col("id")
  end
  return self:pluck(ref)
end

--- `ids()` of a model with a composite primary key: each row's key as a
-- table (part name -> value), what `find` takes.
-- @treturn table the keys, in the query's order
function M.composite_ids(self)
  local model = self.model
  local rows = self:select(table.unpack(model.primary_keys)):all()
  local out = {}
  for i, r in ipairs(rows) do
    local key = {}
    for _, name in ipairs(model.primary_keys) do key[name] = r[name] end
    out[i] = key
  end
  return out
end

local function reversed(list)
  local out = {}
  for i, entry in ipairs(list) do
    local dir = entry.dir == "desc" and "asc" or "desc"
    out[i] = setmetatable({ expr = entry.expr, dir = dir }, Order)
  end
  return out
end

--- The last row: the query's order (a default scope's included) reversed,
-- each item's direction flipped (a raw fragment gets DESC after it); by
-- primary key, descending, when it has none. A limited or offset query
-- loads its rows and gives the last of them.
-- @return a record, a row or nil
-- @raise `QueryError` for a table query without order (nothing says what
--   last is); the errors of `all`
function Query:last()
  if self._none then return nil end
  -- the query as it runs (default scopes applied: their order is reversed
  -- too), as a plain copy of its own
  local q = self:_final():clone()
  if q._limit ~= nil or q._offset ~= nil or q._compound then
    local rows = self:all()
    return rows[#rows]
  end
  if #q._order > 0 then
    q._order = reversed(q._order)
  else
    local ref, _, refs = pk_ref(q)
    if refs then -- a composite key: by every part, descending
      q._order = {}
      for i, r in ipairs(refs) do q._order[i] = setmetatable({ expr = r, dir = "desc" }, Order) end
    else
      if not ref then query_error("last() on a table query needs an order_by") end
      q._order = { setmetatable({ expr = ref, dir = "desc" }, Order) }
    end
  end
  q._limit = 1
  return q:all()[1]
end

--- A query that matches nothing and sends no SQL: `all`, `pluck`, `ids`
-- and `aggregate` give `{}`, `count` 0, `sum`/`avg`/`min`/`max`, `first`,
-- `last` and `one` nil, `exists` false, `update_all`/`delete_all` 0,
-- `each` and the batches nothing, `paginate` an empty page. Used inside
-- another query (a subquery, a `merge`), it compiles to `WHERE 1=0`.
-- Later builder steps keep it empty.
-- @treturn Query the new query
function Query:none()
  local q = self:where(expr.raw("1=0"))
  if q._shape then q._rare = true end
  q._none = true
  return q
end

--- The records this query loads are readonly: their `save`, `update` and
-- `delete` raise `ReadOnlyRecord` (`activerecord.record.mark_readonly`).
-- Rows of a table query are plain tables: not marked.
-- @treturn Query the new query
function Query:readonly() return flagged(self, "_readonly") end

-- ---- merge ------------------------------------------------------------------

local function same_join(a, b)
  return a.kind == b.kind and a.table ~= nil and a.table == b.table and a.alias == b.alias
end

local function appended(a, b, same)
  local out = {}
  for i = 1, #a do out[i] = a[i] end
  for _, x in ipairs(b) do
    local dup = false
    if same then
      for i = 1, #a do
        if same(a[i], x) then dup = true break end
      end
    end
    if not dup then out[#out + 1] = x end
  end
  return out
end

local function chain(a, b)
  if not a then return b or nil end
  if not b or a == b then return a end
  return function(self, rows)
    a(self, rows)
    b(self, rows)
  end
end

--- This query with another's parts on the same model (or table): its
-- conditions (ANDed), order (after this one's), limit and offset (when
-- set, they replace this one's), joins (one already here is not added
-- again), select list, grouping, HAVING, distinct, lock, relations to load
-- (`with`), `none` and `readonly`. Default scopes apply once, as this
-- query's (the other's `unscoped`/`unscope` are not taken).
-- @tparam Query other the other query
-- @treturn Query the new query (a plain query: compiled by a walk)
-- @raise `ConfigError` when `other` is not a query or queries another model
--   or table; `QueryError` when `other` is a set operation or reads FROM a
--   subquery
function Query:merge(other)
  if not is_query(other) then
    errors.raise("ConfigError", "merge expects a query, got " .. type(other))
  end
  if other.model ~= self.model or other.table ~= self.table then
    local function name(q) return q.model and ("model " .. q.model.name) or ("table " .. tostring(q.table)) end
    errors.raise("ConfigError", ("merge: a query on %s cannot take a query on %s"):format(name(self), name(other)),
      { model = self.model and self.model.name, other = other.model and other.model.name })
  end
  local o = materialize(other)
  if o._compound or o._from_query then
    query_error("merge: the other query is a set operation or reads FROM a subquery")
  end
  local q = self._shape and materialize(self) or self:clone()
  q._where = appended(q._where, o._where)
  q._order = appended(q._order, o._order)
  q._joins = appended(q._joins, o._joins, same_join)
  q._select = appended(q._select, o._select)
  q._group = appended(q._group, o._group)
  q._having = appended(q._having, o._having)
  q._ctes = appended(q._ctes, o._ctes)
  q._windows = appended(q._windows, o._windows)
  if o._limit ~= nil then q._limit = o._limit end
  if o._offset ~= nil then q._offset = o._offset end
  if o._distinct then q._distinct = true end
  if o._rollup then q._rollup = true end
  if o._lock then q._lock = o._lock end
  if o._timeout then q._timeout = o._timeout end
  q.after_load = chain(q.after_load, o.after_load)
  if o._none then q._none = true end
  if o._readonly then q._readonly = true end
  return q
end

-- ---- paginate -----------------------------------------------------------------

local PAGE_KEYS = { page = true, per_page = true }

local function page_arg(v, name, max)
  if math_type(v) ~= "integer" or v < 1 or (max and v > max) then
    errors.raise("ConfigError", ("paginate: %s must be an integer from 1%s, got %s"):format(name,
      max and (" to " .. max) or "", type(v) == "string" and ("%q"):format(v) or tostring(v)),
      { option = name })
  end
  return v
end

--- One page of the query's records, and where it stands:
-- `{ records, page, per_page, total, pages }`. Unordered, it is ordered
-- by the primary key (pages of a stable order). A page past the end has no
-- records (and sends no SELECT), `total` and `pages` still true.
-- Two statements: the count, then the page.
-- @tparam[opt] table opts `page` (an integer from 1, default 1), `per_page`
--   (an integer from 1 to `MAX_PER_PAGE` (1000), default 25)
-- @treturn table the page
-- @raise `ConfigError` for a bad option, or a query with its own limit or
--   offset; the errors of `all`
function Query:paginate(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then errors.raise("ConfigError", "paginate expects { page =, per_page = }") end
  options.check(opts, PAGE_KEYS, "paginate")
  local page = page_arg(opts.page == nil and 1 or opts.page, "page")
  local per_page = page_arg(opts.per_page == nil and 25 or opts.per_page, "per_page", M.MAX_PER_PAGE)
  local at = self._shape
  local info = at and qshape.info(at)
  if (info and (info.limit or info.offset)) or (not at and (self._limit ~= nil or self._offset ~= nil)) then
    errors.raise("ConfigError", "paginate sets limit and offset: drop them from the query")
  end
  local total = self:count()
  local pages = (total + per_page - 1) // per_page
  local records = {}
  local offset = (page - 1) * per_page
  if offset < total then
    local q = self
    local ordered = #materialize(self:_final())._order > 0 -- a default scope's order counts
    if not ordered and not self._compound then
      local ref, _, refs = pk_ref(self)
      if ref then q = q:order_by(ref) elseif refs then q = terminals.order_by_all(q, refs) end
    end
    records = q:limit(per_page):offset(offset):all()
  end
  return { records = records, page = page, per_page = per_page, total = total, pages = pages }
end

return M

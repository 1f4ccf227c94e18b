--- Conditions: `where` (a table of columns, an expression, or SQL text
-- with `?`), `or_where`, `not_where` and the helpers (`in_list`, `between`,
-- `like`, `is_null`, `where_exists`, ...); on a model, where{} values
-- convert like its fields. A where on a shaped query is a shaped step
-- (activerecord.query.shape): on a node seen before it only moves the
-- query's shape and appends its values.
-- One job: the WHERE clause's builder methods; they add to `Query` from
-- `query.builder`.
-- @module activerecord.query.where
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local builder = require("activerecord.query.builder")
local qshape = require("activerecord.query.shape")
local null = require("activerecord.null")

local Query = builder.Query
local type, next, rawget, rawlen, select, pcall = type, next, rawget, rawlen, select, pcall
local node = nodes.node
local getmt, Expr, Slot, QUERY = nodes.getmt, nodes.Expr, nodes.Slot, nodes.QUERY
local is_expr, is_query = nodes.is_expr, nodes.is_query
local as_expr, condition = expr.as_expr, expr.condition
local with, to, vals_for, push1, add_step = builder.with, builder.to, builder.vals_for, builder.push1, builder.add_step
local walk, grow = qshape.walk, qshape.grow
local DESC, VALT, NULLT = qshape.DESC, qshape.VALT, qshape.NULLT
local WHERE_HASH, WHERE_EXPR = qshape.WHERE_HASH, qshape.WHERE_EXPR
local SCALAR = { string = true, number = true, boolean = true }

-- A model field's value as the column stores it (e.g. a UUID's binary
-- form); a value the field cannot cast stays as given (it matches nothing).
local function field_value(model, name, v)
  local ok, converted = pcall(model._to_db, model, name, v)
  if ok then return converted end
  return v
end

-- A list converts item by item (IN); another table (a datetime table, a
-- JSON document) converts as a whole, and is refused later if it is still
-- a table.
local function convert_value(model, name, v)
  if v == null then return v end
  if type(v) ~= "table" then return field_value(model, name, v) end
  local mt = getmt(v)
  if mt == Expr or mt == Slot or rawget(v, QUERY) ~= nil then return v end
  local n = rawlen(v)
  if n == 0 and next(v) ~= nil then return field_value(model, name, v) end
  local list = {}
  for i = 1, n do
    local x = rawget(v, i)
    if x == nil then return v end -- a hole: not a list, refused as it is
    list[i] = field_value(model, name, x)
  end
  local count = 0
  for _ in next, v do count = count + 1 end
  if count ~= n then return v end -- other keys: not a list, refused as it is
  return list
end

-- where{ field = value } on a model query: values converted like the fields.
local function model_hash(model, t)
  local out = {}
  for k, v in pairs(t) do
    local f = type(k) == "string" and model.fields[k]
    if f and (f.to_db or f.cast) then v = convert_value(model, k, v) end
    out[k] = v
  end
  return out
end

local function query_condition(self, first, ...)
  local m = self.model
  if m and m.fields and type(first) == "table" and not is_expr(first) and not is_query(first) then
    first = model_hash(m, first)
  end
  return condition(first, ...)
end

-- One where{} item and its path: the column, then VALT (a value), NULLT,
-- or the length of an IN list of scalars.
local function hash_entry(cur, k, v, vals)
  local item = expr.hash_item(k, v)
  if not cur then return item, nil end
  cur = cur[k] or grow(cur, k)
  if v == null then return item, cur[NULLT] or grow(cur, NULLT) end
  if SCALAR[type(v)] or getmt(v) == Slot then
    vals[#vals + 1] = v
    return item, cur[VALT] or grow(cur, VALT)
  end
  if item.kind == "in" and getmt(v) == nil and rawget(v, QUERY) == nil then
    local n = #v
    for i = 1, n do
      local x = v[i]
      if not SCALAR[type(x)] then return item, nil end
      vals[#vals + 1] = x
    end
    return item, cur[n] or grow(cur, n)
  end
  return item, nil
end

-- A where{} value as the field stores it; a scalar through the field's
-- cast alone (when it has no to_db) in one protected call.
local function model_value(m, k, v, tv)
  local f = m.fields[k]
  if not f then return v end
  local cast, to_db = f.cast, f.to_db
  if not (cast or to_db) then return v end
  if to_db == nil and v ~= null and tv ~= "table" then
    local ok, x = pcall(cast, v, f)
    if ok then return x end
    return v
  end
  return convert_value(m, k, v)
end

-- where{ col = value, ... }: keys in sorted order, as `condition` has them.
local function where_hash_items(self, t, s, m)
  local keys = expr.sorted_keys(t, "where{}")
  local vals, n = vals_for(self)
  local cur = s[WHERE_HASH] or grow(s, WHERE_HASH)
  local items = {}
  for i = 1, #keys do
    local k = keys[i]
    local v = t[k]
    if m then v = model_value(m, k, v, type(v)) end
    items[i], cur = hash_entry(cur, k, v, vals)
  end
  return add_step(self, cur, s, vals, #vals - n, "_where", expr.all_of(items), walk)
end

-- where{ col = value }: on a node seen before, one value appended. A key
-- with a child under WHERE_HASH was checked as a column name when the
-- child was made (only column names are made children there).
local function where_hash(self, t, s)
  local m = self.model
  if m and not m.fields then m = nil end
  local k, v = next(t)
  if k ~= nil and next(t, k) == nil then
    local c = s[WHERE_HASH]
    c = c and c[k]
    if c then
      local tv = type(v)
      if m then
        v = model_value(m, k, v, tv)
        tv = type(v)
      end
      if SCALAR[tv] then
        local nxt = c[VALT]
        if nxt and nxt[DESC] then return to(self, nxt, push1(self, v)) end
      elseif v == null then
        local nxt = c[NULLT]
        if nxt and nxt[DESC] then return to(self, nxt, self._vals) end
      end
      return where_hash_items(self, { [k] = v }, s, nil)
    end
  end
  return where_hash_items(self, t, s, m)
end

-- where(expression) and friends: the expression's structure is the path.
local function where_node(self, e, s)
  local vals, n = vals_for(self)
  local cur = walk(s[WHERE_EXPR] or grow(s, WHERE_EXPR), e, vals, false)
  return add_step(self, cur, s, vals, #vals - n, "_where", e, walk)
end

-- where("sql with ?", ...): on a node seen before, the values appended
-- (the path where(ar.raw(...)) takes: WHERE_EXPR, "raw", text, count).
local function raw_value(v) -- a value a fragment binds as it is
  return v ~= nil and (type(v) ~= "table" or getmt(v) == Slot)
end

local function where_raw(self, s, sql, ...)
  local n = select("#", ...)
  local c = s[WHERE_EXPR]
  c = c and c.raw
  c = c and c[sql]
  c = c and c[n]
  if c and c[DESC] then
    local vals, at = vals_for(self)
    if n <= 2 then -- the usual counts, without select() per value
      local a, b = ...
      if (n < 1 or raw_value(a)) and (n < 2 or raw_value(b)) then
        vals[at + 1], vals[at + 2] = a, b
        return to(self, c, vals)
      end
    else
      local ok = true
      for i = 1, n do
        local v = (select(i, ...))
        if not raw_value(v) then
          ok = false
          break
        end
        vals[at + i] = v
      end
      if ok then return to(self, c, vals) end
    end
  end
  return where_node(self, expr.raw(sql, ...), s)
end

--- Adds a condition (AND).
-- @param ... a table `{ col = value }` (`=`; a list is `IN`; `ar.null` is
--   `IS NULL`; a query is `IN (subquery)`; on a model, values convert like the
--   fields), an expression (`ar.col("age"):gt(18)`), or SQL text with `?`
--   followed by its values
-- @treturn Query the new query
-- @raise `QueryError` for a bad column name or argument, and for a value
--   that is a table but not a list of scalars, a query or an expression
--   (expressions are told apart by identity: a decoded JSON object is data)
function Query:where(first, ...)
  local s = self._shape
  if s then
    local t = type(first)
    if t == "table" then
      local mt = getmt(first)
      if mt == nil then return where_hash(self, first, s) end -- a query always has a metatable
      if mt == Expr then return where_node(self, first, s) end
    elseif t == "string" then
      return where_raw(self, s, first, ...)
    end
  end
  return with(self, "_where", query_condition(self, first, ...))
end

--- `(everything so far) OR (this condition)`; arguments as for `where`.
-- @param ... the condition
-- @treturn Query the new query
-- @raise `QueryError` as for `where`
function Query:or_where(...)
  local q = self:clone()
  local current = node({ kind = "and", items = q._where })
  q._where = { node({ kind = "or", items = { current, query_condition(self, ...) } }) }
  return q
end

--- Adds `NOT (condition)`; arguments as for `where`.
-- @param ... the condition
-- @treturn Query the new query
-- @raise `QueryError` as for `where`
function Query:not_where(...)
  local e = node({ kind = "not", item = query_condition(self, ...) })
  local s = self._shape
  if s then return where_node(self, e, s) end
  return with(self, "_where", e)
end
--- Adds `col IN (...)`.
-- @tparam string|Expr col the column
-- @tparam table|Query values the values or a subquery
-- @treturn Query the new query
-- @raise `QueryError` for a bad column or list
function Query:in_list(col, values) return self:where(as_expr(col):in_list(values)) end
--- Adds `col NOT IN (...)`.
-- @tparam string|Expr col the column
-- @tparam table|Query values the values or a subquery
-- @treturn Query the new query
-- @raise `QueryError` for a bad column or list
function Query:not_in(col, values) return self:where(as_expr(col):not_in(values)) end
--- Adds `col BETWEEN low AND high`.
-- @tparam string|Expr col the column
-- @param low the lower bound
-- @param high the upper bound
-- @treturn Query the new query
function Query:between(col, low, high) return self:where(as_expr(col):between(low, high)) end
--- Adds `col LIKE ?`.
-- @tparam string|Expr col the column
-- @tparam string pattern the pattern
-- @treturn Query the new query
function Query:like(col, pattern) return self:where(as_expr(col):like(pattern)) end
--- Adds `col IS NULL`.
-- @tparam string|Expr col the column
-- @treturn Query the new query
function Query:is_null(col) return self:where(as_expr(col):is_null()) end
--- Adds `col IS NOT NULL`.
-- @tparam string|Expr col the column
-- @treturn Query the new query
function Query:is_not_null(col) return self:where(as_expr(col):is_not_null()) end
--- Adds `EXISTS (q)`.
-- @tparam Query q the subquery
-- @treturn Query the new query
function Query:where_exists(q) return self:where(expr.exists(q)) end
--- Adds `NOT EXISTS (q)`.
-- @tparam Query q the subquery
-- @treturn Query the new query
function Query:where_not_exists(q) return self:where(expr.not_exists(q)) end


return {}

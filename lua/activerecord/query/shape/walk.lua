--- Walking query nodes along the shape trie (activerecord.query.shape): an
-- expression's, an order item's or a select item's path (its structure:
-- kinds, names, operators, list lengths, NULL-ness, raw texts) with its
-- values taken out, and its copy with stand-ins for them (a step's template).
-- One job: the walks; the trie itself is `shape.trie`.
-- @module activerecord.query.shape.walk
local nodes = require("activerecord.query.nodes")
local null = require("activerecord.null")
local trie = require("activerecord.query.shape.trie")

local M = {}

local getmt, Expr, Order, Select, Slot = nodes.getmt, nodes.Expr, nodes.Order, nodes.Select, nodes.Slot
local type, setmetatable, rawget, rawlen, next = type, setmetatable, rawget, rawlen, next
local grow, marker = trie.grow, trie.marker
local VALT, NULLT, ALIAS, NOALIAS = trie.VALT, trie.NULLT, trie.ALIAS, trie.NOALIAS

-- ---- expressions ------------------------------------------------------------
-- walk(cur, e, vals, copy) -> the node after e and, with `copy`, e's copy
-- with stand-ins. `cur` false: no trie (copying only). Building (`copy`
-- false) appends e's values to `vals`; copying puts the stand-ins in the
-- same places in the same order. nil: not a shape this knows (the step is
-- then not shaped).

local function tok(cur, t)
  if not cur then return cur end
  return cur[t] or grow(cur, t)
end

-- Building: `vals` is the list of values (never a nil among them, so its
-- length is #vals). Copying: `vals` counts the places (`vals.n`).
local function add(vals, v, copy)
  if copy then
    local n = vals.n + 1
    vals.n = n
    return marker(n)
  end
  vals[#vals + 1] = v
  return v
end

local SCALAR = { string = true, number = true, boolean = true }

local walk

-- A value position: a scalar or slot is a value; NULL is shape; an
-- expression is walked; anything else is not shaped.
local path_value
local function operand(cur, v, vals, copy)
  if not copy and cur then return path_value(cur, v, vals) end
  if SCALAR[type(v)] or getmt(v) == Slot then
    if copy then return tok(cur, VALT), add(vals, nil, true) end
    return tok(cur, VALT), add(vals, v, false)
  end
  if v == null then return tok(cur, NULLT), v end
  if getmt(v) == Expr then return walk(cur, v, vals, copy) end
  return nil
end

local function left_right(cur, e, vals, copy, out)
  local l, r
  cur, l = walk(cur, e.left, vals, copy)
  if cur == nil then return nil end
  cur, r = operand(cur, e.right, vals, copy)
  if cur == nil then return nil end
  if out then out.left, out.right = l, r end
  return cur
end

local function copy_of(e)
  local out = {}
  for k, v in next, e do out[k] = v end
  return setmetatable(out, Expr)
end

local KIND = {}
KIND.column = function(cur, e, _, copy)
  return tok(cur, e.name), copy and e or nil
end
for _, k in ipairs({ "eq", "ne", "gt", "ge", "lt", "le" }) do
  KIND[k] = function(cur, e, vals, copy)
    local out = copy and copy_of(e) or nil
    return left_right(cur, e, vals, copy, out), out
  end
end
KIND.binop = function(cur, e, vals, copy)
  local out = copy and copy_of(e) or nil
  return left_right(tok(cur, e.op), e, vals, copy, out), out
end
-- NOT flag, the left side, then the operand fields in order: BETWEEN (low,
-- high), LIKE (pattern), IS NULL (none).
local function negated_left(fields)
  return function(cur, e, vals, copy)
    local out = copy and copy_of(e) or nil
    local x
    cur, x = walk(tok(cur, e.negate and true or false), e.left, vals, copy)
    if cur == nil then return nil end
    if out then out.left = x end
    for i = 1, #fields do
      local f = fields[i]
      cur, x = operand(cur, e[f], vals, copy)
      if cur == nil then return nil end
      if out then out[f] = x end
    end
    return cur, out
  end
end
KIND.between = negated_left({ "low", "high" })
KIND.like = negated_left({ "pattern" })
KIND.null = negated_left({})
-- IN (...): a plain list of scalars (its length is shape); a subquery or
-- NULL items are not shaped.
KIND["in"] = function(cur, e, vals, copy)
  local list = e.values
  if getmt(list) ~= nil or rawget(list, nodes.QUERY) ~= nil then return nil end
  local out = copy and copy_of(e) or nil
  local x
  cur, x = walk(tok(cur, e.negate and true or false), e.left, vals, copy)
  if cur == nil then return nil end
  local n = rawlen(list)
  local lc = copy and {} or nil
  for i = 1, n do
    local v = rawget(list, i)
    if not SCALAR[type(v)] then return nil end
    if copy then lc[i] = add(vals, nil, true) else add(vals, v, false) end
  end
  if out then out.left, out.values = x, lc end
  return tok(cur, n), out
end
local function junction(cur, e, vals, copy)
  local items = e.items
  local n = #items
  cur = tok(cur, n)
  local lc = copy and {} or nil
  for i = 1, n do
    local x
    cur, x = walk(cur, items[i], vals, copy)
    if cur == nil then return nil end
    if lc then lc[i] = x end
  end
  local out
  if copy then
    out = copy_of(e)
    out.items = lc
  end
  return cur, out
end
KIND["and"], KIND["or"] = junction, junction
-- One field: a sub-expression (NOT's item) or an operand (a bound value's).
local function one_field(field, as_operand)
  return function(cur, e, vals, copy)
    local out = copy and copy_of(e) or nil
    local x
    if as_operand then
      cur, x = operand(cur, e[field], vals, copy)
    else
      cur, x = walk(cur, e[field], vals, copy)
    end
    if cur == nil then return nil end
    if out then out[field] = x end
    return cur, out
  end
end
KIND["not"] = one_field("item", false)
-- raw SQL: its text and its number of parameters are shape, the
-- parameters values (a nil among them: not shaped).
KIND.raw = function(cur, e, vals, copy)
  local params = e.params
  local n = params.n or #params
  local pc = copy and { n = n } or nil
  for i = 1, n do
    local v = params[i]
    if v == nil then return nil end
    if copy then pc[i] = add(vals, nil, true) else add(vals, v, false) end
  end
  local out
  if copy then
    out = copy_of(e)
    out.params = pc
  end
  return tok(tok(cur, e.sql), n), out
end
KIND.value = one_field("value", true)

-- ---- the build walk ---------------------------------------------------------
-- The same path as `walk` without `copy` (a builder step's), with the
-- token steps inlined: path(cur, e, vals) -> the node after e, e's values
-- appended to `vals`; nil: not a shape this knows.

local path

path_value = function(cur, v, vals)
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then
    vals[#vals + 1] = v
    return cur[VALT] or grow(cur, VALT)
  end
  if v == null then return cur[NULLT] or grow(cur, NULLT) end
  local mt = getmt(v)
  if mt == Slot then
    vals[#vals + 1] = v
    return cur[VALT] or grow(cur, VALT)
  end
  if mt == Expr then return path(cur, v, vals) end
  return nil
end

local PATH = {}
local function compare(cur, e, vals)
  cur = path(cur, e.left, vals)
  if cur == nil then return nil end
  return path_value(cur, e.right, vals)
end
for _, k in ipairs({ "eq", "ne", "gt", "ge", "lt", "le" }) do PATH[k] = compare end
PATH.binop = function(cur, e, vals)
  local op = e.op
  return compare(cur[op] or grow(cur, op), e, vals)
end
-- BETWEEN, LIKE, IS NULL, IN begin with their negation
local function negated(cur, e)
  local neg = e.negate and true or false
  return cur[neg] or grow(cur, neg)
end
PATH.between = function(cur, e, vals)
  cur = path(negated(cur, e), e.left, vals)
  if cur == nil then return nil end
  cur = path_value(cur, e.low, vals)
  if cur == nil then return nil end
  return path_value(cur, e.high, vals)
end
PATH.like = function(cur, e, vals)
  cur = path(negated(cur, e), e.left, vals)
  if cur == nil then return nil end
  return path_value(cur, e.pattern, vals)
end
PATH.null = function(cur, e, vals) return path(negated(cur, e), e.left, vals) end
PATH["in"] = function(cur, e, vals)
  local list = e.values
  if getmt(list) ~= nil or rawget(list, nodes.QUERY) ~= nil then return nil end
  cur = path(negated(cur, e), e.left, vals)
  if cur == nil then return nil end
  local n = rawlen(list)
  for i = 1, n do
    local v = rawget(list, i)
    if not SCALAR[type(v)] then return nil end
    vals[#vals + 1] = v
  end
  return cur[n] or grow(cur, n)
end
local function junction_path(cur, e, vals)
  local items = e.items
  local n = #items
  cur = cur[n] or grow(cur, n)
  for i = 1, n do
    cur = path(cur, items[i], vals)
    if cur == nil then return nil end
  end
  return cur
end
PATH["and"], PATH["or"] = junction_path, junction_path
PATH["not"] = function(cur, e, vals) return path(cur, e.item, vals) end
PATH.raw = function(cur, e, vals)
  local params = e.params
  local n = params.n or #params
  for i = 1, n do
    local v = params[i]
    if v == nil then return nil end
    vals[#vals + 1] = v
  end
  local sql = e.sql
  cur = cur[sql] or grow(cur, sql)
  return cur[n] or grow(cur, n)
end
PATH.value = function(cur, e, vals) return path_value(cur, e.value, vals) end

path = function(cur, e, vals)
  if getmt(e) ~= Expr then return nil end
  local kind = e.kind
  cur = cur[kind] or grow(cur, kind)
  if kind == "column" then
    local name = e.name
    return cur[name] or grow(cur, name)
  end
  local f = PATH[kind]
  if f == nil then return nil end
  return f(cur, e, vals)
end
M.path, M.path_value = path, path_value

-- The fields each kind walked above has: every one a token or a value
-- (spec/compiler/steps_spec.lua checks the constructors against this).
M.FIELDS = {
  column = { "kind", "name" }, binop = { "kind", "op", "left", "right" },
  between = { "kind", "left", "low", "high", "negate" }, like = { "kind", "left", "pattern", "negate" },
  null = { "kind", "left", "negate" }, ["in"] = { "kind", "left", "values", "negate" },
  ["and"] = { "kind", "items" }, ["or"] = { "kind", "items" }, ["not"] = { "kind", "item" },
  raw = { "kind", "sql", "params" }, value = { "kind", "value" },
}
for _, k in ipairs({ "eq", "ne", "gt", "ge", "lt", "le" }) do M.FIELDS[k] = { "kind", "left", "right" } end
M.operand = function(cur, v, vals, copy) return operand(cur, v, vals, copy) end

walk = function(cur, e, vals, copy)
  if not copy and cur then return path(cur, e, vals) end
  if getmt(e) ~= Expr then return nil end
  local kind = e.kind
  local f = KIND[kind]
  if not f then return nil end
  return f(tok(cur, kind), e, vals, copy)
end
M.walk = walk

-- Select items: an expression, or one with an alias.
local function select_walk(cur, s, vals, copy)
  if getmt(s) ~= Select then return nil end
  local as = s.as
  local x
  cur, x = walk(tok(cur, as or NOALIAS), s.expr, vals, copy)
  if cur == nil then return nil end
  if as ~= nil then
    if type(as) ~= "string" then return nil end
    cur = tok(cur, ALIAS)
  end
  return cur, copy and setmetatable({ expr = x, as = as }, Select) or nil
end
M.select_walk = select_walk

-- Order items: direction then the expression.
local function order_walk(cur, o, vals, copy)
  if getmt(o) ~= Order then return nil end
  local dir = o.dir
  if dir ~= "asc" and dir ~= "desc" then return nil end
  local x
  cur, x = walk(tok(cur, dir), o.expr, vals, copy)
  if cur == nil then return nil end
  return cur, copy and setmetatable({ expr = x, dir = dir }, Order) or nil
end
M.order_walk = order_walk

return M

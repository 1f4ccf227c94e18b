--- A query's shape, kept as it is built: each query carries `_shape`, a node
-- of a trie whose path is the query's builder steps with the values taken
-- out (the method, column names, operators, IN-list lengths, NULL-ness, raw
-- texts, limit present, ...), and `_vals`, the values those steps took, in
-- the order they took them. Two queries on the same node differ in their
-- values only, so the compiler compiles a node once per dialect and keeps
-- the result on the node (`node[dialect]`): the SQL text and, per
-- parameter, which of `_vals` it is (or a constant). A repeated chain then
-- costs one field read and the parameter list, not a walk of the query.
--
-- One job: the trie (roots per source, tokens, the steps' paths), the
-- values' places (`standin`: the query with each value replaced by a
-- stand-in, for the compiler to learn where values land) and reading a
-- compiled entry back (`params`, `run`).
--
-- Correct by default: a builder step that is not shaped leaves `_shape` nil
-- (the compiler then walks the whole query), and so does `clone` (code that
-- clones a query and changes its fields is not a builder step). Every step
-- begins with a token of its own (a private table), so a path splits into
-- its steps one way only; within a step the tokens say everything about
-- its structure but its values.
-- @module activerecord.query.shape
local nodes = require("activerecord.query.nodes")
local null = require("activerecord.null")

local M = {}

local getmt, Expr, Order, Select, Slot = nodes.getmt, nodes.Expr, nodes.Order, nodes.Select, nodes.Slot
local type, setmetatable, rawget, rawlen, next = type, setmetatable, rawget, rawlen, next

-- Step tokens (private tables: no user string or number is one of them).
M.WHERE_HASH, M.WHERE_EXPR, M.NOT_WHERE = {}, {}, {}
M.SELECT, M.ORDER, M.REORDER, M.LIMIT, M.OFFSET = {}, {}, {}, {}, {}
-- Tokens inside a step.
local VALT, NULLT, ALIAS, NOALIAS = {}, {}, {}, {}
M.VALT, M.NULLT = VALT, NULLT

-- Node keys that are not tokens: the step that ends at a node and the
-- node of the step before it (for `standin`).
local DESC, PARENT = {}, {}

-- ---- the trie ---------------------------------------------------------------

-- Bounded: past MAX_NODES nodes the roots start over (queries holding old
-- nodes keep them: an entry on a node stays right, it is only unreachable).
local MAX_NODES = 50000
local made = 0
local roots, plain_roots = setmetatable({}, { __mode = "k" }), {}

local function grow(cur, tok)
  local nxt = {}
  cur[tok] = nxt
  made = made + 1
  return nxt
end
M.grow = grow

--- The root node of a source: its table and its field resolver.
function M.root(tbl, resolve)
  if made > MAX_NODES then
    roots, plain_roots, made = setmetatable({}, { __mode = "k" }), {}, 0
  end
  local by_table
  if resolve then
    by_table = roots[resolve]
    if not by_table then
      by_table = {}
      roots[resolve] = by_table
    end
  else
    by_table = plain_roots
  end
  local r = by_table[tbl]
  if not r then
    r = {}
    by_table[tbl] = r
    made = made + 1
  end
  return r
end

--- Marks `node` as the end of a step from `parent`: `clause` the query field
-- it changes, `items` how many items it appends to that list (0: it sets
-- the field to its one value; "reset": it empties the list), `nv` how many
-- values it took.
function M.finish(node, parent, clause, items, nv)
  if node[DESC] == nil then
    node[DESC] = { clause = clause, items = items, nv = nv }
    node[PARENT] = parent
  end
  return node
end

--- Empties the trie (specs); `limit(n)` sets its bound and returns the old one.
function M.clear()
  roots, plain_roots, made = setmetatable({}, { __mode = "k" }), {}, 0
end
function M.limit(n)
  local old = MAX_NODES
  MAX_NODES = n
  return old
end
function M.size() return made end

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

local marker -- stand-ins, below

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
local function operand(cur, v, vals, copy)
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
KIND.between = function(cur, e, vals, copy)
  local out = copy and copy_of(e) or nil
  local x
  cur, x = walk(tok(cur, e.negate and true or false), e.left, vals, copy)
  if cur == nil then return nil end
  if out then out.left = x end
  cur, x = operand(cur, e.low, vals, copy)
  if cur == nil then return nil end
  if out then out.low = x end
  cur, x = operand(cur, e.high, vals, copy)
  if cur == nil then return nil end
  if out then out.high = x end
  return cur, out
end
KIND.like = function(cur, e, vals, copy)
  local out = copy and copy_of(e) or nil
  local x
  cur, x = walk(tok(cur, e.negate and true or false), e.left, vals, copy)
  if cur == nil then return nil end
  if out then out.left = x end
  cur, x = operand(cur, e.pattern, vals, copy)
  if cur == nil then return nil end
  if out then out.pattern = x end
  return cur, out
end
KIND.null = function(cur, e, vals, copy)
  local out = copy and copy_of(e) or nil
  local x
  cur, x = walk(tok(cur, e.negate and true or false), e.left, vals, copy)
  if cur == nil then return nil end
  if out then out.left = x end
  return cur, out
end
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
KIND["not"] = function(cur, e, vals, copy)
  local out = copy and copy_of(e) or nil
  local x
  cur, x = walk(cur, e.item, vals, copy)
  if cur == nil then return nil end
  if out then out.item = x end
  return cur, out
end
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
KIND.value = function(cur, e, vals, copy)
  local out = copy and copy_of(e) or nil
  local x
  cur, x = operand(cur, e.value, vals, copy)
  if cur == nil then return nil end
  if out then out.value = x end
  return cur, out
end

walk = function(cur, e, vals, copy)
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

-- ---- stand-ins --------------------------------------------------------------

-- Stand-ins for values: slots (bound as themselves), numbered by the
-- value's place in `_vals`.
local markers, marker_index = {}, {}
marker = function(i)
  local m = markers[i]
  if not m then
    m = nodes.slot("<value " .. i .. ">")
    markers[i], marker_index[m] = m, i
  end
  return m
end
M.marker_index = marker_index

local ITEM_COPY = { _where = walk, _order = order_walk, _select = select_walk }

--- A copy of the finalized query `q` with each of its values replaced by
-- the stand-in of its place in `q._vals` (found again from the steps on
-- the path of `q._shape`), or nil when they cannot be placed.
function M.standin(q)
  local steps, node = {}, q._shape
  while node and node[DESC] do
    steps[#steps + 1] = node
    node = node[PARENT]
  end
  -- items before a list's last reset are gone; of sets, the last one counts
  local last_reset = {}
  for i = 1, #steps do
    local d = steps[i][DESC]
    if d.items == "reset" and not last_reset[d.clause] then last_reset[d.clause] = i end
  end
  local qc = {}
  for k, v in next, q do qc[k] = v end
  local lists, count = {}, { n = 0 }
  local vals = q._vals
  for i = #steps, 1, -1 do
    local d = steps[i][DESC]
    local clause, items = d.clause, d.items
    local start = count.n
    if items == "reset" then
      lists[clause] = {}
    elseif items == 0 then
      if d.nv ~= 1 then return nil end
      qc[clause] = add(count, nil, true)
    elseif not (last_reset[clause] and last_reset[clause] < i) then
      local src, dst = q[clause], lists[clause]
      if not dst then
        dst = {}
        lists[clause] = dst
      end
      local copy_item = ITEM_COPY[clause]
      for _ = 1, items do
        local j = #dst + 1
        local _, x = copy_item(false, src[j], count, true)
        if x == nil then return nil end
        dst[j] = x
      end
    else
      count.n = count.n + d.nv -- a removed item's values: no place
    end
    if count.n - start ~= d.nv then return nil end
  end
  if count.n ~= (vals and #vals or 0) then return nil end
  for clause, list in next, lists do
    if #list ~= #q[clause] then return nil end
    qc[clause] = list
  end
  return setmetatable(qc, getmt(q))
end

-- ---- reading an entry -------------------------------------------------------
-- An entry (made by the compiler): `sql`, `n` parameters, and per parameter
-- i, `e[i]` > 0 the place in `_vals` of its value, or 0 and `e.consts[i]`.

--- The parameter list of an entry for these values.
function M.params(e, vals)
  local n = e.n
  local p = { n = n }
  local consts = e.consts
  for i = 1, n do
    local k = e[i]
    if k > 0 then p[i] = vals[k] else p[i] = consts[i] end
  end
  return p
end

local params = M.params
local unpack = table.unpack

--- Runs an entry: `exec(db, sql, ...)` with the parameters as arguments.
function M.run(exec, db, e, vals)
  local n = e.n
  if n == 0 then return exec(db, e.sql) end
  if n <= 3 then
    local consts = e.consts
    local k = e[1]
    local a, b, c
    if k > 0 then a = vals[k] else a = consts[1] end
    if n == 1 then return exec(db, e.sql, a) end
    k = e[2]
    if k > 0 then b = vals[k] else b = consts[2] end
    if n == 2 then return exec(db, e.sql, a, b) end
    k = e[3]
    if k > 0 then c = vals[k] else c = consts[3] end
    return exec(db, e.sql, a, b, c)
  end
  local p = params(e, vals)
  return exec(db, e.sql, unpack(p, 1, n))
end

return M

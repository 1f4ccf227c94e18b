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
-- A shaped query holds no clause lists (`_where`, `_order`, `_select`,
-- `_limit`, `_offset`, `_distinct`): the node at the end of each step keeps
-- what the step does to them (`ops`, with a template of its items, values
-- replaced by stand-ins), so a step on a known node only moves `_shape` and
-- appends to `_vals`. `materialize(q)` replays the path into a plain query
-- (with its values) for whoever reads the lists; `standin(q)` replays it
-- with stand-ins, for the compiler to learn where values land; `info(node)`
-- answers the usual questions (ordered? limited?) once per node.
--
-- One job: the trie (roots per source, tokens, the steps' paths and ops),
-- replaying a path, and reading a compiled entry back (`params`, `run`).
--
-- Correct by default: a builder step that is not shaped gives a plain query
-- (the compiler then walks the whole query), and so does `clone` (code that
-- clones a query and changes its fields is not a builder step). Every step
-- begins with a token of its own (a private table), so a path splits into
-- its steps one way only; within a step the tokens say everything about
-- its structure but its values (every field of every node kind walked
-- here is a token or a value: spec/compiler/steps_spec.lua checks the
-- constructors' fields against `FIELDS`).
-- @module activerecord.query.shape
local nodes = require("activerecord.query.nodes")
local null = require("activerecord.null")

local M = {}

local getmt, Expr, Order, Select, Slot = nodes.getmt, nodes.Expr, nodes.Order, nodes.Select, nodes.Slot
local type, setmetatable, rawget, rawlen, next = type, setmetatable, rawget, rawlen, next

-- Step tokens (private tables: no user string or number is one of them).
M.WHERE_HASH, M.WHERE_EXPR, M.NOT_WHERE = {}, {}, {}
M.SELECT, M.ORDER, M.REORDER, M.LIMIT, M.OFFSET = {}, {}, {}, {}, {}
M.SELECT_NAME, M.ORDER_NAME, M.DISTINCT, M.AGGREGATE = {}, {}, {}, {}
-- Statement tokens under a query's node (entries of UPDATE/DELETE).
M.UPDATE, M.DELETE = {}, {}
-- Tokens inside a step.
local VALT, NULLT, ALIAS, NOALIAS = {}, {}, {}, {}
M.VALT, M.NULLT = VALT, NULLT

-- Node keys that are not tokens: the step that ends at a node (DESC: its
-- `ops`, `nv` values it took, `total` values of the whole path), the node
-- of the step before it, and the node's `info`.
local DESC, PARENT, INFO = {}, {}, {}
M.DESC = DESC
-- Keys of a model query's source metatable (activerecord.query.builder):
-- the table of the source's fields, and the model's query class.
local SOURCE, BASE = {}, {}
M.SOURCE, M.BASE = SOURCE, BASE

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

-- Counts the times the trie started over (`epoch`): what holds a root
-- compares it to know its root is still the trie's.
M.epoch = 0

--- The root node of a source: its table and its field resolver.
function M.root(tbl, resolve)
  if made > MAX_NODES then
    roots, plain_roots, made = setmetatable({}, { __mode = "k" }), {}, 0
    M.epoch = M.epoch + 1
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

-- What a step does to the query's clauses: ops, each { clause, mode, x }.
local RESET, ADD, SET = 1, 2, 3
M.RESET, M.ADD, M.SET = RESET, ADD, SET

--- Marks `node` as the end of a step from `parent`: `ops` what it does (a
-- list of { clause, RESET } (empties the list), { clause, ADD, items }
-- (appends the items), { clause, SET, x } (sets the field); items and x
-- are templates: the step's values replaced by `marker(1..nv)`), `nv` how
-- many values it took. Returns the node.
function M.finish(node, parent, ops, nv)
  if node[DESC] == nil then
    local pd = parent[DESC]
    node[DESC] = { ops = ops, nv = nv, total = (pd and pd.total or 0) + nv }
    node[PARENT] = parent
  end
  return node
end

--- The values a query on `node` has (the length of its part of `_vals`).
function M.total(node)
  local d = node[DESC]
  return d and d.total or 0
end

--- Empties the trie (specs); `limit(n)` sets its bound and returns the old one.
function M.clear()
  roots, plain_roots, made = setmetatable({}, { __mode = "k" }), {}, 0
  M.epoch = M.epoch + 1
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

-- ---- templates and replay --------------------------------------------------

-- Stand-ins for values: slots (bound as themselves), numbered by the
-- value's place (in a step's template: in the step; in a stand-in copy:
-- in `_vals`).
local markers, marker_index = {}, {}
marker = function(i)
  local m = markers[i]
  if not m then
    m = nodes.slot("<value " .. i .. ">")
    markers[i], marker_index[m] = m, i
  end
  return m
end
M.marker, M.marker_index = marker, marker_index

-- Template nodes that hold a stand-in somewhere (others are shared as
-- they are: nodes are never changed).
local marked = setmetatable({}, { __mode = "k" })

local function mark(t)
  if marker_index[t] then return true end
  if type(t) ~= "table" or getmt(t) == Slot then return false end
  local any = false
  for _, v in next, t do
    if type(v) == "table" and mark(v) then any = true end
  end
  if any then marked[t] = true end
  return any
end

--- A step's template of `item` (an expression, order or select item, as
-- `walker` walks it): its values replaced by marker(i), numbered in walk
-- order after `count.n` (a step of several items shares one `count`;
-- without it, from 1). Returns the template and the count after it, or nil
-- (not a shape this knows).
function M.template(walker, item, count)
  count = count or { n = 0 }
  local _, t = walker(false, item, count, true)
  if t == nil then return nil end
  mark(t)
  return t, count.n
end

-- A template with its stand-ins replaced: `vals[base + i]` for marker(i).
local function fill(t, vals, base)
  local i = marker_index[t]
  if i then return vals[base + i] end
  if not marked[t] then return t end
  local out = {}
  for k, v in next, t do
    if type(v) == "table" then v = fill(v, vals, base) end
    out[k] = v
  end
  return setmetatable(out, getmt(t))
end

-- The steps' DESCs on the path to `node`, last step first.
local function steps_of(node)
  local descs, n = {}, 0
  while node do
    local d = node[DESC]
    if not d then break end
    n = n + 1
    descs[n] = d
    node = node[PARENT]
  end
  return descs, n
end

-- Replays the path to `node` onto the plain table `out`, values from
-- `vals` (the query's values, or stand-ins).
local function replay(out, node, vals)
  local descs, n = steps_of(node)
  local own = {}
  for s = n, 1, -1 do
    local d = descs[s]
    local base = d.total - d.nv
    local ops = d.ops
    for j = 1, #ops do
      local op = ops[j]
      local clause, mode, x = op[1], op[2], op[3]
      if mode == SET then
        out[clause] = fill(x, vals, base)
      elseif mode == RESET then
        out[clause], own[clause] = {}, true
      else
        local list = out[clause]
        if not own[clause] then
          list = {}
          out[clause], own[clause] = list, true
        end
        local at = #list
        for i = 1, #x do list[at + i] = fill(x[i], vals, base) end
      end
    end
  end
  return out
end

-- A plain copy of the shaped query `q`'s fields, without its shape, and
-- the class it has as a plain query (a model query's source fields, on its
-- metatable while shaped, become its own).
local function unshaped(q)
  local out = {}
  for k, v in next, q do out[k] = v end
  out._shape, out._vals, out._rare = nil, nil, nil
  local mt = getmt(q)
  local src = mt[SOURCE]
  if src then
    out.table, out.model, out.backend, out.resolve = src.table, src.model, src.backend, src.resolve
    mt = mt[BASE]
  end
  return out, mt
end

--- The query `q` as a plain query (its clause lists built, no shape);
-- a query without a shape is returned as it is.
function M.materialize(q)
  local node = q._shape
  if not node then return q end
  local out, mt = unshaped(q)
  return setmetatable(replay(out, node, q._vals or {}), mt)
end

-- marker(i) for every place i.
local STANDINS = setmetatable({}, { __index = function(_, i) return marker(i) end })
M.STANDINS = STANDINS

--- The plain query `q` with each of its values replaced by the stand-in of
-- its place in `q._vals`, or nil without a shape.
function M.standin(q)
  local node = q._shape
  if not node then return nil end
  local out, mt = unshaped(q)
  return setmetatable(replay(out, node, STANDINS), mt)
end

--- What the usual questions need of a query on `node` (made once per
-- node): `order` (items), `select` (items), `limit`, `offset`, `distinct`.
function M.info(node)
  local i = node[INFO]
  if i then return i end
  local q = replay({}, node, STANDINS)
  i = { order = q._order and #q._order or 0, select = q._select and #q._select or 0,
        limit = q._limit ~= nil, offset = q._offset ~= nil, distinct = q._distinct ~= nil,
        where = q._where and #q._where or 0 }
  node[INFO] = i
  return i
end

-- ---- statements under a query's node ----------------------------------------
-- UPDATE and DELETE of a shaped query's rows keep their entries on nodes
-- under the query's node (tokens UPDATE, DELETE: never a step's, so no
-- replay sees them).

--- The node of `UPDATE ... SET <assignments>` on the query at `node`: the
-- column names are shape, the values are appended to `vals`; nil when a
-- value is not one the shape knows.
function M.update_node(node, assignments, vals)
  local n = #assignments
  local cur = node[M.UPDATE] or grow(node, M.UPDATE)
  cur = cur[n] or grow(cur, n)
  for i = 1, n do
    local a = assignments[i]
    local column = a.column
    if type(column) ~= "string" then return nil end
    cur = cur[column] or grow(cur, column)
    cur = operand(cur, a.value, vals, false)
    if cur == nil then return nil end
  end
  return cur
end

--- The assignments with their values replaced by the stand-ins of their
-- places (after the query's `total` values), or nil.
function M.update_standins(assignments, total)
  local count, out = { n = total }, {}
  for i = 1, #assignments do
    local a = assignments[i]
    local _, v = operand(false, a.value, count, true)
    if v == nil and a.value ~= nil then return nil end
    out[i] = { column = a.column, value = v }
  end
  return out
end

--- The node of `DELETE` of the query at `node`.
function M.delete_node(node)
  return node[M.DELETE] or grow(node, M.DELETE)
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

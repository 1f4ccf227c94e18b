-- The shape cache: compiled SQL kept by the query's shape, its structure
-- with the values taken out, so a query that repeats with other values is
-- compiled once (the way Sequel caches a dataset's SQL by shape).
--
-- One job: find the SQL of a statement's shape, or compile it once. How:
--  * a walk of the (finalized) query visits every field that can reach the
--    SQL text (all of them except a short list of fields that never do:
--    model, backend, after_load, scope bookkeeping) and steps through a
--    trie with one key per token: field names, node kinds, names, operators,
--    raw texts, list lengths, NULL, ... Only value positions (a comparison's
--    right-hand side, IN items, BETWEEN bounds, LIKE patterns, raw
--    fragments' parameters, function arguments, LIMIT/OFFSET, SET values)
--    are left out of the key: the values found there are collected in walk
--    order. Anything the walk does not know (a function, a foreign
--    metatable, userdata but ar.null) makes the statement uncacheable: it
--    is compiled as it is.
--  * on a miss the same walk copies the query with each value replaced by a
--    stand-in (a slot, bound as itself), the copy is compiled by the plain
--    compiler, and where each stand-in landed among the parameters is
--    recorded. A hit fills those positions with this query's values; other
--    parameters (constants the compiler added, NULL in an IN list) are the
--    same for every query of the shape, since everything else is in the key.
-- So a hit is right by construction: same key, same structure; the values
-- only ever go where the compiler bound them.
local nodes = require("activerecord.query.nodes")
local null = require("activerecord.null")
local json = require("activerecord.json")

local M = {}

local getmt, Expr, Order, Select, Slot, QUERY = nodes.getmt, nodes.Expr, nodes.Order, nodes.Select, nodes.Slot,
  nodes.QUERY
local math_type = math.type
local qshape = require("activerecord.query.shape")
local materialize = qshape.materialize

-- Trie tokens that no user string can be: private tables.
local OPEN_NODE, OPEN_TABLE, OPEN_ORDER, OPEN_SELECT, OPEN_QUERY, OPEN_LIST = {}, {}, {}, {}, {}, {}
local CLOSE, VALUE, NULLTOK, NILTOK, FLOAT, LEAF = {}, {}, {}, {}, {}, {}

-- Query fields that never reach the SQL text. `resolve` does (it maps
-- field names to columns): it is keyed by identity, first.
local SKIP = {
  [QUERY] = true, model = true, backend = true, resolve = true, after_load = true,
  skip_scopes = true, skip_all_scopes = true, _scoped = true,
  _none = true, _readonly = true, -- none() (its SQL has its own 1=0) and readonly(): not SQL
  _shape = true, _vals = true, _rare = true, -- the builder's shape of the query and its values (also in its nodes)
}

-- Value positions per node kind: VAL a value (or an expression or query
-- there), LIST a list of them, JSON a document bound as its JSON text.
local VAL, LIST, JSONTEXT = 1, 2, 3
local VALUE_FIELDS = {
  eq = { right = VAL }, ne = { right = VAL }, gt = { right = VAL }, ge = { right = VAL },
  lt = { right = VAL }, le = { right = VAL },
  binop = { right = VAL }, between = { low = VAL, high = VAL }, like = { pattern = VAL },
  value = { value = VAL }, match = { text = VAL }, json = { search = VAL, value = JSONTEXT },
  func = { args = LIST, default = VAL }, raw = { params = LIST }, ["in"] = { values = LIST },
}
local NONE = {}

-- ---- the trie -------------------------------------------------------------

-- Bounded: past MAX_NODES trie nodes in all, every cache starts over at the
-- next statement (shapes built from ever-changing text cannot grow it
-- without end; the statements in use are compiled again once).
local MAX_NODES = 50000
local made = 0
local roots = setmetatable({}, { __mode = "k" }) -- dialect -> trie

-- The child of trie node `cur` for `tok`, made on first use. The walk
-- inlines the lookup (`cur[tok] or grow(cur, tok)`): a call per token costs.
-- The first walk of a statement only reads: a token not in the trie leads
-- to ABSENT (always empty, so the rest of that walk finds nothing either,
-- and no entry); only the walk after a miss (`building`) adds nodes.
local ABSENT = setmetatable({}, { __newindex = function() error("shape cache: ABSENT is read-only") end })
local building = false

local function grow(cur, tok)
  if not building then return ABSENT end
  local nxt = {}
  cur[tok] = nxt
  made = made + 1
  return nxt
end

local function step(cur, tok)
  return cur[tok] or grow(cur, tok)
end

-- Stand-ins for values on a miss: the query side's numbered slots (bound
-- as themselves), one set for both shape caches.
local marker, marker_index = qshape.marker, qshape.marker_index

-- ---- the walk -------------------------------------------------------------
-- walk(cur, v, vals, copying) -> trie node after v (nil: uncacheable) and,
-- when copying, v's copy with stand-ins for its values.

local walk, walk_query

local function collect(vals, v)
  local n = vals.n + 1
  vals.n = n
  vals[n] = v
  return n
end

-- A value position: scalars and slots are values; NULL/nil are part of the
-- shape (`= NULL` compiles as IS NULL); expressions and queries are walked.
local function walk_value(cur, v, vals, copying)
  local t = type(v)
  if t == "string" or t == "number" or t == "boolean" then
    local n = vals.n + 1
    vals.n, vals[n] = n, v
    return cur[VALUE] or grow(cur, VALUE), copying and marker(n) or nil
  end
  if v == nil then return step(cur, NILTOK), nil end
  if v == null then return step(cur, NULLTOK), v end
  if getmt(v) == Slot then
    local n = collect(vals, v)
    return step(cur, VALUE), copying and marker(n) or nil
  end
  return walk(cur, v, vals, copying)
end

-- A list of value positions (IN items, raw parameters, function
-- arguments): its length is in the key; scalar items only fill values.
local function walk_list(cur, list, vals, copying)
  if type(list) ~= "table" or rawget(list, QUERY) ~= nil then return walk(cur, list, vals, copying) end
  local n = rawget(list, "n") or rawlen(list)
  if math_type(n) ~= "integer" then return nil end
  cur = step(step(cur, OPEN_TABLE), n)
  local out = copying and { n = rawget(list, "n") } or nil
  for i = 1, n do
    local x = rawget(list, i)
    local t = type(x)
    local cx
    if t == "string" or t == "number" or t == "boolean" then
      local k = vals.n + 1
      vals.n, vals[k] = k, x
      if out then cx = marker(k) end
    else
      cur, cx = walk_value(step(cur, i), x, vals, copying)
      if not cur then return nil end
    end
    if out then out[i] = cx end
  end
  return step(cur, CLOSE), out
end

-- A plain list (keys 1..n only, as the builder's lists are): walked by
-- index, which costs far less than `next`; the key has its length.
local function walk_plain_list(cur, v, n, vals, copying)
  cur = step(step(cur, OPEN_LIST), n)
  local out = copying and {} or nil
  for i = 1, n do
    local cx
    cur, cx = walk(cur, v[i], vals, copying)
    if not cur then return nil end
    if out then out[i] = cx end
  end
  return cur[CLOSE] or grow(cur, CLOSE), out
end

local function walk_table(cur, v, vals, copying, mt)
  local open, rules
  if mt == nil then
    local n = rawlen(v)
    if n > 0 and next(v, n) == nil then return walk_plain_list(cur, v, n, vals, copying) end
  end
  if mt == Expr then
    open, rules = OPEN_NODE, VALUE_FIELDS[v.kind] or NONE
  elseif mt == nil then
    open, rules = OPEN_TABLE, NONE
  elseif mt == Order then
    open, rules = OPEN_ORDER, NONE
  elseif mt == Select then
    open, rules = OPEN_SELECT, NONE
  else
    return nil -- a foreign table: not known to be pure data
  end
  cur = cur[open] or grow(cur, open)
  local out = copying and {} or nil
  for k, x in next, v do
    cur = cur[k] or grow(cur, k)
    local rule = rules[k]
    local cx
    if rule == nil then
      local tx = type(x)
      if tx == "string" or tx == "boolean" then -- most fields: inline
        cur, cx = cur[x] or grow(cur, x), x
      else
        cur, cx = walk(cur, x, vals, copying)
      end
    elseif rule == VAL then
      cur, cx = walk_value(cur, x, vals, copying)
    elseif rule == LIST then
      cur, cx = walk_list(cur, x, vals, copying)
    else -- JSONTEXT: the compiler binds the encoding, so the encoding is the shape
      local ok, text = pcall(json.encode, x)
      if not ok then return nil end
      cur, cx = step(cur, text), x
    end
    if not cur then return nil end
    if out then out[k] = cx end
  end
  if out and mt then setmetatable(out, mt) end
  return cur[CLOSE] or grow(cur, CLOSE), out
end

walk = function(cur, v, vals, copying)
  local t = type(v)
  if t == "table" then
    if rawget(v, QUERY) ~= nil then return walk_query(cur, v, vals, copying, true) end
    return walk_table(cur, v, vals, copying, getmt(v))
  end
  if t == "string" or t == "boolean" or math_type(v) == "integer" then return step(cur, v), v end
  if t == "number" then
    if v ~= v then return nil end
    return step(step(cur, FLOAT), v), v
  end
  if v == null then return step(cur, NULLTOK), v end
  return nil -- functions, other userdata
end

-- A query: nested ones are finalized (default scopes) as the compiler
-- would, once; the copy holds the finalized query.
walk_query = function(cur, q, vals, copying, nested)
  local f = q
  if nested and q._final then f = materialize(q:_final()) end
  cur = step(step(cur, OPEN_QUERY), f.resolve or false)
  local out = copying and {} or nil
  for k, x in next, f do
    if SKIP[k] then
      if out then out[k] = x end
    else
      cur = cur[k] or grow(cur, k)
      local cx
      if k == "_limit" or k == "_offset" then
        cur, cx = walk_value(cur, x, vals, copying)
      elseif type(x) == "string" then
        cur, cx = cur[x] or grow(cur, x), x
      else
        cur, cx = walk(cur, x, vals, copying)
      end
      if not cur then return nil end
      if out then out[k] = cx end
    end
  end
  if out then setmetatable(out, getmt(f)) end
  return cur[CLOSE] or grow(cur, CLOSE), out
end

-- SET col = value, ...: columns are shape, values are values.
local function walk_assignments(cur, list, vals, copying)
  if type(list) ~= "table" then return nil end
  local n = #list
  cur = step(step(cur, OPEN_TABLE), n)
  local out = copying and {} or nil
  for i = 1, n do
    local a = list[i]
    if type(a) ~= "table" or getmt(a) ~= nil then return nil end
    local cx
    cur = walk(step(cur, i), a.column, vals, false)
    if not cur then return nil end
    cur, cx = walk_value(cur, a.value, vals, copying)
    if not cur then return nil end
    if out then out[i] = { column = a.column, value = cx } end
  end
  return step(cur, CLOSE), out
end

-- The statement's trie leaf and its values; with `copying`, the copies of
-- the query and the statement's extra argument too.
local function walk_statement(root, kind, q, extra, vals, copying)
  local cur, qc = walk_query(step(root, kind), q, vals, copying, false)
  if not cur then return nil end
  local ec = extra
  if kind == "update" then
    cur, ec = walk_assignments(cur, extra, vals, copying)
  elseif extra ~= nil then
    cur, ec = walk(cur, extra, vals, copying)
  end
  return cur, qc, ec
end

-- ---- the cache ------------------------------------------------------------

-- Parameters for this statement's values by the entry's plan.
local params_of = qshape.params
local function fill(entry, vals)
  if entry.identity then return vals end
  return params_of(entry, vals)
end

-- Where each stand-in landed among the compiled parameters.
local function plan(sql, params, nvals)
  local n = params.n
  -- the layout of the query side's entries: e[i] = the value's place, or 0
  -- for a constant in e.consts[i] (qshape.params reads both)
  local e, consts = { sql = sql, n = n }, {}
  local identity = n == nvals
  for i = 1, n do
    local k = marker_index[params[i]] or 0
    e[i] = k
    if k == 0 then consts[i] = params[i] end
    if k ~= i then identity = false end
  end
  e.consts, e.identity = consts, identity
  return e
end

--- Compiles `kind` ("select", "update", "delete") through the cache:
-- `compile(dialect, q, extra)` is the plain compiler for it.
-- @treturn string the SQL
-- @treturn table the parameters (`n` is their count)
function M.compile(compile, kind, dialect, q, extra)
  if made > MAX_NODES then
    roots = setmetatable({}, { __mode = "k" })
    made = 0
  end
  local root = roots[dialect]
  if not root then
    root = {}
    roots[dialect] = root
  end
  local vals = { nil, nil, nil, nil, n = 0 } -- room for the usual values
  building = false
  local cur = walk_statement(root, kind, q, extra, vals, false)
  if not cur then return compile(dialect, q, extra) end
  local entry = cur[LEAF]
  if entry then return entry.sql, fill(entry, vals) end
  -- a miss: walk again making the copy (values and copy from one walk)
  vals = { n = 0 }
  local qc, ec
  building = true
  cur, qc, ec = walk_statement(root, kind, q, extra, vals, true)
  building = false
  if not cur then return compile(dialect, q, extra) end
  local sql, params = compile(dialect, qc, ec)
  entry = plan(sql, params, vals.n)
  cur[LEAF] = entry
  return sql, fill(entry, vals)
end

-- ---- entries of shaped queries ----------------------------------------------
-- A query built by shaped builder steps (activerecord.query.shape) carries
-- its shape's node: the entry is kept there, per dialect. On a miss the
-- query is compiled as it is (materialized: its path replayed with its
-- values; that is the answer), then as its stand-in copy (each value
-- replaced by a slot numbered by its place in the values): where each slot
-- landed is the entry's plan. The entry is kept only when the stand-in
-- compile gives the same text and, filled with this query's values, the
-- same parameters; otherwise the node is marked false (its queries are
-- compiled through the walk above).

local standin_index = marker_index

local function entry_for(sql, params, sql2, p2, vals, nvals)
  local n = params.n
  if sql2 ~= sql or p2.n ~= n then return false end
  local e, consts = { sql = sql, n = n }, {}
  e.consts = consts
  for i = 1, n do
    local x = p2[i]
    local k = standin_index[x] or 0
    if k > nvals then return false end
    local v
    if k > 0 then
      v = vals[k]
    else
      v = x
      consts[i] = x
    end
    if not rawequal(v, params[i]) then return false end
    e[i] = k
  end
  return e
end

--- Text and parameters of a statement whose node (`node`) has no entry
-- for `dialect` yet; learns the entry. `compile(dialect, a, b)` is the
-- plain compiler; `a`, `b` its arguments with this statement's values,
-- `sa`, `sb` with stand-ins (their places in `vals`, `nvals` of them).
function M.learn_statement(compile, dialect, node, a, b, sa, sb, vals, nvals)
  local sql, params = compile(dialect, a, b)
  local ok, e = pcall(function()
    local sql2, p2 = compile(dialect, sa, sb)
    return entry_for(sql, params, sql2, p2, vals, nvals)
  end)
  node[dialect] = ok and e or false
  return sql, params
end

--- SELECT text and parameters of a shaped query whose node has no entry
-- for `dialect` yet; learns the entry.
function M.learn(compile, dialect, q, node)
  local vals = q._vals or {}
  return M.learn_statement(compile, dialect, node, qshape.materialize(q), nil, qshape.standin(q), nil,
    vals, qshape.total(q._shape))
end

--- Sets the bound (trie nodes) and returns the previous one (specs).
function M.limit(n)
  local old = MAX_NODES
  MAX_NODES = n
  return old
end

--- Empties every cache (specs).
function M.clear()
  roots = setmetatable({}, { __mode = "k" })
  made = 0
end

--- The number of trie nodes made since the caches last started over.
function M.size() return made end

return M

--- The shape trie's base (activerecord.query.shape): the tokens, the node
-- keys, the roots per source and their bound, the ops a step leaves on its
-- node, and the stand-ins for values.
-- One job: the trie and its vocabulary; walking expressions is in
-- `shape.walk`, replaying a path in `shape.replay`.
-- @module activerecord.query.shape.trie
local nodes = require("activerecord.query.nodes")

local M = {}

local setmetatable = setmetatable


-- Step tokens (private tables: no user string or number is one of them).
M.WHERE_HASH, M.WHERE_EXPR, M.NOT_WHERE = {}, {}, {}
M.SELECT, M.ORDER, M.REORDER, M.LIMIT, M.OFFSET = {}, {}, {}, {}, {}
M.SELECT_NAME, M.ORDER_NAME, M.DISTINCT, M.AGGREGATE = {}, {}, {}, {}
-- Statement tokens under a query's node (entries of UPDATE/DELETE).
M.UPDATE, M.DELETE = {}, {}
-- Tokens inside a step.
local VALT, NULLT, ALIAS, NOALIAS = {}, {}, {}, {}
M.VALT, M.NULLT, M.ALIAS, M.NOALIAS = VALT, NULLT, ALIAS, NOALIAS

-- Node keys that are not tokens: the step that ends at a node (DESC: its
-- `ops`, `nv` values it took, `total` values of the whole path), the node
-- of the step before it, and the node's `info`.
local DESC, PARENT, INFO = {}, {}, {}
M.DESC, M.PARENT, M.INFO = DESC, PARENT, INFO
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

-- ---- stand-ins --------------------------------------------------------------

-- Stand-ins for values: slots (bound as themselves), numbered by the
-- value's place (in a step's template: in the step; in a stand-in copy:
-- in `_vals`).
local markers, marker_index = {}, {}
local function marker(i)
  local m = markers[i]
  if not m then
    m = nodes.slot("<value " .. i .. ">")
    markers[i], marker_index[m] = m, i
  end
  return m
end
M.marker, M.marker_index = marker, marker_index

return M

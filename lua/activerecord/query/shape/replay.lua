--- Replaying a shaped query's path (activerecord.query.shape): a step's
-- template (its items with stand-ins for its values), the plain query a
-- path and its values make (`materialize`), the same with stand-ins
-- (`standin`, for the compiler to learn where values land) and what the
-- usual questions need of a node (`info`: ordered? limited?).
-- One job: templates and replay; the trie is `shape.trie`.
-- @module activerecord.query.shape.replay
local nodes = require("activerecord.query.nodes")
local trie = require("activerecord.query.shape.trie")

local M = {}

local getmt, Slot = nodes.getmt, nodes.Slot
local type, setmetatable, next = type, setmetatable, next
local DESC, PARENT, INFO, SOURCE, BASE = trie.DESC, trie.PARENT, trie.INFO, trie.SOURCE, trie.BASE
local RESET, SET = trie.RESET, trie.SET
local marker, marker_index = trie.marker, trie.marker_index

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

return M

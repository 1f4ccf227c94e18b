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
-- One job: the shape's face, over its parts: `trie` (tokens, roots, the
-- ops on a step's node, stand-ins), `walk` (paths and templates of
-- expressions), `replay` (materialize, standin, info); here the nodes of
-- UPDATE/DELETE under a query's node and reading a compiled entry back
-- (`params`, `run`).
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
local trie = require("activerecord.query.shape.trie")
local walk = require("activerecord.query.shape.walk")
local replay = require("activerecord.query.shape.replay")

local M = {}

-- the parts' names, under one module (`epoch` changes: read it as trie.epoch)
for _, part in ipairs({ trie, walk, replay }) do
  for k, v in pairs(part) do
    if k ~= "epoch" then M[k] = v end
  end
end
M.trie = trie

local grow, operand = trie.grow, walk.operand

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

-- Query AST -> MySQL SQL text plus bound parameters. The query layer builds
-- plain tables (activerecord.query); this is the one place they become SQL.
-- Every value becomes a `?` parameter; every identifier goes through the
-- dialect's validated quoting; raw fragments are the user's explicit text
-- with their own `?` parameters. Features the server lacks raise
-- CapabilityError here, while compiling, so no SQL is ever sent for them.
-- Parameters are appended in the order their `?` appear in the text, so
-- every clause is compiled left to right.
--
-- One job: the compiler's face (`select`, `update`, `delete`, `insert`,
-- `compile_expr`, `count_placeholders`, `uses_json_arrow`), over its parts:
-- `expr` (expressions), `select` (SELECT), `dml` (UPDATE, DELETE, INSERT)
-- and `shape` (SELECT/UPDATE/DELETE text cached by the query's shape).
local cx = require("activerecord.backend.mysql.compiler.expr")
local sel = require("activerecord.backend.mysql.compiler.select")
local dml = require("activerecord.backend.mysql.compiler.dml")
local shape = require("activerecord.backend.mysql.compiler.shape")
local qshape = require("activerecord.query.shape")

local M = {}

M.compile_expr = cx.compile_expr
M.count_placeholders = cx.count_placeholders
M.uses_json_arrow = cx.uses_json_arrow
M.insert = dml.insert

local materialize = qshape.materialize
local plain_select, plain_update, plain_delete = sel.select, dml.update, dml.delete

--- SELECT text and parameters of a finalized query (cached by its shape);
-- with `outer`, a nested SELECT in that compile context.
-- A node's first statement is compiled as it is; its entry is learned on
-- the second (a shape seen once, an IN list of a length that does not
-- come back, costs one compile, not two).
local SEEN = {}

function M.select(dialect, q, outer)
  if outer then return plain_select(dialect, q, outer) end
  local node = q._shape
  if node then -- built by shaped steps: its entry is on its node
    local e = node[dialect]
    if e then return e.sql, qshape.params(e, q._vals) end
    if e == nil then
      if node[SEEN] then return shape.learn(plain_select, dialect, q, node) end
      node[SEEN] = true
      return plain_select(dialect, materialize(q))
    end
  end
  return shape.compile(plain_select, "select", dialect, materialize(q))
end

local NO_VALS = {}

--- UPDATE text and parameters: the query's rows, `assignments` a list of
-- `{ column =, value = }` (cached by shape: a shaped query's on a node
-- under its own).
function M.update(dialect, q, assignments)
  local node = q._shape
  if node then
    local total = qshape.total(node)
    local vals = table.move(q._vals or NO_VALS, 1, total, 1, {})
    local at = qshape.update_node(node, assignments, vals)
    if at then
      local e = at[dialect]
      if e then return e.sql, qshape.params(e, vals) end
      local sa = e == nil and qshape.update_standins(assignments, total)
      if sa then
        return shape.learn_statement(plain_update, dialect, at, materialize(q), assignments, qshape.standin(q), sa,
          vals, #vals)
      end
    end
  end
  return shape.compile(plain_update, "update", dialect, materialize(q), assignments)
end

--- DELETE text and parameters of the query's rows (cached by shape: a
-- shaped query's on a node under its own, without options).
function M.delete(dialect, q, opts)
  local node = q._shape
  if node and opts == nil then
    local at = qshape.delete_node(node)
    local e = at[dialect]
    local vals = q._vals or NO_VALS
    if e then return e.sql, qshape.params(e, vals) end
    if e == nil then
      return shape.learn_statement(plain_delete, dialect, at, materialize(q), nil, qshape.standin(q), nil,
        vals, qshape.total(node))
    end
  end
  return shape.compile(plain_delete, "delete", dialect, materialize(q), opts)
end

--- The compiler without the shape cache (what a cache miss runs; specs
-- compare the two).
M.uncached = {
  select = function(dialect, q, outer) return plain_select(dialect, materialize(q), outer) end,
  update = function(dialect, q, assignments) return plain_update(dialect, materialize(q), assignments) end,
  delete = function(dialect, q, opts) return plain_delete(dialect, materialize(q), opts) end,
}

--- The shape caches (the walk's and the builder steps' tries): `clear()`,
-- `size()` (trie nodes), `limit(n)` (the bound of each; returns the previous one).
M.cache = {
  clear = function() shape.clear(); qshape.clear() end,
  size = function() return shape.size() + qshape.size() end,
  limit = function(n)
    qshape.limit(n)
    return shape.limit(n)
  end,
}

return M

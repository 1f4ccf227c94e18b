--- Queries and expressions. Queries are values: every builder call returns
-- a new query (the original is never changed), and SQL is produced by the
-- backend's compiler (cached by the query's shape) when a terminal (all,
-- first, count, ...) runs. Values never enter SQL text; raw fragments are
-- explicit strings with their own `?` parameters. Identifiers given as
-- strings are checked when the query is built, so a bad one raises
-- `QueryError` before any SQL exists.
--
-- One job: the module users get. It gathers the parts, each a file of its
-- own: `nodes` (identity, value checks, identifiers), `expr` (expressions,
-- conditions), `functions` (SQL, window, JSON and full-text functions),
-- `builder` (Query and its chain methods), `where` (conditions), `sources`
-- (from, joins, CTEs, set operations, locks), `terminals` (running
-- queries), `finders` (ids, last, none, merge, paginate, readonly), `typed`
-- (typed aggregates and plucks), `shape` (the query's shape, for the compiled-statement cache). The expression
-- constructors are re-exported as `ar.col`, `ar.raw`, `ar.json_value`, ...
-- by `activerecord`.
-- @module activerecord.query
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local functions = require("activerecord.query.functions")
local builder = require("activerecord.query.builder")
require("activerecord.query.where")     -- adds where/or_where/not_where and the helpers to Query
require("activerecord.query.sources")   -- adds from/joins/CTEs/set operations/locks to Query
require("activerecord.query.terminals") -- adds all/first/count/... to Query
require("activerecord.query.finders")   -- adds ids/last/none/merge/paginate/readonly to Query

local M = {}

M.Query = builder.Query
M.new, M.table, M.for_model, M.model_root = builder.new, builder.table, builder.for_model, builder.model_root

-- node identity and checks
M.is_query, M.is_expr, M.is_slot, M.slot = nodes.is_query, nodes.is_expr, nodes.is_slot, nodes.slot
M.value_list, M.checked_value, M.check_name = nodes.value_list, nodes.checked_value, nodes.check_name

-- expressions and conditions
M.col, M.raw, M.value, M.subquery = expr.col, expr.raw, expr.value, expr.subquery
M.as_expr, M.condition, M.exists, M.not_exists = expr.as_expr, expr.condition, expr.exists, expr.not_exists

-- functions, windows, JSON, full text
for _, name in ipairs({
  "func", "fn", "count_distinct", "grouping", "row_number", "rank", "dense_rank", "percent_rank",
  "cume_dist", "ntile", "first_value", "last_value", "nth_value", "lag", "lead", "frame", "window_spec",
  "json_extract", "json_value", "json_unquote", "json_length", "json_contains", "json_contains_path",
  "json_search", "json_table", "match_against",
}) do
  M[name] = functions[name]
end

--- Names `activerecord` re-exports as `ar.<name>`.
-- @table exports
M.exports = {
  "col", "raw", "value", "subquery", "exists", "not_exists", "func", "fn", "count_distinct",
  "grouping", "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
  "first_value", "last_value", "nth_value", "lag", "lead", "frame", "json_extract", "json_value",
  "json_unquote", "json_length", "json_contains", "json_contains_path", "json_search",
  "json_table", "match_against", "table",
}

return M

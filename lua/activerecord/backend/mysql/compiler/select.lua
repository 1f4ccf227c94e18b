-- SELECT statements: clauses (WITH, select list, FROM, joins, WHERE,
-- GROUP BY, HAVING, WINDOW, ORDER BY, LIMIT, locks), set operations and the
-- statement time limit.
-- One job: compile a finalized query to SELECT text and parameters (no
-- cache: `compiler` caches by shape around this).
local errors = require("activerecord.errors")
local query = require("activerecord.query")
local cx = require("activerecord.backend.mysql.compiler.expr")

local M = {}

local is_query = query.is_query
local compile_expr, subselect, finalize = cx.compile_expr, cx.subselect, cx.finalize
local junction, order_items, window_spec = cx.junction, cx.order_items, cx.window_spec

local function query_error(msg)
  errors.raise("QueryError", msg)
end

-- ---- clauses -------------------------------------------------------------

-- " WHERE a AND b" / " HAVING ...": a clause's conditions joined by AND.
local function conditions_sql(ctx, keyword, list)
  if not list or #list == 0 then return "" end
  return keyword .. junction(ctx, { kind = "and", items = list })
end

local function where_sql(ctx, q) return conditions_sql(ctx, " WHERE ", q._where) end

local function order_sql(ctx, q)
  if not q._order or #q._order == 0 then return "" end
  return " ORDER BY " .. order_items(ctx, q._order)
end

-- The dialect writes the clause for the values present; the values
-- themselves are bound here, limit then offset as the clause has them, and
-- never read (the shape cache compiles with stand-ins for them).
local function limit_sql(ctx, q)
  local limit, offset = q._limit, q._offset
  if limit == nil and offset == nil then return "" end
  local sql, params = ctx.d:limit_offset(limit ~= nil and 0 or nil, offset ~= nil and 0 or nil)
  local n = 0
  if limit ~= nil then ctx:param(limit); n = n + 1 end
  if offset ~= nil then ctx:param(offset); n = n + 1 end
  if #params ~= n then errors.raise("QueryError", "LIMIT/OFFSET: the dialect's clause does not bind both values") end
  return " " .. sql
end

local function source_name(q)
  return q.table_alias or q.table
end

local function select_list(ctx, q)
  if not q._select or #q._select == 0 then
    local name = source_name(q)
    -- with joins, only this query's own columns (no clashing ids)
    if name and (q.table_alias or (q._joins and #q._joins > 0)) then
      return ctx.d:quote_qualified(name) .. ".*"
    end
    return "*"
  end
  local parts = {}
  for i, s in ipairs(q._select) do
    local sql = compile_expr(ctx, s.expr)
    if s.as then sql = sql .. " AS " .. ctx.d:quote_identifier(s.as) end
    parts[i] = sql
  end
  return table.concat(parts, ", ")
end

local compound_sql, select_statement

local function alias_sql(ctx, alias)
  return alias and (" AS " .. ctx.d:quote_identifier(alias)) or ""
end

-- FROM source: a table or CTE name, a derived table, or a compound query.
local function source_sql(ctx, q)
  if q._compound then
    return "(" .. compound_sql(ctx, q) .. ")" .. alias_sql(ctx, q.table_alias or "ar_compound")
  end
  if q._from_query then
    return "(" .. subselect(ctx, q._from_query) .. ")" .. alias_sql(ctx, q.table_alias)
  end
  if not q.table then query_error("a query needs a table (from) to select from") end
  return ctx.d:quote_qualified(q.table) .. alias_sql(ctx, q.table_alias)
end

local function join_sql(ctx, j)
  local target
  if j.query then
    target = "(" .. subselect(ctx, j.query) .. ")" .. alias_sql(ctx, j.alias)
  elseif j.source then
    target = compile_expr(ctx, j.source) .. alias_sql(ctx, j.alias)
  else
    target = ctx.d:quote_qualified(j.table) .. alias_sql(ctx, j.alias)
  end
  local sql = " " .. j.kind .. " " .. target
  if j.on then sql = sql .. " ON " .. compile_expr(ctx, j.on) end
  return sql
end

local function joins_sql(ctx, q)
  local parts = {}
  for i, j in ipairs(q._joins or {}) do parts[i] = join_sql(ctx, j) end
  return table.concat(parts)
end

local function group_sql(ctx, q)
  if not q._group or #q._group == 0 then
    if q._rollup then query_error("with_rollup needs group_by") end
    return ""
  end
  local g = {}
  for i, e in ipairs(q._group) do g[i] = compile_expr(ctx, e) end
  return " GROUP BY " .. table.concat(g, ", ") .. (q._rollup and " WITH ROLLUP" or "")
end

local function having_sql(ctx, q) return conditions_sql(ctx, " HAVING ", q._having) end

local function windows_sql(ctx, q)
  if not q._windows or #q._windows == 0 then return "" end
  ctx.d:require("window_functions", "window functions (WINDOW clause)")
  local parts = {}
  for i, w in ipairs(q._windows) do
    parts[i] = ctx.d:quote_identifier(w.name) .. " AS " .. window_spec(ctx, w.spec)
  end
  return " WINDOW " .. table.concat(parts, ", ")
end

local function lock_sql(ctx, q)
  if not q._lock then return "" end
  return " " .. ctx.d:lock_clause(q._lock)
end

-- WITH [RECURSIVE] name (cols) AS (body), ...
local function with_sql(ctx, q)
  if not q._ctes or #q._ctes == 0 then return "" end
  local recursive = false
  for _, c in ipairs(q._ctes) do recursive = recursive or c.recursive end
  if recursive then
    ctx.d:require("recursive_cte", "WITH RECURSIVE (recursive common table expressions)")
  else
    ctx.d:require("cte", "WITH (common table expressions)")
  end
  local parts = {}
  for i, c in ipairs(q._ctes) do
    local head = ctx.d:quote_identifier(c.name)
    if c.columns then head = head .. " (" .. ctx.d:quote_list(c.columns, "CTE columns") .. ")" end
    local body = is_query(c.body) and subselect(ctx, c.body) or compile_expr(ctx, c.body)
    parts[i] = head .. " AS (" .. body .. ")"
  end
  return (recursive and "WITH RECURSIVE " or "WITH ") .. table.concat(parts, ", ") .. " "
end

-- A plain compound: no clause of its own but ORDER BY / LIMIT / WITH.
local function plain_compound(q)
  return #q._where == 0 and #q._select == 0 and #q._joins == 0 and #q._group == 0
    and #q._having == 0 and not q._distinct and not q._lock
end

local SET_CAPABILITY = { INTERSECT = "intersect", EXCEPT = "except" }

-- A member needs parentheses when it has its own ORDER BY/LIMIT/WITH.
local function member_sql(ctx, q)
  local f = finalize(q)
  local sql = subselect(ctx, f)
  if #f._order > 0 or f._limit or f._offset or #f._ctes > 0 or f._compound then
    return "(" .. sql .. ")"
  end
  return sql
end

compound_sql = function(ctx, q)
  local parts = {}
  for i, part in ipairs(q._compound) do
    if part.op and SET_CAPABILITY[part.op] then ctx.d:require(SET_CAPABILITY[part.op], part.op) end
    local sql = member_sql(ctx, part.query)
    parts[i] = part.op and (" " .. part.op .. " " .. sql) or sql
  end
  return table.concat(parts)
end

local function core_select(ctx, q)
  local parts = { "SELECT " }
  if q._distinct then parts[#parts + 1] = "DISTINCT " end
  parts[#parts + 1] = select_list(ctx, q)
  parts[#parts + 1] = " FROM " .. source_sql(ctx, q)
  parts[#parts + 1] = joins_sql(ctx, q)
  parts[#parts + 1] = where_sql(ctx, q)
  parts[#parts + 1] = group_sql(ctx, q)
  parts[#parts + 1] = having_sql(ctx, q)
  parts[#parts + 1] = windows_sql(ctx, q)
  parts[#parts + 1] = order_sql(ctx, q)
  parts[#parts + 1] = limit_sql(ctx, q)
  parts[#parts + 1] = lock_sql(ctx, q)
  return table.concat(parts)
end

select_statement = function(ctx, q)
  local head = with_sql(ctx, q)
  if q._compound and plain_compound(q) then
    return head .. compound_sql(ctx, q) .. order_sql(ctx, q) .. limit_sql(ctx, q)
  end
  return head .. core_select(ctx, q)
end

-- SELECT ... FROM ...; `outer` is the enclosing context for subqueries, so
-- their parameters land in order in the same list.
-- Statement time limit: a literal (servers take no parameter here), built
-- from a validated number, so no text of the user's reaches the SQL.
cx.set_select_statement(select_statement)

local function with_timeout(dialect, sql, seconds)
  dialect:require("max_execution_time", "a statement timeout")
  if dialect.flavor == "mariadb" then
    -- whole milliseconds, rounded up: 0.0004 printed as 0.000 would mean "no limit"
    return ("SET STATEMENT max_statement_time=%.3f FOR %s"):format(math.ceil(seconds * 1000) / 1000, sql)
  end
  return (sql:gsub("^SELECT ", ("SELECT /*+ MAX_EXECUTION_TIME(%d) */ "):format(math.ceil(seconds * 1000)), 1))
end

function M.select(dialect, q, outer)
  if outer then return subselect(outer, q) end
  local ctx = cx.new_ctx(dialect, q.resolve)
  local sql = select_statement(ctx, q)
  if q._timeout then sql = with_timeout(dialect, sql, q._timeout) end
  return sql, ctx.params
end
M.where_sql, M.order_sql, M.source_sql, M.joins_sql, M.source_name =
  where_sql, order_sql, source_sql, joins_sql, source_name

return M

-- Query AST -> MySQL SQL text plus bound parameters. The query layer builds
-- plain tables (activerecord.query); this is the one place they become SQL.
-- Every value becomes a `?` parameter; every identifier goes through the
-- dialect's validated quoting; raw fragments are the user's explicit text
-- with their own `?` parameters.
local errors = require("activerecord.errors")
local core = require("activerecord.backend.mysql.core")

local M = {}

local null = core.null

local function query_error(msg)
  errors.raise("QueryError", msg)
end

-- Counts `?` outside quoted strings and identifiers in a raw fragment.
local function count_placeholders(sql)
  local n, i, len = 0, 1, #sql
  while i <= len do
    local c = sql:sub(i, i)
    if c == "'" or c == '"' or c == "`" then
      local j = i + 1
      while j <= len do
        local d = sql:sub(j, j)
        if d == "\\" and c ~= "`" then
          j = j + 1
        elseif d == c then
          if sql:sub(j + 1, j + 1) == c then j = j + 1 else break end
        end
        j = j + 1
      end
      i = j + 1
    else
      if c == "?" then n = n + 1 end
      i = i + 1
    end
  end
  return n
end
M.count_placeholders = count_placeholders

-- A compile context: the SQL pieces and the parameters, in order.
local Ctx = {}
Ctx.__index = Ctx

local function new_ctx(dialect, resolve)
  return setmetatable({ d = dialect, resolve = resolve, params = { n = 0 } }, Ctx)
end

function Ctx:param(v)
  local p = self.params
  p.n = p.n + 1
  p[p.n] = v
  return "?"
end

function Ctx:column(name)
  if self.resolve then name = self.resolve(name) end
  return self.d:quote_column_ref(name)
end

function Ctx:raw(sql, params)
  local want = count_placeholders(sql)
  local have = params and (params.n or #params) or 0
  if want ~= have then
    query_error(("raw SQL fragment has %d placeholder(s) but %d value(s) were given: %s")
      :format(want, have, sql))
  end
  for i = 1, have do self:param(params[i]) end
  return sql
end

local compile_expr

-- Operands: a column reference table, a raw fragment, a subquery, or a value.
local function operand(ctx, v)
  if type(v) == "table" and v.__ar_expr then return compile_expr(ctx, v) end
  if v == nil then return ctx:param(null) end
  return ctx:param(v)
end

local comparison = { eq = "=", ne = "<>", gt = ">", ge = ">=", lt = "<", le = "<=" }

compile_expr = function(ctx, e)
  local k = e.kind
  if k == "column" then return ctx:column(e.name) end
  if k == "raw" then return ctx:raw(e.sql, e.params) end
  if k == "value" then return ctx:param(e.value) end
  if k == "subquery" then
    local sql = M.select(ctx.d, e.query, ctx)
    return "(" .. sql .. ")"
  end
  if k == "func" then
    local args = {}
    for i, a in ipairs(e.args) do args[i] = operand(ctx, a) end
    if e.distinct then return e.name .. "(DISTINCT " .. table.concat(args, ", ") .. ")" end
    return e.name .. "(" .. table.concat(args, ", ") .. ")"
  end
  if comparison[k] then
    local lhs = compile_expr(ctx, e.left)
    if e.right == null or e.right == nil then
      if k == "eq" then return lhs .. " IS NULL" end
      if k == "ne" then return lhs .. " IS NOT NULL" end
      query_error("cannot compare with NULL using " .. comparison[k])
    end
    return lhs .. " " .. comparison[k] .. " " .. operand(ctx, e.right)
  end
  if k == "in" then
    local lhs = compile_expr(ctx, e.left)
    if type(e.values) == "table" and e.values.__ar_query then
      return lhs .. (e.negate and " NOT IN (" or " IN (") .. M.select(ctx.d, e.values, ctx) .. ")"
    end
    if #e.values == 0 then return e.negate and "1 = 1" or "1 = 0" end -- IN () is a syntax error
    local ps = {}
    for i, v in ipairs(e.values) do ps[i] = ctx:param(v) end
    return lhs .. (e.negate and " NOT IN (" or " IN (") .. table.concat(ps, ", ") .. ")"
  end
  if k == "null" then
    return compile_expr(ctx, e.left) .. (e.negate and " IS NOT NULL" or " IS NULL")
  end
  if k == "between" then
    return compile_expr(ctx, e.left) .. (e.negate and " NOT BETWEEN " or " BETWEEN ")
      .. operand(ctx, e.low) .. " AND " .. operand(ctx, e.high)
  end
  if k == "like" then
    return compile_expr(ctx, e.left) .. (e.negate and " NOT LIKE " or " LIKE ") .. operand(ctx, e.pattern)
  end
  if k == "and" or k == "or" then
    if #e.items == 0 then return k == "and" and "1 = 1" or "1 = 0" end
    local parts = {}
    for i, item in ipairs(e.items) do parts[i] = "(" .. compile_expr(ctx, item) .. ")" end
    return table.concat(parts, k == "and" and " AND " or " OR ")
  end
  if k == "not" then return "NOT (" .. compile_expr(ctx, e.item) .. ")" end
  if k == "exists" then return (e.negate and "NOT EXISTS (" or "EXISTS (") .. M.select(ctx.d, e.query, ctx) .. ")" end
  query_error("unknown expression kind: " .. tostring(k))
end
M.compile_expr = compile_expr

local function where_sql(ctx, q)
  if not q._where or #q._where == 0 then return "" end
  return " WHERE " .. compile_expr(ctx, { kind = "and", items = q._where })
end

local function order_sql(ctx, q)
  if not q._order or #q._order == 0 then return "" end
  local parts = {}
  for i, o in ipairs(q._order) do
    parts[i] = compile_expr(ctx, o.expr) .. (o.dir == "desc" and " DESC" or " ASC")
  end
  return " ORDER BY " .. table.concat(parts, ", ")
end

local function limit_sql(ctx, q)
  if q._limit == nil and q._offset == nil then return "" end
  local sql, params = ctx.d:limit_offset(q._limit, q._offset)
  for _, p in ipairs(params) do ctx:param(p) end
  return " " .. sql
end

local function select_list(ctx, q)
  if not q._select or #q._select == 0 then
    return q.table_alias and ctx.d:quote_identifier(q.table_alias) .. ".*" or "*"
  end
  local parts = {}
  for i, s in ipairs(q._select) do
    local sql = compile_expr(ctx, s.expr)
    if s.as then sql = sql .. " AS " .. ctx.d:quote_identifier(s.as) end
    parts[i] = sql
  end
  return table.concat(parts, ", ")
end

-- SELECT ... FROM ...; `outer` is the enclosing context for subqueries, so
-- their parameters land in order in the same list.
function M.select(dialect, q, outer)
  local ctx = outer or new_ctx(dialect, q.resolve)
  local saved = ctx.resolve
  ctx.resolve = q.resolve
  local parts = { "SELECT " }
  if q._distinct then parts[#parts + 1] = "DISTINCT " end
  parts[#parts + 1] = select_list(ctx, q)
  parts[#parts + 1] = " FROM " .. dialect:quote_qualified(q.table)
  if q.table_alias then parts[#parts + 1] = " AS " .. dialect:quote_identifier(q.table_alias) end
  parts[#parts + 1] = where_sql(ctx, q)
  if q._group and #q._group > 0 then
    local g = {}
    for i, e in ipairs(q._group) do g[i] = compile_expr(ctx, e) end
    parts[#parts + 1] = " GROUP BY " .. table.concat(g, ", ")
  end
  if q._having and #q._having > 0 then
    parts[#parts + 1] = " HAVING " .. compile_expr(ctx, { kind = "and", items = q._having })
  end
  parts[#parts + 1] = order_sql(ctx, q)
  parts[#parts + 1] = limit_sql(ctx, q)
  if q._lock then parts[#parts + 1] = " " .. dialect:lock_clause(q._lock) end
  ctx.resolve = saved
  local sql = table.concat(parts)
  if outer then return sql end
  return sql, ctx.params
end

-- UPDATE t SET col = ?, ... WHERE ...
function M.update(dialect, q, assignments)
  local ctx = new_ctx(dialect, q.resolve)
  local sets = {}
  for i, a in ipairs(assignments) do
    sets[i] = ctx:column(a.column) .. " = " .. operand(ctx, a.value)
  end
  if #sets == 0 then query_error("update_all needs at least one column to set") end
  local sql = "UPDATE " .. dialect:quote_qualified(q.table) .. " SET " .. table.concat(sets, ", ")
    .. where_sql(ctx, q) .. order_sql(ctx, q)
  if q._limit then sql = sql .. " LIMIT " .. ctx:param(q._limit) end
  return sql, ctx.params
end

-- DELETE FROM t WHERE ... [RETURNING ...]
function M.delete(dialect, q, opts)
  local ctx = new_ctx(dialect, q.resolve)
  local sql = "DELETE FROM " .. dialect:quote_qualified(q.table) .. where_sql(ctx, q) .. order_sql(ctx, q)
  if q._limit then sql = sql .. " LIMIT " .. ctx:param(q._limit) end
  if opts and opts.returning then
    sql = sql .. dialect:returning_clause(opts.returning, "delete_returning", "DELETE ... RETURNING")
  end
  return sql, ctx.params
end

return M

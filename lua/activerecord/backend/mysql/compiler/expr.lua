-- Expressions -> SQL text: the compile context (dialect, field resolver,
-- parameters in the order their `?` appear), operands, conditions,
-- functions, windows, JSON and full text, and raw fragments (placeholder
-- count and -> / ->> detection).
-- One job: compile one expression node; statements (SELECT, UPDATE, ...)
-- are in `compiler.select` and `compiler.dml`, which install the nested
-- SELECT this file calls for subqueries.
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local json_mod = require("activerecord.json")
local query = require("activerecord.query")
local materialize = require("activerecord.query.shape").materialize

local M = {}

-- Nodes are recognised by identity only (see activerecord.query): a table
-- that is not one is never compiled, whatever fields it has.
local is_expr, is_query = query.is_expr, query.is_query

local function query_error(msg)
  errors.raise("QueryError", msg)
end

-- Calls fn(i, c) for each byte of `sql` outside quoted strings/identifiers.
-- One pass over a raw fragment, outside quoted strings and identifiers:
-- how many `?` it has and whether it uses MySQL's -> / ->> operators. The
-- same fragment text recurs on every call of a query, so results are
-- memoised; the memo is emptied when it grows past 1,000 texts, so
-- fragments built with ever-changing text cannot make it grow without end.
local scan_cache, scan_cached = {}, 0

local function scan(sql)
  local hit = scan_cache[sql]
  if hit then return hit end
  local count, arrow = 0, false
  local i, len = 1, #sql
  while i <= len do
    -- jump to the next character that matters
    local j = sql:find("['\"`?%-]", i)
    if not j then break end
    local c = sql:sub(j, j)
    if c == "?" then
      count = count + 1
      i = j + 1
    elseif c == "-" then
      if sql:sub(j + 1, j + 1) == ">" then arrow = true end
      i = j + 1
    else
      -- skip the quoted part: doubled quotes and (outside backticks) backslash escapes
      local k = j + 1
      while k <= len do
        local d = sql:sub(k, k)
        if d == "\\" and c ~= "`" then
          k = k + 1
        elseif d == c then
          if sql:sub(k + 1, k + 1) == c then k = k + 1 else break end
        end
        k = k + 1
      end
      i = k + 1
    end
  end
  hit = { count = count, arrow = arrow }
  if scan_cached >= 1000 then scan_cache, scan_cached = {}, 0 end
  scan_cache[sql] = hit
  scan_cached = scan_cached + 1
  return hit
end

-- Counts `?` outside quoted strings and identifiers in a raw fragment.
local function count_placeholders(sql)
  return scan(sql).count
end
M.count_placeholders = count_placeholders

-- True when the fragment uses MySQL's -> / ->> JSON operators.
local function uses_json_arrow(sql)
  return scan(sql).arrow
end
M.uses_json_arrow = uses_json_arrow

-- A compile context: the dialect, the field resolver and the parameters.
local Ctx = {}
Ctx.__index = Ctx

local function new_ctx(dialect, resolve)
  return setmetatable({ d = dialect, resolve = resolve, params = { n = 0 } }, Ctx)
end

-- Values were checked when the query was built (activerecord.query); a
-- table that got here anyway is refused by the C core's binder.
function Ctx:param(v)
  local p = self.params
  p.n = p.n + 1
  p[p.n] = v
  return "?"
end

function Ctx:add_params(list)
  for i = 1, (list.n or #list) do self:param(list[i]) end
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
  if uses_json_arrow(sql) then
    self.d:require("json_arrow_operators",
      "the -> / ->> JSON operators (use ar.json_extract / ar.json_value, which work everywhere)")
  end
  for i = 1, have do self:param(params[i]) end
  return sql
end

M.Ctx = Ctx

-- A new compile context for `dialect`, columns mapped by `resolve`.
function M.new_ctx(dialect, resolve)
  return new_ctx(dialect, resolve)
end

local compile_expr
-- SELECT text of a (finalized) query in a context: set by compiler.select.
local select_statement

function M.set_select_statement(fn) select_statement = fn end

-- The query as it runs (default scopes applied), for subqueries too.
local function finalize(q)
  if q._final then return materialize(q:_final()) end
  return q
end

-- A nested SELECT in the same context, under its own resolver.
local function subselect(ctx, q)
  local saved = ctx.resolve
  q = finalize(q)
  ctx.resolve = q.resolve
  local sql = select_statement(ctx, q)
  ctx.resolve = saved
  return sql
end

-- Operands: an expression node, a subquery, or a value (nil -> NULL).
local function operand(ctx, v)
  if type(v) == "table" then
    if is_expr(v) then return compile_expr(ctx, v) end
    if is_query(v) then return "(" .. subselect(ctx, v) .. ")" end
  end
  if v == nil then return ctx:param(null) end
  return ctx:param(v)
end

local function operand_list(ctx, list)
  local out = {}
  for i, v in ipairs(list) do out[i] = operand(ctx, v) end
  return table.concat(out, ", ")
end

local comparison = { eq = "=", ne = "<>", gt = ">", ge = ">=", lt = "<", le = "<=" }

local function compare(ctx, e)
  local lhs = compile_expr(ctx, e.left)
  local sym = comparison[e.kind]
  if e.right == null or e.right == nil then
    if e.kind == "eq" then return lhs .. " IS NULL" end
    if e.kind == "ne" then return lhs .. " IS NOT NULL" end
    query_error("cannot compare with NULL using " .. sym)
  end
  return lhs .. " " .. sym .. " " .. operand(ctx, e.right)
end

local function in_list(ctx, e)
  local lhs = compile_expr(ctx, e.left)
  local word = e.negate and " NOT IN (" or " IN ("
  if is_query(e.values) then
    return lhs .. word .. subselect(ctx, e.values) .. ")"
  end
  -- raw reads: the list was checked with raw reads when it was built
  local values = e.values
  local n = rawlen(values)
  if n == 0 then return e.negate and "1 = 1" or "1 = 0" end -- IN () is a syntax error
  local ps = {}
  for i = 1, n do ps[i] = ctx:param(rawget(values, i)) end
  return lhs .. word .. table.concat(ps, ", ") .. ")"
end

local function func(ctx, e)
  if e.capability then ctx.d:require(e.capability, e.name .. "()") end
  local args = operand_list(ctx, e.args)
  if e.distinct then args = "DISTINCT " .. args end
  return e.name .. "(" .. args .. ")"
end

local function junction(ctx, e)
  if #e.items == 0 then return e.kind == "and" and "1 = 1" or "1 = 0" end
  local parts = {}
  for i, item in ipairs(e.items) do parts[i] = "(" .. compile_expr(ctx, item) .. ")" end
  return table.concat(parts, e.kind == "and" and " AND " or " OR ")
end

-- ---- windows -------------------------------------------------------------

local function order_items(ctx, list)
  local parts = {}
  for i, o in ipairs(list) do
    parts[i] = compile_expr(ctx, o.expr) .. (o.dir == "desc" and " DESC" or " ASC")
  end
  return table.concat(parts, ", ")
end

-- The text inside OVER ( ... ) / WINDOW w AS ( ... ).
local function window_spec(ctx, spec)
  local parts = {}
  if spec.base then parts[#parts + 1] = ctx.d:quote_identifier(spec.base) end
  if #spec.partition > 0 then
    local p = {}
    for i, x in ipairs(spec.partition) do p[i] = compile_expr(ctx, x) end
    parts[#parts + 1] = "PARTITION BY " .. table.concat(p, ", ")
  end
  if #spec.order > 0 then parts[#parts + 1] = "ORDER BY " .. order_items(ctx, spec.order) end
  if spec.frame then parts[#parts + 1] = spec.frame end
  return "(" .. table.concat(parts, " ") .. ")"
end

local function over_clause(ctx, e)
  if e.window_name then return " OVER " .. ctx.d:quote_identifier(e.window_name) end
  return " OVER " .. window_spec(ctx, e.spec)
end

-- LAG/LEAD with a default: MySQL takes it as a third argument; MariaDB has
-- no such argument, so there the default fills in exactly where the
-- function of a constant finds no row at that offset.
local function shift_with_default(ctx, e)
  local f = e.fn
  if ctx.d.flavor == "mysql" then
    local args = { f.args[1], f.args[2], f.default }
    return f.name .. "(" .. operand_list(ctx, args) .. ")" .. over_clause(ctx, e)
  end
  local probe = f.name .. "(1, " .. compile_expr(ctx, f.args[2]) .. ")" .. over_clause(ctx, e)
  local default = operand(ctx, f.default)
  return "CASE WHEN " .. probe .. " IS NULL THEN " .. default .. " ELSE " .. compile_expr(ctx, f)
    .. over_clause(ctx, e) .. " END"
end

local function over(ctx, e)
  ctx.d:require("window_functions", "window functions (" .. e.fn.name .. " OVER ...)")
  if e.fn.default ~= nil then return shift_with_default(ctx, e) end
  return compile_expr(ctx, e.fn) .. over_clause(ctx, e)
end

-- ---- JSON and full text --------------------------------------------------

local function json_path(ctx, path)
  ctx.d:validate_json_path(path)
  return ctx:param(path)
end

local function add_fragment(ctx, sql, params)
  ctx:add_params(params)
  return sql
end

local JSON = {
  extract = function(ctx, e, target)
    return add_fragment(ctx, ctx.d:json_extract(target, e.path))
  end,
  value = function(ctx, e, target)
    return add_fragment(ctx, ctx.d:json_value(target, e.path))
  end,
  unquote = function(_, _, target) return "JSON_UNQUOTE(" .. target .. ")" end,
  length = function(ctx, e, target)
    if e.path == nil then return "JSON_LENGTH(" .. target .. ")" end
    return "JSON_LENGTH(" .. target .. ", " .. json_path(ctx, e.path) .. ")"
  end,
  contains = function(ctx, e, target)
    -- the core's encoder: integers exact, `ar.json_array()` stays an array
    local ok, text = pcall(json_mod.encode, e.value)
    if not ok then
      query_error("json_contains: value cannot be encoded as JSON: " .. (type(text) == "table" and text.message
        or tostring(text)))
    end
    return add_fragment(ctx, ctx.d:json_contains(target, text, e.path))
  end,
  contains_path = function(ctx, e, target)
    local parts = { target, ctx:param(e.mode) }
    for _, p in ipairs(e.paths) do parts[#parts + 1] = json_path(ctx, p) end
    return "JSON_CONTAINS_PATH(" .. table.concat(parts, ", ") .. ")"
  end,
  search = function(ctx, e, target)
    local sql = "JSON_SEARCH(" .. target .. ", " .. ctx:param(e.mode) .. ", " .. ctx:param(e.search)
    if e.path == nil then return sql .. ")" end
    return sql .. ", NULL, " .. json_path(ctx, e.path) .. ")"
  end,
}

local function json(ctx, e)
  ctx.d:require("json", "JSON functions")
  local target = compile_expr(ctx, e.target)
  return JSON[e.fn](ctx, e, target)
end

local JT_TYPES = {
  integer = function() return "INT" end,
  bigint = function() return "BIGINT" end,
  double = function() return "DOUBLE" end,
  json = function() return "JSON" end,
  string = function(c) return ("VARCHAR(%d)"):format(c.size or 255) end,
  decimal = function(c) return ("DECIMAL(%d,%d)"):format(c.precision or 10, c.scale or 0) end,
}

-- JSON_TABLE paths must be literals: validated, then written as a literal
-- that cannot leave its quotes (no backslashes or control bytes accepted).
local function path_literal(ctx, path)
  ctx.d:validate_json_path(path)
  local lit = ctx.d.string_literal(path, "plain")
  if not lit then query_error("JSON_TABLE path cannot contain backslashes or control characters") end
  return lit
end

local function json_table(ctx, e)
  ctx.d:require("json_table", "JSON_TABLE")
  local cols = {}
  for i, c in ipairs(e.columns) do
    local name = ctx.d:quote_identifier(c.name)
    if c.type == "ordinality" then
      cols[i] = name .. " FOR ORDINALITY"
    else
      cols[i] = name .. " " .. JT_TYPES[c.type](c) .. " PATH " .. path_literal(ctx, c.path)
    end
  end
  return "JSON_TABLE(" .. compile_expr(ctx, e.target) .. ", " .. path_literal(ctx, e.path)
    .. " COLUMNS (" .. table.concat(cols, ", ") .. "))"
end

local MATCH_MODE = { natural = "", boolean = " IN BOOLEAN MODE", query_expansion = " WITH QUERY EXPANSION" }

local function match(ctx, e)
  ctx.d:require("full_text", "full-text search (MATCH ... AGAINST)")
  local cols = {}
  for i, c in ipairs(e.cols) do cols[i] = compile_expr(ctx, c) end
  return "MATCH (" .. table.concat(cols, ", ") .. ") AGAINST (" .. ctx:param(e.text) .. MATCH_MODE[e.mode] .. ")"
end

-- ---- expressions ---------------------------------------------------------

local EXPR = {
  column = function(ctx, e) return ctx:column(e.name) end,
  raw = function(ctx, e) return ctx:raw(e.sql, e.params) end,
  value = function(ctx, e) return operand(ctx, e.value) end,
  int = function(_, e) return string.format("%d", e.value) end, -- validated integers only
  subquery = function(ctx, e) return "(" .. subselect(ctx, e.query) .. ")" end,
  func = func,
  over = over,
  json = json,
  match = match,
  json_table = json_table,
  ["in"] = in_list,
  null = function(ctx, e) return compile_expr(ctx, e.left) .. (e.negate and " IS NOT NULL" or " IS NULL") end,
  between = function(ctx, e)
    return compile_expr(ctx, e.left) .. (e.negate and " NOT BETWEEN " or " BETWEEN ")
      .. operand(ctx, e.low) .. " AND " .. operand(ctx, e.high)
  end,
  like = function(ctx, e)
    return compile_expr(ctx, e.left) .. (e.negate and " NOT LIKE " or " LIKE ") .. operand(ctx, e.pattern)
  end,
  binop = function(ctx, e)
    return "(" .. compile_expr(ctx, e.left) .. " " .. e.op .. " " .. operand(ctx, e.right) .. ")"
  end,
  ["and"] = junction,
  ["or"] = junction,
  ["not"] = function(ctx, e) return "NOT (" .. compile_expr(ctx, e.item) .. ")" end,
  exists = function(ctx, e) return (e.negate and "NOT EXISTS (" or "EXISTS (") .. subselect(ctx, e.query) .. ")" end,
}
for k in pairs(comparison) do EXPR[k] = compare end

compile_expr = function(ctx, e)
  if not is_expr(e) then query_error("not an expression: " .. type(e)) end
  local f = EXPR[e.kind]
  if not f then query_error("unknown expression kind: " .. tostring(e.kind)) end
  return f(ctx, e)
end
M.compile_expr = compile_expr
M.finalize, M.subselect, M.operand, M.junction = finalize, subselect, operand, junction
M.order_items, M.window_spec = order_items, window_spec

return M

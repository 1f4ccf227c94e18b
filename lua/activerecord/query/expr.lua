--- Expression constructors and the Expr methods: columns, raw fragments,
-- bound values, subqueries, comparisons, IN/BETWEEN/LIKE/NULL tests, boolean
-- composition, order and select items, EXISTS, and the conditions `where`
-- takes (`{ col = value }`, an expression, SQL text with `?`).
-- One job: make condition and operand nodes; nothing here runs or compiles.
-- @module activerecord.query.expr
local nodes = require("activerecord.query.nodes")

local M = {}

local null = nodes.null
local pack = table.pack
local query_error, show, node = nodes.query_error, nodes.show, nodes.node
local getmt, Expr, Order, Select, Slot, QUERY = nodes.getmt, nodes.Expr, nodes.Order, nodes.Select, nodes.Slot,
  nodes.QUERY
local is_expr, is_query, is_slot, is_list = nodes.is_expr, nodes.is_query, nodes.is_slot, nodes.is_list
local value_list, checked_value, table_value_error = nodes.value_list, nodes.checked_value, nodes.table_value_error
local check_column_ref, check_name = nodes.check_column_ref, nodes.check_name

-- ---- expressions ---------------------------------------------------------

--- A column reference: `ar.col("age"):gt(18)`, `ar.col("users.name")`.
-- @tparam string name `"col"`, `"table.col"`, `"db.table.col"`, `"*"` or `"t.*"`
-- @treturn Expr the column
-- @raise `QueryError` for an invalid name
-- Column nodes are never changed once made: one per name is kept (the
-- name checked once), emptied past 1,000 names.
local columns, ncolumns = {}, 0

function M.col(name)
  local c = columns[name]
  if c then return c end
  c = node({ kind = "column", name = check_column_ref(name) })
  if ncolumns >= 1000 then columns, ncolumns = {}, 0 end
  columns[name], ncolumns = c, ncolumns + 1
  return c
end

--- An explicit SQL fragment with its own `?` parameters: `ar.raw("LOWER(name) = ?", "ann")`.
-- @tparam string sql the fragment
-- @param ... values for its placeholders (bound)
-- @treturn Expr the fragment
-- @raise `QueryError` when `sql` is not a string
function M.raw(sql, ...)
  if type(sql) ~= "string" then query_error("raw expects SQL text") end
  local params = pack(...)
  for i = 1, params.n do
    local v = params[i]
    -- bound as they are: no expression or query inside a fragment's values
    if type(v) == "table" and not is_slot(v) then
      table_value_error("value " .. i .. " of SQL fragment " .. show(sql))
    end
  end
  return node({ kind = "raw", sql = sql, params = params })
end

--- A bound value where a column name would otherwise be read.
-- @param v the value
-- @treturn Expr the value
function M.value(v)
  return node({ kind = "value", value = checked_value(v, "ar.value") })
end

--- A query used as an expression: `(SELECT ...)`.
-- @tparam Query q the query
-- @treturn Expr the subquery
-- @raise `QueryError` when `q` is not a query
function M.subquery(q)
  if not is_query(q) then query_error("subquery expects a query") end
  return node({ kind = "subquery", query = q })
end

-- Strings are column names; queries become subqueries.
local function as_expr(v)
  if is_expr(v) then return v end
  if type(v) == "string" then return M.col(v) end
  if is_query(v) then return M.subquery(v) end
  query_error("expected a column name or an expression, got " .. type(v))
end
M.as_expr = as_expr

-- Right-hand sides: expressions stay, queries become subqueries, other
-- tables are refused, anything else is a value.
local function as_operand(v, what)
  if type(v) ~= "table" then return v end
  if is_query(v) then return M.subquery(v) end
  return checked_value(v, what or "value")
end
M.as_operand = as_operand

--- `left = right`: compares with a value (bound), a column (`ar.col`), an expression or a query.
-- @function Expr:eq
-- @param value the right-hand side
-- @treturn Expr the condition
-- @within Expressions

--- `left <> right`: compares with a value (bound), a column (`ar.col`), an expression or a query.
-- @function Expr:ne
-- @param value the right-hand side
-- @treturn Expr the condition
-- @within Expressions

--- `left > right`: compares with a value (bound), a column (`ar.col`), an expression or a query.
-- @function Expr:gt
-- @param value the right-hand side
-- @treturn Expr the condition
-- @within Expressions

--- `left >= right`: compares with a value (bound), a column (`ar.col`), an expression or a query.
-- @function Expr:ge
-- @param value the right-hand side
-- @treturn Expr the condition
-- @within Expressions

--- `left < right`: compares with a value (bound), a column (`ar.col`), an expression or a query.
-- @function Expr:lt
-- @param value the right-hand side
-- @treturn Expr the condition
-- @within Expressions

--- `left <= right`: compares with a value (bound), a column (`ar.col`), an expression or a query.
-- @function Expr:le
-- @param value the right-hand side
-- @treturn Expr the condition
-- @within Expressions

--- `left + right`: arithmetic with a value (bound), a column (`ar.col`) or an expression.
-- @function Expr:add
-- @param value the right-hand side
-- @treturn Expr the expression
-- @within Expressions

--- `left - right`: arithmetic with a value (bound), a column (`ar.col`) or an expression.
-- @function Expr:sub
-- @param value the right-hand side
-- @treturn Expr the expression
-- @within Expressions

--- `left * right`: arithmetic with a value (bound), a column (`ar.col`) or an expression.
-- @function Expr:mul
-- @param value the right-hand side
-- @treturn Expr the expression
-- @within Expressions

--- `left / right`: arithmetic with a value (bound), a column (`ar.col`) or an expression.
-- @function Expr:div
-- @param value the right-hand side
-- @treturn Expr the expression
-- @within Expressions

-- A plain list compared with = or <> means IN / NOT IN, as in where{}.
local function compare_list(self, op, value)
  if (op == "eq" or op == "ne") and type(value) == "table" and getmt(value) ~= Expr
      and getmt(value) ~= Slot and not is_query(value) then
    return node({ kind = "in", left = self, values = value_list(value, op), negate = op == "ne" })
  end
  return nil
end

for _, op in ipairs({ "eq", "ne", "gt", "ge", "lt", "le" }) do
  Expr[op] = function(self, value)
    return compare_list(self, op, value) or node({ kind = op, left = self, right = as_operand(value, op) })
  end
end
for op, sym in pairs({ add = "+", sub = "-", mul = "*", div = "/" }) do
  Expr[op] = function(self, value)
    return node({ kind = "binop", op = sym, left = self, right = as_operand(value, op) })
  end
end

local function in_values(values)
  if is_query(values) then return values end
  if type(values) ~= "table" or is_expr(values) then query_error("in_list expects a list of values or a query") end
  return value_list(values, "in_list")
end

-- and_/or_ take an expression only: a string here is not raw SQL.
local function as_condition(v, what)
  if not is_expr(v) then query_error(what .. " expects an expression (ar.col(...):eq(...), ar.raw(...))") end
  return v
end

--- `left IN (...)`.
-- @tparam table|Query values a list of values (bound) or a query
-- @treturn Expr the condition
-- @raise `QueryError` for anything else
-- @within Expressions
function Expr:in_list(values) return node({ kind = "in", left = self, values = in_values(values) }) end
--- `left NOT IN (...)`.
-- @tparam table|Query values a list of values or a query
-- @treturn Expr the condition
-- @raise `QueryError` for anything else
-- @within Expressions
function Expr:not_in(values) return node({ kind = "in", left = self, values = in_values(values), negate = true }) end
--- `left BETWEEN low AND high`.
-- @param low the lower bound (value or expression)
-- @param high the upper bound
-- @treturn Expr the condition
-- @within Expressions
function Expr:between(low, high)
  if low == nil or high == nil then query_error("between needs a low and a high bound") end
  return node({ kind = "between", left = self, low = as_operand(low, "between"),
                high = as_operand(high, "between") })
end
--- `left LIKE ?`.
-- @tparam string pattern the pattern (bound)
-- @treturn Expr the condition
-- @within Expressions
function Expr:like(pattern) return node({ kind = "like", left = self, pattern = as_operand(pattern, "like") }) end
--- `left NOT LIKE ?`.
-- @tparam string pattern the pattern (bound)
-- @treturn Expr the condition
-- @within Expressions
function Expr:not_like(pattern)
  return node({ kind = "like", left = self, pattern = as_operand(pattern, "not_like"), negate = true })
end
--- `left IS NULL`.
-- @treturn Expr the condition
-- @within Expressions
function Expr:is_null() return node({ kind = "null", left = self }) end
--- `left IS NOT NULL`.
-- @treturn Expr the condition
-- @within Expressions
function Expr:is_not_null() return node({ kind = "null", left = self, negate = true }) end
--- `(left AND other)`.
-- @tparam Expr other the other condition
-- @treturn Expr the condition
-- @within Expressions
function Expr:and_(other) return node({ kind = "and", items = { self, as_condition(other, "and_") } }) end
--- `(left OR other)`.
-- @tparam Expr other the other condition
-- @treturn Expr the condition
-- @within Expressions
function Expr:or_(other) return node({ kind = "or", items = { self, as_condition(other, "or_") } }) end
--- `NOT (left)`.
-- @treturn Expr the condition
-- @within Expressions
function Expr:not_() return node({ kind = "not", item = self }) end

--- A select item with an alias: `q:select(ar.col("name"):as("n"))`.
-- @tparam string alias the alias
-- @treturn table a select item
-- @raise `QueryError` for an invalid alias
-- @within Expressions
function Expr:as(alias)
  return setmetatable({ expr = self, as = check_name(alias, "alias") }, Select)
end
--- An ascending order item: `q:order_by(ar.col("x"):asc())`.
-- @treturn table an order item
-- @within Expressions
function Expr:asc() return setmetatable({ expr = self, dir = "asc" }, Order) end
--- A descending order item.
-- @treturn table an order item
-- @within Expressions
function Expr:desc() return setmetatable({ expr = self, dir = "desc" }, Order) end

--- `EXISTS (subquery)`.
-- @tparam Query q the subquery
-- @treturn Expr the condition
-- @raise `QueryError` when `q` is not a query
function M.exists(q)
  if not is_query(q) then query_error("exists expects a query") end
  return node({ kind = "exists", query = q })
end
--- `NOT EXISTS (subquery)`.
-- @tparam Query q the subquery
-- @treturn Expr the condition
-- @raise `QueryError` when `q` is not a query
function M.not_exists(q)
  if not is_query(q) then query_error("not_exists expects a query") end
  return node({ kind = "exists", query = q, negate = true })
end


local function order_entry(expr, dir) return setmetatable({ expr = expr, dir = dir }, Order) end

-- An order item: ar.col(x):desc(), a column or expression, or { "col", "desc" }.
local function order_item(item)
  if getmt(item) == Order then return item end
  if type(item) == "table" and not is_expr(item) and not is_query(item) then
    if not is_list(item) or #item < 1 or #item > 2 then
      query_error("an order item is a column, an expression, expr:asc()/desc() or { \"col\", \"desc\" }")
    end
    local dir = item[2] and tostring(item[2]):lower() or "asc"
    if dir ~= "asc" and dir ~= "desc" then
      query_error("order direction must be \"asc\" or \"desc\", got " .. show(item[2]))
    end
    return order_entry(as_expr(item[1]), dir)
  end
  return order_entry(as_expr(item), "asc")
end

local function is_dir(v) return type(v) == "string" and (v:lower() == "asc" or v:lower() == "desc") end

-- One item, or a list of them; { "col", "desc" } is one item.
local function order_list(v)
  if v == nil then return {} end
  if type(v) ~= "table" or is_expr(v) or getmt(v) == Order or is_dir(v[2]) then
    return { order_item(v) }
  end
  if not is_list(v) then query_error("order_by expects a column, an expression or a list of them") end
  local out = {}
  for i, item in ipairs(v) do out[i] = order_item(item) end
  return out
end

local function expr_list(v)
  if v == nil then return {} end
  if type(v) ~= "table" or is_expr(v) or is_query(v) then return { as_expr(v) } end
  if not is_list(v) then query_error("expected a column, an expression or a list of them") end
  local out = {}
  for i, item in ipairs(v) do out[i] = as_expr(item) end
  return out
end
M.order_entry, M.order_item, M.order_list, M.expr_list = order_entry, order_item, order_list, expr_list

-- ---- conditions ----------------------------------------------------------

-- {name = "Ann", age = {1, 2}, deleted_at = ar.null, user_id = subquery}
-- -> AND of conditions, in a stable (sorted) order so the SQL text, and its
-- cached statement, repeat.
-- A table value is a list (IN), a query (IN subquery) or, by identity, an
-- expression; a table with other keys (a decoded JSON object) is refused.
local function hash_item(k, v)
  local left = M.col(k)
  if v == null then return node({ kind = "null", left = left }) end
  if type(v) == "table" then
    local mt = getmt(v)
    if mt ~= Expr and mt ~= Slot then
      if rawget(v, QUERY) ~= nil then return node({ kind = "in", left = left, values = v }) end
      return node({ kind = "in", left = left, values = value_list(v, "where{ " .. k .. " = ... }") })
    end
  end
  return node({ kind = "eq", left = left, right = v })
end

M.hash_item = hash_item

local function sorted_keys(t, what)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then query_error(what .. " keys must be column names") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

local function hash_conditions(t)
  local items = {}
  for i, k in ipairs(sorted_keys(t, "where{}")) do items[i] = hash_item(k, t[k]) end
  return items
end

local function all_of(items)
  if #items == 1 then return items[1] end
  return node({ kind = "and", items = items })
end

-- where(...) arguments -> one condition node.
local function condition(first, ...)
  if type(first) == "string" then return M.raw(first, ...) end
  if is_expr(first) then return first end
  if is_query(first) then
    query_error("where(query): use where{ col = query }, ar.exists(query) or col:in_list(query)")
  end
  if type(first) == "table" then return all_of(hash_conditions(first)) end
  query_error("where expects a table of conditions, an expression or SQL text with ?")
end
M.condition = condition
M.sorted_keys, M.all_of = sorted_keys, all_of
M.Expr = Expr

return M

--- Queries and expressions. Queries are values: every builder call returns
-- a new query (the original is never changed), and SQL is produced once, by
-- the backend's compiler, when a terminal (all, first, count, ...) runs.
-- Values never enter SQL text; raw fragments are explicit strings with their
-- own `?` parameters. Identifiers given as strings are checked here, when
-- the query is built, so a bad one raises `QueryError` before any SQL exists.
--
-- The expression constructors below are re-exported as `ar.col`, `ar.raw`,
-- `ar.json_value`, ... by `activerecord`.
-- @module activerecord.query
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local registry = require("activerecord.registry")

local M = {}

local Query = {}
Query.__index = Query
M.Query = Query

local null = core.null
local pack, unpack = table.pack, table.unpack

local function query_error(msg)
  errors.raise("QueryError", msg)
end

local function show(v)
  if type(v) ~= "string" then return tostring(v) end
  if #v > 60 then v = v:sub(1, 57) .. "..." end
  return (("%q"):format(v):gsub("\\\n", "\\n"))
end

-- ---- node identity -------------------------------------------------------

-- Query nodes are recognised by identity, never by their fields: a table
-- decoded from request data can carry any field (`kind = "raw"`, `sql =`)
-- but not these module-private metatables or this private key, so it can
-- never be compiled as SQL. Expressions carry Expr as their metatable (one
-- getmetatable call tells them apart); queries carry the key QUERY (model
-- queries have each model's own metatable, so a key, read with rawget).
--
-- The metatables are also kept from code: `__metatable` makes
-- getmetatable(node) return a name, so nobody can take a node's metatable
-- to dress up a table (or reach it through its __index); this module sees
-- the real one with debug.getmetatable (where the debug library is absent,
-- plain getmetatable and no protection).
local getmt = debug and debug.getmetatable or getmetatable
local PROTECTED = debug and debug.getmetatable and "activerecord.query node" or nil

local Expr = { __metatable = PROTECTED }
Expr.__index = Expr

local Order = { __metatable = PROTECTED }  -- order items: ar.col("x"):desc()
local Select = { __metatable = PROTECTED } -- aliased select items: ar.col("x"):as("y")
local Slot = { __metatable = PROTECTED, __tostring = function(s) return s.name end } -- see M.slot
local QUERY = {}  -- key every query carries (copied by clone)

local function is_expr(v) return getmt(v) == Expr end
local function is_query(v) return type(v) == "table" and rawget(v, QUERY) ~= nil end
local function is_slot(v) return getmt(v) == Slot end
M.is_query = is_query
M.is_expr = is_expr
M.is_slot = is_slot

--- A value filled in after compiling (e.g. `Model:find`'s template key): it
-- is bound as itself, so its position can be found in the parameters.
-- @tparam string name what it stands for, for messages
-- @treturn table the slot
function M.slot(name) return setmetatable({ name = name }, Slot) end

-- A Lua list: keys 1..n and nothing else (raw, so a proxy cannot lie).
local function is_list(t)
  local n, count = rawlen(t), 0
  for _ in next, t do count = count + 1 end
  if count ~= n then return false end
  for i = 1, n do
    if rawget(t, i) == nil then return false end
  end
  return true
end

local SCALAR = { string = true, number = true, boolean = true }

local function table_value_error(what)
  query_error(what .. ": a table is not a value here (request data must be checked before it "
    .. "becomes a condition; SQL is made only by ar.col, ar.raw, ar.func, ... and queries)")
end

-- The values of an IN (...): a list of scalars or ar.null, nothing nested.
-- One pass (lists of thousands of keys come through here): items 1..n are
-- all present, so n keys in all means no other key.
local function value_list(t, what)
  local n = rawlen(t)
  for i = 1, n do
    local x = rawget(t, i)
    if not SCALAR[type(x)] and x ~= null then
      if x == nil then query_error(what .. ": a list with holes is not a value") end
      query_error(("%s: list item %d is a %s; IN (...) takes strings, numbers, booleans or ar.null")
        :format(what, i, type(x)))
    end
  end
  local count = 0
  for _ in next, t do count = count + 1 end
  if count ~= n then
    query_error(what .. ": a table with non-list keys is not a value (a list means IN (...); "
      .. "request data must be checked before it becomes a condition)")
  end
  return t
end
M.value_list = value_list

-- A value position (right-hand sides, LIKE patterns, function arguments,
-- SET values): anything but a table is bound; of tables, only expressions,
-- queries and slots, told apart by identity.
local function checked_value(v, what)
  if type(v) ~= "table" then return v end
  local mt = getmt(v)
  if mt == Expr or mt == Slot or rawget(v, QUERY) ~= nil then return v end
  table_value_error(what)
end
M.checked_value = checked_value

-- ---- identifiers ---------------------------------------------------------

-- One part of a column reference: letters, digits, _, $ and non-ASCII
-- (the characters MySQL takes unquoted), not all digits.
local function valid_part(part)
  return part:match("^[%w_$\128-\255]+$") ~= nil and not part:match("^%d+$")
end

-- "col", "t.col", "db.t.col", "*", "t.*"; raises QueryError otherwise.
local function check_column_ref(name, what)
  if type(name) ~= "string" then
    query_error((what or "column") .. " must be a name, got " .. type(name))
  end
  local parts = {}
  for part in (name .. "."):gmatch("(.-)%.") do parts[#parts + 1] = part end
  local ok = #parts <= 3
  for i, part in ipairs(parts) do
    if not (valid_part(part) or (part == "*" and i == #parts)) then ok = false end
  end
  if not ok then query_error("invalid " .. (what or "column") .. " name " .. show(name)) end
  return name
end

-- A table, alias, CTE or window name: one part (or db.table for tables).
local function check_name(name, what, dotted)
  if type(name) ~= "string" then query_error(what .. " must be a name, got " .. type(name)) end
  local ok = true
  local n = 0
  for part in (name .. "."):gmatch("(.-)%.") do
    n = n + 1
    if not valid_part(part) then ok = false end
  end
  if not ok or n > (dotted and 2 or 1) then query_error("invalid " .. what .. " " .. show(name)) end
  return name
end
M.check_name = check_name

-- ---- expressions ---------------------------------------------------------

-- Every expression node is made here: its metatable is its identity.
local function node(t)
  return setmetatable(t, Expr)
end

--- A column reference: `ar.col("age"):gt(18)`, `ar.col("users.name")`.
-- @tparam string name `"col"`, `"table.col"`, `"db.table.col"`, `"*"` or `"t.*"`
-- @treturn Expr the column
-- @raise `QueryError` for an invalid name
function M.col(name)
  return node({ kind = "column", name = check_column_ref(name) })
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

-- ---- functions -----------------------------------------------------------

local function func_args(...)
  local args = {}
  for i = 1, select("#", ...) do
    local a = select(i, ...)
    if type(a) == "string" then a = M.col(a) else a = as_operand(a) end
    args[i] = a
  end
  return args
end

--- A function call: `ar.func("COALESCE", "nickname", ar.value("?"))`; string
-- arguments are columns, other values are bound.
-- @tparam string name the SQL function (an identifier)
-- @param ... the arguments
-- @treturn Expr the call
-- @raise `QueryError` for an invalid function name
function M.func(name, ...)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    query_error("invalid function name " .. show(name))
  end
  return node({ kind = "func", name = name:upper(), args = func_args(...) })
end

--- Shorthand for `func`: `ar.fn.sum("balance")`, `ar.fn.count("*")`, `ar.fn.lower("name")`.
-- @table fn
M.fn = setmetatable({}, { __index = function(_, name)
  return function(...) return M.func(name, ...) end
end })

--- `COUNT(DISTINCT col)`.
-- @tparam string|Expr col the column
-- @treturn Expr the aggregate
function M.count_distinct(col)
  return node({ kind = "func", name = "COUNT", args = { as_expr(col) }, distinct = true })
end

--- `GROUPING(col)`: which rows WITH ROLLUP added (capability `grouping_function`).
-- @tparam string|Expr col the column
-- @treturn Expr the call; compiling it raises `CapabilityError` on servers without it
function M.grouping(col)
  return node({ kind = "func", name = "GROUPING", args = { as_expr(col) }, capability = "grouping_function" })
end

-- ---- window functions ----------------------------------------------------

local function window_fn(name, args)
  return node({ kind = "func", name = name, args = args or {}, window_only = true })
end

local function literal_int(n, what, min)
  if math.type(n) ~= "integer" or n < (min or 0) then
    query_error(what .. " must be an integer >= " .. (min or 0) .. ", got " .. show(n))
  end
  return node({ kind = "int", value = n })
end

--- `ROW_NUMBER()`, for `:over{...}` (capability `window_functions`).
-- @treturn Expr the window function
function M.row_number() return window_fn("ROW_NUMBER") end
--- `RANK()`, for `:over{...}`.
-- @treturn Expr the window function
function M.rank() return window_fn("RANK") end
--- `DENSE_RANK()`, for `:over{...}`.
-- @treturn Expr the window function
function M.dense_rank() return window_fn("DENSE_RANK") end
--- `PERCENT_RANK()`, for `:over{...}`.
-- @treturn Expr the window function
function M.percent_rank() return window_fn("PERCENT_RANK") end
--- `CUME_DIST()`, for `:over{...}`.
-- @treturn Expr the window function
function M.cume_dist() return window_fn("CUME_DIST") end
--- `NTILE(n)`, for `:over{...}`.
-- @tparam integer n the number of buckets (>= 1)
-- @treturn Expr the window function
-- @raise `QueryError` for a bad `n`
function M.ntile(n) return window_fn("NTILE", { literal_int(n, "ntile buckets", 1) }) end
--- `FIRST_VALUE(col)`, for `:over{...}`.
-- @tparam string|Expr col the column
-- @treturn Expr the window function
function M.first_value(col) return window_fn("FIRST_VALUE", { as_expr(col) }) end
--- `LAST_VALUE(col)`, for `:over{...}`.
-- @tparam string|Expr col the column
-- @treturn Expr the window function
function M.last_value(col) return window_fn("LAST_VALUE", { as_expr(col) }) end
--- `NTH_VALUE(col, n)`, for `:over{...}`.
-- @tparam string|Expr col the column
-- @tparam integer n the position (>= 1)
-- @treturn Expr the window function
-- @raise `QueryError` for a bad `n`
function M.nth_value(col, n)
  return window_fn("NTH_VALUE", { as_expr(col), literal_int(n, "nth_value position", 1) })
end

local function shift_fn(name, col, offset, default)
  local args = { as_expr(col), literal_int(offset or 1, name:lower() .. " offset") }
  local f = window_fn(name, args)
  f.default = as_operand(default)
  return f
end
--- `LAG(col, offset[, default])`, for `:over{...}`.
-- @tparam string|Expr col the column
-- @tparam[opt=1] integer offset rows back
-- @param[opt] default the value when there is no such row
-- @treturn Expr the window function
-- @raise `QueryError` for a bad offset
function M.lag(col, offset, default) return shift_fn("LAG", col, offset, default) end
--- `LEAD(col, offset[, default])`, for `:over{...}`.
-- @tparam string|Expr col the column
-- @tparam[opt=1] integer offset rows ahead
-- @param[opt] default the value when there is no such row
-- @treturn Expr the window function
-- @raise `QueryError` for a bad offset
function M.lead(col, offset, default) return shift_fn("LEAD", col, offset, default) end

-- Frames: (ROWS|RANGE) (BETWEEN bound AND bound | bound); bound:
-- UNBOUNDED PRECEDING|FOLLOWING, CURRENT ROW, <n> PRECEDING|FOLLOWING.
local function frame_bound(tokens, i)
  local a, b = tokens[i], tokens[i + 1]
  if a == "UNBOUNDED" and (b == "PRECEDING" or b == "FOLLOWING") then return a .. " " .. b, i + 2 end
  if a == "CURRENT" and b == "ROW" then return "CURRENT ROW", i + 2 end
  if a and a:match("^%d+$") and #a <= 9 and (b == "PRECEDING" or b == "FOLLOWING") then
    return a .. " " .. b, i + 2
  end
  return nil, i
end

local function parse_frame(text)
  local tokens = {}
  for w in text:upper():gmatch("%S+") do tokens[#tokens + 1] = w end
  local unit = tokens[1]
  if unit ~= "ROWS" and unit ~= "RANGE" then return nil end
  if tokens[2] == "BETWEEN" then
    local lo, i = frame_bound(tokens, 3)
    if not lo or tokens[i] ~= "AND" then return nil end
    local hi, j = frame_bound(tokens, i + 1)
    if not hi or j ~= #tokens + 1 then return nil end
    return unit .. " BETWEEN " .. lo .. " AND " .. hi
  end
  local b, i = frame_bound(tokens, 2)
  if not b or i ~= #tokens + 1 then return nil end
  return unit .. " " .. b
end

--- Checks and canonicalises a window frame: `ROWS|RANGE [BETWEEN] bound [AND bound]`
-- with bounds `UNBOUNDED PRECEDING`, `<n> PRECEDING`, `CURRENT ROW`,
-- `<n> FOLLOWING`, `UNBOUNDED FOLLOWING`.
-- @tparam string text the frame
-- @treturn string the canonical frame
-- @raise `QueryError` for anything else
function M.frame(text)
  local canonical = type(text) == "string" and parse_frame(text)
  if not canonical then
    query_error("invalid window frame " .. show(text) .. " (expected ROWS|RANGE [BETWEEN] "
      .. "UNBOUNDED PRECEDING|<n> PRECEDING|CURRENT ROW|<n> FOLLOWING|UNBOUNDED FOLLOWING)")
  end
  return canonical
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

local SPEC_KEYS = { partition_by = true, order_by = true, frame = true, window = true }

--- Checks a window specification (what `Expr:over` and `Query:window` take).
-- @tparam table spec `{ partition_by =, order_by =, frame =, window = "base" }`
-- @treturn table the checked specification
-- @raise `ConfigError` for an unknown key; `QueryError` for a bad name, order or frame
function M.window_spec(spec)
  if type(spec) ~= "table" then query_error("a window is a name or { partition_by =, order_by =, frame = }") end
  options.check(spec, SPEC_KEYS, "window")
  return {
    base = spec.window and check_name(spec.window, "window name"),
    partition = expr_list(spec.partition_by),
    order = order_list(spec.order_by),
    frame = spec.frame and M.frame(spec.frame),
  }
end

--- `fn OVER (...)` for a window or aggregate function.
-- @tparam string|table spec a window named with `Query:window`, or
--   `{ partition_by =, order_by =, frame =, window = }`
-- @treturn Expr the windowed call (capability `window_functions`)
-- @raise `QueryError` when not applied to a function call, or for a bad spec
-- @within Expressions
function Expr:over(spec)
  if self.kind ~= "func" then query_error("over applies to a function call") end
  if type(spec) == "string" then
    return node({ kind = "over", fn = self, window_name = check_name(spec, "window name") })
  end
  return node({ kind = "over", fn = self, spec = M.window_spec(spec or {}) })
end

-- ---- JSON and full text --------------------------------------------------

local function json_node(fn, target, fields)
  fields.kind, fields.fn, fields.target = "json", fn, as_expr(target)
  return node(fields)
end

--- `JSON_EXTRACT(col, ?)`: the path is validated against the JSON path
-- grammar when the query compiles and always bound.
-- @tparam string|Expr col the JSON column
-- @tparam string path e.g. `"$.tags[0]"`
-- @treturn Expr the expression; compiling raises `QueryError` for a bad
--   path and `CapabilityError` without JSON functions
function M.json_extract(col, path) return json_node("extract", col, { path = path }) end
--- The unquoted scalar at `path`: `JSON_UNQUOTE(JSON_EXTRACT(col, ?))`.
-- @tparam string|Expr col the JSON column
-- @tparam string path the JSON path (validated, bound)
-- @treturn Expr the expression; compiling raises `QueryError` for a bad path
-- @usage User:where(ar.json_value("profile", "$.theme"):eq("dark")):all()
function M.json_value(col, path) return json_node("value", col, { path = path }) end
--- `JSON_UNQUOTE(expr)`.
-- @tparam string|Expr expr a column or expression
-- @treturn Expr the expression
function M.json_unquote(expr) return json_node("unquote", expr, {}) end
--- `JSON_LENGTH(col[, ?])`.
-- @tparam string|Expr col the JSON column
-- @tparam[opt] string path the JSON path (validated, bound)
-- @treturn Expr the expression
function M.json_length(col, path) return json_node("length", col, { path = path }) end
--- `JSON_CONTAINS(col, ?[, ?])`: whether the document (at `path`) contains
-- `value`, sent as its JSON encoding (`"python"` is `"\"python\""`), bound.
-- @tparam string|Expr col the JSON column
-- @param value any Lua value that encodes as JSON
-- @tparam[opt] string path the JSON path (validated, bound)
-- @treturn Expr the condition; compiling raises `QueryError` for a bad path
--   or a value that cannot be encoded
function M.json_contains(col, value, path) return json_node("contains", col, { value = value, path = path }) end

local function one_or_all(v)
  if v ~= "one" and v ~= "all" then query_error("expected \"one\" or \"all\", got " .. show(v)) end
  return v
end

--- `JSON_CONTAINS_PATH(col, one|all, ?, ...)`.
-- @tparam string|Expr col the JSON column
-- @tparam string mode `"one"` or `"all"`
-- @param ... the JSON paths (validated, bound)
-- @treturn Expr the condition
-- @raise `QueryError` for a bad mode or no path
function M.json_contains_path(col, mode, ...)
  local paths = { ... }
  if #paths == 0 then query_error("json_contains_path needs at least one path") end
  return json_node("contains_path", col, { mode = one_or_all(mode), paths = paths })
end

--- `JSON_SEARCH(col, one|all, ?[, NULL, ?])`: the path of a string in the document.
-- @tparam string|Expr col the JSON column
-- @tparam string mode `"one"` or `"all"`
-- @tparam string search the string to look for (bound)
-- @tparam[opt] string path where to look
-- @treturn Expr the expression
-- @raise `QueryError` for a bad mode or search
function M.json_search(col, mode, search, path)
  if type(search) ~= "string" then query_error("json_search expects a search string") end
  return json_node("search", col, { mode = one_or_all(mode), search = search, path = path })
end

local JSON_TABLE_TYPES = { integer = true, bigint = true, string = true, decimal = true, double = true,
  json = true, ordinality = true }

local function json_table_column(c)
  if type(c) ~= "table" then query_error("json_table columns are { name =, type =, path = } tables") end
  check_name(c.name, "json_table column")
  if not JSON_TABLE_TYPES[c.type] then
    query_error("json_table column type must be integer, bigint, string, decimal, double, json or "
      .. "ordinality, got " .. show(c.type))
  end
  for _, k in ipairs({ "size", "precision", "scale" }) do
    if c[k] ~= nil and (math.type(c[k]) ~= "integer" or c[k] < 0 or c[k] > 65535) then
      query_error("json_table column " .. k .. " must be a small integer")
    end
  end
  if c.type ~= "ordinality" and type(c.path) ~= "string" then query_error("json_table column needs a path") end
  return { name = c.name, type = c.type, path = c.path, size = c.size, precision = c.precision, scale = c.scale }
end

--- `JSON_TABLE(col, path COLUMNS (...))` as a join source (capability
-- `json_table`): `q:cross_joins(ar.json_table("users.profile", "$.tags[*]",
-- { { name = "tag", type = "string", path = "$" } }), "jt")`. The server takes
-- these paths only as literals: they are validated and written as safe
-- literals, never spliced raw.
-- @tparam string|Expr col the JSON column
-- @tparam string path the row path
-- @tparam table columns a list of `{ name =, type =, path =, size =, precision =, scale = }`,
--   type one of integer, bigint, string, decimal, double, json, ordinality
-- @treturn Expr the source
-- @raise `QueryError` for a bad column list
function M.json_table(col, path, columns)
  if type(columns) ~= "table" or #columns == 0 then query_error("json_table needs a list of columns") end
  local cols = {}
  for i, c in ipairs(columns) do cols[i] = json_table_column(c) end
  return node({ kind = "json_table", target = as_expr(col), path = path, columns = cols })
end

local MATCH_MODES = { natural = true, boolean = true, query_expansion = true }

--- `MATCH (cols) AGAINST (? [IN BOOLEAN MODE | WITH QUERY EXPANSION])` (capability `full_text`).
-- @tparam string|table cols the column(s) of a FULLTEXT index
-- @tparam string text the search text (bound)
-- @tparam[opt="natural"] string mode `"natural"`, `"boolean"` or `"query_expansion"`
-- @treturn Expr the condition
-- @raise `QueryError` for a bad mode or text
function M.match_against(cols, text, mode)
  mode = mode or "natural"
  if not MATCH_MODES[mode] then
    query_error("match mode must be natural, boolean or query_expansion, got " .. show(mode))
  end
  if type(text) ~= "string" then query_error("match_against expects search text") end
  return node({ kind = "match", cols = expr_list(cols), text = text, mode = mode })
end

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

-- ---- building ------------------------------------------------------------

--- A new query (models use `Model:query()`; plain tables `table`).
-- @tparam table opts `table` (required), `model`, `backend` (or a function
--   returning one), `resolve` (field name -> column name)
-- @treturn Query the query
function M.new(opts)
  return setmetatable({
    [QUERY] = true,
    table = opts.table, model = opts.model, backend = opts.backend, resolve = opts.resolve,
    _where = {}, _order = {}, _select = {}, _group = {}, _having = {},
    _joins = {}, _ctes = {}, _windows = {},
  }, Query)
end

local function default_backend() return registry.default_backend() end

--- A query without a model: `ar.table("users"):where{ id = 1 }:all()` gives plain rows.
-- @tparam string name the table (`"t"` or `"db.t"`)
-- @tparam[opt] activerecord.backend.mysql.Backend backend defaults to the default backend
-- @treturn Query the query
-- @raise `QueryError` for an invalid table name
function M.table(name, backend)
  return M.new{ table = check_name(name, "table name", true), backend = backend or default_backend }
end


--- A query is a value: every builder method returns a new query and never
-- changes the one it was called on; SQL is compiled once, when a terminal
-- method (`all`, `first`, `count`, ...) runs, with every value bound.
-- @type Query

--- A copy of the query.
-- @treturn Query the copy
-- The lists (conditions, order, ...) are shared between a query and its
-- clones and never changed in place: a builder call that extends one copies
-- that list only (`own`), so a clone costs one table, not nine.
function Query:clone()
  local q = {}
  for k, v in pairs(self) do q[k] = v end
  return setmetatable(q, getmetatable(self))
end

-- A private copy of list `key` on the (fresh) query q, ready to extend.
local function own(q, key)
  local src, dst = q[key] or {}, {}
  for i = 1, #src do dst[i] = src[i] end
  q[key] = dst
  return dst
end

local function with(self, key, value)
  local q = self:clone()
  local list = own(q, key)
  list[#list + 1] = value
  return q
end

local function set(self, key, value)
  local q = self:clone()
  q[key] = value
  return q
end

-- A model field's value as the column stores it (e.g. a UUID's binary
-- form); a value the field cannot cast stays as given (it matches nothing).
local function field_value(model, name, v)
  local ok, converted = pcall(model._to_db, model, name, v)
  if ok then return converted end
  return v
end

-- A list converts item by item (IN); another table (a datetime table, a
-- JSON document) converts as a whole, and is refused later if it is still
-- a table.
local function convert_value(model, name, v)
  if v == null then return v end
  if type(v) ~= "table" then return field_value(model, name, v) end
  local mt = getmt(v)
  if mt == Expr or mt == Slot or rawget(v, QUERY) ~= nil then return v end
  local n = rawlen(v)
  if n == 0 and next(v) ~= nil then return field_value(model, name, v) end
  local list = {}
  for i = 1, n do
    local x = rawget(v, i)
    if x == nil then return v end -- a hole: not a list, refused as it is
    list[i] = field_value(model, name, x)
  end
  local count = 0
  for _ in next, v do count = count + 1 end
  if count ~= n then return v end -- other keys: not a list, refused as it is
  return list
end

-- where{ field = value } on a model query: values converted like the fields.
local function model_hash(model, t)
  local out = {}
  for k, v in pairs(t) do
    local f = type(k) == "string" and model.fields[k]
    if f and (f.to_db or f.cast) then v = convert_value(model, k, v) end
    out[k] = v
  end
  return out
end

local function query_condition(self, first, ...)
  local m = self.model
  if m and m.fields and type(first) == "table" and not is_expr(first) and not is_query(first) then
    first = model_hash(m, first)
  end
  return condition(first, ...)
end

--- Adds a condition (AND).
-- @param ... a table `{ col = value }` (`=`; a list is `IN`; `ar.null` is
--   `IS NULL`; a query is `IN (subquery)`; on a model, values convert like the
--   fields), an expression (`ar.col("age"):gt(18)`), or SQL text with `?`
--   followed by its values
-- @treturn Query the new query
-- @raise `QueryError` for a bad column name or argument, and for a value
--   that is a table but not a list of scalars, a query or an expression
--   (expressions are told apart by identity: a decoded JSON object is data)
function Query:where(...) return with(self, "_where", query_condition(self, ...)) end

--- `(everything so far) OR (this condition)`; arguments as for `where`.
-- @param ... the condition
-- @treturn Query the new query
-- @raise `QueryError` as for `where`
function Query:or_where(...)
  local q = self:clone()
  local current = node({ kind = "and", items = q._where })
  q._where = { node({ kind = "or", items = { current, query_condition(self, ...) } }) }
  return q
end

--- Adds `NOT (condition)`; arguments as for `where`.
-- @param ... the condition
-- @treturn Query the new query
-- @raise `QueryError` as for `where`
function Query:not_where(...)
  return with(self, "_where", node({ kind = "not", item = query_condition(self, ...) }))
end
--- Adds `col IN (...)`.
-- @tparam string|Expr col the column
-- @tparam table|Query values the values or a subquery
-- @treturn Query the new query
-- @raise `QueryError` for a bad column or list
function Query:in_list(col, values) return self:where(as_expr(col):in_list(values)) end
--- Adds `col NOT IN (...)`.
-- @tparam string|Expr col the column
-- @tparam table|Query values the values or a subquery
-- @treturn Query the new query
-- @raise `QueryError` for a bad column or list
function Query:not_in(col, values) return self:where(as_expr(col):not_in(values)) end
--- Adds `col BETWEEN low AND high`.
-- @tparam string|Expr col the column
-- @param low the lower bound
-- @param high the upper bound
-- @treturn Query the new query
function Query:between(col, low, high) return self:where(as_expr(col):between(low, high)) end
--- Adds `col LIKE ?`.
-- @tparam string|Expr col the column
-- @tparam string pattern the pattern
-- @treturn Query the new query
function Query:like(col, pattern) return self:where(as_expr(col):like(pattern)) end
--- Adds `col IS NULL`.
-- @tparam string|Expr col the column
-- @treturn Query the new query
function Query:is_null(col) return self:where(as_expr(col):is_null()) end
--- Adds `col IS NOT NULL`.
-- @tparam string|Expr col the column
-- @treturn Query the new query
function Query:is_not_null(col) return self:where(as_expr(col):is_not_null()) end
--- Adds `EXISTS (q)`.
-- @tparam Query q the subquery
-- @treturn Query the new query
function Query:where_exists(q) return self:where(M.exists(q)) end
--- Adds `NOT EXISTS (q)`.
-- @tparam Query q the subquery
-- @treturn Query the new query
function Query:where_not_exists(q) return self:where(M.not_exists(q)) end

--- Adds an ORDER BY item.
-- @tparam string|Expr|table col a column, an expression, or `ar.col(x):desc()`
-- @tparam[opt="asc"] string dir `"asc"` or `"desc"` (nothing else is accepted)
-- @treturn Query the new query
-- @raise `QueryError` for another direction or a bad column
function Query:order_by(col, dir)
  dir = dir and tostring(dir):lower() or "asc"
  if dir ~= "asc" and dir ~= "desc" then
    query_error(("order direction must be \"asc\" or \"desc\", got %s"):format(show(dir)))
  end
  if getmt(col) == Order then return with(self, "_order", col) end
  return with(self, "_order", order_entry(as_expr(col), dir))
end

--- Drops any ordering, then (optionally) orders by `col`.
-- @tparam[opt] string|Expr col the column
-- @tparam[opt] string dir `"asc"` or `"desc"`
-- @treturn Query the new query
function Query:reorder(col, dir)
  local q = set(self, "_order", {})
  if col == nil then return q end
  return q:order_by(col, dir)
end

local function count_arg(n, what)
  if math.type(n) ~= "integer" or n < 0 then
    query_error(what .. " must be a non-negative integer")
  end
  return n
end

--- `LIMIT n`.
-- @tparam integer n a non-negative integer
-- @treturn Query the new query
-- @raise `QueryError` for anything else
function Query:limit(n) return set(self, "_limit", count_arg(n, "limit")) end
--- `OFFSET n`.
-- @tparam integer n a non-negative integer
-- @treturn Query the new query
-- @raise `QueryError` for anything else
function Query:offset(n) return set(self, "_offset", count_arg(n, "offset")) end

local SELECT_KEYS = { expr = true, as = true }

-- A select item: a column name, an expression, a query (scalar subquery),
-- col:as("alias") or { expr = ..., as = "alias" } (those two keys only; the
-- expr is itself a column name, an expression or a query).
local function select_item(s)
  if getmt(s) == Select then return s end
  if type(s) == "table" and not is_expr(s) and not is_query(s) then
    for k in next, s do
      if not SELECT_KEYS[k] then query_error("a select item table takes expr and as only, got " .. show(k)) end
    end
    return setmetatable({ expr = as_expr(s.expr), as = s.as and check_name(s.as, "alias") }, Select)
  end
  return setmetatable({ expr = as_expr(s) }, Select)
end

--- Sets the select list (added to any earlier `select`).
-- @param ... column names, expressions, queries (scalar subqueries),
--   `expr:as("alias")` or `{ expr = ..., as = "alias" }`
-- @treturn Query the new query
-- @raise `QueryError` for a bad name or alias
function Query:select(...)
  local q = self:clone()
  local list = own(q, "_select")
  for i = 1, select("#", ...) do list[#list + 1] = select_item(select(i, ...)) end
  return q
end

--- `SELECT DISTINCT`.
-- @treturn Query the new query
function Query:distinct() return set(self, "_distinct", true) end

--- `GROUP BY` columns or expressions.
-- @param ... the columns
-- @treturn Query the new query
-- @raise `QueryError` for a bad column
function Query:group_by(...)
  local q = self:clone()
  local list = own(q, "_group")
  for i = 1, select("#", ...) do list[#list + 1] = as_expr(select(i, ...)) end
  return q
end

--- `GROUP BY ... WITH ROLLUP`: super-aggregate rows with NULL group columns.
-- @treturn Query the new query
function Query:with_rollup() return set(self, "_rollup", true) end

--- Adds a HAVING condition; arguments as for `where`.
-- @param ... the condition
-- @treturn Query the new query
function Query:having(...) return with(self, "_having", condition(...)) end

--- `WINDOW name AS (spec)`, referenced by `fn:over("name")`.
-- @tparam string name the window's name
-- @tparam table spec as for `Expr:over`
-- @treturn Query the new query
-- @raise `QueryError` for a bad name or spec
function Query:window(name, spec)
  return with(self, "_windows", { name = check_name(name, "window name"), spec = M.window_spec(spec) })
end

-- ---- sources: from, joins, CTEs, set operations --------------------------

--- Reads from another table or CTE (`from("name"[, alias])`) or a derived
-- table (`from(query, alias)`). `from_cte` is the same method.
-- @tparam string|Query source the source
-- @tparam[opt] string alias required for a query
-- @treturn Query the new query
-- @raise `QueryError` for a bad name or a subquery without an alias
function Query:from(source, alias)
  local q = self:clone()
  if alias ~= nil then check_name(alias, "alias") end
  if is_query(source) then
    if not alias then query_error("from(subquery) needs an alias") end
    q._from_query, q.table = source, nil
  else
    q.table, q._from_query = check_name(source, "table name", true), nil
  end
  q.table_alias = alias
  q._compound = nil
  return q
end
Query.from_cte = Query.from

-- Join targets: "table", a query (derived table, alias required) or
-- { table = "name" | query, as = "alias" }.
local JOIN_TARGET_KEYS = { table = true, as = true, [1] = true, [2] = true }

local function join_target(target, alias)
  if type(target) == "table" and not is_query(target) and not is_expr(target) then
    for k in next, target do
      if not JOIN_TARGET_KEYS[k] then query_error("a join target table takes table and as only, got " .. show(k)) end
    end
    target, alias = target.table or target[1], target.as or target[2] or alias
  end
  if alias ~= nil then check_name(alias, "alias") end
  if is_query(target) or (is_expr(target) and target.kind == "json_table") then
    if not alias then query_error("joining a subquery or JSON_TABLE needs an alias") end
    return { query = is_query(target) and target or nil, source = is_expr(target) and target or nil, alias = alias }
  end
  return { table = check_name(target, "table name", true), alias = alias }
end

-- ON: raw SQL with ?, an expression, or { ["posts.user_id"] = "users.id" }
-- (string values are column names; use ar.value(x) for a bound value).
local function join_on(on, ...)
  if on == nil then return nil end
  if type(on) == "string" then return M.raw(on, ...) end
  if is_expr(on) then return on end
  if type(on) ~= "table" then query_error("join ON must be SQL text, an expression or a table of columns") end
  local items = {}
  for i, k in ipairs(sorted_keys(on, "join ON")) do
    local v = on[k]
    local right = type(v) == "string" and M.col(v) or as_operand(v)
    items[i] = node({ kind = "eq", left = M.col(k), right = right })
  end
  return all_of(items)
end

local JOIN_KINDS = { inner = "INNER JOIN", left = "LEFT JOIN", right = "RIGHT JOIN", cross = "CROSS JOIN" }

local function relation_join(self, kind, name)
  local rels = self.model and self.model.relations
  local rel = type(name) == "string" and rels and rels[name]
  if not rel then return nil end
  local spec = rel:join_spec(kind)
  local j = join_target(spec.table, spec.alias)
  j.on = spec.on
  return j
end

--- Adds a join. With `on` omitted, `target` may name a relation of the
-- model (`Post:query():join("inner", "author")`).
-- @tparam string kind `"inner"`, `"left"`, `"right"` or `"cross"`
-- @tparam string|Query|table target a table, a query (alias required),
--   `ar.json_table(...)`, or `{ table =, as = }`
-- @param[opt] on SQL text with `?` (values follow), an expression, or
--   `{ ["posts.user_id"] = "users.id" }` (string values are columns; use
--   `ar.value(x)` for a bound value)
-- @param ... values for the placeholders of a text `on`
-- @treturn Query the new query
-- @raise `QueryError` for a bad kind, target or ON, a missing ON, an ON on a
--   cross join, or a has_many_through relation
function Query:join(kind, target, on, ...)
  if not JOIN_KINDS[kind] then query_error("join kind must be inner, left, right or cross, got " .. show(kind)) end
  local j = on == nil and relation_join(self, kind, target) or nil
  if not j then
    j = join_target(target)
    j.on = join_on(on, ...)
  end
  if kind == "cross" and j.on then query_error("a cross join takes no ON") end
  if kind ~= "cross" and not j.on then
    query_error(("join %s needs an ON (SQL text, a table of columns) or a relation name"):format(show(target)))
  end
  j.kind = JOIN_KINDS[kind]
  return with(self, "_joins", j)
end

--- `join("inner", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:joins(target, on, ...) return self:join("inner", target, on, ...) end
--- `join("inner", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:inner_joins(target, on, ...) return self:join("inner", target, on, ...) end
--- `join("left", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:left_joins(target, on, ...) return self:join("left", target, on, ...) end
--- `join("right", ...)`.
-- @param target the target (see `join`)
-- @param[opt] on the ON
-- @param ... values for the ON
-- @treturn Query the new query
function Query:right_joins(target, on, ...) return self:join("right", target, on, ...) end
--- `join("cross", ...)`.
-- @param target the target (see `join`)
-- @tparam[opt] string alias its alias
-- @treturn Query the new query
function Query:cross_joins(target, alias)
  if alias ~= nil then target = { table = target, as = alias } end
  return self:join("cross", target)
end

local CTE_KEYS = { columns = true, recursive = true }

--- Adds a common table expression: `WITH name [(columns)] AS (body)`.
-- @tparam string name the CTE's name
-- @tparam Query|Expr|string body a query, `ar.raw(sql, ...)` or SQL text
-- @tparam[opt] table opts `columns` (a list of names), `recursive = true`
-- @treturn Query the new query; compiling raises `CapabilityError` on a
--   server without (recursive) CTEs
-- @raise `QueryError` for a bad name or body; `ConfigError` for an unknown option
function Query:with_cte(name, body, opts)
  opts = opts or {}
  options.check(opts, CTE_KEYS, "with_cte")
  if type(body) == "string" then body = M.raw(body) end
  if not (is_query(body) or (is_expr(body) and body.kind == "raw")) then
    query_error("with_cte expects a query, ar.raw(sql, ...) or SQL text")
  end
  local cols = opts.columns
  if cols ~= nil then
    if type(cols) ~= "table" or #cols == 0 then query_error("with_cte columns must be a non-empty list") end
    for _, c in ipairs(cols) do check_name(c, "CTE column") end
  end
  return with(self, "_ctes", { name = check_name(name, "CTE name"), body = body, columns = cols,
                               recursive = opts.recursive and true or false })
end

local SET_OPS = { union = "UNION", union_all = "UNION ALL", intersect = "INTERSECT", except = "EXCEPT" }

-- A compound query keeps the first member's model and backend, so its rows
-- load like the first's; order_by/limit on it apply to the whole.
local function set_operation(self, op, other)
  if not is_query(other) then query_error(op:lower() .. " expects a query") end
  local plain = self._compound and #self._where == 0 and #self._order == 0 and not self._limit
    and not self._offset and #self._select == 0 and #self._joins == 0 and #self._ctes == 0
  local parts = plain and { unpack(self._compound) } or { { query = self } }
  parts[#parts + 1] = { op = op, query = other }
  local q = M.new{ model = self.model, backend = self.backend, resolve = self.resolve }
  q._compound = parts
  q.after_load = self.after_load
  return setmetatable(q, getmetatable(self))
end

--- `UNION` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:union
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

--- `UNION ALL` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:union_all
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

--- `INTERSECT` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:intersect
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

--- `EXCEPT` with another query (the first query's model and backend are kept;
-- `order_by`/`limit` on the result apply to the whole).
-- @function Query:except
-- @tparam Query other the other query
-- @treturn Query the compound query
-- @raise `QueryError` when `other` is not a query; `CapabilityError` (when it
--   runs) for INTERSECT/EXCEPT on a server without them

for method, op in pairs(SET_OPS) do
  Query[method] = function(self, other) return set_operation(self, op, other) end
end

-- ---- locking -------------------------------------------------------------

local LOCK_OPTIONS = { nowait = true, skip_locked = true }

-- for_update{ nowait = true } / for_share{ skip_locked = true }
local function lock_opts(mode, opts)
  if opts ~= nil and type(opts) ~= "table" then
    query_error("for_" .. mode .. " expects { nowait =, skip_locked = }")
  end
  for k, v in pairs(opts or {}) do
    if not LOCK_OPTIONS[k] then options.check(opts, LOCK_OPTIONS, "for_" .. mode) end
    if type(v) ~= "boolean" then query_error(("for_%s: option '%s' must be a boolean"):format(mode, k)) end
  end
  return { mode = mode, nowait = opts and opts.nowait, skip_locked = opts and opts.skip_locked }
end

--- `FOR UPDATE`: locks the rows read until the transaction ends.
-- @tparam[opt] table opts `nowait = true` or `skip_locked = true` (capabilities `nowait`, `skip_locked`)
-- @treturn Query the new query
function Query:for_update(opts) return set(self, "_lock", lock_opts("update", opts)) end
--- `FOR SHARE` (or `LOCK IN SHARE MODE` where the server lacks `for_share`).
-- @tparam[opt] table opts `nowait = true` or `skip_locked = true`
-- @treturn Query the new query
function Query:for_share(opts) return set(self, "_lock", lock_opts("share", opts)) end

-- A server-side time limit for this statement (seconds): MariaDB's
-- max_statement_time, MySQL's MAX_EXECUTION_TIME hint. Exceeding it raises
-- QueryTimeout; a server without the feature raises CapabilityError.
function Query:timeout(seconds)
  -- NaN fails every comparison, so test for the valid range
  if type(seconds) ~= "number" or not (seconds > 0 and seconds <= 86400) then
    query_error("timeout expects a positive number of seconds")
  end
  return set(self, "_timeout", seconds)
end

-- ---- default scopes ------------------------------------------------------

--- Drops one named default scope (e.g. soft_delete's `"soft_delete"`) from this query.
-- @tparam string name the default scope's name
-- @treturn Query the new query
function Query:unscope(name)
  local m = self.model
  local known = false
  for _, s in ipairs(m and m._default_scopes or {}) do
    if s.name == name then known = true end
  end
  if not known then
    query_error(("unscope: %s has no default scope '%s'"):format(m and m.name or "this query", tostring(name)))
  end
  local q = self:clone()
  local skip = {}
  for k, v in pairs(self.skip_scopes or {}) do skip[k] = v end
  skip[name] = true
  q.skip_scopes = skip
  return q
end

-- The query as it runs: the model's default scopes applied once, at the end.
function Query:_final()
  local m = self.model
  if not m or self._scoped or self.skip_all_scopes or self._compound
      or #m._default_scopes == 0 then
    return self
  end
  local q = self:clone()
  q._scoped = true
  for _, s in ipairs(m._default_scopes) do
    if not (self.skip_scopes and self.skip_scopes[s.name]) then
      q = s.fn(q)
      q._scoped = true
    end
  end
  return q
end

-- ---- running -------------------------------------------------------------

function Query:_backend()
  local b = self.backend
  if type(b) == "function" then b = b() end
  if not b then errors.raise("ConfigError", "no backend: pass backend = db or call ar.set_default_backend(db)") end
  return b
end

--- The SQL text and its parameters, without running anything.
-- @treturn string the SQL
-- @treturn table the parameters (`params.n` is their count, so NULLs survive)
-- @raise `QueryError`, `CapabilityError`, `ConfigError` (no backend)
function Query:to_sql()
  local db = self:_backend()
  return db.compiler.select(db.dialect, self:_final())
end

function Query:_execute()
  local db = self:_backend()
  local sql, params = db.compiler.select(db.dialect, self:_final())
  return db:execute(sql, unpack(params, 1, params.n))
end

function Query:_rows() return self:_execute().rows end

function Query:_wrap(rows, held)
  if not self.model then return rows end
  local load = self.model._load
  for i = 1, #rows do rows[i] = load(self.model, rows[i], held) end
  return rows
end

-- Rows for model instances. A model with JSON fields takes them with the
-- hash of each JSON value (`_execute_json_hashes`, where the backend has
-- it): the record keeps what the database holds, to see changes made in place.
function Query:_model_rows()
  local model = self.model
  local db = self:_backend()
  if not (model._json_fields and db._execute_json_hashes) then return self:_rows() end
  local sql, params = db.compiler.select(db.dialect, self:_final())
  local res = db:_execute_json_hashes(sql, unpack(params, 1, params.n))
  return res.rows, model:_held_keys(res.columns)
end

--- Runs the query.
-- @treturn table an array of model instances (plain rows for a table query),
--   with `with(...)` relations loaded
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:all()
  local rows
  if self.model then rows = self:_wrap(self:_model_rows()) else rows = self:_rows() end
  if self.after_load then self.after_load(self, rows) end
  return rows
end

-- The primary key as a column reference qualified by this query's source.
local function pk_ref(q, key)
  local column = key
  if not column and q.model then column = q.model.pk_field.column end
  if not column then return nil end
  local source = q.table_alias or q.table
  return M.col(source and (source .. "." .. column) or column), column
end

--- The first row (by primary key unless ordered), or nil.
-- @return a record, a row or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:first()
  local q = self
  if #q._order == 0 and not q._compound then
    local ref = pk_ref(q)
    if ref then q = q:order_by(ref) end
  end
  return q:limit(1):all()[1]
end

--- Exactly one row: nil when none.
-- @return a record, a row or nil
-- @raise `QueryError` when there are several; the errors of `all`
function Query:one()
  local rows = self:limit(2):all()
  if #rows > 1 then query_error("one() found more than one row") end
  return rows[1]
end

-- SELECT ... FROM (this query) AS alias: for counting grouped, limited,
-- distinct or compound queries as their rows.
local function wrapped(self, alias)
  local inner = self:_final()
  local q = M.new{ backend = self.backend }
  q._from_query, q.table_alias, q.skip_all_scopes = inner, alias, true
  return q
end

local function needs_wrap(q, grouped)
  return (grouped and #q._group > 0) or q._limit ~= nil or q._offset ~= nil or q._distinct
    or q._compound ~= nil
end

local STAR = node({ kind = "raw", sql = "*", params = { n = 0 } })

local function aggregate_value(self, fn, col, distinct)
  local q
  if needs_wrap(self, fn == "COUNT") then
    q = wrapped(self, "ar_agg")
  else
    if #self._group > 0 then query_error(fn:lower() .. "() on a grouped query: use select + aggregate()") end
    q = self:clone()
    q._order = {}
  end
  local arg = col and as_expr(col) or STAR
  q._select = { { expr = node({ kind = "func", name = fn, args = { arg }, distinct = distinct }), as = "value" } }
  local row = q:_rows()[1]
  return row and row.value
end

--- `count()` counts the rows `all` would return (grouped, limited, distinct
-- or compound queries are counted as their rows); `count(col)` non-NULL
-- values; `count(col, true)` distinct ones.
-- @tparam[opt] string|Expr col the column
-- @tparam[opt] boolean distinct count distinct values
-- @treturn integer the count
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:count(col, distinct) return aggregate_value(self, "COUNT", col, distinct) or 0 end
--- `SUM(col)`; DECIMAL results are exact strings.
-- @tparam string|Expr col the column
-- @return the sum, or nil when no row matches
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:sum(col) return aggregate_value(self, "SUM", col) end
--- `AVG(col)`.
-- @tparam string|Expr col the column
-- @return the average, or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:avg(col) return aggregate_value(self, "AVG", col) end
--- `MIN(col)`.
-- @tparam string|Expr col the column
-- @return the minimum, or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:min(col) return aggregate_value(self, "MIN", col) end
--- `MAX(col)`.
-- @tparam string|Expr col the column
-- @return the maximum, or nil
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:max(col) return aggregate_value(self, "MAX", col) end

local ONE = node({ kind = "raw", sql = "1", params = { n = 0 } })

--- Whether any row matches (`SELECT 1 ... LIMIT 1`).
-- @treturn boolean
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:exists()
  local q = needs_wrap(self, true) and wrapped(self, "ar_exists") or self:clone()
  q._select = { { expr = ONE, as = "one" } }
  q._order = {}
  return #q:limit(1):_rows() > 0
end

--- The values of one column (converted like the model's field when it is one).
-- @tparam string|Expr col the column
-- @treturn table the values
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:pluck(col)
  local q = self:clone()
  q._select = { { expr = as_expr(col), as = "value" } }
  local rows = q:_rows()
  local name = type(col) == "string" and col:match("([^.]+)$")
  local field = self.model and name and self.model.fields[name]
  local conv = field and self.model._from_db[name]
  local out = {}
  for i, row in ipairs(rows) do
    local v = row.value
    if conv and v ~= nil then v = conv(v, field) end
    out[i] = v
  end
  return out
end

--- Runs the query and returns plain rows, never model instances (for
-- grouped or computed selects).
-- @treturn table the rows
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:aggregate()
  return self:_rows()
end

--- The server's plan for this query.
-- @tparam[opt] table opts `format = "traditional"` forces EXPLAIN's rows
-- @return the decoded FORMAT=JSON document where the server has it
--   (capability `explain_json`), else EXPLAIN's rows
-- @treturn string `"json"` or `"traditional"`
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:explain(opts)
  local db = self:_backend()
  local sql, params = db.compiler.select(db.dialect, self:_final())
  local json = not (opts and opts.format == "traditional") and db.dialect:supports("explain_json")
  if not json then
    return db:execute("EXPLAIN " .. sql, unpack(params, 1, params.n)).rows, "traditional"
  end
  local res = db:execute("EXPLAIN FORMAT=JSON " .. sql, unpack(params, 1, params.n))
  local row = res.rows[1]
  local text = row and row[res.columns[1].name]
  if type(text) == "string" then text = core.json_decode(text) end
  return text, "json"
end

--- `UPDATE ... SET ... WHERE <this query's conditions>` in one statement (no
-- events, no validation).
-- @tparam table values column -> value (bound) or expression
--   (`{ score = ar.col("score"):add(1) }`)
-- @treturn integer the affected rows
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:update_all(values)
  if type(values) ~= "table" or is_expr(values) then query_error("update_all expects a table of values") end
  local assignments = {}
  for i, k in ipairs(sorted_keys(values, "update_all")) do
    local v = values[k]
    if is_expr(v) or is_query(v) then
      v = as_operand(v)
    else
      -- the field may turn a table into a value (JSON, datetime); a table left is refused
      if self.model then v = self.model:_to_db(k, v) end
      v = checked_value(v, "update_all{ " .. k .. " = ... }")
    end
    assignments[i] = { column = check_column_ref(k), value = v }
  end
  local db = self:_backend()
  local sql, params = db.compiler.update(db.dialect, self:_final(), assignments)
  return db:execute(sql, unpack(params, 1, params.n)).affected_rows
end

local DELETE_OPTIONS = { returning = true }

--- `DELETE ... WHERE <this query's conditions>` in one statement (no events).
-- @tparam[opt] table opts `returning = { columns }` (capability `delete_returning`)
-- @treturn integer the affected rows
-- @treturn[opt] table the returned rows, with `returning`
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:delete_all(opts)
  if opts ~= nil then
    if type(opts) ~= "table" then query_error("delete_all expects { returning = {...} }") end
    options.check(opts, DELETE_OPTIONS, "delete_all")
  end
  local db = self:_backend()
  local sql, params = db.compiler.delete(db.dialect, self:_final(), opts)
  local res = db:execute(sql, unpack(params, 1, params.n))
  if opts and opts.returning then return res.affected_rows, res.rows end
  return res.affected_rows
end

--- Streams the matching rows (as instances for a model) through `fn`, without buffering them.
-- @tparam function fn called with each record or row
-- @raise `QueryError` (bad SQL fragment, unknown column, JSON path),
--   `CapabilityError` (a feature the server lacks, before any SQL is sent),
--   `ConfigError` (no backend) and the backend's statement errors
function Query:each(fn)
  local db = self:_backend()
  local sql, params = db.compiler.select(db.dialect, self:_final())
  local model = self.model
  for row in db:each(sql, unpack(params, 1, params.n)) do
    if model then row = model._load(model, row) end
    fn(row)
  end
end

local BATCH_KEYS = { batch_size = true, key = true, start = true }

local function batch_options(self, opts)
  options.check(opts, BATCH_KEYS, "find_each")
  local size = opts.batch_size or 1000
  if math.type(size) ~= "integer" or size < 1 then query_error("batch_size must be a positive integer") end
  if #self._order > 0 or self._limit or self._offset or self._compound then
    query_error("find_each orders by the primary key in batches: drop order_by/limit/offset")
  end
  local ref, column = pk_ref(self, opts.key and check_name(opts.key, "key"))
  if not ref then query_error("find_each on a table query needs { key = \"column\" }") end
  return size, ref, column
end

--- Keyset batches: `WHERE pk > last ORDER BY pk LIMIT n`, one batch in memory.
-- @tparam[opt] table opts `batch_size` (default 1000), `key` (required for a
--   table query), `start` (the key to start after)
-- @tparam[opt] function fn called with each batch; without it, an iterator over batches
-- @return the iterator, when `fn` is omitted
-- @raise `QueryError` for a bad option or an ordered/limited query; the errors of `all`
function Query:find_batches(opts, fn)
  if type(opts) == "function" then opts, fn = {}, opts end
  opts = opts or {}
  local size, ref, column = batch_options(self, opts)
  local base = self:reorder(ref):limit(size)
  local key_name = self.model and self.model.primary_key or column
  local last = opts.start
  local done = false
  local function next_batch()
    if done then return nil end
    local q = last == nil and base or base:where(ref:gt(last))
    local batch = q:all()
    if #batch < size then done = true end
    if #batch == 0 then return nil end
    last = batch[#batch][key_name]
    return batch
  end
  if not fn then return next_batch end
  for batch in next_batch do fn(batch) end
end

--- Like `find_batches`, one record at a time.
-- @tparam[opt] table opts as for `find_batches`
-- @tparam[opt] function fn called with each record; without it, an iterator
-- @return the iterator, when `fn` is omitted
-- @raise as `find_batches`
function Query:find_each(opts, fn)
  if type(opts) == "function" then opts, fn = {}, opts end
  local batches = self:find_batches(opts or {})
  local batch, i = nil, 0
  local function next_record()
    while true do
      if batch and i < #batch then
        i = i + 1
        return batch[i]
      end
      batch, i = batches(), 0
      if not batch then return nil end
    end
  end
  if not fn then return next_record end
  for rec in next_record do fn(rec) end
end

function Query:__tostring()
  local ok, sql = pcall(self.to_sql, self)
  return "Query(" .. (ok and sql or tostring(self.table)) .. ")"
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

--- SQL functions, window functions and frames, JSON helpers and full-text
-- search: `ar.func`/`ar.fn`, `ar.row_number()`, `expr:over{...}`,
-- `ar.json_value(...)`, `ar.json_table(...)`, `ar.match_against(...)`.
-- One job: make these expression nodes (checked when built; compiled by the
-- backend's compiler).
-- @module activerecord.query.functions
local nodes = require("activerecord.query.nodes")
local expr = require("activerecord.query.expr")
local options = require("activerecord.options")

local M = {}

local query_error, show, node = nodes.query_error, nodes.show, nodes.node
local Expr, check_name = nodes.Expr, nodes.check_name
local as_expr, as_operand = expr.as_expr, expr.as_operand
local order_list, expr_list = expr.order_list, expr.expr_list

-- ---- functions -----------------------------------------------------------

local function func_args(...)
  local args = {}
  for i = 1, select("#", ...) do
    local a = select(i, ...)
    if type(a) == "string" then a = expr.col(a) else a = as_operand(a) end
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
-- @tparam string|Expr e a column or expression
-- @treturn Expr the expression
function M.json_unquote(e) return json_node("unquote", e, {}) end
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

return M

--- Typed results of aggregates and plucks: what `count`, `sum`, `avg`,
-- `min`, `max`, `pluck` and `aggregate` rows give back, by the model's
-- field when the argument names one, else by the result column's server
-- type (the C core's `columns` metadata).
--
-- The rules (a field of a model query):
--
-- * `count`: an integer.
-- * `sum` of an integer, bigint or boolean field: an integer; past 2^63 an
--   exact decimal string (the server's SUM is a DECIMAL, read as text and
--   converted exactly, never through a float).
-- * `sum`, `avg`, `min`, `max` of a decimal field: the server's exact text,
--   at its scale (`avg` adds the server's `div_precision_increment`, 4).
-- * `avg` of an integer, bigint, boolean or float field: a float.
-- * `sum` of a float field: a float.
-- * `min`/`max`: the field's Lua value, as a loaded record has it
--   (integers, floats, booleans, dates and datetimes as the model's
--   strings, strings, a `set` field's array, a type's `from_db`).
-- * no row (or only NULLs): `count` is 0; `sum`, `avg`, `min`, `max` are nil.
--
-- Without a field (a table query, an expression): the server's type
-- decides; a DECIMAL of scale 0 from `SUM` (the sum of an integer column)
-- is an integer (exact text past 2^63); everything else is as the C core
-- reads it (design §3: DECIMAL exact text, DOUBLE a float, ...).
-- One job: choosing and applying those conversions.
-- @module activerecord.query.typed
local nodes = require("activerecord.query.nodes")

local M = {}

local type, tonumber, math_type = type, tonumber, math.type
local getmt, Expr = nodes.getmt, nodes.Expr

-- ---- conversions -------------------------------------------------------------

--- An integer from a DECIMAL's text of scale 0 (or with only zeros after
-- its point): a Lua integer when it fits, else the exact text (never a
-- float). Integers pass; an integral float (a backend with
-- `decimal = "number"`) becomes an integer where it fits.
-- @param v the value the C core read
-- @return an integer, or the exact decimal text
function M.exact_integer(v)
  local t = type(v)
  if t == "string" then
    local digits = v:match("^(%-?%d+)%.?0*$")
    if not digits then return v end -- a fraction: the exact text
    local n = tonumber(digits)
    if math_type(n) == "integer" then return n end
    return (digits:gsub("^(%-?)0+(%d)", "%1%2")) -- past 2^63: the text, without leading zeros
  end
  if math_type(v) == "float" and v == v // 1 and v >= math.mininteger and v < 2 ^ 63 then
    return math.tointeger(v)
  end
  return v
end
local exact_integer = M.exact_integer

local function to_float(v)
  if type(v) == "string" then return tonumber(v) + 0.0 end
  if type(v) == "number" then return v + 0.0 end
  return v
end

local function same(v) return v end

-- the built-in field types by how they add up
local NUMERIC = { integer = "integer", bigint = "integer", boolean = "integer", float = "float", decimal = "decimal" }

-- A field's value as a loaded record has it (`from_db`), integers kept
-- exact when the server gave text.
local function field_value(field)
  local from_db = field.from_db
  local kind = field.type_spec and field.type_spec.builtin and NUMERIC[field.type]
  if kind == "integer" and field.type ~= "boolean" then
    return function(v) return exact_integer(v) end
  end
  if kind == "float" then return to_float end
  if not from_db then return same end
  return function(v) return from_db(v, field) end
end

--- The conversion of one result value.
-- @tparam ?string fn `"COUNT"`, `"SUM"`, `"AVG"`, `"MIN"`, `"MAX"`, or nil
--   (the column's own value: pluck, a group column)
-- @tparam ?table field the model's field the argument names
-- @tparam ?table meta the result column's metadata (`type`, `decimals`)
-- @treturn function v -> the typed value (never called with nil)
function M.converter(fn, field, meta)
  if fn == "COUNT" then return exact_integer end
  if field then
    local builtin = field.type_spec and field.type_spec.builtin
    local kind = builtin and NUMERIC[field.type]
    if fn == nil or fn == "MIN" or fn == "MAX" then return field_value(field) end
    if kind == "integer" then
      if fn == "SUM" then return exact_integer end
      return to_float -- AVG
    elseif kind == "float" then
      return to_float
    elseif kind == "decimal" then
      return same -- the server's exact text (a float with the backend's decimal = "number")
    end
  end
  if fn == "SUM" and meta and meta.type == "DECIMAL" and meta.decimals == 0 then return exact_integer end
  return same
end

-- ---- what an argument names ------------------------------------------------------

--- The field of the query's model that a column argument names (a field
-- or column name, qualified or not by the model's table or the query's
-- alias; a column expression `ar.col(...)`), or nil.
-- @param q the query
-- @param col the argument
-- @treturn ?table the field
function M.field_of(q, col)
  local model = q.model
  if not model then return nil end
  local name
  if type(col) == "string" then
    name = col
  elseif getmt(col) == Expr and col.kind == "column" then
    name = col.name
  else
    return nil
  end
  local qual, base = name:match("^(.*)%.([^.]+)$")
  if qual then
    local alias = q.table_alias
    if qual ~= model.table and qual ~= alias and qual:gsub("`", "") ~= model.table then return nil end
  else
    base = name
  end
  local fields = model.fields
  local f = fields[base]
  if f then return f end
  local by_column = model.columns
  return by_column and by_column[base] or nil
end

local AGGREGATES = { COUNT = true, SUM = true, AVG = true, MIN = true, MAX = true }

--- The aggregate function and the argument of a select item's expression:
-- `SUM(col)` gives "SUM", col; a column gives nil, the column; else nil.
-- @param e the expression
-- @treturn ?string the function's name
-- @return the argument (an expression)
function M.aggregate_of(e)
  if getmt(e) ~= Expr then return nil, nil end
  if e.kind == "column" then return nil, e end
  if e.kind == "func" then
    local name = type(e.name) == "string" and e.name:upper()
    if name and AGGREGATES[name] and e.args and #e.args == 1 then return name, e.args[1] end
  end
  return false, nil
end

--- The typed value of an aggregate's result `res` (`{ rows, columns }`),
-- its value in the column `value`.
-- @param q the query aggregated
-- @tparam string fn the function
-- @param col the argument (nil: `*`)
-- @tparam table res the result
-- @return the value, or nil
function M.aggregate_value(q, fn, col, res)
  local row = res.rows[1]
  local v = row and row.value
  if fn == "COUNT" then return v ~= nil and exact_integer(v) or 0 end
  if v == nil then return nil end
  local meta = res.columns and res.columns[1]
  return M.converter(fn, col ~= nil and M.field_of(q, col) or nil, meta)(v)
end

--- The typed values of a pluck's result (column `value`).
-- @param q the query plucked
-- @param col the argument
-- @tparam table res the result
-- @treturn table the values
function M.pluck_values(q, col, res)
  local rows = res.rows
  local meta = res.columns and res.columns[1]
  local conv = M.converter(nil, M.field_of(q, col), meta)
  local out = {}
  for i = 1, #rows do
    local v = rows[i].value
    if v ~= nil and conv ~= same then v = conv(v) end
    out[i] = v
  end
  return out
end

--- Types the rows of `aggregate()` in place: an aliased select item that
-- is an aggregate (`COUNT`, `SUM`, `AVG`, `MIN`, `MAX` of one argument)
-- converts as the rules say (of a field by the field, else by the server's
-- type). Other columns (the grouped ones) stay as the server reads them.
-- @param q the (plain, finalized) query
-- @tparam table res the result
-- @treturn table the rows
function M.aggregate_rows(q, res)
  local rows, list = res.rows, q._select
  if #rows == 0 or not list or #list == 0 then return rows end
  local meta_by = {}
  for _, c in ipairs(res.columns or {}) do meta_by[c.name] = c end
  local convs, n = {}, 0
  for _, item in ipairs(list) do
    local e = item.expr
    local fn, arg = M.aggregate_of(e)
    local name = item.as
    if name and fn and meta_by[name] then
      local field = arg and M.field_of(q, arg) or nil
      local conv = M.converter(fn, field, meta_by[name])
      if conv ~= same then
        n = n + 1
        convs[n] = { name, conv }
      end
    end
  end
  if n == 0 then return rows end
  for i = 1, #rows do
    local row = rows[i]
    for j = 1, n do
      local c = convs[j]
      local v = row[c[1]]
      if v ~= nil then row[c[1]] = c[2](v) end
    end
  end
  return rows
end

return M

--- Query nodes: their identity, the checks on values, and identifiers.
-- One job: tell a query node (expression, order item, select item, slot,
-- query) from any other table by identity, check value positions and IN
-- lists, and validate names. Everything else in `activerecord.query` builds
-- on these.
-- @module activerecord.query.nodes
local errors = require("activerecord.errors")
local null = require("activerecord.null")

local M = {}

local function query_error(msg)
  errors.raise("QueryError", msg)
end
M.query_error = query_error

local function show(v)
  if type(v) ~= "string" then return tostring(v) end
  if #v > 60 then v = v:sub(1, 57) .. "..." end
  return (("%q"):format(v):gsub("\\\n", "\\n"))
end
M.show = show

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
M.getmt, M.Expr, M.Order, M.Select, M.Slot, M.QUERY = getmt, Expr, Order, Select, Slot, QUERY

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
M.is_list = is_list
M.table_value_error = table_value_error

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
M.check_column_ref = check_column_ref

-- Every expression node is made here: its metatable is its identity.
function M.node(t)
  return setmetatable(t, Expr)
end

return M

-- SQL literals: the only values written into SQL text (DDL defaults,
-- ENUM/SET members, comments), in forms that cannot break out of their
-- quotes under any sql_mode (with or without NO_BACKSLASH_ESCAPES). Functions
-- of the Dialect (`Dialect.literal`, `Dialect.string_literal`).
local M = {}

-- True when a plain '...' literal with ' doubled reads the same under every
-- sql_mode: no backslash (NO_BACKSLASH_ESCAPES changes its meaning) and
-- no control bytes but tab, newline and carriage return (NUL and friends
-- are kept out of the statement text; those three read as themselves in
-- any mode, so a comment or TEXT default holding them stays a literal).
local function plain_safe(s)
  return not s:find("[%z\1-\8\11\12\14-\31\127\\]")
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02X", c:byte()) end))
end

-- A string literal: 'text' when plain_safe, otherwise a hex literal, which
-- has no escapes at all. `form`: "text" (utf8mb4 introducer, so the server
-- converts to the column's charset), "bytes" (bare X'..': binary columns,
-- ENUM/SET members) or "plain" (only a quoted literal is legal: comments,
-- defaults of numeric and temporal columns) -> nil when not plain_safe.
function M.string_literal(s, form)
  if plain_safe(s) then return "'" .. s:gsub("'", "''") .. "'" end
  if form == "text" then return "_utf8mb4 X'" .. hex(s) .. "'" end
  if form == "bytes" then return "X'" .. hex(s) .. "'" end
  return nil
end

-- A Lua value as a safe SQL literal (numbers, booleans, strings).
function M.literal(value, form)
  local t = type(value)
  if math.type(value) == "integer" then return tostring(value) end
  if t == "number" then
    if value ~= value or value == math.huge or value == -math.huge then return nil end
    -- the shortest form that reads back as the same double
    for digits = 15, 17 do
      local text = string.format("%." .. digits .. "g", value)
      if tonumber(text) == value then return text end
    end
  end
  if t == "boolean" then return value and "1" or "0" end
  if t == "string" then return M.string_literal(value, form or "text") end
  return nil
end

return M

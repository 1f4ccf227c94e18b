--- One job: key equality as the server sees it. Eager loading matches
-- children to owners in Lua, where the lazy accessor lets the server
-- compare. For string keys the server compares under the key column's
-- collation ('ABC' = 'abc' on a _ci column, 'a' = 'a ' on a PAD SPACE one),
-- so the Lua side maps each string to the collation's equality key first.
-- @module activerecord.relations.collation
local query = require("activerecord.query")

local M = {}

local function safe_name(s)
  return type(s) == "string" and s:match("^[%w_]+$") ~= nil
end

--- The character set and collation of a column, from the backend's
-- introspection (`db:columns`, cached per backend until the schema
-- changes); false for a column that holds no text, or one not found.
-- Column names compare case-insensitively, as the server's do.
-- @param db the backend
-- @tparam string table_name the table (`schema.table` allowed)
-- @tparam string column the column
-- @treturn table|false `{ charset =, collation = }`
function M.column_collation(db, table_name, column)
  local cols = db.columns and db:columns(table_name)
  if not cols then return false end
  local found
  for _, c in ipairs(cols) do
    if c.name == column then
      found = c
      break
    end
  end
  if not found then
    local lower = column:lower()
    for _, c in ipairs(cols) do
      if c.name:lower() == lower then
        found = c
        break
      end
    end
  end
  -- the names are spliced into CONVERT/COLLATE later: identifiers only
  if found and safe_name(found.charset) and safe_name(found.collation) then
    return { charset = found.charset, collation = found.collation }
  end
  return false
end

-- PAD SPACE collations ignore trailing spaces; MariaDB names its NO PAD
-- ones *_nopad_*, MySQL 8's UCA 9.0.0 collations (*_0900_*) are NO PAD.
local function pads(collation)
  return not (collation:find("nopad", 1, true) or collation:find("_0900_", 1, true))
end

local function rtrim(s) return (s:gsub(" +$", "")) end

-- The collation's equality key (WEIGHT_STRING) of each string, asked of the
-- server in chunks; `strings` is a list of distinct strings. The builder
-- has no table-less SELECT, so the expressions are read from the one row
-- information_schema.CHARACTER_SETS holds for the column's character set;
-- it has no form for CONVERT(... USING cs) COLLATE c either: that part is a
-- raw fragment (the names checked by safe_name, the string bound).
local WEIGHT_CHUNK = 200
local function weights(db, coll, strings)
  local out = {}
  local expr = "WEIGHT_STRING(CONVERT(? USING " .. coll.charset .. ") COLLATE " .. coll.collation .. ")"
  local base = query.table("information_schema.CHARACTER_SETS", db):where({ CHARACTER_SET_NAME = coll.charset })
  for i = 1, #strings, WEIGHT_CHUNK do
    local last = math.min(i + WEIGHT_CHUNK - 1, #strings)
    local cols = {}
    for j = i, last do cols[#cols + 1] = query.raw(expr, strings[j]):as("w" .. (j - i + 1)) end
    local row = base:select(table.unpack(cols)):all()[1]
    for j = i, last do out[strings[j]] = row["w" .. (j - i + 1)] end
  end
  return out
end

--- Whether some value of `list` is a string (only strings need normalising).
-- @tparam table list values
-- @treturn boolean
function M.has_string(list)
  for i = 1, #list do
    if type(list[i]) == "string" then return true end
  end
  return false
end
local has_string = M.has_string

--- A function mapping a key value to what the server's equality on
-- `table_name.column` compares, or nil when Lua equality already is that
-- (no string keys, a binary or NO PAD _bin column).
-- @param db the backend
-- @tparam string table_name the table whose column was compared
-- @tparam string column the column
-- @tparam table keys the key values sent (some may be strings)
-- @tparam table found the key values read back
-- @treturn function|nil the normaliser
function M.normaliser(db, table_name, column, keys, found)
  if not has_string(keys) then return nil end
  local coll = M.column_collation(db, table_name, column)
  if not coll or coll.collation == "binary" then return nil end
  local pad = pads(coll.collation)
  if coll.collation:find("_bin$") then
    -- byte (code point) order: only the padding differs from Lua equality
    if not pad then return nil end
    return function(v) return type(v) == "string" and rtrim(v) or v end
  end
  local seen, strings = {}, {}
  for _, list in ipairs({ keys, found }) do
    for _, v in ipairs(list) do
      if type(v) == "string" then
        if pad then v = rtrim(v) end
        if not seen[v] then
          seen[v] = true
          strings[#strings + 1] = v
        end
      end
    end
  end
  local w = weights(db, coll, strings)
  return function(v)
    if type(v) ~= "string" then return v end
    if pad then v = rtrim(v) end
    return w[v] or v
  end
end

return M

-- Identifier quoting for MySQL/MariaDB: backtick-quoted names, validated
-- (what MySQL could not store is refused), dotted and `*` references, lists.
-- Methods of the Dialect (dialect.lua copies them in).
local memo = require("activerecord.memo")
local messages = require("activerecord.backend.mysql.messages")

local show, query_error = messages.show, messages.query_error

local M = {}

M.MAX_IDENTIFIER_LENGTH = 64

local function identifier_problem(name)
  if type(name) ~= "string" then return "must be a string, got " .. type(name) end
  if name == "" then return "is empty" end
  if name:find("\0", 1, true) then return "contains a NUL byte" end
  local length = utf8.len(name)
  if not length then return "is not valid UTF-8" end
  if length > M.MAX_IDENTIFIER_LENGTH then
    return string.format("is %d characters long (at most %d)", length,
      M.MAX_IDENTIFIER_LENGTH)
  end
  for _, code in utf8.codes(name) do
    if code > 0xFFFF then return "contains a character outside the BMP" end
  end
  if name:sub(-1) == " " then return "ends with a space" end
  return nil
end

-- `name` with backticks doubled; rejects what MySQL could not store.
-- Quoted forms are memoised (queries quote the same few names on every
-- call), at most 4,096 names.
local quoted = memo.bounded(4096, function(name)
  local problem = identifier_problem(name)
  if problem then
    query_error("invalid identifier " .. show(name) .. ": " .. problem, { identifier = name })
  end
  return "`" .. name:gsub("`", "``") .. "`"
end)

function M:quote_identifier(name)
  return quoted[name]
end

-- Splits on dots; a dot inside a name is not supported (it always splits).
local function split_dotted(name)
  if type(name) ~= "string" then
    query_error("invalid identifier " .. show(name) .. ": must be a string, got " .. type(name))
  end
  local parts = {}
  for part in (name .. "."):gmatch("(.-)%.") do parts[#parts + 1] = part end
  if #parts > 3 then
    query_error("invalid identifier " .. show(name) .. ": at most db.table.column")
  end
  return parts
end

-- "db.table" / "t.col" / "db.t.col" -> `db`.`table`; each part validated.
function M:quote_qualified(name)
  if type(name) == "string" and not name:find(".", 1, true) then return self:quote_identifier(name) end
  local parts = split_dotted(name)
  for i, part in ipairs(parts) do parts[i] = self:quote_identifier(part) end
  return table.concat(parts, ".")
end

-- Like quote_qualified, but the last part may be `*` ("t.*", "*").
function M:quote_column_ref(ref)
  if type(ref) == "string" and ref ~= "*" and not ref:find(".", 1, true) then return self:quote_identifier(ref) end
  local parts = split_dotted(ref)
  for i, part in ipairs(parts) do
    if part == "*" and i == #parts then
      parts[i] = "*"
    elseif part == "*" then
      query_error("invalid column reference " .. show(ref) .. ": * only as the last part")
    else
      parts[i] = self:quote_identifier(part)
    end
  end
  return table.concat(parts, ".")
end

-- {"a", "b"} -> "`a`, `b`".
function M:quote_list(names, what)
  if type(names) == "string" then names = { names } end
  if type(names) ~= "table" or #names == 0 then
    query_error((what or "column list") .. " must be a non-empty list of names")
  end
  local out = {}
  for i, name in ipairs(names) do out[i] = self:quote_identifier(name) end
  return table.concat(out, ", ")
end

return M

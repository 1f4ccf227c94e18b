-- JSON paths for MySQL/MariaDB: a scanner over the JSON path grammar
-- (ranges and `last` on MySQL only) and the JSON_EXTRACT / JSON_UNQUOTE /
-- JSON_CONTAINS fragments, the path always a bound parameter. Methods of the
-- Dialect (dialect.lua copies them in).
local messages = require("activerecord.backend.mysql.messages")
local schema = require("activerecord.schema")

local show, query_error = messages.show, messages.query_error

local M = {}

-- A scanner over the MySQL JSON path grammar; each step returns the next
-- position or nil, reason.
local JsonPath = {}
JsonPath.__index = JsonPath

local function ident_start(c) return c:match("^[%a_$]$") ~= nil end
local function ident_char(c) return c:match("^[%w_$]$") ~= nil end

-- ."quoted key": a JSON string; backslash escapes allowed, no raw controls.
function JsonPath:quoted_key(i)
  local s = self.s
  i = i + 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == '"' then return i + 1 end
    if c == "\\" then
      local e = s:sub(i + 1, i + 1)
      if e:match('^["\\/bfnrt]$') then
        i = i + 2
      elseif e == "u" and s:sub(i + 2, i + 5):match("^%x%x%x%x$") then
        i = i + 6
      else
        return nil, "bad escape in a quoted key"
      end
    elseif c:byte() < 0x20 then
      return nil, "control character in a quoted key"
    else
      i = i + 1
    end
  end
  return nil, "unterminated quoted key"
end

-- After ".": a key name, "*", or a quoted key.
function JsonPath:member(i)
  local s = self.s
  local c = s:sub(i, i)
  if c == "*" then return i + 1 end
  if c == '"' then return self:quoted_key(i) end
  if c == "" or not ident_start(c) then return nil, "expected a key after '.'" end
  i = i + 1
  while i <= #s and ident_char(s:sub(i, i)) do i = i + 1 end
  return i
end

-- One array position inside [...]: N, last, last-N (the last two MySQL only).
function JsonPath:position(text)
  if text:match("^%d+$") then return true end
  if not self.mysql_ranges then return false end
  return text == "last" or text:match("^last%s*%-%s*%d+$") ~= nil
end

-- "[...]": *, N, and on MySQL 8: last, last-N, M to N.
function JsonPath:array(i)
  local close = self.s:find("]", i, true)
  if not close then return nil, "unterminated '['" end
  local inner = self.s:sub(i + 1, close - 1):match("^%s*(.-)%s*$")
  if inner == "*" or self:position(inner) then return close + 1 end
  local from, to = inner:match("^(.-)%s+to%s+(.-)$")
  if from and self.mysql_ranges and self:position(from) and self:position(to) then
    return close + 1
  end
  return nil, "bad array index [" .. inner .. "]"
end

function JsonPath:leg(i)
  local s = self.s
  local c = s:sub(i, i)
  if c == "." then return self:member(i + 1) end
  if c == "[" then return self:array(i) end
  if s:sub(i, i + 1) == "**" then
    -- ** must be followed by a member or an array step, never end the path
    local nxt = s:sub(i + 2, i + 2)
    if nxt ~= "." and nxt ~= "[" then return nil, "'**' must be followed by a member or [index]" end
    return i + 2
  end
  return nil, "unexpected " .. show(c)
end

-- Raises QueryError naming the path unless it matches the grammar.
function M:validate_json_path(path)
  if type(path) ~= "string" then
    query_error("JSON path must be a string, got " .. type(path))
  end
  local scanner = setmetatable({
    s = path, mysql_ranges = self:supports("json_path_ranges"),
  }, JsonPath)
  if path:sub(1, 1) ~= "$" then
    query_error("invalid JSON path " .. show(path) .. ": must start with '$'", { path = path })
  end
  local i = 2
  while i <= #path do
    local nxt, reason = scanner:leg(i)
    if not nxt then
      query_error(string.format("invalid JSON path %s at character %d: %s", show(path), i, reason),
        { path = path })
    end
    i = nxt
  end
  return path
end

local function column_fragment(column_sql)
  return schema.check_fragment(column_sql, "JSON column expression")
end

-- JSON_EXTRACT(<column_sql>, ?), { path }; column_sql is trusted SQL from
-- quote_column_ref, the path is always a bound parameter.
function M:json_extract(column_sql, path)
  self:require("json")
  self:validate_json_path(path)
  return "JSON_EXTRACT(" .. column_fragment(column_sql) .. ", ?)", { path }
end

-- The unquoted scalar at `path` (what ->> gives on MySQL; works on both).
function M:json_value(column_sql, path)
  local sql, params = self:json_extract(column_sql, path)
  return "JSON_UNQUOTE(" .. sql .. ")", params
end

-- JSON_CONTAINS(col, ?[, ?]); candidate is JSON text, bound.
function M:json_contains(column_sql, candidate_json, path)
  self:require("json")
  if type(candidate_json) ~= "string" then
    query_error("JSON_CONTAINS candidate must be JSON text (a string), got " .. type(candidate_json))
  end
  local col = column_fragment(column_sql)
  if path == nil then return "JSON_CONTAINS(" .. col .. ", ?)", { candidate_json } end
  self:validate_json_path(path)
  return "JSON_CONTAINS(" .. col .. ", ?, ?)", { candidate_json, path }
end

return M

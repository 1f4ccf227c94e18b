-- MySQL / MariaDB SQL text generation: quoting, placeholders, LIMIT,
-- locking, upsert, JSON paths and DDL from neutral table definitions.
-- Pure (no I/O). Every choice that differs between servers asks the
-- capability table (flavor AND version), never a bare version number.
--
-- Values never enter the SQL text: they travel as `?` parameters. The
-- only literals we write are DDL defaults, ENUM/SET members and comments,
-- through `literal`, whose output cannot break out of its quotes under
-- either sql_mode (with or without NO_BACKSLASH_ESCAPES).
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local schema = require("activerecord.schema")

local Dialect = {}
Dialect.__index = Dialect

Dialect.placeholder = "?"
Dialect.MAX_IDENTIFIER_LENGTH = 64
-- The MySQL manual's "all rows" LIMIT, for OFFSET without LIMIT.
Dialect.MAX_LIMIT = "18446744073709551615"

local function query_error(message, fields)
  errors.raise("QueryError", message, fields)
end

-- Shortened, escaped rendering of user input for error messages.
local function show(value)
  if type(value) ~= "string" then return tostring(value) end
  if #value > 80 then value = value:sub(1, 77) .. "..." end
  return (string.format("%q", value):gsub("\\\n", "\\n"))
end

-- ------------------------------------------------------ capabilities ----

-- Where each gated capability first appears, for CapabilityError messages:
-- { feature, mysql, mariadb } with a version string, true (every version)
-- or false (never), read from the C core's matrix, the one table of
-- capabilities (it also decides them). Those every server has are left out.
local CAPABILITY_HINTS = {}
for name, c in pairs(core.capability_matrix()) do
  if not (c.mysql == true and c.mariadb == true) then
    CAPABILITY_HINTS[name] = { c.feature, c.mysql, c.mariadb }
  end
end
Dialect.CAPABILITY_HINTS = CAPABILITY_HINTS

local FLAVOR_NAMES = { mysql = "MySQL", mariadb = "MariaDB" }

-- "10.6.0" -> "10.6"; "8.0.1" stays.
local function short_version(v)
  return (v:gsub("^(%d+%.%d+)%.0$", "%1"))
end

local function parse_version(version)
  if type(version) == "string" then
    local _, v = core.parse_version(version) -- the C core's reader, the one there is
    if v then return v end
  elseif type(version) == "table" then
    local v = { version[1], version[2] or 0, version[3] or 0 }
    if math.type(v[1]) == "integer" and math.type(v[2]) == "integer"
        and math.type(v[3]) == "integer" then
      return v
    end
  end
  errors.raise("ConfigError", "dialect version must be {major, minor, patch} or \"x.y.z\", got "
    .. show(version))
end

-- Dialect.new{ flavor = "mysql"|"mariadb", version = {maj, min, patch},
--              capabilities = flat table from core (computed when omitted) }
function Dialect.new(opts)
  opts = opts or {}
  if not FLAVOR_NAMES[opts.flavor] then
    errors.raise("ConfigError", "dialect flavor must be \"mysql\" or \"mariadb\", got "
      .. show(opts.flavor))
  end
  local version = parse_version(opts.version)
  local caps = opts.capabilities or core.capabilities_for(opts.flavor, version)
  local copy = {}
  for k, v in pairs(caps) do copy[k] = v end
  return setmetatable({
    flavor = opts.flavor,
    version = version,
    version_string = table.concat(version, "."),
    capabilities = copy,
  }, Dialect)
end

-- False for names the matrix does not know, like for missing features.
function Dialect:supports(name)
  return self.capabilities[name] == true
end

-- "... needs MariaDB 10.6+" or "... is not available on MariaDB".
function Dialect:capability_message(name, feature)
  local hint = CAPABILITY_HINTS[name]
  feature = feature or (hint and hint[1]) or name
  local connected = string.format("(server: %s %s)", self.flavor, self.version_string)
  local since = hint and hint[self.flavor == "mysql" and 2 or 3]
  if type(since) == "string" then
    return string.format("%s needs %s %s+ %s", feature, FLAVOR_NAMES[self.flavor],
      short_version(since), connected)
  end
  return string.format("%s is not available on %s %s", feature, FLAVOR_NAMES[self.flavor],
    connected)
end

-- Raises CapabilityError (before any SQL exists) unless the server has it.
function Dialect:require(name, feature)
  if self:supports(name) then return true end
  errors.raise("CapabilityError", self:capability_message(name, feature), {
    capability = name, flavor = self.flavor, version = self.version_string,
  })
end

-- MySQL-only version thresholds that are not capabilities of their own.
function Dialect:at_least(major, minor, patch)
  local v = self.version
  local want = { major, minor or 0, patch or 0 }
  for i = 1, 3 do
    if v[i] ~= want[i] then return v[i] > want[i] end
  end
  return true
end

-- -------------------------------------------------------- identifiers ----

local function identifier_problem(name)
  if type(name) ~= "string" then return "must be a string, got " .. type(name) end
  if name == "" then return "is empty" end
  if name:find("\0", 1, true) then return "contains a NUL byte" end
  local length = utf8.len(name)
  if not length then return "is not valid UTF-8" end
  if length > Dialect.MAX_IDENTIFIER_LENGTH then
    return string.format("is %d characters long (at most %d)", length,
      Dialect.MAX_IDENTIFIER_LENGTH)
  end
  for _, code in utf8.codes(name) do
    if code > 0xFFFF then return "contains a character outside the BMP" end
  end
  if name:sub(-1) == " " then return "ends with a space" end
  return nil
end

-- `name` with backticks doubled; rejects what MySQL could not store.
-- Quoted forms are memoised (queries quote the same few names on every
-- call); the memo is emptied past 4,096 names so it cannot grow without end.
local quoted, nquoted = {}, 0

function Dialect:quote_identifier(name)
  local q = quoted[name]
  if q then return q end
  local problem = identifier_problem(name)
  if problem then
    query_error("invalid identifier " .. show(name) .. ": " .. problem, { identifier = name })
  end
  q = "`" .. name:gsub("`", "``") .. "`"
  if nquoted >= 4096 then quoted, nquoted = {}, 0 end
  quoted[name] = q
  nquoted = nquoted + 1
  return q
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
function Dialect:quote_qualified(name)
  if type(name) == "string" and not name:find(".", 1, true) then return self:quote_identifier(name) end
  local parts = split_dotted(name)
  for i, part in ipairs(parts) do parts[i] = self:quote_identifier(part) end
  return table.concat(parts, ".")
end

-- Like quote_qualified, but the last part may be `*` ("t.*", "*").
function Dialect:quote_column_ref(ref)
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
function Dialect:quote_list(names, what)
  if type(names) == "string" then names = { names } end
  if type(names) ~= "table" or #names == 0 then
    query_error((what or "column list") .. " must be a non-empty list of names")
  end
  local out = {}
  for i, name in ipairs(names) do out[i] = self:quote_identifier(name) end
  return table.concat(out, ", ")
end

-- ------------------------------------------------------- placeholders ----

local function count_arg(n, what)
  local v = math.tointeger(n)
  if not v or v < 0 then
    query_error(string.format("%s must be a non-negative integer, got %s", what, show(n)))
  end
  return v
end

-- placeholders(3) -> "?, ?, ?"
function Dialect:placeholders(n)
  n = count_arg(n, "placeholder count")
  if n == 0 then query_error("placeholder count must be at least 1") end
  return string.rep("?", n, ", ")
end

-- "LIMIT ? OFFSET ?", { limit, offset }; "" when neither is given.
function Dialect:limit_offset(limit, offset)
  if limit ~= nil then limit = count_arg(limit, "LIMIT") end
  if offset ~= nil then offset = count_arg(offset, "OFFSET") end
  if limit and offset then return "LIMIT ? OFFSET ?", { limit, offset } end
  if limit then return "LIMIT ?", { limit } end
  if offset then return "LIMIT " .. Dialect.MAX_LIMIT .. " OFFSET ?", { offset } end
  return "", {}
end

-- ------------------------------------------------------------ locking ----

local LOCK_KEYS = { mode = true, nowait = true, skip_locked = true }

-- { mode = "update"|"share", nowait = bool, skip_locked = bool } -> clause.
function Dialect:lock_clause(opts)
  opts = opts or {}
  options.check(opts, LOCK_KEYS, "lock")
  local mode = opts.mode or "update"
  local sql
  if mode == "update" then
    sql = "FOR UPDATE"
  elseif mode == "share" then
    -- MariaDB and MySQL 5.7 only know the older spelling (same lock).
    sql = self:supports("for_share") and "FOR SHARE" or "LOCK IN SHARE MODE"
  else
    query_error("lock mode must be \"update\" or \"share\", got " .. show(mode))
  end
  if opts.nowait and opts.skip_locked then
    query_error("a lock cannot use both NOWAIT and SKIP LOCKED")
  end
  if opts.nowait then
    self:require("nowait", "NOWAIT")
    sql = sql .. " NOWAIT"
  elseif opts.skip_locked then
    self:require("skip_locked", "SKIP LOCKED")
    sql = sql .. " SKIP LOCKED"
  end
  return sql
end

-- ------------------------------------------------------- DML helpers ----

local function check_option_keys(opts, accepted, what)
  options.check(opts, accepted, what)
end

function Dialect:returning_clause(columns, capability, feature)
  self:require(capability, feature)
  if columns == "*" then return " RETURNING *" end
  return " RETURNING " .. self:quote_list(columns, "RETURNING")
end


-- ---------------------------------------------------------- JSON path ----

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
function Dialect:validate_json_path(path)
  if type(path) ~= "string" then
    query_error("JSON path must be a string, got " .. type(path))
  end
  local scanner = setmetatable({
    s = path, mysql_ranges = self.flavor == "mysql" and self:at_least(8, 0, 2),
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
function Dialect:json_extract(column_sql, path)
  self:require("json")
  self:validate_json_path(path)
  return "JSON_EXTRACT(" .. column_fragment(column_sql) .. ", ?)", { path }
end

-- The unquoted scalar at `path` (what ->> gives on MySQL; works on both).
function Dialect:json_value(column_sql, path)
  local sql, params = self:json_extract(column_sql, path)
  return "JSON_UNQUOTE(" .. sql .. ")", params
end

-- JSON_CONTAINS(col, ?[, ?]); candidate is JSON text, bound.
function Dialect:json_contains(column_sql, candidate_json, path)
  self:require("json")
  if type(candidate_json) ~= "string" then
    query_error("JSON_CONTAINS candidate must be JSON text (a string), got " .. type(candidate_json))
  end
  local col = column_fragment(column_sql)
  if path == nil then return "JSON_CONTAINS(" .. col .. ", ?)", { candidate_json } end
  self:validate_json_path(path)
  return "JSON_CONTAINS(" .. col .. ", ?, ?)", { candidate_json, path }
end

-- ----------------------------------------------------------- literals ----

local function config_error(table_name, column, message)
  local where = column and string.format("table %q, column %q", tostring(table_name), column)
    or string.format("table %q", tostring(table_name))
  errors.raise("ConfigError", where .. ": " .. message, { table = table_name, column = column })
end

-- True when a plain '...' literal with ' doubled reads the same under every
-- sql_mode: no backslash (NO_BACKSLASH_ESCAPES changes its meaning) and
-- no control bytes (NUL and friends are kept out of the statement text).
local function plain_safe(s)
  return not s:find("[%z\1-\31\127\\]")
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02X", c:byte()) end))
end

-- A string literal: 'text' when plain_safe, otherwise a hex literal, which
-- has no escapes at all. `form`: "text" (utf8mb4 introducer, so the server
-- converts to the column's charset), "bytes" (bare X'..': binary columns,
-- ENUM/SET members) or "plain" (only a quoted literal is legal: comments,
-- defaults of numeric and temporal columns) -> nil when not plain_safe.
function Dialect.string_literal(s, form)
  if plain_safe(s) then return "'" .. s:gsub("'", "''") .. "'" end
  if form == "text" then return "_utf8mb4 X'" .. hex(s) .. "'" end
  if form == "bytes" then return "X'" .. hex(s) .. "'" end
  return nil
end

-- A Lua value as a safe SQL literal (numbers, booleans, strings).
function Dialect.literal(value, form)
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
  if t == "string" then return Dialect.string_literal(value, form or "text") end
  return nil
end

-- ------------------------------------------------------- column types ----

local INTEGER_SQL = { integer = "INT", bigint = "BIGINT", smallint = "SMALLINT", tinyint = "TINYINT" }
local SIMPLE_SQL = { float = "FLOAT", double = "DOUBLE", boolean = "TINYINT(1)", date = "DATE",
  json = "JSON" }
local SIZED_CLASS = { text = "TEXT", blob = "BLOB" }
local SIZE_WORDS = { tiny = "TINY", medium = "MEDIUM", long = "LONG" }

-- Which literal form suits a column's defaults. TEXT/JSON take bare hex:
-- MariaDB keeps their defaults as expressions and re-prints an introduced
-- `_utf8mb4 X'..'` without escaping, corrupting it (seen on 10.11), while
-- a bare X'..' survives; the bytes then land in the column's charset.
local LITERAL_FORM = {
  string = "text", enum = "text", set = "text", uuid = "text",
  text = "bytes", json = "bytes", binary = "bytes", blob = "bytes",
}

local SQL_TYPE_PATTERN = "^[%w_ ]+%(?[%d, ]*%)?[%w ]*$"

local function int_in(col, key, default, lo, hi, table_name)
  local v = col[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < lo or v > hi then
    config_error(table_name, col.name, string.format("%s must be an integer %d..%d, got %s",
      key, lo, hi, show(v)))
  end
  return v
end

-- TEXT/BLOB family from size: a byte count or "tiny"/"medium"/"long".
local function sized_lob(col, table_name)
  local base, size = SIZED_CLASS[col.type], col.size
  if size == nil then return base end
  if SIZE_WORDS[size] then return SIZE_WORDS[size] .. base end
  if math.type(size) ~= "integer" or size < 1 or size > 4294967295 then
    config_error(table_name, col.name, "size must be 1..4294967295 or tiny/medium/long, got "
      .. show(size))
  end
  if size <= 65535 then return base end
  if size <= 16777215 then return "MEDIUM" .. base end
  return "LONG" .. base
end

local function member_list(self, col, table_name)
  local values = col.values
  if type(values) ~= "table" or #values == 0 then
    config_error(table_name, col.name, col.type .. " needs values = { ... }")
  end
  if col.type == "set" and #values > 64 then
    config_error(table_name, col.name, "a SET has at most 64 members")
  end
  local seen, out = {}, {}
  for i, v in ipairs(values) do
    if type(v) ~= "string" then config_error(table_name, col.name, "members must be strings") end
    if seen[v] then config_error(table_name, col.name, "duplicate member " .. show(v)) end
    if col.type == "set" and v:find(",", 1, true) then
      config_error(table_name, col.name, "SET members cannot contain commas")
    end
    seen[v] = true
    out[i] = self.string_literal(v, "bytes")
  end
  return col.type:upper() .. "(" .. table.concat(out, ",") .. ")"
end

local function fsp_type(name, col, table_name)
  local p = int_in(col, "precision", 0, 0, 6, table_name)
  return p == 0 and name or string.format("%s(%d)", name, p)
end

local TYPE_RENDERERS = {
  decimal = function(_, col, t)
    local p = int_in(col, "precision", 10, 1, 65, t)
    local s = int_in(col, "scale", 0, 0, 30, t)
    if s > p then config_error(t, col.name, "scale cannot exceed precision") end
    return string.format("DECIMAL(%d,%d)", p, s)
  end,
  string = function(_, col, t)
    return string.format("VARCHAR(%d)", int_in(col, "size", 255, 1, 16383, t))
  end,
  text = function(_, col, t) return sized_lob(col, t) end,
  blob = function(_, col, t) return sized_lob(col, t) end,
  binary = function(_, col, t)
    if col.fixed then return string.format("BINARY(%d)", int_in(col, "size", 16, 1, 255, t)) end
    return string.format("VARBINARY(%d)", int_in(col, "size", 255, 1, 65535, t))
  end,
  datetime = function(_, col, t) return fsp_type("DATETIME", col, t) end,
  time = function(_, col, t) return fsp_type("TIME", col, t) end,
  timestamp = function(_, col, t) return fsp_type("TIMESTAMP", col, t) end,
  enum = member_list,
  set = member_list,
  uuid = function(_, col) return col.binary and "BINARY(16)" or "CHAR(36)" end,
}

-- The column's SQL type (with UNSIGNED), without charset or attributes.
function Dialect:column_type_sql(col, table_name)
  table_name = table_name or "?"
  if type(col) ~= "table" or type(col.name) ~= "string" then
    config_error(table_name, nil, "a column needs a name")
  end
  local sql
  if col.sql_type ~= nil then
    if type(col.sql_type) ~= "string" or not col.sql_type:match(SQL_TYPE_PATTERN) then
      config_error(table_name, col.name, "sql_type " .. show(col.sql_type)
        .. " is not a plain type name like DECIMAL(8,2) or POINT")
    end
    sql = col.sql_type
  elseif INTEGER_SQL[col.type] then
    sql = INTEGER_SQL[col.type]
  elseif SIMPLE_SQL[col.type] then
    sql = SIMPLE_SQL[col.type]
  elseif TYPE_RENDERERS[col.type] then
    sql = TYPE_RENDERERS[col.type](self, col, table_name)
  else
    config_error(table_name, col.name, "unknown type " .. show(col.type))
  end
  if col.unsigned then
    if not (INTEGER_SQL[col.type] or col.sql_type) then
      config_error(table_name, col.name, "unsigned applies to integer types only")
    end
    sql = sql .. " UNSIGNED"
  end
  return sql
end

-- --------------------------------------------------- column definition ----

local LOB_TYPES = { text = true, blob = true, json = true }

local function name_option(col, key, table_name)
  local v = col[key]
  if v == nil then return nil end
  if type(v) ~= "string" or not v:match("^[%w_]+$") then
    config_error(table_name, col.name, key .. " must match [%w_]+, got " .. show(v))
  end
  return v
end

function Dialect:default_sql(col, table_name)
  local value = col.default
  if schema.is_raw(value) then return schema.raw_text(value) end
  local form = LITERAL_FORM[col.type] or "plain"
  if col.sql_type or (col.type == "uuid" and col.binary) then
    form = col.sql_type and "plain" or "bytes"
  elseif self.flavor == "mysql" and (col.type == "text" or col.type == "json") then
    form = "text" -- MySQL refuses binary strings as JSON; it has no MariaDB re-print issue
  end
  local lit = self.literal(value, form)
  if not lit then
    config_error(table_name, col.name, "default " .. show(value)
      .. " cannot be written safely for a " .. tostring(col.type) .. " column"
      .. (type(value) == "string" and " (no backslashes or control characters here)" or ""))
  end
  -- MySQL takes TEXT/BLOB/JSON defaults only as expressions, from 8.0.13.
  if self.flavor == "mysql" and LOB_TYPES[col.type] then
    if not self:at_least(8, 0, 13) then
      errors.raise("CapabilityError", string.format(
        "a DEFAULT on a %s column needs MySQL 8.0.13+ (server: mysql %s)",
        col.type, self.version_string), { flavor = self.flavor, version = self.version_string })
    end
    return "(" .. lit .. ")"
  end
  return lit
end

local function comment_sql(self, text, table_name, column)
  if type(text) ~= "string" then
    config_error(table_name, column, "comment must be a string")
  end
  local lit = self.string_literal(text, "plain")
  if not lit then
    config_error(table_name, column, "comment cannot contain backslashes or control characters")
  end
  return "COMMENT " .. lit
end

local function is_nullable(col, in_primary_key, table_name)
  local nullable = col.nullable
  if col.null ~= nil then nullable = col.null end
  if in_primary_key then
    if nullable == true then
      config_error(table_name, col.name, "a primary key column cannot be nullable")
    end
    return false
  end
  return nullable ~= false
end

-- `name` TYPE [CHARACTER SET] [COLLATE] NULL|NOT NULL [DEFAULT] [ON UPDATE]
-- [AUTO_INCREMENT] [COMMENT]
function Dialect:column_sql(col, table_name, in_primary_key)
  local parts = { self:quote_identifier(col.name), self:column_type_sql(col, table_name) }
  local charset, collate = name_option(col, "charset", table_name),
    name_option(col, "collate", table_name)
  if charset then parts[#parts + 1] = "CHARACTER SET " .. charset end
  if collate then parts[#parts + 1] = "COLLATE " .. collate end
  local nullable = is_nullable(col, in_primary_key or col.primary_key, table_name)
  parts[#parts + 1] = nullable and "NULL" or "NOT NULL"
  if col.default ~= nil then parts[#parts + 1] = "DEFAULT " .. self:default_sql(col, table_name) end
  if col.on_update ~= nil then
    if not schema.is_raw(col.on_update) then
      config_error(table_name, col.name, "on_update needs schema.raw(...)")
    end
    parts[#parts + 1] = "ON UPDATE " .. schema.raw_text(col.on_update)
  end
  if col.auto_increment then parts[#parts + 1] = "AUTO_INCREMENT" end
  if col.comment ~= nil then parts[#parts + 1] = comment_sql(self, col.comment, table_name, col.name) end
  return table.concat(parts, " ")
end

-- ------------------------------------------------- constraint names ----

-- 32-bit FNV-1a: a short, stable suffix for names we have to shorten.
local function fnv1a(s)
  local h = 0x811C9DC5
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 0x01000193) & 0xFFFFFFFF
  end
  return string.format("%08x", h)
end

-- prefix_table_col1_col2, cut to 64 characters with a hash of the whole.
function Dialect.constraint_name(prefix, table_name, columns)
  local bare = table_name:match("([^.]+)$")
  local name = prefix .. "_" .. bare .. "_" .. table.concat(columns, "_")
  local length = utf8.len(name) or #name
  if length <= Dialect.MAX_IDENTIFIER_LENGTH then return name end
  local cut = utf8.offset(name, 56) or 56
  return name:sub(1, cut - 1) .. "_" .. fnv1a(name)
end

-- ---------------------------------------------------------------- DDL ----

local TABLE_OPTION_KEYS = {
  engine = true, charset = true, collate = true, comment = true, if_not_exists = true,
}

local FK_SQL = { cascade = "CASCADE", ["set null"] = "SET NULL", restrict = "RESTRICT",
  ["no action"] = "NO ACTION" }

local function fk_action_sql(value, table_name, column)
  if value == nil then return nil end
  local action = schema.fk_action(value)
  if not action then
    config_error(table_name, column, "foreign key action must be cascade, set null, restrict"
      .. " or no action, got " .. show(value))
  end
  return FK_SQL[action]
end

function Dialect:index_sql(table_name, index)
  local name = index.name or self.constraint_name(index.unique and "uq" or "idx", table_name,
    index.columns)
  return (index.unique and "UNIQUE KEY " or "KEY ") .. self:quote_identifier(name)
    .. " (" .. self:quote_list(index.columns, "index columns") .. ")"
end

function Dialect:foreign_key_sql(table_name, fk)
  local name = fk.name or self.constraint_name("fk", table_name, fk.columns)
  local sql = "CONSTRAINT " .. self:quote_identifier(name) .. " FOREIGN KEY ("
    .. self:quote_list(fk.columns, "foreign key columns") .. ") REFERENCES "
    .. self:quote_qualified(fk.references.table) .. " ("
    .. self:quote_list(fk.references.columns, "referenced columns") .. ")"
  local on_delete = fk_action_sql(fk.on_delete, table_name, fk.columns[1])
  local on_update = fk_action_sql(fk.on_update, table_name, fk.columns[1])
  if on_delete then sql = sql .. " ON DELETE " .. on_delete end
  if on_update then sql = sql .. " ON UPDATE " .. on_update end
  return sql
end

function Dialect:check_sql(table_name, check)
  self:require("check_constraints", "CHECK constraints")
  if not schema.is_raw(check.expr) then
    config_error(table_name, check.column, "a CHECK needs schema.raw(...)")
  end
  return "CONSTRAINT " .. self:quote_identifier(check.name) .. " CHECK ("
    .. schema.raw_text(check.expr) .. ")"
end

-- Column-level unique/index/references/check become table-level items.
local function expand_column_items(def)
  local indexes, fks, checks = {}, {}, {}
  for _, col in ipairs(def.columns) do
    if col.unique then indexes[#indexes + 1] = { columns = { col.name }, unique = true } end
    if col.index then indexes[#indexes + 1] = { columns = { col.name } } end
    local ref = col.references
    if ref then
      fks[#fks + 1] = {
        columns = { col.name }, name = ref.name,
        references = { table = ref.table, columns = ref.columns or { ref.column or "id" } },
        on_delete = ref.on_delete, on_update = ref.on_update,
      }
    end
    if col.check then
      checks[#checks + 1] = { name = Dialect.constraint_name("chk", def.name, { col.name }),
        expr = col.check, column = col.name }
    end
  end
  for _, x in ipairs(def.indexes or {}) do indexes[#indexes + 1] = x end
  for _, x in ipairs(def.foreign_keys or {}) do fks[#fks + 1] = x end
  for i, x in ipairs(def.checks or {}) do
    checks[#checks + 1] = { name = x.name or Dialect.constraint_name("chk", def.name, { tostring(i) }),
      expr = x.expr }
  end
  return indexes, fks, checks
end

local function primary_key_of(def)
  if def.primary_key then return def.primary_key end
  for _, col in ipairs(def.columns) do
    if col.primary_key then return { col.name } end
  end
  return nil
end

function Dialect:table_options_sql(def)
  local opts = def.options or {}
  local unknown = options.unknown(opts, TABLE_OPTION_KEYS)
  if unknown then config_error(def.name, nil, "table " .. unknown) end
  local function name_opt(key, default)
    local v = opts[key] or default
    if v ~= nil and (type(v) ~= "string" or not v:match("^[%w_]+$")) then
      config_error(def.name, nil, key .. " must match [%w_]+, got " .. show(v))
    end
    return v
  end
  local sql = "ENGINE=" .. name_opt("engine", "InnoDB")
    .. " DEFAULT CHARSET=" .. name_opt("charset", "utf8mb4")
  local collate = name_opt("collate")
  if collate then sql = sql .. " COLLATE=" .. collate end
  if opts.comment ~= nil then sql = sql .. " " .. comment_sql(self, opts.comment, def.name) end
  return sql
end

-- CREATE TABLE from a neutral definition (see activerecord.schema).
function Dialect:create_table_sql(def)
  if type(def) ~= "table" or type(def.columns) ~= "table" or #def.columns == 0 then
    errors.raise("ConfigError", "create_table_sql needs a definition with columns")
  end
  local pk = primary_key_of(def)
  local in_pk = {}
  for _, name in ipairs(pk or {}) do in_pk[name] = true end
  local items = {}
  for _, col in ipairs(def.columns) do
    items[#items + 1] = self:column_sql(col, def.name, in_pk[col.name])
  end
  if pk then items[#items + 1] = "PRIMARY KEY (" .. self:quote_list(pk, "primary key") .. ")" end
  local indexes, fks, checks = expand_column_items(def)
  for _, index in ipairs(indexes) do items[#items + 1] = self:index_sql(def.name, index) end
  for _, fk in ipairs(fks) do items[#items + 1] = self:foreign_key_sql(def.name, fk) end
  for _, check in ipairs(checks) do items[#items + 1] = self:check_sql(def.name, check) end
  local head = (def.options or {}).if_not_exists and "CREATE TABLE IF NOT EXISTS " or "CREATE TABLE "
  return head .. self:quote_qualified(def.name) .. " (" .. table.concat(items, ", ") .. ") "
    .. self:table_options_sql(def)
end

function Dialect:drop_table_sql(name, opts)
  opts = opts or {}
  check_option_keys(opts, { if_exists = true }, "drop_table")
  return (opts.if_exists and "DROP TABLE IF EXISTS " or "DROP TABLE ") .. self:quote_qualified(name)
end

-- CREATE [UNIQUE] INDEX `name` ON `t` (`a`, `b`)
function Dialect:add_index_sql(table_name, columns, opts)
  opts = opts or {}
  check_option_keys(opts, { unique = true, name = true }, "add_index")
  if type(columns) == "string" then columns = { columns } end
  local name = opts.name or self.constraint_name(opts.unique and "uq" or "idx", table_name, columns)
  return (opts.unique and "CREATE UNIQUE INDEX " or "CREATE INDEX ") .. self:quote_identifier(name)
    .. " ON " .. self:quote_qualified(table_name) .. " (" .. self:quote_list(columns, "index columns") .. ")"
end

return Dialect

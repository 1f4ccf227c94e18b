-- DDL for MySQL/MariaDB from neutral table definitions (activerecord.schema):
-- column types, column definitions (generated columns too), constraint
-- names, CREATE/DROP TABLE and CREATE INDEX. Methods of the Dialect
-- (dialect.lua copies them in); ALTER statements are in ddl_alter.lua.
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local schema = require("activerecord.schema")
local messages = require("activerecord.backend.mysql.messages")
local quoting = require("activerecord.backend.mysql.quoting")

local show, config_error = messages.show, messages.config_error

local M = {}

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
function M:column_type_sql(col, table_name)
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

function M:default_sql(col, table_name)
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
  if LOB_TYPES[col.type] then
    self:require("lob_defaults", "a DEFAULT on a " .. col.type .. " column")
    if self.flavor == "mysql" then return "(" .. lit .. ")" end
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

-- What a generated column cannot have besides its expression.
local NOT_WITH_GENERATED = { "default", "on_update", "auto_increment" }

-- AS (expr) VIRTUAL|STORED [NULL|NOT NULL]: MariaDB takes no NULL clause on
-- a generated column (1064), so there nullability is the server's and an
-- explicit NOT NULL is refused; MySQL takes it after the storage word.
local function generated_sql(self, col, table_name, in_primary_key)
  local gen = col.generated
  if type(gen) ~= "table" or not schema.is_raw(gen.expr)
      or (gen.stored ~= nil and type(gen.stored) ~= "boolean") then
    config_error(table_name, col.name,
      "generated must be { expr = schema.raw(...), stored = true|false }")
  end
  for _, key in ipairs(NOT_WITH_GENERATED) do
    if col[key] ~= nil and not (key == "auto_increment" and col[key] == false) then
      config_error(table_name, col.name, "a generated column cannot have " .. key)
    end
  end
  local sql = "AS (" .. schema.raw_text(gen.expr) .. ") " .. (gen.stored and "STORED" or "VIRTUAL")
  local nullable = is_nullable(col, in_primary_key or col.primary_key, table_name)
  if self.flavor == "mysql" then return sql .. (nullable and " NULL" or " NOT NULL") end
  if col.nullable == false or col.null == false then
    config_error(table_name, col.name, "MariaDB takes no NOT NULL on a generated column")
  end
  return sql
end

-- `name` TYPE [CHARACTER SET] [COLLATE] NULL|NOT NULL [DEFAULT] [ON UPDATE]
-- [AUTO_INCREMENT] [COMMENT]; a generated column: `name` TYPE [CHARACTER
-- SET] [COLLATE] AS (expr) VIRTUAL|STORED [NULL|NOT NULL] [COMMENT].
-- `default_text`, when given, is the DEFAULT's SQL the caller already wrote
-- (through `default_sql`) and takes the place of `col.default`.
function M:column_sql(col, table_name, in_primary_key, default_text)
  local parts = { self:quote_identifier(col.name), self:column_type_sql(col, table_name) }
  local charset, collate = name_option(col, "charset", table_name),
    name_option(col, "collate", table_name)
  if charset then parts[#parts + 1] = "CHARACTER SET " .. charset end
  if collate then parts[#parts + 1] = "COLLATE " .. collate end
  if col.generated ~= nil then
    parts[#parts + 1] = generated_sql(self, col, table_name, in_primary_key)
    if col.comment ~= nil then parts[#parts + 1] = comment_sql(self, col.comment, table_name, col.name) end
    return table.concat(parts, " ")
  end
  local nullable = is_nullable(col, in_primary_key or col.primary_key, table_name)
  parts[#parts + 1] = nullable and "NULL" or "NOT NULL"
  if default_text then
    parts[#parts + 1] = "DEFAULT " .. default_text
  elseif col.default ~= nil then
    parts[#parts + 1] = "DEFAULT " .. self:default_sql(col, table_name)
  end
  if col.on_update ~= nil then
    if not schema.is_raw(col.on_update) then
      config_error(table_name, col.name, "on_update needs schema.raw(...) or ar.raw(...) without parameters")
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
function M.constraint_name(prefix, table_name, columns)
  local bare = table_name:match("([^.]+)$")
  local name = prefix .. "_" .. bare .. "_" .. table.concat(columns, "_")
  local length = utf8.len(name) or #name
  if length <= quoting.MAX_IDENTIFIER_LENGTH then return name end
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

function M:index_sql(table_name, index)
  local name = index.name or self.constraint_name(index.unique and "uq" or "idx", table_name,
    index.columns)
  return (index.unique and "UNIQUE KEY " or "KEY ") .. self:quote_identifier(name)
    .. " (" .. self:quote_list(index.columns, "index columns") .. ")"
end

function M:foreign_key_sql(table_name, fk)
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

function M:check_sql(table_name, check)
  self:require("check_constraints", "CHECK constraints")
  if not schema.is_raw(check.expr) then
    config_error(table_name, check.column, "a CHECK needs schema.raw(...) or ar.raw(...) without parameters")
  end
  return "CONSTRAINT " .. self:quote_identifier(check.name) .. " CHECK ("
    .. schema.raw_text(check.expr) .. ")"
end

-- Column-level unique/index/references/check become table-level items
-- (also used by ALTER TABLE ... ADD COLUMN, with a one-column definition).
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
      checks[#checks + 1] = { name = M.constraint_name("chk", def.name, { col.name }),
        expr = col.check, column = col.name }
    end
  end
  for _, x in ipairs(def.indexes or {}) do indexes[#indexes + 1] = x end
  for _, x in ipairs(def.foreign_keys or {}) do fks[#fks + 1] = x end
  for i, x in ipairs(def.checks or {}) do
    checks[#checks + 1] = { name = x.name or M.constraint_name("chk", def.name, { tostring(i) }),
      expr = x.expr }
  end
  return indexes, fks, checks
end
M.expand_column_items = expand_column_items

local function primary_key_of(def)
  if def.primary_key then return def.primary_key end
  for _, col in ipairs(def.columns) do
    if col.primary_key then return { col.name } end
  end
  return nil
end

function M:table_options_sql(def)
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
function M:create_table_sql(def)
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

function M:drop_table_sql(name, opts)
  opts = opts or {}
  options.check(opts, { if_exists = true }, "drop_table")
  return (opts.if_exists and "DROP TABLE IF EXISTS " or "DROP TABLE ") .. self:quote_qualified(name)
end

-- CREATE [UNIQUE] INDEX `name` ON `t` (`a`, `b`)
function M:add_index_sql(table_name, columns, opts)
  opts = opts or {}
  options.check(opts, { unique = true, name = true }, "add_index")
  if type(columns) == "string" then columns = { columns } end
  local name = opts.name or self.constraint_name(opts.unique and "uq" or "idx", table_name, columns)
  return (opts.unique and "CREATE UNIQUE INDEX " or "CREATE INDEX ") .. self:quote_identifier(name)
    .. " ON " .. self:quote_qualified(table_name) .. " (" .. self:quote_list(columns, "index columns") .. ")"
end

return M

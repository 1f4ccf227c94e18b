--- Introspection for the MySQL backend: the tables, columns, indexes and
-- foreign keys of the database, read from `information_schema` and handed
-- up in neutral form (the schema DSL's type names, typed defaults), cached
-- per backend. Methods of the Backend object (init.lua merges them in).
--
-- All SQL here is constant text; table and schema names travel as bound
-- values, never spliced, so a name is only ever a name. A name is `"t"`
-- (the current database) or `"schema.t"` (split at the first dot).
--
-- The cache holds what was read (missing tables too) until this backend
-- runs a CREATE/ALTER/DROP/RENAME (execute.lua calls `reset_schema_cache`)
-- or someone calls `db:reset_schema_cache()`; each reset increments
-- `db._schema_version`, so layers that derived something from the schema
-- (models) can tell it changed. An empty cache is `nil`, which keeps the
-- statement path's check to one field read.
-- @module activerecord.backend.mysql.introspect
local errors = require("activerecord.errors")
local null = require("activerecord.null")

local type, tonumber, ipairs = type, tonumber, ipairs
local concat, sort = table.concat, table.sort

local M = {}

local Backend = {}
M.methods = Backend

local raw_node -- activerecord.query's raw, loaded on first use (no load-order tie)
local function raw(text)
  raw_node = raw_node or require("activerecord.query").raw
  return raw_node(text)
end

-- ---- SQL (constant text; every name a bound value) -------------------

local SCHEMA = "COALESCE(?, DATABASE())"

local TABLES_SQL = "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = " .. SCHEMA
  .. " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"

-- The primary key's columns from STATISTICS (COLUMN_KEY says PRI also for
-- the first UNIQUE NOT NULL key of a table without a primary key).
local PK_PART = "COLUMN_NAME IN (SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
  .. SCHEMA .. " AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY') AS pk"
-- MariaDB's JSON: a LONGTEXT with the CHECK json_valid(`col`) it adds
-- itself (information_schema.CHECK_CONSTRAINTS, which has TABLE_NAME there)
local JSON_PART = "CONCAT('json_valid(`', REPLACE(COLUMN_NAME, '`', '``'), '`)') IN (SELECT CHECK_CLAUSE "
  .. "FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = " .. SCHEMA
  .. " AND TABLE_NAME = ?) AS is_json"
local NO_JSON_PART = "0 AS is_json"

local function columns_sql(json_part)
  return "SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, "
    .. "IS_NULLABLE AS is_nullable, COLUMN_DEFAULT AS dflt, CHARACTER_MAXIMUM_LENGTH AS char_len, "
    .. "CHARACTER_OCTET_LENGTH AS octet_len, NUMERIC_PRECISION AS num_prec, NUMERIC_SCALE AS num_scale, "
    .. "DATETIME_PRECISION AS dt_prec, CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll, EXTRA AS extra, "
    .. "COLUMN_COMMENT AS comment, GENERATION_EXPRESSION AS gen_expr, " .. PK_PART .. ", " .. json_part
    .. " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = " .. SCHEMA .. " AND TABLE_NAME = ?"
    .. " ORDER BY ORDINAL_POSITION"
end
local COLUMNS_JSON_SQL = columns_sql(JSON_PART)
local COLUMNS_SQL = columns_sql(NO_JSON_PART)

local function indexes_sql(expression)
  return "SELECT INDEX_NAME AS name, COLUMN_NAME AS col, NON_UNIQUE AS non_unique, SUB_PART AS sub_part, "
    .. "COLLATION AS ord, INDEX_TYPE AS itype, INDEX_COMMENT AS icomment, " .. expression .. " AS expr "
    .. "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = " .. SCHEMA .. " AND TABLE_NAME = ? "
    .. "ORDER BY INDEX_NAME, SEQ_IN_INDEX"
end
local INDEXES_SQL = indexes_sql("NULL")
local INDEXES_EXPR_SQL = indexes_sql("EXPRESSION") -- MySQL 8.0.13+: functional key parts

-- Two single-table reads joined here: the server's own JOIN of these two
-- views builds a temporary table, and MariaDB 10.11 was seen to crash
-- (signal 11) there under concurrent DDL.
local FK_COLUMNS_SQL = "SELECT CONSTRAINT_NAME AS name, COLUMN_NAME AS col, TABLE_SCHEMA AS sch, "
  .. "REFERENCED_TABLE_SCHEMA AS ref_schema, REFERENCED_TABLE_NAME AS ref_table, "
  .. "REFERENCED_COLUMN_NAME AS ref_col FROM information_schema.KEY_COLUMN_USAGE "
  .. "WHERE TABLE_SCHEMA = " .. SCHEMA .. " AND TABLE_NAME = ? "
  .. "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION"
local FK_RULES_SQL = "SELECT CONSTRAINT_NAME AS name, UPDATE_RULE AS on_update, DELETE_RULE AS on_delete "
  .. "FROM information_schema.REFERENTIAL_CONSTRAINTS "
  .. "WHERE CONSTRAINT_SCHEMA = " .. SCHEMA .. " AND TABLE_NAME = ?"

local TABLE_OPTIONS_SQL = "SELECT ENGINE AS engine, TABLE_COLLATION AS coll, TABLE_COMMENT AS comment, "
  .. "TABLE_TYPE AS table_type FROM information_schema.TABLES WHERE TABLE_SCHEMA = " .. SCHEMA .. " AND TABLE_NAME = ?"

-- MariaDB's CHECK_CONSTRAINTS names the table; MySQL's (8.0.16+) does not:
-- its checks come through TABLE_CONSTRAINTS
local CHECKS_MARIADB_SQL = "SELECT CONSTRAINT_NAME AS name, CHECK_CLAUSE AS clause "
  .. "FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = " .. SCHEMA .. " AND TABLE_NAME = ?"
local CHECKS_MYSQL_SQL = "SELECT c.CONSTRAINT_NAME AS name, c.CHECK_CLAUSE AS clause "
  .. "FROM information_schema.TABLE_CONSTRAINTS t JOIN information_schema.CHECK_CONSTRAINTS c "
  .. "ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME "
  .. "WHERE t.TABLE_SCHEMA = " .. SCHEMA .. " AND t.TABLE_NAME = ? AND t.CONSTRAINT_TYPE = 'CHECK'"

-- ---- names -------------------------------------------------------------

-- "t" -> null, "t"; "s.t" -> "s", "t" (split at the first dot).
local function split_name(name, what)
  if type(name) ~= "string" then
    errors.raise("QueryError", what .. ": the table name must be a string, got " .. type(name))
  end
  local schema, tbl = name:match("^([^.]*)%.(.*)$")
  if schema then return schema, tbl end
  return null, name
end

-- ---- values as the server prints them --------------------------------

local ESCAPES = { ["0"] = "\0", n = "\n", r = "\r", t = "\t", b = "\b", Z = "\26" }

-- The text of the single-quoted literal that starts at `i` of `s` and the
-- position after it, or nil when `s` has no complete literal there.
-- Quotes doubled (`''`) and backslash escapes (`\\`, `\n`, `\0`, ...)
-- are undone (how both servers print ENUM members and MariaDB defaults).
local function read_quoted(s, i)
  if s:byte(i) ~= 39 then return nil end
  local out, n = {}, #s
  i = i + 1
  while i <= n do
    local c = s:byte(i)
    if c == 39 then -- "'"
      if s:byte(i + 1) ~= 39 then return concat(out), i + 1 end
      out[#out + 1] = "'"
      i = i + 2
    elseif c == 92 then -- "\"
      local e = s:sub(i + 1, i + 1)
      out[#out + 1] = ESCAPES[e] or e
      i = i + 2
    else
      local j = s:find("['\\]", i) or n + 1
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    end
  end
  return nil
end

-- "enum('a','b''c')" -> { "a", "b'c" }
local function member_values(column_type)
  local out, i = {}, column_type:find("(", 1, true)
  if not i then return out end
  i = i + 1
  while true do
    local v, j = read_quoted(column_type, i)
    if not v then break end
    out[#out + 1] = v
    if column_type:byte(j) ~= 44 then break end -- ","
    i = j + 1
  end
  return out
end

local TYPES = {
  tinyint = "tinyint", smallint = "smallint", mediumint = "integer", int = "integer", integer = "integer",
  year = "integer", bit = "integer", bigint = "bigint",
  float = "float", double = "double", real = "double", ["double precision"] = "double",
  decimal = "decimal", numeric = "decimal", fixed = "decimal",
  char = "string", varchar = "string",
  tinytext = "text", text = "text", mediumtext = "text", longtext = "text",
  binary = "binary", varbinary = "binary",
  tinyblob = "blob", blob = "blob", mediumblob = "blob", longblob = "blob",
  date = "date", datetime = "datetime", timestamp = "timestamp", time = "time",
  json = "json", enum = "enum", set = "set",
}
local INTEGERS = { tinyint = true, smallint = true, integer = true, bigint = true }
local FLOATS = { float = true, double = true }
local TEMPORAL = { datetime = true, timestamp = true, time = true }
local SIZED_BY_BYTES = { text = true, binary = true, blob = true }
local BINARY_TYPES = { binary = true, blob = true }

-- "b'101'" -> 5
local function bit_value(s)
  local bits = s:match("^[bB]'([01]*)'$")
  if not bits then return nil end
  if bits == "" then return 0 end
  return math.tointeger(tonumber(bits, 2))
end

-- A literal default's text -> the typed value (or nil when the text is not
-- a literal of the column's type: the caller makes it an expression).
local function typed(col, text)
  local t = col.type
  if col.data_type == "bit" then
    local v = bit_value(text)
    if v then return v end
  end
  if INTEGERS[t] or t == "boolean" or col.data_type == "year" then
    if not text:match("^%s*[-+]?%d+%s*$") then return nil end
    local v = tonumber(text)
    if t == "boolean" then return v ~= 0 end
    -- BIGINT UNSIGNED above 2^63-1: the decimal string, never wrapped (design §3)
    if math.type(v) ~= "integer" then return (text:gsub("^%s*%+?", ""):gsub("%s*$", "")) end
    return v
  end
  if FLOATS[t] then
    local v = tonumber(text)
    return v and v + 0.0 or nil
  end
  if t == "decimal" then
    return text:match("^%s*[-+]?%d*%.?%d+%s*$") and text or nil
  end
  return text
end

-- The default of a column as MariaDB 10.2.7+ prints it: literals quoted
-- ('abc'), numbers bare, NULL for DEFAULT NULL, expressions bare.
local function mariadb_default(col, text)
  if text == "NULL" then return nil end
  local q, after = read_quoted(text, 1)
  if q and after == #text + 1 then
    local v = typed(col, q)
    if v == nil then return q end
    return v
  end
  if INTEGERS[col.type] or FLOATS[col.type] or col.type == "boolean" or col.type == "decimal" then
    local v = typed(col, text)
    if v ~= nil then return v end
  end
  return raw(text)
end

-- The default as MySQL (and MariaDB before 10.2.7) prints it: literals bare,
-- expressions flagged DEFAULT_GENERATED in EXTRA (MySQL 8.0.13+), CURRENT_TIMESTAMP
-- bare on temporal columns, binary literals in hex (MySQL 8).
local function mysql_default(col, text, extra_upper, hex_binary)
  if extra_upper:find("DEFAULT_GENERATED", 1, true) then return raw((text:gsub("\\'", "'"))) end
  local t = col.type
  if (TEMPORAL[t] or t == "date") and (text:upper():find("^CURRENT_TIMESTAMP") or text:lower():find("^now%(")) then
    return raw(text)
  end
  if hex_binary and BINARY_TYPES[t] then
    local hex = text:match("^0x(%x*)$")
    if hex then return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end
  end
  local v = typed(col, text)
  if v == nil then return raw(text) end
  return v
end

-- One row of COLUMNS_SQL -> a neutral column table.
local function make_column(r, mariadb_defaults, hex_binary, flavor)
  local data_type = r.data_type:lower()
  local column_type = r.column_type
  local lower_type = column_type:lower()
  local t = TYPES[data_type] or data_type
  if t == "tinyint" and lower_type:find("^tinyint%(1%)") then t = "boolean" end
  if t == "text" and data_type == "longtext" and r.is_json == 1 then t = "json" end
  local extra = r.extra or ""
  local extra_upper = extra:upper()
  local col = {
    name = r.name, type = t, sql_type = column_type, data_type = data_type,
    nullable = r.is_nullable == "YES",
    unsigned = lower_type:find(" unsigned", 1, true) ~= nil,
    auto_increment = extra_upper:find("AUTO_INCREMENT", 1, true) ~= nil,
    primary_key = r.pk == 1,
    charset = r.cs, collation = r.coll,
    has_default = false,
  }
  if lower_type:find(" zerofill", 1, true) then col.zerofill = true end
  if data_type == "binary" then col.fixed = true end
  if extra_upper:find("INVISIBLE", 1, true) then col.invisible = true end
  if t == "decimal" then
    col.precision, col.scale = r.num_prec, r.num_scale
  elseif TEMPORAL[t] then
    col.precision = r.dt_prec or 0
  end
  if t == "string" then
    col.size = r.char_len
  elseif SIZED_BY_BYTES[t] then
    col.size = r.octet_len
  end
  if t == "enum" or t == "set" then col.values = member_values(column_type) end
  if r.comment and r.comment ~= "" then col.comment = r.comment end
  local gen = r.gen_expr
  if gen and gen ~= "" then
    if flavor == "mysql" then gen = gen:gsub("\\'", "'") end
    col.generated = { expr = gen, stored = extra_upper:find("STORED", 1, true) ~= nil
                                            or extra_upper:find("PERSISTENT", 1, true) ~= nil }
  end
  local s, e = extra:lower():find("on update%s+")
  if s then
    local upd = extra:sub(e + 1):match("^[^,]*")
    col.on_update = raw((upd:gsub("%s+$", "")))
  end
  -- defaults: none for generated and AUTO_INCREMENT columns
  local dflt = r.dflt
  if not col.generated and not col.auto_increment then
    if dflt ~= nil then
      col.has_default = true
      if mariadb_defaults then
        col.default = mariadb_default(col, dflt)
      else
        col.default = mysql_default(col, dflt, extra_upper, hex_binary)
      end
    elseif not mariadb_defaults and col.nullable then
      col.has_default = true -- MySQL prints DEFAULT NULL (stated or implied) as NULL
    end
  end
  col.data_type = nil
  return col
end

M._make_column = make_column -- for the spec of MySQL's forms

-- ---- the cache -----------------------------------------------------------

local function cache_of(self)
  local c = self._schema_cache
  if not c then
    c = { columns = {}, by_name = {}, indexes = {}, foreign_keys = {}, tables = {}, table_options = {},
          checks = {} }
    self._schema_cache = c
  end
  return c
end

-- Reads `kind`[key] through the cache: `load()` runs the queries; a result
-- is stored only when no reset happened while they ran (a DDL from another
-- coroutine), else they run again.
local function cached(self, kind, key, load)
  local c = self._schema_cache
  local v = c and c[kind][key]
  if v ~= nil then return v or nil end
  for _ = 1, 5 do
    local version = self._schema_version
    -- counted while in flight: a DDL run meanwhile (another coroutine's)
    -- then bumps the version even though the cache is still empty
    self._schema_loads = (self._schema_loads or 0) + 1
    local ok, res = pcall(load)
    local n = self._schema_loads - 1
    self._schema_loads = n > 0 and n
    if not ok then error(res, 0) end
    v = res
    if self._schema_version == version then
      if v == nil then
        cache_of(self)[kind][key] = false -- a missing table is remembered too
      else
        cache_of(self)[kind][key] = v
      end
      return v
    end
  end
  return v
end

--- Empties this backend's schema cache and increments `db._schema_version`
-- (what a CREATE/ALTER/DROP/RENAME run through `db:execute` also does).
-- Migrations call it after their DDL; call it after changing the schema
-- some other way (another connection, another process).
function Backend:reset_schema_cache()
  self._schema_cache = nil
  self._schema_version = (self._schema_version or 0) + 1
end

-- ---- public ------------------------------------------------------------

--- The base tables of the current database (or of `schema`), sorted.
-- Shared with the cache: do not modify it.
-- @tparam[opt] string schema a database name (default: the current one)
-- @treturn {string,...} table names
function Backend:tables(schema)
  if schema ~= nil and type(schema) ~= "string" then
    errors.raise("QueryError", "tables: the schema name must be a string, got " .. type(schema))
  end
  return cached(self, "tables", schema or "", function()
    local out = {}
    for i, r in ipairs(self:query(TABLES_SQL, schema or null)) do out[i] = r.name end
    sort(out)
    return out
  end)
end

--- The columns of a table in ordinal order, or nil when it does not exist.
-- A column:
--
-- - `name`; `type`: the schema DSL's neutral name ("tinyint", "smallint",
--   "integer" (INT, MEDIUMINT, YEAR, BIT), "bigint", "boolean" (TINYINT(1)),
--   "float", "double", "decimal", "string", "text", "binary", "blob", "date",
--   "datetime", "timestamp", "time", "json", "enum", "set"; another type: its
--   lower-case name, such as "point"); `sql_type`: the type as the server
--   prints it ("decimal(12,2) unsigned")
-- - `nullable`, `unsigned`, `auto_increment`, `primary_key`: booleans
-- - `has_default`, `default`: a literal default typed as the column's values
--   are read (integer, float, boolean for TINYINT(1), string for DECIMAL,
--   text, dates, ENUM/SET and binary), an expression as an `ar.raw` node
--   (`current_timestamp(6)`); DEFAULT NULL (stated, or implied on a nullable
--   column) is `has_default = true` with `default = nil`
-- - `precision`, `scale`: DECIMAL's; `precision` is also the fractional
--   seconds of DATETIME, TIMESTAMP and TIME (0 when none)
-- - `size`: characters for CHAR/VARCHAR, bytes for TEXT, BINARY and BLOB types
-- - `generated`: nil or `{ expr = text, stored = boolean }`; `on_update`: nil
--   or an `ar.raw` node; `values`: ENUM/SET members; `comment` (nil when
--   empty), `charset`, `collation` (nil for columns without text)
-- - when they apply: `fixed` (BINARY), `zerofill`, `invisible`
--
-- Shared with the cache: do not modify it.
-- @tparam string table_name `"t"` or `"schema.t"`
-- @treturn {table,...}|nil the columns
-- @raise `QueryError` when the name is not a string
function Backend:columns(table_name)
  local schema, tbl = split_name(table_name, "columns")
  return cached(self, "columns", table_name, function()
    local d = self.dialect
    local mariadb = d.flavor == "mariadb"
    local mariadb_defaults = mariadb and d:at_least(10, 2, 7)
    local hex_binary = not mariadb and d:at_least(8, 0, 0)
    local rows
    if mariadb and not d:supports("native_json") and d:supports("json") then
      rows = self:query(COLUMNS_JSON_SQL, schema, tbl, schema, tbl, schema, tbl)
    else
      rows = self:query(COLUMNS_SQL, schema, tbl, schema, tbl)
    end
    if #rows == 0 then return nil end
    local out = {}
    for i, r in ipairs(rows) do out[i] = make_column(r, mariadb_defaults, hex_binary, d.flavor) end
    return out
  end)
end

-- name -> column map of a table (nil when it does not exist)
local function columns_by_name(self, table_name)
  return cached(self, "by_name", table_name, function()
    local cols = self:columns(table_name)
    if not cols then return nil end
    -- column names compare case-insensitively on the server
    local map = {}
    for _, c in ipairs(cols) do
      local lower = c.name:lower()
      if map[lower] == nil then map[lower] = c end
    end
    for _, c in ipairs(cols) do map[c.name] = c end
    return map
  end)
end

--- Whether a table (or view) of that name exists.
-- @tparam string table_name `"t"` or `"schema.t"`
-- @treturn boolean
function Backend:table_exists(table_name)
  return self:columns(table_name) ~= nil
end

--- Whether the table exists and has that column (names compare
-- case-insensitively, as the server compares column names).
-- @tparam string table_name `"t"` or `"schema.t"`
-- @tparam string column the column name
-- @treturn boolean
function Backend:column_exists(table_name, column)
  local map = columns_by_name(self, table_name)
  if map == nil or type(column) ~= "string" then return false end
  return (map[column] or map[column:lower()]) ~= nil
end

local function by_index_name(a, b)
  if a.primary ~= b.primary then return a.primary end
  return a.name < b.name
end

--- The indexes of a table, PRIMARY first then by name, or nil when the
-- table does not exist: `{ name, columns, unique, primary }` (columns in key
-- order), with `lengths` (column -> prefix length), `orders` (column ->
-- "desc") and `kind` ("fulltext", "spatial") when they apply, `comment`
-- when set. Shared with the cache: do not modify it.
-- @tparam string table_name `"t"` or `"schema.t"`
-- @treturn {table,...}|nil the indexes
-- @raise `QueryError` when the name is not a string
function Backend:indexes(table_name)
  local schema, tbl = split_name(table_name, "indexes")
  if not self:columns(table_name) then return nil end
  return cached(self, "indexes", table_name, function()
    local d = self.dialect
    local sql = (d.flavor == "mysql" and d:at_least(8, 0, 13)) and INDEXES_EXPR_SQL or INDEXES_SQL
    local out, by_name = {}, {}
    for _, r in ipairs(self:query(sql, schema, tbl)) do
      local ix = by_name[r.name]
      if not ix then
        ix = { name = r.name, columns = {}, unique = tonumber(r.non_unique) == 0, primary = r.name == "PRIMARY" }
        local kind = r.itype and r.itype:lower()
        if kind == "fulltext" or kind == "spatial" then ix.kind = kind end
        if r.icomment and r.icomment ~= "" then ix.comment = r.icomment end
        by_name[r.name] = ix
        out[#out + 1] = ix
      end
      local col = r.col
      if col == nil and r.expr then col = raw((r.expr:gsub("\\'", "'"))) end
      ix.columns[#ix.columns + 1] = col
      if type(col) == "string" then
        -- MariaDB reports a length (32) on a SPATIAL key's part: not a prefix
        if r.sub_part and ix.kind ~= "spatial" then
          ix.lengths = ix.lengths or {}
          ix.lengths[col] = tonumber(r.sub_part)
        end
        if r.ord == "D" then
          ix.orders = ix.orders or {}
          ix.orders[col] = "desc"
        end
      end
    end
    sort(out, by_index_name)
    return out
  end)
end

--- The foreign keys of a table by name, or nil when the table does not
-- exist: `{ name, columns, ref_table, ref_columns, on_delete, on_update }`
-- (actions lower case: "cascade", "set null", "restrict", "no action",
-- "set default"; `ref_table` is `"schema.t"` when in another database).
-- Shared with the cache: do not modify it.
-- @tparam string table_name `"t"` or `"schema.t"`
-- @treturn {table,...}|nil the foreign keys
-- @raise `QueryError` when the name is not a string
function Backend:foreign_keys(table_name)
  local schema, tbl = split_name(table_name, "foreign_keys")
  if not self:columns(table_name) then return nil end
  return cached(self, "foreign_keys", table_name, function()
    local out, by_name = {}, {}
    local rows = self:query(FK_COLUMNS_SQL, schema, tbl)
    local rules = {}
    if #rows > 0 then
      for _, r in ipairs(self:query(FK_RULES_SQL, schema, tbl)) do rules[r.name] = r end
    end
    for _, r in ipairs(rows) do
      local fk = by_name[r.name]
      local rule = rules[r.name] or r
      if not fk then
        local ref = r.ref_table
        if r.ref_schema and r.ref_schema ~= r.sch then ref = r.ref_schema .. "." .. ref end
        fk = { name = r.name, columns = {}, ref_table = ref, ref_columns = {},
               on_delete = (rule.on_delete or "RESTRICT"):lower(),
               on_update = (rule.on_update or "RESTRICT"):lower() }
        by_name[r.name] = fk
        out[#out + 1] = fk
      end
      fk.columns[#fk.columns + 1] = r.col
      fk.ref_columns[#fk.ref_columns + 1] = r.ref_col
    end
    sort(out, function(a, b) return a.name < b.name end)
    return out
  end)
end

--- The table's options, or nil when it does not exist: `{ engine, charset,
-- collation, comment }` (the table defaults; comment nil when empty;
-- `view = true` for a view). Shared with the cache: do not modify it.
-- @tparam string table_name `"t"` or `"schema.t"`
-- @treturn table|nil the options
-- @raise `QueryError` when the name is not a string
function Backend:table_options(table_name)
  local schema, tbl = split_name(table_name, "table_options")
  return cached(self, "table_options", table_name, function()
    local r = self:query(TABLE_OPTIONS_SQL, schema, tbl)[1]
    if not r then return nil end
    local coll = r.coll
    local out = { engine = r.engine, collation = coll,
                  charset = coll and (coll:match("^([^_]+)_") or coll) or nil }
    if r.comment and r.comment ~= "" and r.table_type ~= "VIEW" then out.comment = r.comment end
    if r.table_type == "VIEW" then out.view = true end
    return out
  end)
end

--- The CHECK constraints of a table by name, or nil when the table does not
-- exist: `{ name, expr }` (`expr` the condition as the server prints it),
-- with `json_column` naming the column when it is the `json_valid` check
-- MariaDB keeps for a JSON column (a schema dump leaves those out). Empty
-- on servers without CHECK constraints. Shared with the cache: do not modify it.
-- @tparam string table_name `"t"` or `"schema.t"`
-- @treturn {table,...}|nil the checks
-- @raise `QueryError` when the name is not a string
function Backend:checks(table_name)
  local schema, tbl = split_name(table_name, "checks")
  local cols = self:columns(table_name)
  if not cols then return nil end
  return cached(self, "checks", table_name, function()
    local d = self.dialect
    if not d:supports("check_constraints") then return {} end
    local mysql = d.flavor == "mysql"
    local json_check = {}
    for _, c in ipairs(cols) do
      if c.type == "json" and not mysql then json_check["json_valid(`" .. c.name:gsub("`", "``") .. "`)"] = c.name end
    end
    local out = {}
    for _, r in ipairs(self:query(mysql and CHECKS_MYSQL_SQL or CHECKS_MARIADB_SQL, schema, tbl)) do
      local expr = r.clause
      if mysql then expr = expr:gsub("\\'", "'") end
      out[#out + 1] = { name = r.name, expr = expr, json_column = json_check[expr] }
    end
    sort(out, function(a, b) return a.name < b.name end)
    return out
  end)
end

return M

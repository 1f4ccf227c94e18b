--- Schema DSL: neutral table definitions (plain tables) that each backend's
-- dialect compiles to its own DDL, and helpers that run that DDL on a
-- backend (`db:execute(sql, ...)` plus `db.dialect`).
--
--   local def = schema.define("users", function(t)
--     t:bigint("id", { primary_key = true, auto_increment = true })
--     t:string("email", { size = 191, unique = true })
--     t:json("profile")
--     t:timestamps()
--   end, { engine = "InnoDB" })
--
-- A definition is `{ name, columns = { {name=, type=, <options>}... },
-- indexes, foreign_keys, checks, primary_key = {...} | nil, options }`.
-- Column-level `unique`, `index`, `references` and `check` stay on the
-- column; the dialect expands them (one place decides their names).
-- @module activerecord.schema
local errors = require("activerecord.errors")
local options = require("activerecord.options")

local M = {}

-- ---------------------------------------------------------------- raw ----

-- Raw fragments are tables whose SQL lives in this private weak map, so
-- nobody can forge one (setmetatable on a plain table gives no entry) or
-- change its text after it was checked.
local raw_sql = setmetatable({}, { __mode = "k" })

local raw_mt = {
  __name = "activerecord.schema.raw",
  __metatable = "activerecord.schema.raw",
  __index = function(self, key)
    if key == "sql" then return raw_sql[self] end
    return nil
  end,
  __newindex = function()
    error("a raw SQL fragment is read-only", 2)
  end,
  __tostring = function(self) return "raw(" .. raw_sql[self] .. ")" end,
}

-- Tokens that could end the statement or hide the rest of it; a raw
-- fragment is an expression, never a second statement.
local FORBIDDEN_IN_RAW = { ";", "--", "#", "/*", "*/", "\0" }

--- Checks an SQL fragment the caller vouches for: no statement separator or
-- comment that could end the statement or hide the rest of it.
-- @tparam string sql the fragment
-- @tparam[opt] string what what it is, for the message
-- @treturn string the fragment, unchanged
-- @raise `ConfigError` for a non-string or a forbidden token
function M.check_fragment(sql, what)
  what = what or "raw SQL fragment"
  if type(sql) ~= "string" or not sql:find("%S") then
    errors.raise("QueryError", what .. " must be a non-empty string, got " .. type(sql))
  end
  for _, token in ipairs(FORBIDDEN_IN_RAW) do
    if sql:find(token, 1, true) then
      errors.raise("QueryError", string.format("%s may not contain %q: %q",
        what, token == "\0" and "NUL" or token, sql))
    end
  end
  return sql
end

--- Marks `sql` as an explicit raw fragment (e.g. `schema.raw("CURRENT_TIMESTAMP(6)")`)
-- for defaults, checks and `on_update`.
-- @tparam string sql the fragment
-- @treturn table the fragment (cannot be forged or changed afterwards)
-- @raise `ConfigError` as `check_fragment`
function M.raw(sql)
  M.check_fragment(sql)
  local r = setmetatable({}, raw_mt)
  raw_sql[r] = sql
  return r
end

--- Whether `x` was made by `raw`.
-- @param x any value
-- @treturn boolean
function M.is_raw(x)
  return type(x) == "table" and raw_sql[x] ~= nil
end

--- The SQL text of a raw fragment.
-- @param x a value
-- @treturn ?string the text, or nil for anything but a raw fragment
function M.raw_text(x)
  if type(x) ~= "table" then return nil end
  return raw_sql[x]
end

-- -------------------------------------------------------------- types ----

local INTEGER_TYPES = { integer = true, bigint = true, smallint = true, tinyint = true }

-- Options every column accepts, by expected kind.
local COMMON_OPTIONS = {
  primary_key = "boolean", nullable = "boolean", null = "boolean", default = "default",
  unique = "boolean", index = "boolean", comment = "string", references = "references",
  check = "raw", sql_type = "string",
}

-- Extra options per neutral type.
local TYPE_OPTIONS = {
  integer = { unsigned = "boolean", auto_increment = "boolean" },
  float = {}, double = {},
  decimal = { precision = "integer", scale = "integer" },
  string = { size = "integer", charset = "name", collate = "name" },
  text = { size = "size", charset = "name", collate = "name" },
  binary = { size = "integer", fixed = "boolean" },
  blob = { size = "size" },
  boolean = {},
  date = {},
  datetime = { precision = "integer", on_update = "raw" },
  time = { precision = "integer" },
  timestamp = { precision = "integer", on_update = "raw" },
  json = {},
  enum = { values = "list", charset = "name", collate = "name" },
  set = { values = "list", charset = "name", collate = "name" },
  uuid = { binary = "boolean" },
}
for name in pairs(INTEGER_TYPES) do TYPE_OPTIONS[name] = TYPE_OPTIONS.integer end

-- Options of a custom type (unknown name + sql_type): no type-specific keys.
local CUSTOM_OPTIONS = { unsigned = "boolean", auto_increment = "boolean" }

M.types = {}
for name in pairs(TYPE_OPTIONS) do M.types[name] = true end

local FK_ACTIONS = { cascade = true, ["set null"] = true, restrict = true, ["no action"] = true }
M.fk_actions = FK_ACTIONS

--- Normalises a foreign key action: `"set_null"` / `"SET NULL"` -> `"set null"`.
-- @tparam string value the action
-- @treturn ?string `"cascade"`, `"set null"`, `"restrict"`, `"no action"`, or nil
function M.fk_action(value)
  if type(value) ~= "string" then return nil end
  local norm = value:lower():gsub("_", " ")
  if FK_ACTIONS[norm] then return norm end
  return nil
end

local REFERENCE_KEYS = {
  table = "string", column = "string", columns = "list", on_delete = "action",
  on_update = "action", name = "string",
}

local TABLE_OPTIONS = {
  engine = "name", charset = "name", collate = "name", comment = "string",
  if_not_exists = "boolean",
}

-- ------------------------------------------------------------- errors ----

local function where_of(table_name, column)
  if column then
    return string.format("table %q, column %q", tostring(table_name), tostring(column))
  end
  return string.format("table %q", tostring(table_name))
end

local function config_error(table_name, column, message)
  errors.raise("ConfigError", where_of(table_name, column) .. ": " .. message,
    { table = table_name, column = column })
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- ---------------------------------------------------- option checking ----

local function is_list_of_strings(v)
  if type(v) ~= "table" or #v == 0 then return false end
  for k, item in pairs(v) do
    if math.type(k) ~= "integer" or type(item) ~= "string" or item == "" then return false end
  end
  return true
end

local KIND_CHECKS = {
  boolean = function(v) return type(v) == "boolean", "a boolean" end,
  string = function(v) return type(v) == "string", "a string" end,
  integer = function(v) return math.type(v) == "integer", "an integer" end,
  name = function(v)
    return type(v) == "string" and v:match("^[%w_]+$") ~= nil, "a name matching [%w_]+"
  end,
  size = function(v)
    return math.type(v) == "integer" or v == "tiny" or v == "medium" or v == "long",
      'an integer or "tiny"/"medium"/"long"'
  end,
  list = function(v) return is_list_of_strings(v), "a non-empty list of strings" end,
  raw = function(v) return M.is_raw(v), "schema.raw(...)" end,
  action = function(v)
    return M.fk_action(v) ~= nil, '"cascade", "set null", "restrict" or "no action"'
  end,
  default = function(v)
    local t = type(v)
    local ok = t == "string" or t == "boolean" or M.is_raw(v)
      or (t == "number" and v == v and v ~= math.huge and v ~= -math.huge)
    return ok, "a string, a finite number, a boolean or schema.raw(...)"
  end,
}

local function check_keys(spec, opts, table_name, column, what)
  for key, value in pairs(opts) do
    local kind = spec[key]
    if kind == nil then
      config_error(table_name, column, (what == "option" and "" or what .. ": ") .. (options.unknown(opts, spec)))
    end
    if kind ~= "references" then
      local ok, expected = KIND_CHECKS[kind](value)
      if not ok then
        config_error(table_name, column, string.format("option %q must be %s, got %s",
          key, expected, type(value)))
      end
    end
  end
end

local function check_references(ref, table_name, column)
  if type(ref) ~= "table" then
    config_error(table_name, column, "option \"references\" must be a table, got " .. type(ref))
  end
  check_keys(REFERENCE_KEYS, ref, table_name, column, "references key")
  if not ref.table then
    config_error(table_name, column, "references needs a \"table\"")
  end
end

-- Options allowed for `type`: common ones plus the type's own.
local function options_for(type_name, custom)
  local spec = {}
  for k, v in pairs(COMMON_OPTIONS) do spec[k] = v end
  for k, v in pairs(custom and CUSTOM_OPTIONS or TYPE_OPTIONS[type_name]) do spec[k] = v end
  return spec
end

-- ------------------------------------------------------------ builder ----

local Builder = {}
Builder.__index = Builder

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- Normalises `null` into `nullable` and checks it agrees with primary_key.
local function normalise_nullable(col, table_name)
  if col.null ~= nil then
    if col.nullable ~= nil and col.nullable ~= col.null then
      config_error(table_name, col.name, "\"null\" and \"nullable\" disagree")
    end
    col.nullable, col.null = col.null, nil
  end
  if col.primary_key and col.nullable == true then
    config_error(table_name, col.name, "a primary key column cannot be nullable")
  end
end

--- Adds a column; every typed helper ends here. The typed helpers are
-- `t:integer`, `t:bigint`, `t:smallint`, `t:tinyint`, `t:float`, `t:double`,
-- `t:decimal`, `t:string`, `t:text`, `t:binary`, `t:blob`, `t:boolean`,
-- `t:date`, `t:datetime`, `t:time`, `t:timestamp`, `t:json`, `t:enum`,
-- `t:set` and `t:uuid`, each `(name, opts)`.
-- @tparam string name the column
-- @tparam string type_name a neutral type, or a custom one with `sql_type`
-- @tparam[opt] table opts `primary_key`, `nullable`, `default`, `unique`,
--   `index`, `comment`, `references = { table =, column =, on_delete =,
--   on_update = }`, `check`, `sql_type`, and the type's own (`size`,
--   `precision`, `scale`, `unsigned`, `auto_increment`, `values`, `charset`,
--   `collate`, `on_update`, `binary`, `fixed`)
-- @return the builder
-- @raise `ConfigError` naming the table and column: duplicate, unknown
--   option or type, wrong option type
-- @within Builder
function Builder:column(name, type_name, opts)
  local def = self.def
  if type(name) ~= "string" or name == "" then
    config_error(def.name, tostring(name), "column name must be a non-empty string")
  end
  if self.seen[name] then config_error(def.name, name, "duplicate column") end
  if opts ~= nil and type(opts) ~= "table" then
    config_error(def.name, name, "options must be a table, got " .. type(opts))
  end
  if type(type_name) ~= "string" then
    config_error(def.name, name, "column type must be a string, got " .. type(type_name))
  end
  local custom = M.types[type_name] == nil
  if custom and not (opts and opts.sql_type) then
    -- a type registered with ar.register_type: its sql_type (or the neutral
    -- type it maps to) is what the column becomes
    local registered = require("activerecord.types").get(type_name)
    if registered and registered.sql_type then
      opts = copy(opts or {})
      opts.sql_type = registered.sql_type
    elseif registered and registered.schema_type and M.types[registered.schema_type] then
      return self:column(name, registered.schema_type, opts)
    end
  end
  if custom and not (opts and opts.sql_type) then
    config_error(def.name, name, string.format(
      "unknown type %q (known: %s; pass sql_type for a custom one)",
      type_name, table.concat(sorted_keys(M.types), ", ")))
  end
  opts = opts or {}
  check_keys(options_for(type_name, custom), opts, def.name, name, "option")
  if opts.references then check_references(opts.references, def.name, name) end
  local col = copy(opts)
  col.name, col.type = name, type_name
  normalise_nullable(col, def.name)
  self.seen[name] = true
  def.columns[#def.columns + 1] = col
  return self
end

for type_name in pairs(TYPE_OPTIONS) do
  Builder[type_name] = function(self, name, opts)
    return self:column(name, type_name, opts)
  end
end

--- `created_at` / `updated_at` columns, DATETIME(6), maintained by the server.
-- @tparam[opt] table opts column options applied to both
-- @return the builder
-- @within Builder
function Builder:timestamps(opts)
  opts = opts or {}
  check_keys({ precision = "integer" }, opts, self.def.name, nil, "timestamps option")
  local precision = opts.precision or 6
  local now = M.raw(precision > 0 and ("CURRENT_TIMESTAMP(" .. precision .. ")")
    or "CURRENT_TIMESTAMP")
  self:datetime("created_at", { precision = precision, nullable = false, default = now })
  self:datetime("updated_at", { precision = precision, nullable = false, default = now,
    on_update = now })
  return self
end

local function column_list(columns, table_name, what)
  if type(columns) == "string" then columns = { columns } end
  if not is_list_of_strings(columns) then
    config_error(table_name, nil, what .. " needs a column name or a non-empty list of them")
  end
  return copy(columns)
end

--- A composite (or single) primary key declared at table level.
-- @tparam string|table columns the column(s)
-- @return the builder
-- @raise `ConfigError` for a bad list or a second primary key
-- @within Builder
function Builder:primary_key(columns)
  local def = self.def
  if def.primary_key then config_error(def.name, nil, "two primary keys") end
  def.primary_key = column_list(columns, def.name, "primary_key")
  return self
end

--- An index.
-- @tparam string|table columns the column(s)
-- @tparam[opt] table opts `unique`, `name`, ...
-- @return the builder
-- @raise `ConfigError` for a bad list or option
-- @within Builder
function Builder:index(columns, opts)
  local def = self.def
  opts = opts or {}
  check_keys({ unique = "boolean", name = "string" }, opts, def.name, nil, "index option")
  def.indexes[#def.indexes + 1] = {
    columns = column_list(columns, def.name, "index"), unique = opts.unique == true,
    name = opts.name,
  }
  return self
end

--- A foreign key: `t:foreign_key("user_id", { table = "users", column = "id", on_delete = "cascade" })`.
-- @tparam string|table columns the referencing column(s)
-- @tparam table ref `table`, `column`/`columns`, `on_delete`, `on_update`, `name`
-- @return the builder
-- @raise `ConfigError` for a bad reference or action
-- @within Builder
function Builder:foreign_key(columns, ref)
  local def = self.def
  columns = column_list(columns, def.name, "foreign_key")
  check_references(ref, def.name, columns[1])
  local ref_columns = ref.columns and copy(ref.columns) or { ref.column or "id" }
  if #ref_columns ~= #columns then
    config_error(def.name, columns[1], "foreign key and referenced column counts differ")
  end
  def.foreign_keys[#def.foreign_keys + 1] = {
    columns = columns, references = { table = ref.table, columns = ref_columns },
    on_delete = M.fk_action(ref.on_delete), on_update = M.fk_action(ref.on_update),
    name = ref.name,
  }
  return self
end

--- A CHECK constraint: `t:check("age_positive", schema.raw("age >= 0"))`; the name may be omitted.
-- @tparam[opt] string name the constraint's name
-- @tparam table expr a `raw` fragment
-- @return the builder
-- @raise `ConfigError` for a non-raw expression or a bad name
-- @within Builder
function Builder:check(name, expr)
  local def = self.def
  if expr == nil and M.is_raw(name) then name, expr = nil, name end
  if name ~= nil and (type(name) ~= "string" or name == "") then
    config_error(def.name, nil, "check name must be a non-empty string")
  end
  if not M.is_raw(expr) then
    config_error(def.name, nil, "check needs schema.raw(...) for its expression")
  end
  def.checks[#def.checks + 1] = { name = name, expr = expr }
  return self
end

-- ----------------------------------------------------------- finalise ----

local function require_columns(def, columns, what)
  local known = {}
  for _, col in ipairs(def.columns) do known[col.name] = col end
  for _, name in ipairs(columns) do
    if not known[name] then config_error(def.name, name, what .. " names an unknown column") end
  end
  return known
end

-- Settles the primary key: table-level list or the one column-level flag.
local function settle_primary_key(def)
  local flagged = {}
  for _, col in ipairs(def.columns) do
    if col.primary_key then flagged[#flagged + 1] = col.name end
  end
  if #flagged > 1 then
    config_error(def.name, flagged[2], "two primary keys (use t:primary_key{...} for a composite one)")
  end
  if def.primary_key and #flagged > 0 then
    config_error(def.name, flagged[1], "two primary keys (column flag and t:primary_key)")
  end
  if not def.primary_key and #flagged == 1 then def.primary_key = flagged end
  if def.primary_key then
    local known = require_columns(def, def.primary_key, "primary key")
    for _, name in ipairs(def.primary_key) do
      if known[name].nullable == true then
        config_error(def.name, name, "a primary key column cannot be nullable")
      end
    end
  end
end

local function finalise(def)
  if #def.columns == 0 then config_error(def.name, nil, "a table needs at least one column") end
  settle_primary_key(def)
  for _, index in ipairs(def.indexes) do require_columns(def, index.columns, "index") end
  for _, fk in ipairs(def.foreign_keys) do require_columns(def, fk.columns, "foreign key") end
  return def
end

-- ------------------------------------------------------------- public ----

--- Builds a neutral table definition (no SQL): a backend's dialect compiles it.
-- @tparam string name the table
-- @tparam function fn called with the builder `t` (see the Builder section)
-- @tparam[opt] table opts table options: `engine`, `charset`, `collate`, `comment`, `if_not_exists`
-- @treturn table `{ name, columns, indexes, foreign_keys, checks, primary_key, options }`
-- @raise `ConfigError` for any definition mistake, naming the table and column
function M.define(name, fn, opts)
  if type(name) ~= "string" or name == "" then
    errors.raise("ConfigError", "table name must be a non-empty string, got " .. type(name))
  end
  if type(fn) ~= "function" then config_error(name, nil, "define needs a builder function") end
  opts = opts or {}
  if type(opts) ~= "table" then config_error(name, nil, "table options must be a table") end
  check_keys(TABLE_OPTIONS, opts, name, nil, "table option")
  local def = {
    name = name, columns = {}, indexes = {}, foreign_keys = {}, checks = {},
    primary_key = nil, options = copy(opts),
  }
  fn(setmetatable({ def = def, seen = {} }, Builder))
  return finalise(def)
end

-- Options of the I/O helpers that are not table options.
local function split_io_options(opts)
  local table_opts = copy(opts)
  local force = table_opts.force
  table_opts.force = nil
  return table_opts, force
end

-- schema.create_table(db, name, fn, opts) or schema.create_table(db, def, opts).
-- opts.force = true drops an existing table first. Returns the definition.
-- The I/O helpers take a backend first: a clear error, not a nil index.
local function check_backend(db, fn)
  if type(db) ~= "table" or type(db.execute) ~= "function" or db.dialect == nil then
    errors.raise("ConfigError", ("schema.%s expects a backend (from ar.connect) as its first argument")
      :format(fn))
  end
end

--- Creates a table on a backend: `schema.create_table(db, name, fn, opts)`
-- or `schema.create_table(db, def, opts)`.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string|table name the table, or a definition from `define`
-- @tparam[opt] function|table fn the builder function (or, with a definition, the options)
-- @tparam[opt] table opts the options of `define`, plus `force = true` to drop an existing table first
-- @treturn table the definition
-- @raise `ConfigError` (definition mistakes, no backend), `CapabilityError`
--   (a column feature the server lacks), and the backend's statement errors
function M.create_table(db, name, fn, opts)
  check_backend(db, "create_table")
  local def, force
  if type(name) == "table" then
    def, force = name, type(fn) == "table" and fn.force
  else
    local table_opts
    table_opts, force = split_io_options(opts)
    def = M.define(name, fn, table_opts)
  end
  if force then db:execute(db.dialect:drop_table_sql(def.name, { if_exists = true })) end
  db:execute(db.dialect:create_table_sql(def))
  return def
end

--- Drops a table.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string name the table
-- @tparam[opt] table opts `if_exists = true`
-- @raise `ConfigError` (no backend), `QueryError` (bad name) and the backend's statement errors
function M.drop_table(db, name, opts)
  check_backend(db, "drop_table")
  db:execute(db.dialect:drop_table_sql(name, opts))
end

--- Adds an index to an existing table.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string table_name the table
-- @tparam string|table columns the column(s)
-- @tparam[opt] table opts `unique`, `name`, ...
-- @raise `ConfigError` (no backend, bad option) and the backend's statement errors
function M.add_index(db, table_name, columns, opts)
  check_backend(db, "add_index")
  db:execute(db.dialect:add_index_sql(table_name, columns, opts))
end

--- Whether a table exists (`"t"` in the current database, or `"db.t"`).
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string name the table
-- @treturn boolean
-- @raise `ConfigError` (no backend), `QueryError` (bad name)
function M.table_exists(db, name)
  check_backend(db, "table_exists")
  db.dialect:quote_qualified(name) -- validates, even though the name is bound
  local schema_name, table_name = name:match("^([^.]+)%.([^.]+)$")
  local sql, params
  if schema_name then
    sql = "SELECT 1 AS present FROM information_schema.TABLES"
      .. " WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? LIMIT 1"
    params = { schema_name, table_name }
  else
    sql = "SELECT 1 AS present FROM information_schema.TABLES"
      .. " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? LIMIT 1"
    params = { name }
  end
  local result = db:execute(sql, table.unpack(params))
  return result ~= nil and result.rows ~= nil and #result.rows > 0
end

--- The current schema of `db` as the text of a Lua migration file (see
-- `activerecord.schema.dump`).
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @treturn string the migration's Lua source
function M.dump(db, opts)
  check_backend(db, "dump")
  return require("activerecord.schema.dump").dump(db, opts)
end

M.INTEGER_TYPES = INTEGER_TYPES
return M

--- The schema DSL's definition builder: the option tables and their checks,
-- the builder `t` a `schema.define` function receives (columns, keys,
-- indexes, foreign keys, checks) and the checks of the finished definition.
-- `activerecord.schema` re-exports `define`, `types`, `fk_action` and
-- `fk_actions`; this module is its implementation.
-- @module activerecord.schema.builder
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local raw = require("activerecord.schema.raw")

local M = {}

-- -------------------------------------------------------------- types ----

local INTEGER_TYPES = { integer = true, bigint = true, smallint = true, tinyint = true }

-- Options every column accepts, by expected kind.
local COMMON_OPTIONS = {
  primary_key = "boolean", nullable = "boolean", null = "boolean", default = "default",
  unique = "boolean", index = "boolean", comment = "string", references = "references",
  check = "raw", sql_type = "string", generated = "generated",
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

local function config_error(table_name, column, message, option)
  errors.raise("ConfigError", where_of(table_name, column) .. ": " .. message,
    { table = table_name, column = column, option = option })
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

local RAW_EXPECTED = "schema.raw(...) or ar.raw(...) without parameters"

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
  raw = function(v)
    local r, why = raw.as_raw(v)
    if r then return true end
    return false, RAW_EXPECTED .. (type(v) == "table" and " (" .. why .. ")" or "")
  end,
  generated = function(v)
    if type(v) ~= "table" then return false, "{ expr = schema.raw(...), stored = true|false }" end
    for key in pairs(v) do
      if key ~= "expr" and key ~= "stored" then
        return false, "{ expr = ..., stored = ... } (unknown key " .. tostring(key) .. ")"
      end
    end
    local r, why = raw.as_raw(v.expr)
    if not r then
      return false, "{ expr = " .. RAW_EXPECTED .. ", stored = true|false } (expr: " .. why .. ")"
    end
    if v.stored ~= nil and type(v.stored) ~= "boolean" then
      return false, "{ expr = ..., stored = true|false } (stored: a boolean)"
    end
    return true
  end,
  action = function(v)
    return M.fk_action(v) ~= nil, '"cascade", "set null", "restrict" or "no action"'
  end,
  default = function(v)
    local t = type(v)
    if t == "table" then
      local r, why = raw.as_raw(v)
      if r then return true end
      return false, "a string, a finite number, a boolean or " .. RAW_EXPECTED .. " (" .. why .. ")"
    end
    local ok = t == "string" or t == "boolean"
      or (t == "number" and v == v and v ~= math.huge and v ~= -math.huge)
    return ok, "a string, a finite number, a boolean or " .. RAW_EXPECTED
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
          key, expected, type(value)), key)
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

-- What a generated column cannot also have: the server computes its value.
local NOT_WITH_GENERATED = { "default", "auto_increment", "on_update" }

-- ar.raw fragments become schema.raw ones (checked once, frozen), so a
-- definition holds one kind of fragment; `generated` is copied as
-- { expr = <raw>, stored = <boolean> } and checked against what a
-- computed column cannot have.
local function normalise_raw(col, table_name)
  for _, key in ipairs({ "default", "on_update", "check" }) do
    if type(col[key]) == "table" then col[key] = raw.as_raw(col[key]) end
  end
  local gen = col.generated
  if gen ~= nil then
    for _, key in ipairs(NOT_WITH_GENERATED) do
      if col[key] ~= nil and not (key == "auto_increment" and col[key] == false) then
        config_error(table_name, col.name, string.format(
          "a generated column cannot have %q (the server computes its value)", key), key)
      end
    end
    col.generated = { expr = raw.as_raw(gen.expr), stored = gen.stored == true }
  end
end

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
-- `t:set` and `t:uuid`, each `(name, opts)`. Wherever a fragment is taken
-- (`default`, `on_update`, `check`, `generated.expr`) it may be
-- `schema.raw(...)` or `ar.raw(...)` without parameters; the definition
-- holds `schema.raw` fragments.
-- @tparam string name the column
-- @tparam string type_name a neutral type, or a custom one with `sql_type`
-- @tparam[opt] table opts `primary_key`, `nullable`, `default`, `unique`,
--   `index`, `comment`, `references = { table =, column =, on_delete =,
--   on_update = }`, `check`, `sql_type`, `generated = { expr = schema.raw(...),
--   stored = true|false }` (a column the server computes: `AS (expr) VIRTUAL`,
--   or `STORED`; no `default`, `auto_increment` or `on_update`), and the type's own (`size`,
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
  normalise_raw(col, def.name)
  self.seen[name] = true
  def.columns[#def.columns + 1] = col
  return self
end

for type_name in pairs(TYPE_OPTIONS) do
  Builder[type_name] = function(self, name, opts)
    return self:column(name, type_name, opts)
  end
end

--- `created_at` / `updated_at` columns, DATETIME(6) NOT NULL, both holding
-- UTC: `DEFAULT (UTC_TIMESTAMP(6))`, so a row inserted by any session,
-- whatever its `time_zone`, starts in UTC, the way the `timestamps` mixin
-- writes. No `ON UPDATE CURRENT_TIMESTAMP`: the server would write the
-- session's local time there (five hours off under `time_zone = "+05:00"`).
-- `updated_at` moves when a model with the `timestamps` mixin saves a
-- change; `update_all` and raw SQL leave it alone unless they set it.
-- Needs expression defaults (MariaDB 10.2+, MySQL 8.0.13+).
-- @tparam[opt] table opts `precision` (0-6, default 6)
-- @return the builder
-- @within Builder
function Builder:timestamps(opts)
  opts = opts or {}
  check_keys({ precision = "integer" }, opts, self.def.name, nil, "timestamps option")
  local precision = opts.precision or 6
  local now = raw.raw("(UTC_TIMESTAMP(" .. (precision > 0 and precision or "") .. "))")
  self:datetime("created_at", { precision = precision, nullable = false, default = now })
  self:datetime("updated_at", { precision = precision, nullable = false, default = now })
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
-- @tparam table expr a `raw` fragment, or `ar.raw(...)` without parameters
-- @return the builder
-- @raise `ConfigError` for a non-raw expression or a bad name
-- @within Builder
function Builder:check(name, expr)
  local def = self.def
  if expr == nil and type(name) == "table" then name, expr = nil, name end
  if name ~= nil and (type(name) ~= "string" or name == "") then
    config_error(def.name, nil, "check name must be a non-empty string")
  end
  local fragment, why = raw.as_raw(expr)
  if not fragment then
    config_error(def.name, nil, "check needs " .. RAW_EXPECTED .. " for its expression ("
      .. why .. ")")
  end
  expr = fragment
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



--- One column checked as `t:column` checks it, outside a table definition
-- (what a migration's `add_column` and `change_column` take).
-- @tparam string table_name the table, for messages
-- @tparam string name the column
-- @tparam string type_name a neutral type, or a custom one with `sql_type`
-- @tparam[opt] table opts the options of `t:column`
-- @treturn table the column `{ name, type, <options> }`
-- @raise `ConfigError` naming the table and column, as `t:column`
function M.column(table_name, name, type_name, opts)
  if type(table_name) ~= "string" or table_name == "" then
    errors.raise("ConfigError", "table name must be a non-empty string, got " .. type(table_name))
  end
  local def = { name = table_name, columns = {}, indexes = {}, foreign_keys = {}, checks = {} }
  setmetatable({ def = def, seen = {} }, Builder):column(name, type_name, opts)
  return def.columns[1]
end

M.INTEGER_TYPES = INTEGER_TYPES
return M

--- Models read their table (design section 8: "the table is read, not
-- assumed"). On a model's first use with a backend (`shapes.backend_of`,
-- which every query and write goes through, and `new`/`_build`), the
-- table's columns (`db:columns`, cached per backend) fill in what the
-- declaration leaves out, and a model without `fields` takes its fields
-- from the table. The model remembers the backend and its schema version;
-- after DDL through that backend (or `db:reset_schema_cache()`) the next
-- use reads the table again.
--
-- Column types -> field types of a model without `fields`: tinyint,
-- smallint, integer -> "integer"; bigint -> "bigint"; boolean (TINYINT(1))
-- -> "boolean"; float, double -> "float"; decimal -> "decimal" (precision,
-- scale); string -> "string" (size); text -> "text"; binary, blob ->
-- "binary"; date, datetime, timestamp, time, json, enum, set (values) and
-- MariaDB's uuid -> the same name; any other type -> "string" when the
-- column has a character set, else "binary" (read as it is).
--
-- What the table gives a field whose declaration leaves it out: `size`
-- (string, text, binary, enum, set fields), `precision` and `scale`
-- (decimal), `values` (enum, set), `nullable`, `default` (a literal column
-- default becomes the default of new records, as Rails does — bulk rows
-- leave it to the server, and an upsert does not overwrite a row's column
-- with it; any column default, literal or expression, sets
-- `server_default`, so a new record may leave the field nil; a declared
-- `required` still requires it), `auto_increment`; and always: `generated`
-- (read-only, never written, read back after INSERT and UPDATE) and
-- `on_update` (read back after an UPDATE that did not set it).
--
-- Which columns a declared type can hold (`COMPATIBLE`); anything else is
-- a `ConfigError` naming Model.field, table.column and its SQL type:
--   integer, bigint  <- tinyint, smallint, integer, bigint, boolean
--   float            <- float, double, tinyint, smallint, integer
--   decimal          <- decimal, tinyint, smallint, integer, bigint
--   string, text     <- string, text, enum, set, date, datetime, timestamp,
--                       time, uuid (and other types with a character set)
--   binary           <- binary, blob, string, text (and any other type)
--   boolean          <- boolean, tinyint
--   date             <- date
--   datetime, timestamp <- datetime, timestamp
--   time             <- time
--   json             <- json (and text where the server has no JSON type or
--                       cannot tell a JSON column: the model decodes the text)
--   enum             <- enum, string
--   set              <- set, string
--   uuid             <- string, uuid (binary = true: binary, blob)
-- A type registered with `ar.register_type` may sit on any column.
--
-- Re-reading: a declared field's options are refreshed in place (what the
-- declaration states always wins); the field set never changes after the
-- first read (a model without `fields` keeps the columns it found then:
-- records already made hold those slots). A column that went away, or
-- whose new type the field cannot hold, is a `ConfigError` at next use; a
-- column added later stays out of the model until it is defined again.
-- A missing table: a model with `fields` runs its statement (the server's
-- error tells), nothing is remembered; a model without is a `ConfigError`.
--
-- A model without `fields` answers `fields`, `field_list`, `columns`,
-- `primary_key` and `pk_field` once its table is read: asking for one is a
-- first use (so is `Model:query()`, where `where{}` converts values by the
-- fields). A mixin's `setup` that reads them does so at definition, with
-- the backend the model has then. The key is `primary_key` when given, a
-- mixin's key field, else the table's (a composite one becomes the model's
-- composite key, in column order; a missing one is a `ConfigError` naming
-- the table). A model with `fields` that names no key
-- gets `id`, which the table must have.
--
-- A backend without `columns` (a stand-in without introspection) leaves
-- declared models as declared and refuses models without fields.
-- @module activerecord.model.reflect
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local registry = require("activerecord.registry")
local json = require("activerecord.json")
local query = require("activerecord.query")
local fields_mod = require("activerecord.model.fields")
local shapes = require("activerecord.model.shapes")
local composite_key = require("activerecord.model.composite_key")

local M = {}

local rawget, type, pairs, ipairs = rawget, type, pairs, ipairs
local is_expr = query.is_expr

--- Column type (neutral) -> the field type of a model without `fields`.
M.FIELD_TYPE = {
  tinyint = "integer", smallint = "integer", integer = "integer", bigint = "bigint", boolean = "boolean",
  float = "float", double = "float", decimal = "decimal", string = "string", text = "text",
  binary = "binary", blob = "binary", date = "date", datetime = "datetime", timestamp = "timestamp",
  time = "time", json = "json", enum = "enum", set = "set", uuid = "uuid",
}
local FIELD_TYPE = M.FIELD_TYPE

local function set_of(...)
  local s = {}
  for _, v in ipairs({ ... }) do s[v] = true end
  return s
end

local TEXTUAL = set_of("string", "text", "enum", "set", "date", "datetime", "timestamp", "time", "uuid")

--- Field type -> the column types it can hold (see the module's table).
M.COMPATIBLE = {
  integer = set_of("tinyint", "smallint", "integer", "bigint", "boolean"),
  bigint = set_of("tinyint", "smallint", "integer", "bigint", "boolean"),
  float = set_of("float", "double", "tinyint", "smallint", "integer"),
  decimal = set_of("decimal", "tinyint", "smallint", "integer", "bigint"),
  string = TEXTUAL,
  text = TEXTUAL,
  binary = set_of("binary", "blob", "string", "text"),
  boolean = set_of("boolean", "tinyint"),
  date = set_of("date"),
  datetime = set_of("datetime", "timestamp"),
  timestamp = set_of("datetime", "timestamp"),
  time = set_of("time"),
  json = set_of("json"),
  enum = set_of("enum", "string"),
  set = set_of("set", "string"),
  uuid = set_of("string", "uuid", "binary", "blob"),
}
local COMPATIBLE = M.COMPATIBLE

-- Digits of the integer column types, for a decimal field on one.
local INTEGER_DIGITS = { tinyint = 3, smallint = 5, integer = 10, bigint = 20, boolean = 1 }

local function sorted_names(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, ", ")
end

local function a_field(ftype)
  return (ftype:match("^[aeiou]") and "an " or "a ") .. ftype .. " field"
end

-- Whether the model reads JSON from text itself: the server has no JSON
-- type, or the C core cannot tell a JSON column (then a text column holds
-- a JSON field's values as well).
local function json_in_text(db)
  if not db or type(db.supports) ~= "function" then return false end
  local d = db.dialect
  local json_type = db:supports("json") and not (d and d.supports and not d:supports("json"))
  return not json_type or not (db:supports("native_json") or db:supports("json_extended_metadata"))
end

-- Whether field f can hold the values of column col (on db); else the reason.
local function holds(f, col, db)
  if not f.type_spec.builtin then return true end
  local ct = col.type
  if f.type == "json" and ct == "text" and json_in_text(db) then return true end
  local known = FIELD_TYPE[ct] ~= nil
  if not known then -- a type the ORM does not know (point, inet6, ...): bytes, or text with a charset
    if f.type == "binary" then return true end
    if (f.type == "string" or f.type == "text") and col.charset then return true end
    return false, ("%s takes %s columns"):format(a_field(f.type), sorted_names(COMPATIBLE[f.type] or {}))
  end
  local ok = COMPATIBLE[f.type]
  if ok and ok[ct] then
    if f.type ~= "uuid" then return true end
    local bytes = ct == "binary" or ct == "blob"
    if (f.binary == true) == bytes then return true end
    return false, f.binary and "a binary uuid field takes binary columns" or
      "a uuid field takes char/uuid columns (binary = true for binary ones)"
  end
  return false, ("%s takes %s columns"):format(a_field(f.type), sorted_names(ok or {}))
end
M.holds = holds

-- A literal column default as the field's default for new records (tables
-- made fresh for each record).
local function default_of(f, v)
  if f.type == "json" and type(v) == "string" then
    local ok = pcall(json.decode, v)
    if not ok then return nil end
    return function() return json.decode(v) end
  elseif f.type == "set" and type(v) == "string" then
    return function()
      local out = {}
      for item in v:gmatch("[^,]+") do out[#out + 1] = item end
      return out
    end
  elseif f.type == "boolean" and math.type(v) == "integer" then
    return v ~= 0
  end
  return v
end

-- What the table sets in field f (column col): key -> value, plus the
-- source of the default (compared instead of the function it may become).
local SIZED = { string = true, text = true, binary = true, enum = true, set = true }

local function table_options(f, col)
  local o = { nullable = col.nullable, generated = col.generated ~= nil or nil,
              on_update = col.on_update ~= nil or nil }
  if SIZED[f.type] and math.type(col.size) == "integer" then o.size = col.size end
  if f.type == "decimal" then
    if col.type == "decimal" then
      o.precision, o.scale = col.precision, col.scale
    elseif INTEGER_DIGITS[col.type] then
      o.precision, o.scale = INTEGER_DIGITS[col.type], 0
    end
  end
  if (f.type == "enum" or f.type == "set") and col.values then o.values = col.values end
  if col.generated then o.readonly = true end
  -- a default the server gives (a value or an expression; not DEFAULT NULL)
  if col.default ~= nil or col.generated then o.server_default = true end
  local d = col.default
  if d ~= nil and not is_expr(d) then o.default, o.default_src = default_of(f, d), d end
  o.auto = col.auto_increment or nil
  return o
end

-- Options the table fills unless declared, and those it always sets.
local FILLED = { "size", "precision", "scale", "values", "nullable", "readonly", "server_default" }
local ALWAYS = { "generated", "on_update" }

local function same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- Sets f's options from the table (o); returns whether one changed.
local function apply_options(f, o)
  local declared, changed = f.declared, false
  local function put(k, v)
    if not same(f[k], v) then
      f[k] = v
      changed = true
    end
  end
  for _, k in ipairs(FILLED) do
    if declared[k] == nil then put(k, o[k]) end
  end
  for _, k in ipairs(ALWAYS) do put(k, o[k]) end
  if declared.default == nil and not same(f.default_src, o.default_src) then
    f.default, f.default_src, changed = o.default, o.default_src, true
  end
  if declared.auto_increment == nil and f.auto ~= o.auto then
    f.auto = o.auto
    changed = true
  end
  return changed
end

local function missing_column(model, f)
  return ("%s.%s: table %s has no column %s"):format(model.name, f.name, model.table, f.column)
end

-- Problems of field f against column col (appended to `problems`).
local function check_field(model, f, col, db, problems)
  if not col then
    local msg = missing_column(model, f)
    if f.implicit then
      msg = msg .. " (the model's primary key when it names none: name it with primary_key = \"...\")"
    end
    problems[#problems + 1] = msg
    return
  end
  local ok, why = holds(f, col, db)
  if not ok then
    problems[#problems + 1] = ("%s.%s (%s) cannot hold %s.%s (%s): %s"):format(model.name, f.name, f.type,
      model.table, col.name, col.sql_type, why)
  end
end

-- ---- a model without fields ----------------------------------------------

-- The fields of a model without `fields`, from the columns (mixins'
-- fields as declared); returns fields, the key's name, or nil, problems.
local function fields_from_columns(model, meta, cols, problems)
  local declared_by_column = {}
  for _, f in pairs(meta.declared_fields) do declared_by_column[f.column] = f end
  local out, table_pk = {}, {}
  for _, col in ipairs(cols) do
    local f = declared_by_column[col.name]
    if not f then
      local ok, parsed = pcall(fields_mod.parse, model.name, col.name,
        { type = FIELD_TYPE[col.type] or (col.charset and "string" or "binary") })
      if ok then
        f = parsed
      else
        problems[#problems + 1] = ("%s: column %s.%s is no field name (%s); declare the model's fields")
          :format(model.name, model.table, col.name, type(parsed) == "table" and parsed.message or tostring(parsed))
      end
    end
    if f then out[f.name] = f end
    if col.primary_key then table_pk[#table_pk + 1] = col.name end
  end
  for name, f in pairs(meta.declared_fields) do
    if not out[name] then problems[#problems + 1] = missing_column(model, f) end
  end
  local pk = meta.declared_pk
  if not pk then
    for name, f in pairs(meta.declared_fields) do
      if f.primary_key then pk = name end
    end
  end
  if not pk then
    if #table_pk == 0 then
      problems[#problems + 1] = ("%s: table %s has no primary key; name the model's with primary_key = \"...\"")
        :format(model.name, model.table)
    else -- the table's key (a composite one in column order: activerecord.model.composite_key)
      local names = {}
      for i, col in ipairs(table_pk) do
        for name, f in pairs(out) do
          if f.column == col then names[i] = name end
        end
      end
      if #names == #table_pk then pk = #names == 1 and names[1] or names end
    end
  end
  for _, name in ipairs(type(pk) == "table" and pk or { pk }) do
    if not out[name] then
      problems[#problems + 1] = ("%s.%s: the primary key names no column of table %s"):format(model.name, name,
        model.table)
    end
  end
  for name in pairs(model.relations) do
    if out[name] then
      problems[#problems + 1] = ("%s.%s: a relation cannot share a field's name"):format(model.name, name)
    end
  end
  return out, pk
end

-- The model takes the fields found (its first read): the key, the order,
-- the slots; its class answers `primary_key`, `field_list`, ... itself.
local function adopt(model, meta, found, pk)
  local fields = meta.fields
  rawset(model, "fields", fields)
  for name, f in pairs(found) do
    if composite_key.in_key(pk, name) then f.declared.primary_key = true end
    fields[name] = f
  end
  fields_mod.finish(model, pk, true)
  meta.pending = nil
  setmetatable(meta.class_index, { __index = meta.class_methods })
end

-- ---- reading the table -----------------------------------------------------

local function mark(meta, db, version)
  meta.reflected_for, meta.schema_version = db, version
end

--- Reads the model's table on `db` and applies it. Returns nil when done
-- (the model remembers `db` and its schema version), or a list of
-- problems (nothing applied), or `nil, "missing"` for a missing table of a
-- model with fields (nothing remembered: its statements run and fail).
-- @tparam table model the model
-- @tparam table db the backend
-- @treturn ?table the problems
-- @treturn ?string `"missing"`
function M.apply(model, db)
  local meta = model._meta
  local version = db._schema_version
  if type(db.columns) ~= "function" then -- a backend that cannot read tables
    if meta.pending then
      return { ("%s: this backend cannot read table %s: declare the model's fields"):format(model.name,
        model.table) }
    end
    mark(meta, db, version)
    return nil
  end
  local cols = db:columns(model.table)
  if not cols then
    if meta.pending then
      return { ("%s: table %s does not exist (a model without fields reads them from its table)")
        :format(model.name, model.table) }
    end
    return nil, "missing"
  end
  local by_name = {}
  for _, col in ipairs(cols) do by_name[col.name] = col end
  local problems = {}
  local list, found, pk
  if meta.pending then
    found, pk = fields_from_columns(model, meta, cols, problems)
    list = {}
    for _, f in pairs(found) do list[#list + 1] = f end
    table.sort(list, function(a, b) return a.name < b.name end)
  else
    list = model.field_list
  end
  for _, f in ipairs(list) do check_field(model, f, by_name[f.column], db, problems) end
  if #problems > 0 then return problems end
  -- what the table says of each field; a type's required option (an
  -- enum's values) declared or given by the table
  local table_opts = {}
  for _, f in ipairs(list) do
    local o = table_options(f, by_name[f.column])
    table_opts[f] = o
    for opt, want in pairs(f.type_spec.options or {}) do
      local v = f.declared[opt]
      if v == nil then v = o[opt] end
      if type(v) ~= want then
        problems[#problems + 1] = ("%s.%s: type '%s' needs option '%s' (a %s): neither declared nor given by %s.%s")
          :format(model.name, f.name, f.type, opt, want, model.table, f.column)
      end
    end
  end
  if #problems > 0 then return problems end
  -- nothing wrong: the options are set
  if found then
    for name, f in pairs(found) do f.primary_key = composite_key.in_key(pk, name) or nil end
  end
  local changed = false
  for _, f in ipairs(list) do
    if apply_options(f, table_opts[f]) then changed = true end
  end
  if found then
    adopt(model, meta, found, pk)
    changed = true
  end
  if changed then fields_mod.install(model, meta) end
  mark(meta, db, version)
  return nil
end

local function raise(model, problems)
  local msg
  if #problems == 1 then
    msg = problems[1]
  else
    msg = ("%s does not match its table:\n  %s"):format(model.name, table.concat(problems, "\n  "))
  end
  errors.raise("ConfigError", msg, { model = model.name, table = model.table, problems = problems })
end

--- Reads the table now (what `shapes.backend_of` calls when the model was
-- not read on `db` at its current schema version).
-- @tparam table model the model
-- @tparam table db the backend
-- @raise `ConfigError` listing every field that does not match the table
function M.ensure(model, db)
  local problems = M.apply(model, db)
  if problems then raise(model, problems) end
end

--- The model's first use: its table read when a backend is at hand (a
-- model without fields needs one), then its records may be made.
-- @tparam table model the model
-- @raise `ConfigError` without a backend for a model without fields, or as `ensure`
function M.first_use(model)
  local meta = model._meta
  local db = rawget(model, "backend") or registry.default_backend()
  if db then
    shapes.backend_of(model)
  elseif meta.pending then
    errors.raise("ConfigError", ("%s: no backend to read table %s from (a model without fields reads "
      .. "them on first use: pass backend = db, or ar.set_default_backend(db))"):format(model.name, model.table),
      { model = model.name, table = model.table })
  end
  if meta.first_use then
    meta.first_use = nil
    meta.new, meta.build = meta.real_new, meta.real_build
  end
end

--- Reads the table when a backend is at hand and the model is not read on
-- it yet (for `valid`: checks without a backend use the declaration).
-- @tparam table model the model
function M.if_possible(model)
  local meta = model._meta
  local db = rawget(model, "backend") or registry.default_backend()
  if meta.pending then return M.first_use(model) end
  if db and (meta.reflected_for ~= db or meta.schema_version ~= db._schema_version) then shapes.backend_of(model) end
end

local CHECK_OPTIONS = { backend = "table", models = "table" }

--- Checks models against their tables at once (what their first use does
-- one by one): for an application's start-up or CI. `ar.check_models`.
-- Every model is checked; a model without a backend (and no default one,
-- nor `opts.backend`) is reported too. The models checked are read: their
-- first use reads nothing more.
-- @tparam[opt] table opts `backend` (for models that name none, instead of
--   the default backend), `models` (an array of model classes or names:
--   only these; default every model defined, see `registry.models`)
-- @treturn boolean true when every model matches its table
-- @raise `ConfigError` listing every problem (`problems` holds them, one
--   text each, naming Model.field and table.column)
function M.check_models(opts)
  opts = opts or {}
  if type(opts) ~= "table" then errors.raise("ConfigError", "check_models expects an options table") end
  options.check(opts, CHECK_OPTIONS, "check_models")
  local list = {}
  for i, m in ipairs(opts.models or registry.models()) do
    list[i] = registry.resolve_model(m, "check_models")
  end
  local problems = {}
  for _, model in ipairs(list) do
    local db = rawget(model, "backend") or opts.backend or registry.default_backend()
    if not db then
      problems[#problems + 1] = ("%s: no backend (pass backend = db, or ar.set_default_backend(db))")
        :format(model.name)
    else
      local found, missing = M.apply(model, db)
      if missing then
        problems[#problems + 1] = ("%s: table %s does not exist"):format(model.name, model.table)
      end
      for _, p in ipairs(found or {}) do problems[#problems + 1] = p end
    end
  end
  if #problems > 0 then
    errors.raise("ConfigError", ("check_models: %d problem%s:\n  %s"):format(#problems,
      #problems == 1 and "" or "s", table.concat(problems, "\n  ")), { problems = problems })
  end
  return true
end

return M

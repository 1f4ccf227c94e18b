--- A model's fields: parsing a declaration, the primary key, the records'
-- slots, and the per-model code generated from the fields (the validator,
-- the record loaders, `new`/`_build`, the write collectors). `install`
-- runs when the model is defined and again whenever reading its table
-- changed a field's options (activerecord.model.reflect): everything that
-- captured an option is made anew, and the statement caches start over.
-- The tables the records' metatable reads (`fields`, `field_list`,
-- `columns`, the slot maps) keep their identity: they are refilled in place.
-- @module activerecord.model.fields
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local options = require("activerecord.options")
local types = require("activerecord.types")
local validation = require("activerecord.validation")
local layout = require("activerecord.model.layout")
local finders = require("activerecord.model.finders")
local shapes = require("activerecord.model.shapes")

local M = {}

--- The options a field declaration takes, with their Lua types (a shape
-- check follows for those in `SHAPES`).
M.OPTIONS = {
  type = "string", primary_key = "boolean", auto_increment = "boolean", column = "string",
  default = "any", required = "boolean", nullable = "boolean", readonly = "boolean", write_once = "boolean",
  size = "number", precision = "number", scale = "number", values = "table", binary = "boolean",
  min = "number", max = "number", length = "any", format = "string", one_of = "table",
  validate = "function", unsigned = "boolean", unique = "any", index = "boolean",
  comment = "string", sql_type = "string", server_default = "boolean",
}
local FIELD_OPTIONS = M.OPTIONS

-- ---- option shapes ----------------------------------------------------------
-- Each checker returns the option's value as the field keeps it, or nil
-- when the shape is not one it takes; `ACCEPTED` says which those are.

local function is_count(v) return math.type(v) == "integer" and v >= 0 end

local function is_list(v, each)
  if type(v) ~= "table" or #v == 0 then return false end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return false end
  for i = 1, #v do
    if each and not each(v[i]) then return false end
  end
  return true
end

local function length_shape(v)
  if is_count(v) then return { min = v, max = v, is = v } end
  if type(v) ~= "table" then return nil end
  if v.is ~= nil then
    if not is_count(v.is) or next(v, next(v)) ~= nil then return nil end
    return { min = v.is, max = v.is, is = v.is }
  end
  local lo, hi, n = v.min, v.max, 0
  for _ in pairs(v) do n = n + 1 end
  if v[1] ~= nil then
    if n ~= 2 or #v ~= 2 then return nil end
    lo, hi = v[1], v[2]
  elseif n ~= (lo ~= nil and 1 or 0) + (hi ~= nil and 1 or 0) or n == 0 then
    return nil
  end
  if (lo ~= nil and not is_count(lo)) or (hi ~= nil and not is_count(hi)) then return nil end
  if lo and hi and lo > hi then return nil end
  return { min = lo, max = hi }
end

local UNIQUE_KEYS = { scope = true, case_sensitive = true, message = true }

local function unique_shape(v)
  if v == true or v == false then return v end
  if type(v) ~= "table" then return nil end
  for k in pairs(v) do
    if not UNIQUE_KEYS[k] then return nil end
  end
  local scope = v.scope
  if scope ~= nil then
    local function ident(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end
    if type(scope) == "string" then
      if not ident(scope) then return nil end
    elseif not is_list(scope, ident) then
      return nil
    end
  end
  if v.case_sensitive ~= nil and type(v.case_sensitive) ~= "boolean" then return nil end
  if v.message ~= nil and type(v.message) ~= "string" then return nil end
  return v
end

local function pattern_shape(v)
  if type(v) ~= "string" or not pcall(string.find, "", v) then return nil end
  return v
end

local function default_shape(v)
  local t = type(v)
  if t == "thread" or (t == "userdata" and v ~= null) then return nil end
  return v
end

local SHAPES = {
  length = length_shape,
  unique = unique_shape,
  format = pattern_shape,
  default = default_shape,
  size = function(v) return math.type(v) == "integer" and v > 0 and v or nil end,
  precision = function(v) return math.type(v) == "integer" and v > 0 and v or nil end,
  scale = function(v) return is_count(v) and v or nil end,
  values = function(v) return is_list(v, function(s) return type(s) == "string" end) and v or nil end,
  one_of = function(v) return is_list(v) and v or nil end,
  min = function(v) return v == v and v or nil end, -- not NaN
  max = function(v) return v == v and v or nil end,
}

local ACCEPTED = {
  length = "a count (length = 8), { min = n, max = n } (either may be left out), { n, n } (min, max) "
    .. "or { is = n }, with whole numbers >= 0 and min <= max",
  unique = "true, or { scope = \"field\" or { \"field\", ... }, case_sensitive = boolean, message = string }",
  format = "a Lua pattern (string.find accepts it), e.g. \"^[^@]+@[^@]+$\"",
  default = "a value (a string, number, boolean, table or ar.null) or a function that returns one",
  size = "a whole number > 0", precision = "a whole number > 0", scale = "a whole number >= 0",
  values = "a non-empty list of strings, e.g. { \"open\", \"closed\" }",
  one_of = "a non-empty list of values, e.g. { \"a\", \"b\" }",
  min = "a number", max = "a number",
}
M.ACCEPTED = ACCEPTED

-- A value as a message shows it.
local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      if #parts >= 4 then parts[#parts + 1] = "..." break end
      parts[#parts + 1] = (math.type(k) == "integer" and "" or tostring(k) .. " = ")
        .. (type(x) == "string" and ("%q"):format(x) or tostring(x))
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  return tostring(v)
end

-- Options a type requires that the table can give (an enum's values, ...):
-- a declaration may leave them to the table; they are checked once it is
-- read (activerecord.model.reflect).
local FROM_TABLE = { values = true, size = true, precision = true, scale = true }
M.FROM_TABLE = FROM_TABLE

--- Raises the `ConfigError` of a definition mistake: "Model.field: msg".
function M.config_error(model_name, field, msg)
  errors.raise("ConfigError", ("%s%s: %s"):format(model_name, field and ("." .. field) or "", msg),
    { model = model_name, field = field })
end
local config_error = M.config_error

--- Parses one field declaration (a type name or an options table).
-- The declared options stay in `f.declared`: what they leave out may come
-- from the table.
-- @tparam string model_name for messages
-- @tparam string name the field
-- @param spec a type name or a table of `OPTIONS`
-- @treturn table the field
-- @raise `ConfigError` naming model and field
function M.parse(model_name, name, spec)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    config_error(model_name, tostring(name), "field names must be identifiers")
  end
  if type(spec) == "string" then spec = { type = spec } end
  if type(spec) ~= "table" then config_error(model_name, name, "a field is a type name or a table") end
  local f, declared = { name = name }, {}
  for k, v in pairs(spec) do
    local want = FIELD_OPTIONS[k]
    if not want then config_error(model_name, name, (options.unknown(spec, FIELD_OPTIONS))) end
    local shape = SHAPES[k]
    if (want ~= "any" and type(v) ~= want) or (shape and shape(v) == nil) then
      config_error(model_name, name, ("option '%s' takes %s (got %s)"):format(k,
        ACCEPTED[k] or ("a " .. want), show(v)))
    end
    if shape then v = shape(v) end
    f[k], declared[k] = v, v
  end
  if type(f.min) == "number" and type(f.max) == "number" and f.min > f.max then
    config_error(model_name, name, ("option 'min' (%s) is above 'max' (%s)"):format(f.min, f.max))
  end
  if f.scale and f.precision and f.scale > f.precision then
    config_error(model_name, name, ("option 'scale' (%d) is above 'precision' (%d)"):format(f.scale, f.precision))
  end
  f.declared = declared
  f.type = f.type or "string"
  local t = types.get(f.type)
  if not t then config_error(model_name, name, ("unknown type '%s'"):format(f.type)) end
  f.type_spec = t
  for opt, want in pairs(t.options or {}) do
    if type(f[opt]) ~= want and not (FROM_TABLE[opt] and f[opt] == nil) then
      config_error(model_name, name, ("type '%s' needs option '%s' (a %s)"):format(f.type, opt, want))
    end
  end
  f.column = f.column or name
  if not f.column:match("^[%w_$]+$") or #f.column > 64 then
    config_error(model_name, name, ("column %q must be a plain name of at most 64 letters, digits, _ and $")
      :format(f.column))
  end
  f.to_db, f.from_db, f.cast = t.to_db, t.from_db, t.cast
  f.is_json = f.type == "json" or nil -- a table the caller may change in place
  return f
end

-- Whether the server makes the field's value when an INSERT leaves it out
-- (a declared integer key unless `auto_increment = false`; once the table
-- is read, its AUTO_INCREMENT says).
function M.default_auto(f)
  if f.declared.auto_increment ~= nil then
    return f.declared.auto_increment and true or nil
  end
  if f.primary_key and (f.type == "integer" or f.type == "bigint") then return true end
  return nil
end

local function sorted_fields(list, fields, pk)
  for i = #list, 1, -1 do list[i] = nil end
  for _, f in pairs(fields) do list[#list + 1] = f end
  table.sort(list, function(a, b)
    if (a.name == pk) ~= (b.name == pk) then return a.name == pk end
    return a.name < b.name
  end)
  return list
end

--- Fixes the key and the field order once `model.fields` holds every
-- field: `primary_key`, `pk_field`, `field_list` (the key first, then by
-- name) and `columns` (column -> field), the last two refilled in place.
-- Also `primary_keys` and `pk_fields` (lists of one); a composite key (a
-- list of names) is finished by activerecord.model.composite_key.
-- @tparam table model the model
-- @tparam string|table pk the key's field name (or names)
-- @tparam[opt] boolean read whether the fields' options came from the table
--   (then `auto` is the table's AUTO_INCREMENT, not assumed)
-- @raise `ConfigError` when the key names no field or two fields share a column
function M.finish(model, pk, read)
  local list
  if type(pk) == "table" then
    list = require("activerecord.model.composite_key").finish(model, pk, read, M.default_auto)
  else
    local pkf = model.fields[pk]
    if not pkf then config_error(model.name, pk, "primary key names no field") end
    for _, f in pairs(model.fields) do
      if f ~= pkf then f.primary_key = f.declared.primary_key end
    end
    pkf.primary_key = true
    if not read then pkf.auto = M.default_auto(pkf) end
    list = sorted_fields(rawget(model, "field_list") or {}, model.fields, pk)
    rawset(model, "primary_key", pk)
    rawset(model, "pk_field", pkf)
    rawset(model, "primary_keys", { pk })
    rawset(model, "pk_fields", { pkf })
    model._meta.composite = nil
  end
  local columns = rawget(model, "columns") or {}
  for k in pairs(columns) do columns[k] = nil end
  for _, f in ipairs(list) do
    if columns[f.column] then config_error(model.name, f.name, "two fields use column " .. f.column) end
    columns[f.column] = f
  end
  rawset(model, "field_list", list)
  rawset(model, "columns", columns)
end

local function clear(t)
  for k in pairs(t) do t[k] = nil end
end

-- Slots of the records (see activerecord.model.layout) and the maps the
-- record metatable reads: field name -> slot (JSON fields apart, they are
-- handed out), slot number -> false. The maps keep their identity.
local function lay_out(model, meta)
  local list, base = model.field_list, layout.BASE
  local n = #list
  local json_fields = {}
  clear(meta.slots)
  clear(meta.json_of)
  clear(meta.from_db)
  clear(meta.defaults)
  local update_read
  for i, f in ipairs(list) do
    f.slot = base + i
    if f.is_json then
      json_fields[#json_fields + 1] = f
      f.json_index = #json_fields
      f.held = base + n + #json_fields
      meta.json_of[f.name] = f
    else
      meta.slots[f.name] = f.slot
    end
    if f.from_db then meta.from_db[f.name] = f.from_db end
    if f.default ~= nil then meta.defaults[#meta.defaults + 1] = f end
    -- what the server computes on UPDATE: read back after one
    if (f.generated or f.on_update) and not f.primary_key then
      update_read = update_read or {}
      update_read[#update_read + 1] = f
    end
  end
  meta.json_fields = #json_fields > 0 and json_fields or nil
  meta.update_read = update_read
  meta.nslots = base + n + #json_fields
  for s = 1, meta.nslots do meta.slots[s] = false end
end

--- Makes the model's per-field code from its fields as they are now: slots,
-- validator, loaders, `new`/`_build` (`meta.real_new`/`real_build`; also
-- `meta.new`/`build` unless these wait for the model's first use), the
-- write collectors; and drops every statement compiled from older fields.
-- @tparam table model the model
-- @tparam table meta its `_meta`
function M.install(model, meta)
  lay_out(model, meta)
  meta.validator = validation.compile(model.field_list, meta.json_scratch)
  finders.install_loaders(model, meta)
  meta.real_new, meta.real_build = finders.make_new(model, meta)
  if not meta.first_use then meta.new, meta.build = meta.real_new, meta.real_build end
  meta.collect_insert = shapes.make_collector(model, true)
  meta.collect_update = shapes.make_collector(model, false)
  meta.insert_shapes, meta.update_shapes, meta.delete_shapes = {}, {}, {}
  meta.pk_query, meta.find, meta.held_for, meta.held = nil, nil, nil, nil
  local class_index = meta.class_index
  if class_index then class_index._json_fields = meta.json_fields end
end

return M

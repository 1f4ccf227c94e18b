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
local options = require("activerecord.options")
local types = require("activerecord.types")
local validation = require("activerecord.validation")
local layout = require("activerecord.model.layout")
local finders = require("activerecord.model.finders")
local shapes = require("activerecord.model.shapes")

local M = {}

--- The options a field declaration takes, with their Lua types.
M.OPTIONS = {
  type = "string", primary_key = "boolean", auto_increment = "boolean", column = "string",
  default = "any", required = "boolean", nullable = "boolean", readonly = "boolean",
  size = "number", precision = "number", scale = "number", values = "table", binary = "boolean",
  min = "number", max = "number", length = "any", format = "string", one_of = "table",
  validate = "function", unsigned = "boolean", unique = "boolean", index = "boolean",
  comment = "string", sql_type = "string", server_default = "boolean",
}
local FIELD_OPTIONS = M.OPTIONS

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
    if want ~= "any" and type(v) ~= want then
      config_error(model_name, name, ("option '%s' must be a %s"):format(k, want))
    end
    f[k], declared[k] = v, v
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
-- @tparam table model the model
-- @tparam string pk the key's field name
-- @tparam[opt] boolean read whether the fields' options came from the table
--   (then `auto` is the table's AUTO_INCREMENT, not assumed)
-- @raise `ConfigError` when the key names no field or two fields share a column
function M.finish(model, pk, read)
  local pkf = model.fields[pk]
  if not pkf then config_error(model.name, pk, "primary key names no field") end
  for _, f in pairs(model.fields) do
    if f ~= pkf then f.primary_key = f.declared.primary_key end
  end
  pkf.primary_key = true
  if not read then pkf.auto = M.default_auto(pkf) end
  local list = sorted_fields(rawget(model, "field_list") or {}, model.fields, pk)
  local columns = rawget(model, "columns") or {}
  for k in pairs(columns) do columns[k] = nil end
  for _, f in ipairs(list) do
    if columns[f.column] then config_error(model.name, f.name, "two fields use column " .. f.column) end
    columns[f.column] = f
  end
  rawset(model, "primary_key", pk)
  rawset(model, "pk_field", pkf)
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

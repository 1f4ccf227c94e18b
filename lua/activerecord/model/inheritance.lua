--- Single-table inheritance: a base model names its type column
-- (`inheritance_column = "type"`) and subclasses extend it
-- (`ar.Model{ extends = Vehicle, name = "Car" }`); every class of the
-- hierarchy shares the base's table, backend, fields, key and mixins.
--
-- One job: what makes a model a member of a hierarchy. `subclass_def` turns a
-- subclass's definition into a full one (the base's fields, key, scopes,
-- default scopes and validate, plus its own); `setup` (before the model's
-- per-field code is made) notes the hierarchy; `install` (each time the
-- loaders are made: activerecord.model.finders.install_loaders calls it)
-- checks the type column, makes the class's name the type of its new
-- records and puts the per-row class choice in front of the loaders;
-- `finish` (once the model is defined) inherits the base's events, methods,
-- relations, query and class methods and write guards, and registers the
-- class under its name.
--
-- Rules: a subclass's queries (query, unscoped, find, all, counts,
-- update_all, delete_all, relations and eager loading that target it) add
-- `WHERE <table>.<type column> IN (its name, its descendants' names)`, values
-- bound; rows load as the class their type names (a NULL type, the
-- queried class's own name or a name no class of the hierarchy has: the
-- queried class); `new`/`create` set the type to the class's name, and
-- `Base:new{ type = "Car" }` makes a Car. A model without
-- `inheritance_column` or `extends` never reaches this module.
-- @module activerecord.model.inheritance
local errors = require("activerecord.errors")
local query = require("activerecord.query")
local finders = require("activerecord.model.finders")
local hooks = require("activerecord.model.hooks")

local M = {}

local rawget, rawset, type, next = rawget, rawset, type, next
local ClassMethods = finders.ClassMethods
local class_query = ClassMethods.query

-- The field types a type column may have: it holds class names.
local TYPE_FIELD = { string = true, enum = true }

-- What a subclass's definition takes (the rest is its base's).
local SUB_KEYS = {
  name = true, extends = true, methods = true, events = true, relations = true, scopes = true,
  default_scopes = true, validate = true,
}
local SUB_KEY_LIST = "name, extends, methods, events, relations, scopes, default_scopes, validate"

local function config_error(model_name, msg, fields)
  fields = fields or {}
  fields.model = model_name
  errors.raise("ConfigError", ("%s: %s"):format(model_name, msg), fields)
end

-- Whether `m` is `ancestor` or extends it (through any number of classes).
local function is_kind_of(m, ancestor)
  while m do
    if m == ancestor then return true end
    m = m._meta.parent_model
  end
  return false
end
M.is_kind_of = is_kind_of

-- ---- definition --------------------------------------------------------------

--- A subclass's definition completed from its base: the base's table,
-- backend, declared fields and key; its scopes and default scopes (the
-- subclass's own replace those of the same name); validate runs the base's
-- then the subclass's.
-- @tparam table def `name`, `extends` and what `SUB_KEYS` lists
-- @treturn table the definition `activerecord.model.define` goes on with
-- @raise `ConfigError` without a name, for an `extends` that is not a model
--   of a hierarchy, or for a key a subclass does not take
function M.subclass_def(def)
  local name = def.name
  if type(name) ~= "string" or name == "" then
    errors.raise("ConfigError", "ar.Model{ extends = Base, name = \"Sub\" }: a subclass needs a name (what its "
      .. "rows' type column holds)")
  end
  local base = def.extends
  if type(base) ~= "table" or rawget(base, "_meta") == nil then
    config_error(name, "extends takes a model class (extends = Vehicle)")
  end
  local bmeta = base._meta
  if not bmeta.inheritance then
    config_error(name, ("extends = %s, but %s is no base of single-table inheritance: declare its type column "
      .. "on it (inheritance_column = \"type\")"):format(base.name, base.name), { base = base.name })
  end
  for k in pairs(def) do
    if not SUB_KEYS[k] then
      config_error(name, ("a subclass shares its base's table, backend, fields, key and mixins: it takes %s "
        .. "(got '%s')"):format(SUB_KEY_LIST, tostring(k)), { option = k })
    end
  end
  local hier = bmeta.inheritance.hier
  if name == hier.root.name or name == base.name then
    config_error(name, ("a subclass needs a name of its own (%s is taken by the base)"):format(name))
  end
  local fields
  if not bmeta.pending then
    fields = {}
    for fname, f in pairs(bmeta.declared_fields) do fields[fname] = f.declared end
  end
  local scopes = {}
  for k, fn in pairs(bmeta.scopes) do scopes[k] = fn end
  for k, fn in pairs(def.scopes or {}) do scopes[k] = fn end
  local default_scopes = {}
  for _, s in ipairs(bmeta.default_scopes) do default_scopes[s.name] = s.fn end
  for k, fn in pairs(def.default_scopes or {}) do default_scopes[k] = fn end
  local validate, own = bmeta.validate, def.validate
  if validate and own then
    local first = validate
    validate = function(rec, errs)
      first(rec, errs)
      own(rec, errs)
    end
  else
    validate = validate or own
  end
  return {
    name = name, extends = base, table = base.table, backend = rawget(base, "backend"), fields = fields,
    primary_key = bmeta.declared_pk, relations = def.relations, scopes = scopes, default_scopes = default_scopes,
    methods = def.methods, events = def.events, validate = validate,
  }
end

-- The condition a subclass's queries add: its name and its descendants'
-- (one node, made again when a descendant is defined: the statement cache
-- knows it by identity).
local function type_condition(model, sti)
  local cond = sti.cond
  if cond then return cond end
  local names = { model.name }
  local function add(m)
    for _, sub in ipairs(m._meta.subclasses or {}) do
      if sti.hier.classes[sub.name] == sub then names[#names + 1] = sub.name end
      add(sub)
    end
  end
  add(model)
  local f = sti.hier.field
  if not f then -- a model reading its fields: they are read now
    require("activerecord.model.reflect").first_use(sti.hier.root)
    f = sti.hier.field
  end
  local t = model.table
  local col = t:find(".", 1, true) and f.column or (t .. "." .. f.column)
  cond = query.col(col):in_list(names)
  sti.cond = cond
  return cond
end

-- A subclass's `query`: the model's query with the type condition, as a
-- query whose rare fields are looked at (`unscoped` sets one).
local function subclass_query(model, sti)
  return function(c)
    if c ~= model and (type(c) ~= "table" or rawget(c, "_meta") == nil) then
      require("activerecord.model").dot_call_error(model.name, "query")
    end
    local q = class_query(c):where(type_condition(model, sti))
    q._rare = true
    return q
  end
end

--- Notes the hierarchy on a model being defined (before its per-field code
-- is made): a base (`def.inheritance_column`) starts one, a subclass
-- (`def.extends`) joins its base's and queries through the type condition.
-- @tparam table model the model
-- @tparam table meta its `_meta`
-- @tparam table def its (completed) definition
-- @raise `ConfigError` for both options on one model
function M.setup(model, meta, def)
  local sti = { model = model, install = M.install }
  if def.extends then
    if def.inheritance_column then
      config_error(model.name, "a subclass uses its base's inheritance_column (give it on the base only)")
    end
    local parent = def.extends
    sti.hier = parent._meta.inheritance.hier
    meta.parent_model, meta.sti_root = parent, sti.hier.root
    meta.class_index.query = subclass_query(model, sti)
  else
    sti.hier = { root = model, name = def.inheritance_column, classes = { [model.name] = model } }
    local own = meta.validate
    -- a type names a class of the hierarchy (a change to another one is allowed)
    meta.validate = function(rec, errs)
      local hier = sti.hier
      local f = hier.field
      local v = f and rec[f.name]
      if v ~= nil and hier.classes[v] == nil then
        local names = {}
        for n in pairs(hier.classes) do names[#names + 1] = n end
        table.sort(names)
        errs:add(f.name, ("names no model of %s's hierarchy (%s)"):format(hier.root.name, table.concat(names, ", ")))
      end
      if own then own(rec, errs) end
    end
  end
  meta.inheritance = sti
end

-- The loaders in front of the model's own: each row as the class its type
-- names. A result whose rows are all of the queried class takes the
-- model's generated `load_rows` (one scan of the type column first).
local function wrap_loaders(model, meta, column, classes)
  local own_load, own_rows = meta.load, meta.load_rows
  local function load(m, row, held)
    local cls = classes[row[column]]
    if cls == nil or cls == model then return own_load(m, row, held) end
    return cls._load(cls, row, held)
  end
  meta.load = load
  meta.load_rows = function(m, rows, held)
    if not meta.json_checked then
      model:_check_json() -- the loaders are made again, this one with them
      return meta.load_rows(m, rows, held)
    end
    local mixed = false
    for r = 1, #rows do
      local cls = classes[rows[r][column]]
      if cls ~= nil and cls ~= model then
        mixed = true
        break
      end
    end
    if not mixed then return own_rows(m, rows, held) end
    for r = 1, #rows do rows[r] = load(m, rows[r], held) end
    return rows
  end
  if meta.json_checked then rawset(model, "_load", load) end
end

--- What `install_loaders` calls for a model of a hierarchy, once its fields
-- are known (at definition, or when a model without `fields` reads its
-- table): checks the type column, makes the class's name the default type
-- of its new records (declared, so the table's default does not replace
-- it; bulk rows get it too) and wraps the loaders.
-- @tparam table model the model
-- @tparam table meta its `_meta`
-- @raise `ConfigError` when the type column is no field of the model or not
--   a string field
function M.install(model, meta)
  local sti = meta.inheritance
  local hier = sti.hier
  local name = hier.name
  local f = model.fields[name] or model.columns[name]
  if not f then
    config_error(hier.root.name, ("inheritance_column '%s' is no field or column of %s (it holds each row's "
      .. "class name: a string field, e.g. type = \"string\")"):format(name, model.table), { field = name })
  end
  if not TYPE_FIELD[f.type] then
    config_error(hier.root.name, ("inheritance_column '%s' is a %s field: it holds class names, so it is a "
      .. "string (or enum) field"):format(name, f.type), { field = name })
  end
  if model == hier.root then hier.field = f end
  f.default, f.declared.default, f.default_src = model.name, model.name, nil
  local listed = false
  for _, d in ipairs(meta.defaults) do
    if d == f then listed = true end
  end
  if not listed then meta.defaults[#meta.defaults + 1] = f end
  wrap_loaders(model, meta, f.column, hier.classes)
end

-- `Base:new{ type = "Car" }` makes a Car (a class below the one asked);
-- another name is a ValidationError.
local function dispatching_new(model, hier)
  local plain = model.new
  return function(a, b)
    local attrs
    if a == model then attrs = b else attrs = a end
    local f = hier.field
    local t = f and type(attrs) == "table" and attrs[f.name]
    if t and t ~= model.name and t ~= require("activerecord.null") then
      local cls = hier.classes[t]
      if not (cls and is_kind_of(cls, model)) then
        errors.raise("ValidationError", ("%s.%s: %s is not %s or a model extending it"):format(model.name, f.name,
          tostring(t), model.name), { errors = { [f.name] = { "is not " .. model.name .. " or a model extending it" } },
          model = model.name })
      end
      return cls.new(attrs)
    end
    return plain(a, b)
  end
end

-- The base's parts a subclass inherits once defined.
local function inherit(model, meta, parent)
  local pmeta = parent._meta
  -- events: the base's handlers first (hooks.on adds later ones to both)
  for event, own in pairs(meta.events) do
    local inherited = pmeta.events[event]
    if inherited and #inherited > 0 then
      local mine = table.move(own, 1, #own, 1, {})
      for i = #own, 1, -1 do own[i] = nil end
      table.move(inherited, 1, #inherited, 1, own)
      table.move(mine, 1, #mine, #own + 1, own)
    end
  end
  setmetatable(meta.methods, { __index = pmeta.methods })
  local guards = meta.write_guards
  for i = #pmeta.write_guards, 1, -1 do table.insert(guards, 1, pmeta.write_guards[i]) end
  -- relations: the base's (owner and keys as the base has them), then `with`
  -- that knows them all
  for rname, rel in pairs(parent.relations) do
    if model.relations[rname] == nil then model.relations[rname] = rel end
  end
  if next(model.relations) and rawget(meta.query_methods, "with") == nil then
    require("activerecord.relations").define(model, {})
  end
  for k, fn in next, pmeta.query_methods do
    if rawget(meta.query_methods, k) == nil then hooks.add_query_method(model, k, fn) end
  end
  for k, v in next, parent do
    if type(v) == "function" and rawget(model, k) == nil and k ~= "resolve" and k ~= "_load" then
      rawset(model, k, v)
    end
  end
end

--- Completes a model of a hierarchy once defined: a subclass inherits its
-- base's events (base handlers first), methods, write guards, relations,
-- query and class methods, and is registered under its name (its
-- ancestors' queries take it in); every member's `new` makes the class a
-- given type names.
-- @tparam table model the model
-- @tparam table def its (completed) definition
function M.finish(model, def)
  local meta = model._meta
  local sti = meta.inheritance
  local hier = sti.hier
  local parent = def.extends
  if parent then
    inherit(model, meta, parent)
    local pmeta = parent._meta
    pmeta.subclasses = pmeta.subclasses or {}
    table.insert(pmeta.subclasses, model)
    hier.classes[model.name] = model
    -- the ancestors' type conditions and find statements take it in
    local a = parent
    while a do
      local am = a._meta
      am.inheritance.cond, am.find = nil, nil
      a = am.parent_model
    end
  end
  model.new = dispatching_new(model, hier)
end

return M

--- Model definition: `ar.Model{ table = ..., fields = {...}, ... }` parses the
-- fields (activerecord.model.fields; without `fields`, the table's columns
-- are read on first use: activerecord.model.reflect), lays out the records'
-- slots, applies the mixins through the hook API (checking the options
-- each declares), and builds the model's dispatch tables once: the class chain
-- (scopes and query methods -> ClassMethods -> forwarders to the query
-- class), the query class (scopes and query methods -> Query) and the
-- records' metatable. Class metadata sits under one private key, `_meta`.
-- Records live in activerecord.record, writes in activerecord.model.write,
-- finders in activerecord.model.finders, mixin hooks in activerecord.model.hooks.
-- @module activerecord.model
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local validation = require("activerecord.validation")
local registry = require("activerecord.registry")
local query = require("activerecord.query")
local layout = require("activerecord.model.layout")
local fields_mod = require("activerecord.model.fields")
local reflect = require("activerecord.model.reflect")
local json_track = require("activerecord.model.json_track")
local record = require("activerecord.record")
local write = require("activerecord.model.write")
local finders = require("activerecord.model.finders")
local hooks = require("activerecord.model.hooks")
local inheritance = require("activerecord.model.inheritance")
local composite_key = require("activerecord.model.composite_key")

local M = {}

local ClassMethods, InstanceMethods = finders.ClassMethods, record.InstanceMethods
M.ClassMethods, M.InstanceMethods = ClassMethods, InstanceMethods
M.hooks = hooks
M.EVENTS = hooks.EVENTS
M.NO_CHANGES = layout.NO_CHANGES
M.state_of = record.state_of
M.assign = record.assign
M.run_event = record.run_event
--- Turns in-place changes of a record's JSON tables into changes (takes a
-- record, or the view `state_of` returns).
function M.sync_json(x)
  local inst = type(x) == "table" and rawget(x, "inst") or x
  return json_track.sync(inst)
end
M.delete_row = write.delete

local DEF_KEYS = {
  name = "string", table = "string", backend = "table", fields = "table", primary_key = "string",
  relations = "table", mixins = "table", events = "table", validate = "function",
  scopes = "table", methods = "table", default_scopes = "table",
  inheritance_column = "string", extends = "table", -- single-table inheritance (model/inheritance)
}

-- `q:unscoped()` on a model's queries: without any default scope.
local function unscoped(q)
  local q2 = q:clone()
  q2.skip_all_scopes = true
  q2._rare = true
  return q2
end

local config_error = fields_mod.config_error

-- ---- fields ---------------------------------------------------------------

-- The declared fields of `def` and its mixins, parsed (name -> field).
local function declared_fields(model_name, def, mixins, def_pk)
  local field_specs = {}
  for _, mx in ipairs(mixins) do
    for name, spec in pairs(mx.fields or {}) do field_specs[name] = spec end
  end
  for name, spec in pairs(def.fields or {}) do field_specs[name] = spec end
  local out, pk, flagged = {}, def_pk, {}
  for name, spec in pairs(field_specs) do
    local f = fields_mod.parse(model_name, name, spec)
    out[name] = f
    if f.primary_key then flagged[#flagged + 1] = name end
  end
  -- a composite key is named in order on the model; flags must agree with it
  table.sort(flagged)
  if not pk then pk = flagged[1] end
  for _, name in ipairs(flagged) do
    if type(pk) == "table" and not composite_key.in_key(pk, name) then
      config_error(model_name, name, ("declared primary_key = true, but primary_key = { %s } leaves it out")
        :format(table.concat(pk, ", ")))
    elseif type(pk) == "string" and pk ~= name then
      config_error(model_name, name, ("two primary keys ('%s' and '%s'); a composite key names its parts in "
        .. "order on the model: primary_key = { \"%s\", \"%s\" }"):format(pk, name, pk, name))
    end
  end
  return out, pk
end

-- A model with `fields`: those (and its mixins'), the key found or added.
local function take_fields(model, declared, pk)
  for name, f in pairs(declared) do model.fields[name] = f end
  if not pk then
    pk = "id"
    if not model.fields.id then
      model.fields.id = fields_mod.parse(model.name, "id", { type = "integer", primary_key = true })
      model.fields.id.implicit = true
    end
  end
  fields_mod.finish(model, pk)
end

-- field -> column, for the query compiler.
local function make_resolver(fields)
  return function(name)
    local f = fields[name]
    if f then return f.column end
    return name
  end
end

-- ---- dispatch -------------------------------------------------------------

-- Class -> ClassMethods -> these: `User:where{...}` is `User:query():where{...}`.
-- A forwarder is made once per query method name, for every model. It
-- starts from the model's shared root query (query.model_root: every
-- builder step returns a new query, so the root is never handed out),
-- unless the model has its own `query`.
local class_query = ClassMethods.query
local QueryForward = setmetatable({}, { __index = function(t, k)
  if type(query.Query[k]) ~= "function" then return nil end
  local fwd = function(c, ...)
    local q
    local meta = c._meta
    if meta and meta.pending then reflect.first_use(c) end -- where{} converts by the fields
    -- (the model's own `query` is ClassMethods.query behind the dot-call check)
    local own = c.query
    if meta and (own == class_query or own == rawget(meta.class_methods, "query")) then
      q = query.model_root(c, meta.query_mt, meta.backend_fn)
    else
      q = c:query()
    end
    return q[k](q, ...)
  end
  rawset(t, k, fwd)
  return fwd
end })
setmetatable(ClassMethods, { __index = QueryForward })

-- The model's tables, each built once: the class chain, the query class
-- and the records' metatable. The `_events`, `_methods`, ... aliases on the
-- class chain keep older readers working; new code uses `hooks`.
-- A model without fields answers `fields`, `primary_key`, `pk_field`,
-- `field_list` and `columns` once its table is read: asking reads it (a
-- first use).
local LAZY = { fields = true, primary_key = true, pk_field = true, field_list = true, columns = true,
  primary_keys = true, pk_fields = true }

-- `User.create{...}` (a dot for a colon) hands the method the attributes
-- as its class: the class methods say so instead of failing further in.
-- What the call looks like with a colon, by method.
local BRACES = {
  create = "{...}", new = "{...}", where = "{...}", find_by = "{...}", find_or_create_by = "{...}",
  create_or_find_by = "{...}", insert_all = "{ {...}, ... }", upsert_all = "{ {...}, ... }",
  all = "()", query = "()", unscoped = "()", first = "()", last = "()", ids = "()", none = "()",
}

--- Raises the `ConfigError` of a class method called with a dot.
-- @tparam string model_name the model's name
-- @tparam string method the method
function M.dot_call_error(model_name, method)
  errors.raise("ConfigError", ("%s.%s: call it with a colon, %s:%s%s"):format(model_name, method, model_name,
    method, BRACES[method] or "(...)"), { model = model_name, method = method })
end
local dot_call_error = M.dot_call_error

-- Whether `c` can be a class method's class: a model.
local function is_model(c)
  return type(c) == "table" and rawget(c, "_meta") ~= nil
end

--- `fn` as a class method of `model` that refuses a dot call: the check
-- runs only when the first argument is not the model itself.
-- @tparam table model the model
-- @tparam string name the method's name
-- @tparam function fn the method
-- @treturn function the checked method
function M.checked_class_method(model, name, fn)
  local model_name = model.name
  return function(c, ...)
    if c ~= model and not is_model(c) then dot_call_error(model_name, name) end
    return fn(c, ...)
  end
end
local checked_class_method = M.checked_class_method

-- Class methods found on `find` itself (the fast path) check in their own
-- failure path; internal ones (`_load`, ...) are not for users.
local UNCHECKED = { find = true }

-- The model's view of ClassMethods (and the query forwarders): each public
-- method wrapped once by checked_class_method when first looked up.
local function checked_methods(model)
  return setmetatable({}, { __index = function(t, k)
    if k == "find" and ClassMethods.find == finders.default_find then
      local find = finders.make_find(function() dot_call_error(model.name, "find") end)
      rawset(t, k, find)
      return find
    end
    local fn = ClassMethods[k]
    if type(fn) ~= "function" or type(k) ~= "string" or k:sub(1, 1) == "_" or UNCHECKED[k] then return fn end
    local w = checked_class_method(model, k, fn)
    rawset(t, k, w)
    return w
  end })
end

local function build_dispatch(model, meta)
  local class_methods = checked_methods(model)
  local class_index = setmetatable({}, { __index = class_methods })
  meta.class_methods = class_methods
  if meta.pending then
    setmetatable(class_index, { __index = function(_, k)
      if LAZY[k] then
        reflect.first_use(model)
        return rawget(model, k)
      end
      return class_methods[k]
    end })
  end
  local query_index = setmetatable({}, { __index = query.Query })
  meta.class_index, meta.query_index = class_index, query_index
  meta.query_mt = { __index = query_index, __tostring = query.Query.__tostring }
  meta.query_methods = setmetatable({}, { __newindex = function(_, k, fn) hooks.add_query_method(model, k, fn) end })
  meta.methods = setmetatable({}, { __index = InstanceMethods })
  meta.instance_mt = record.instance_mt(model, meta)
  meta.class_mt = {
    __index = class_index,
    __tostring = function(cls) return ("Model %s (%s)"):format(cls.name, cls.table) end,
  }
  local aliases = {
    _events = meta.events, _scopes = meta.scopes, _default_scopes = meta.default_scopes,
    _methods = meta.methods, _query_methods = meta.query_methods, _write_guards = meta.write_guards,
    _from_db = meta.from_db, _json_fields = meta.json_fields, _instance_mt = meta.instance_mt,
    _query_mt = meta.query_mt,
  }
  for k, v in pairs(aliases) do class_index[k] = v end
  meta.backend_fn = function() return ClassMethods._backend(model) end
end

-- ---- mixins ---------------------------------------------------------------

-- A mixin uses only what a user's mixin could: fields, events, scopes,
-- default scopes, methods, class methods, write guards, a setup hook
-- (`setup(Model, hooks, options)`) and the options it takes.
local MIXIN_KEYS = {
  fields = true, events = true, scopes = true, default_scopes = true, methods = true,
  class_methods = true, write_guards = true, setup = true, options = true,
}

-- A mixin's options are checked against what it declares (`options`:
-- name -> Lua type): an option it does not take is a ConfigError naming both.
local function check_mixin_options(model_name, name, spec, opts)
  local declared = spec.options
  if declared ~= nil and type(declared) ~= "table" then
    config_error(model_name, nil, ("mixin '%s': options must be a table (option -> Lua type)"):format(name))
  end
  for k, v in pairs(opts) do
    local want = declared and declared[k]
    if want == nil then
      errors.raise("ConfigError", ("%s: mixin '%s': unknown option '%s' (%s)"):format(model_name, name,
        tostring(k), declared and next(declared) and ("accepted: " .. options.accepted_list(declared))
        or "it takes none"), { model = model_name, mixin = name, option = k })
    end
    if want ~= "any" and type(v) ~= want then
      errors.raise("ConfigError", ("%s: mixin '%s': option '%s' must be a %s"):format(model_name, name,
        tostring(k), want), { model = model_name, mixin = name, option = k })
    end
  end
end

-- The spec of a mixin entry ("name", { "name", options } or a spec table)
-- and the options it was given.
local function resolve_mixin(model_name, entry)
  local spec, opts, name = entry, {}, "mixin"
  if type(entry) == "string" then
    name = entry
    spec = registry.mixin(entry)
    if not spec then config_error(model_name, nil, ("unknown mixin '%s'"):format(entry)) end
  elseif type(entry) == "table" and type(entry[1]) == "string" then
    name = entry[1]
    spec = registry.mixin(entry[1])
    if not spec then config_error(model_name, nil, ("unknown mixin '%s'"):format(entry[1])) end
    opts = entry[2] or {}
    if type(opts) ~= "table" then
      config_error(model_name, nil, ("mixin '%s': options must be a table"):format(name))
    end
  end
  if type(spec) == "function" then spec = spec(opts) end
  if type(spec) ~= "table" then config_error(model_name, nil, "a mixin is a name or a table") end
  for k in pairs(spec) do
    if not MIXIN_KEYS[k] then config_error(model_name, nil, ("mixin: unknown key '%s'"):format(tostring(k))) end
  end
  check_mixin_options(model_name, name, spec, opts)
  return spec, opts
end

local function add_events(model, events, source)
  for name, handlers in pairs(events or {}) do
    if not hooks.EVENT_SET[name] then
      config_error(model.name, nil, ("%sunknown event '%s' (events: %s)"):format(source or "",
        tostring(name), table.concat(hooks.EVENTS, ", ")))
    end
    if type(handlers) == "function" then handlers = { handlers } end
    if type(handlers) ~= "table" then
      config_error(model.name, nil, ("event '%s': a handler is a function or a list of functions"):format(name))
    end
    -- { fn, ..., on = "create" }: after_commit/after_rollback's kind filter;
    -- any other key is a mistake (hooks.on refuses `on` for other events)
    local opts
    for k in pairs(handlers) do
      if k == "on" then
        opts = { on = handlers.on }
      elseif math.type(k) ~= "integer" then
        config_error(model.name, nil, ("event '%s': unknown key '%s' (a list of functions, and `on` for "
          .. "after_commit and after_rollback)"):format(name, tostring(k)))
      end
    end
    for _, fn in ipairs(handlers) do
      if type(fn) ~= "function" then config_error(model.name, nil, "event handlers must be functions") end
      hooks.on(model, name, fn, opts)
    end
  end
end

-- A mixin's declarations, through the same hooks a user's code calls.
local function apply_mixin(model, mx)
  add_events(model, mx.events, "mixin: ")
  for name, fn in pairs(mx.scopes or {}) do hooks.add_scope(model, name, fn) end
  for name, fn in pairs(mx.default_scopes or {}) do hooks.add_default_scope(model, name, fn) end
  for name, fn in pairs(mx.methods or {}) do hooks.add_method(model, name, fn) end
  for name, fn in pairs(mx.class_methods or {}) do hooks.add_class_method(model, name, fn) end
  if mx.write_guards then hooks.add_write_guard(model, mx.write_guards) end
end

-- ---- definition -----------------------------------------------------------

local function new_meta(def)
  local meta = {
    events = {}, scopes = {}, default_scopes = {}, write_guards = {}, from_db = {},
    slots = {}, json_of = {}, defaults = {}, validate = def.validate,
    insert_shapes = {}, update_shapes = {}, delete_shapes = {},
    new_errors = validation.new_errors, json_checked = false,
  }
  for _, e in ipairs(hooks.EVENTS) do meta.events[e] = {} end
  return meta
end

--- Defines a model class (what `ar.Model` calls).
-- @tparam table def `name` (for relations and messages), `table` (required),
--   `backend`, `fields` (name -> type name or `{ type =, column =, default =,
--   required =, nullable =, readonly =, min =, max =, length =, format =,
--   one_of =, validate =, size =, precision =, scale =, values =, binary =,
--   server_default = }`; `server_default = true`: the table gives the column a
--   default, so a new record may leave it nil even with `nullable = false`),
--   `primary_key`, `relations`, `mixins` (names, `{ name, options }` or
--   spec tables), `events` (name -> function or list),
--   `validate` (function(record, errors)), `scopes` (name -> function(q, ...)),
--   `default_scopes` (name -> function(q): applied to every query of the
--   model, in name order; `q:unscope(name)` drops one, `Model:unscoped()` and
--   `q:unscoped()` all),
--   `methods` (instance methods). What a field declaration leaves out
--   (size, precision, scale, values, nullability, defaults) comes from the
--   table on first use; without `fields` the model's fields are the
--   table's columns (see `activerecord.model.reflect`).
-- @treturn table the model class: `ClassMethods`, scopes and query methods
--   (`User:where{...}` is `User:query():where{...}`)
-- @raise `ConfigError` naming the model and the field: unknown option, wrong
--   type, unknown field type or mixin or event, an option a mixin does not
--   take, two primary keys
function M.define(def)
  if type(def) ~= "table" then errors.raise("ConfigError", "ar.Model expects a table") end
  if def.extends ~= nil then def = inheritance.subclass_def(def) end -- the base's table, fields, ...
  local model_name = def.name or def.table or "Model"
  for k, v in pairs(def) do
    local want = DEF_KEYS[k]
    if not want then config_error(model_name, nil, (options.unknown(def, DEF_KEYS))) end
    if type(v) ~= want and not (k == "primary_key" and type(v) == "table") then
      config_error(model_name, nil, ("option '%s' must be a %s"):format(k, want))
    end
  end
  if not def.table then config_error(model_name, nil, "a model needs a table name") end
  -- plain names only (letters, digits, _ and $; "schema.table" allowed): they
  -- are quoted anyway, but a model is no place for exotic identifiers
  if not def.table:match("^[%w_$]+$") and not def.table:match("^[%w_$]+%.[%w_$]+$") or #def.table > 129 then
    config_error(model_name, nil, ("table %q must be a plain name (letters, digits, _ and $)"):format(def.table))
  end
  local model = { name = model_name, table = def.table, backend = def.backend, relations = {} }
  local meta = new_meta(def)
  model._meta = meta -- (a composite key's finish notes the key in it)
  meta.fields = {} -- the model's `fields`, once it has them
  local def_pk = def.primary_key ~= nil and composite_key.check_option(model_name, def.primary_key) or nil

  -- mixins first: the model's own definitions may override them
  local mixins, mixin_opts = {}, {}
  for i, entry in ipairs(def.mixins or {}) do mixins[i], mixin_opts[i] = resolve_mixin(model_name, entry) end
  local declared, pk = declared_fields(model_name, def, mixins, def_pk)
  -- without `fields`, the table's columns are the fields (read on first use)
  meta.pending = def.fields == nil or nil
  meta.declared_fields, meta.declared_pk = declared, def_pk
  if not meta.pending then
    model.fields = meta.fields
    take_fields(model, declared, pk)
  end
  model.resolve = make_resolver(meta.fields)
  model._meta = meta
  layout.register(model)
  build_dispatch(model, meta)
  setmetatable(model, meta.class_mt)

  for _, mx in ipairs(mixins) do apply_mixin(model, mx) end
  add_events(model, def.events)
  for name, fn in pairs(def.scopes or {}) do
    if type(fn) ~= "function" then config_error(model_name, nil, "scope '" .. name .. "' must be a function") end
    hooks.add_scope(model, name, fn)
  end
  -- scopes and query methods as class methods refuse a dot call too
  for name, fn in pairs(meta.class_index) do
    if type(fn) == "function" and (meta.scopes[name] or rawget(meta.query_methods, name)) then
      meta.class_index[name] = checked_class_method(model, name, fn)
    end
  end
  for name, fn in pairs(def.default_scopes or {}) do
    if type(name) ~= "string" or type(fn) ~= "function" then
      config_error(model_name, nil, ("default_scopes: name -> function(q) return q:where{...} end (got %s -> %s)")
        :format(tostring(name), type(fn)))
    end
    hooks.add_default_scope(model, name, fn)
  end
  hooks.add_query_method(model, "unscoped", unscoped)
  for name, fn in pairs(def.methods or {}) do hooks.add_method(model, name, fn) end

  meta.json_scratch = { values = {}, texts = {} }
  -- records are made once the model had its first use (its table read
  -- when a backend is at hand): until then new/_build go through it
  meta.first_use = true
  meta.new = function(attrs)
    reflect.first_use(model)
    return meta.new(attrs)
  end
  meta.build = function(attrs)
    reflect.first_use(model)
    return meta.build(attrs)
  end
  if def.inheritance_column or def.extends then inheritance.setup(model, meta, def) end
  if not meta.pending then fields_mod.install(model, meta) end
  -- User.new{...} (as in the design) and User:new{...} both work
  model.new = function(a, b)
    if a == model then return meta.new(b) end
    return meta.new(a)
  end
  for i, mx in ipairs(mixins) do
    if mx.setup then mx.setup(model, hooks, mixin_opts[i]) end
  end
  M.define_relations(model, def.relations)
  registry.register_model(model_name, model)
  if def.name and def.table ~= def.name and not def.extends then registry.register_model(def.table, model) end
  if meta.inheritance then inheritance.finish(model, def) end
  return model
end

--- Attaches relations to a model (used by `define`; loads `activerecord.relations`).
-- @tparam table model the model class
-- @tparam table relations name -> relation spec
-- @raise `ConfigError` for a malformed relation
function M.define_relations(model, relations)
  if relations and next(relations) then
    local rel = require("activerecord.relations")
    rel.define(model, relations)
  end
end

return M

--- Model definition: `ar.Model{ table = ..., fields = {...}, ... }` parses the
-- fields, lays out the records' slots, applies the mixins through the hook
-- API, and builds the model's dispatch tables once: the class chain
-- (scopes and query methods -> ClassMethods -> forwarders to the query
-- class), the query class (scopes and query methods -> Query) and the
-- records' metatable. Class metadata sits under one private key, `_meta`.
-- Records live in activerecord.record, writes in activerecord.model.write,
-- finders in activerecord.model.finders, mixin hooks in activerecord.model.hooks.
-- @module activerecord.model
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local types = require("activerecord.types")
local validation = require("activerecord.validation")
local registry = require("activerecord.registry")
local query = require("activerecord.query")
local layout = require("activerecord.model.layout")
local json_track = require("activerecord.model.json_track")
local record = require("activerecord.record")
local write = require("activerecord.model.write")
local shapes = require("activerecord.model.shapes")
local finders = require("activerecord.model.finders")
local hooks = require("activerecord.model.hooks")

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

local FIELD_OPTIONS = {
  type = "string", primary_key = "boolean", auto_increment = "boolean", column = "string",
  default = "any", required = "boolean", nullable = "boolean", readonly = "boolean",
  size = "number", precision = "number", scale = "number", values = "table", binary = "boolean",
  min = "number", max = "number", length = "any", format = "string", one_of = "table",
  validate = "function", unsigned = "boolean", unique = "boolean", index = "boolean",
  comment = "string", sql_type = "string", server_default = "boolean",
}

local DEF_KEYS = {
  name = "string", table = "string", backend = "table", fields = "table", primary_key = "string",
  relations = "table", mixins = "table", events = "table", validate = "function",
  scopes = "table", methods = "table",
}

local function config_error(model_name, field, msg)
  errors.raise("ConfigError", ("%s%s: %s"):format(model_name, field and ("." .. field) or "", msg),
    { model = model_name, field = field })
end

-- ---- fields ---------------------------------------------------------------

local function parse_field(model_name, name, spec)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    config_error(model_name, tostring(name), "field names must be identifiers")
  end
  if type(spec) == "string" then spec = { type = spec } end
  if type(spec) ~= "table" then config_error(model_name, name, "a field is a type name or a table") end
  local f = { name = name }
  for k, v in pairs(spec) do
    local want = FIELD_OPTIONS[k]
    if not want then config_error(model_name, name, (options.unknown(spec, FIELD_OPTIONS))) end
    if want ~= "any" and type(v) ~= want then
      config_error(model_name, name, ("option '%s' must be a %s"):format(k, want))
    end
    f[k] = v
  end
  f.type = f.type or "string"
  local t = types.get(f.type)
  if not t then config_error(model_name, name, ("unknown type '%s'"):format(f.type)) end
  if t.options then
    for opt, want in pairs(t.options) do
      if type(f[opt]) ~= want then
        config_error(model_name, name, ("type '%s' needs option '%s' (a %s)"):format(f.type, opt, want))
      end
    end
  end
  f.type_spec = t
  f.column = f.column or name
  if not f.column:match("^[%w_$]+$") or #f.column > 64 then
    config_error(model_name, name, ("column %q must be a plain name of at most 64 letters, digits, _ and $")
      :format(f.column))
  end
  f.to_db, f.from_db, f.cast = t.to_db, t.from_db, t.cast
  f.is_json = f.type == "json" or nil -- a table the caller may change in place
  return f
end

local function sorted_fields(fields, pk)
  local list = {}
  for _, f in pairs(fields) do list[#list + 1] = f end
  table.sort(list, function(a, b)
    if (a.name == pk) ~= (b.name == pk) then return a.name == pk end
    return a.name < b.name
  end)
  return list
end

-- The fields of `def` and its mixins, parsed; the primary key found or added.
local function parse_fields(model, def, mixins)
  local model_name = model.name
  local field_specs = {}
  for _, mx in ipairs(mixins) do
    for name, spec in pairs(mx.fields or {}) do field_specs[name] = spec end
  end
  for name, spec in pairs(def.fields or {}) do field_specs[name] = spec end
  local pk = def.primary_key
  for name, spec in pairs(field_specs) do
    local f = parse_field(model_name, name, spec)
    model.fields[name] = f
    if f.primary_key then
      if pk and pk ~= name then
        config_error(model_name, name, ("two primary keys ('%s' and '%s'); composite keys are not "
          .. "supported by models"):format(pk, name))
      end
      pk = name
    end
  end
  if not pk then
    pk = "id"
    if not model.fields.id then
      model.fields.id = parse_field(model_name, "id", { type = "integer", primary_key = true })
    end
  end
  local pkf = model.fields[pk]
  if not pkf then config_error(model_name, pk, "primary key names no field") end
  pkf.primary_key = true
  -- integer keys are generated by the server unless given
  if pkf.auto_increment ~= false and (pkf.type == "integer" or pkf.type == "bigint") then pkf.auto = true end
  model.primary_key, model.pk_field = pk, pkf
  model.field_list = sorted_fields(model.fields, pk)
  model.columns = {}
  for _, f in ipairs(model.field_list) do
    if model.columns[f.column] then config_error(model_name, f.name, "two fields use column " .. f.column) end
    model.columns[f.column] = f
  end
end

-- Slots of the records (see activerecord.model.layout) and the maps the
-- record metatable reads: field name -> slot (JSON fields apart, they are
-- handed out), slot number -> false.
local function lay_out(model, meta)
  local list, base = model.field_list, layout.BASE
  local n = #list
  local json_fields = {}
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
  end
  meta.json_fields = #json_fields > 0 and json_fields or nil
  meta.nslots = base + n + #json_fields
  for s = 1, meta.nslots do meta.slots[s] = false end
end

-- field -> column, for the query compiler.
local function make_resolver(model)
  local fields = model.fields
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
    if meta and c.query == class_query then
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
local function build_dispatch(model, meta)
  local class_index = setmetatable({}, { __index = ClassMethods })
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
-- default scopes, methods, class methods, write guards and a setup hook.
local MIXIN_KEYS = {
  fields = true, events = true, scopes = true, default_scopes = true, methods = true,
  class_methods = true, write_guards = true, setup = true, options = true,
}

local function resolve_mixin(model_name, entry)
  local spec, opts = entry, {}
  if type(entry) == "string" then
    spec = registry.mixin(entry)
    if not spec then config_error(model_name, nil, ("unknown mixin '%s'"):format(entry)) end
  elseif type(entry) == "table" and type(entry[1]) == "string" then
    spec = registry.mixin(entry[1])
    if not spec then config_error(model_name, nil, ("unknown mixin '%s'"):format(entry[1])) end
    opts = entry[2] or {}
  end
  if type(spec) == "function" then spec = spec(opts) end
  if type(spec) ~= "table" then config_error(model_name, nil, "a mixin is a name or a table") end
  for k in pairs(spec) do
    if not MIXIN_KEYS[k] then config_error(model_name, nil, ("mixin: unknown key '%s'"):format(tostring(k))) end
  end
  return spec
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
    for _, fn in ipairs(handlers) do
      if type(fn) ~= "function" then config_error(model.name, nil, "event handlers must be functions") end
      hooks.on(model, name, fn)
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
--   `primary_key`, `relations`, `mixins`, `events` (name -> function or list),
--   `validate` (function(record, errors)), `scopes` (name -> function(q, ...)),
--   `methods` (instance methods)
-- @treturn table the model class: `ClassMethods`, scopes and query methods
--   (`User:where{...}` is `User:query():where{...}`)
-- @raise `ConfigError` naming the model and the field: unknown option, wrong
--   type, unknown field type or mixin or event, two primary keys
function M.define(def)
  if type(def) ~= "table" then errors.raise("ConfigError", "ar.Model expects a table") end
  local model_name = def.name or def.table or "Model"
  for k, v in pairs(def) do
    local want = DEF_KEYS[k]
    if not want then config_error(model_name, nil, (options.unknown(def, DEF_KEYS))) end
    if type(v) ~= want then config_error(model_name, nil, ("option '%s' must be a %s"):format(k, want)) end
  end
  if not def.table then config_error(model_name, nil, "a model needs a table name") end
  -- plain names only (letters, digits, _ and $; "schema.table" allowed): they
  -- are quoted anyway, but a model is no place for exotic identifiers
  if not def.table:match("^[%w_$]+$") and not def.table:match("^[%w_$]+%.[%w_$]+$") or #def.table > 129 then
    config_error(model_name, nil, ("table %q must be a plain name (letters, digits, _ and $)"):format(def.table))
  end
  local model = { name = model_name, table = def.table, backend = def.backend, fields = {}, relations = {} }
  local meta = new_meta(def)

  -- mixins first: the model's own definitions may override them
  local mixins = {}
  for _, entry in ipairs(def.mixins or {}) do mixins[#mixins + 1] = resolve_mixin(model_name, entry) end
  parse_fields(model, def, mixins)
  lay_out(model, meta)
  model.resolve = make_resolver(model)
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
  for name, fn in pairs(def.methods or {}) do hooks.add_method(model, name, fn) end

  meta.json_scratch = { values = {}, texts = {} }
  meta.validator = validation.compile(model.field_list, meta.json_scratch)
  finders.install_loaders(model, meta)
  meta.new, meta.build = finders.make_new(model, meta)
  meta.collect_insert = shapes.make_collector(model, true)
  meta.collect_update = shapes.make_collector(model, false)
  -- User.new{...} (as in the design) and User:new{...} both work
  local new = meta.new
  model.new = function(a, b)
    if a == model then return new(b) end
    return new(a)
  end
  for _, mx in ipairs(mixins) do
    if mx.setup then mx.setup(model, hooks) end
  end
  M.define_relations(model, def.relations)
  registry.register_model(model_name, model)
  if def.name and def.table ~= def.name then registry.register_model(def.table, model) end
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

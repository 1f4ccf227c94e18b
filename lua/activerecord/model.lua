--- Models as Lua tables: `ar.Model{ table = ..., fields = {...}, ... }`
-- returns a class; instances keep their values in a private state so that
-- every assignment goes through `__newindex` (type casts, dirty tracking,
-- unknown names refused, nil marks a field dirty and writes NULL).
-- @module activerecord.model
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local types = require("activerecord.types")
local validation = require("activerecord.validation")
local registry = require("activerecord.registry")
local query = require("activerecord.query")

local M = {}

local null = core.null
local unpack = table.unpack
-- locals, not globals: the attribute path runs once per field read
local type, rawget, setmetatable = type, rawget, setmetatable
local STATE = setmetatable({}, { __tostring = function() return "<record state>" end })
-- Shared, never written: a clean record's change set (one table fewer per
-- loaded row); assign() swaps in a real table on the first change.
local NO_CHANGES = setmetatable({}, { __newindex = function() error("internal: NO_CHANGES is read-only") end })
M.NO_CHANGES = NO_CHANGES
-- The change record of a field that had no value (shared: never written).
local NIL_OLD = setmetatable({}, { __newindex = function() error("internal: NIL_OLD is read-only") end })

M.EVENTS = {
  "before_validate", "after_validate", "before_save", "after_save", "before_create",
  "after_create", "before_update", "after_update", "before_delete", "after_delete",
}
local EVENT_SET = {}
for _, e in ipairs(M.EVENTS) do EVENT_SET[e] = true end

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

-- ---- definition ---------------------------------------------------------

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

local function add_events(model, events, source)
  for name, handlers in pairs(events or {}) do
    if not EVENT_SET[name] then
      config_error(model.name, nil, ("%sunknown event '%s' (events: %s)"):format(source or "",
        tostring(name), table.concat(M.EVENTS, ", ")))
    end
    if type(handlers) == "function" then handlers = { handlers } end
    if type(handlers) ~= "table" then
      config_error(model.name, nil, ("event '%s': a handler is a function or a list of functions"):format(name))
    end
    for _, fn in ipairs(handlers) do
      if type(fn) ~= "function" then config_error(model.name, nil, "event handlers must be functions") end
      local list = model._events[name]
      list[#list + 1] = fn
    end
  end
end

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

local ClassMethods = {}
local InstanceMethods = {}
M.InstanceMethods = InstanceMethods
M.ClassMethods = ClassMethods

-- field -> column, for the query compiler.
local function make_resolver(model)
  local fields = model.fields
  return function(name)
    local f = fields[name]
    if f then return f.column end
    return name
  end
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

-- ---- JSON values changed in place ----------------------------------------
-- A JSON field holds a Lua table the caller may change in place
-- (`r.doc.browser = "safari"`), which no assignment reports. A stored record
-- keeps, per JSON field it handed out or wrote, what the database holds,
-- in its values table under the field's definition table as key
-- (`values[f]`, never a field name, so never an attribute): the
-- JSON text the last write bound, or, for a loaded value, its structural
-- hash (core.json_hash) taken when it is first handed out. Neither builds a
-- table: a large fetch whose JSON is read allocates nothing more, so it
-- gives the collector no more work. A different value when asked (save,
-- is_dirty, dirty_fields, old_value) is a change. An equal table can encode
-- differently only after keys were added and removed again: at worst one
-- needless write. A change found through a hash has no old value at hand:
-- `old_value` reads it from the row when asked.

local json_hash, json_decode = core.json_hash, core.json_decode
-- values[HANDED]: a JSON table was handed out (read, to_table, pairs) or
-- written, so it may change in place; only then is it compared.
local HANDED = setmetatable({}, { __tostring = function() return "<json handed out>" end })

local function encode(f, v)
  local ok, text = pcall(f.to_db, v, f)
  return ok and text or false -- false: not encodable, seen as changed
end

-- Remembers a loaded JSON table at its first hand-out.
local function snapshot(st, f, v)
  local values = st.values
  if values[f] ~= nil or st.changes[f.name] ~= nil then return end -- held already / not what the database holds
  values[f] = json_hash(v)
end

-- Every JSON table of a stored record goes out at once (to_table, pairs).
local function hand_out_json(st)
  local list = st.model._json_fields
  if not list or not st.persisted then return end
  local values = st.values
  for i = 1, #list do
    local f = list[i]
    local v = values[f.name]
    if type(v) == "table" and values[f] == nil then snapshot(st, f, v) end
  end
  values[HANDED] = true
end

-- After a write: the texts it bound are what the database holds.
local function keep_texts(st, texts)
  local fields = st.model.fields
  local values = st.values
  for name, text in next, texts do values[fields[name]] = text end
  values[HANDED] = true -- the caller may still hold the tables it wrote
end

-- Whether `v` still is what the database holds (`held`: a text or a hash).
local function unchanged(f, v, held)
  if not held then return false end
  if math.type(held) == "integer" then return json_hash(v) == held end
  if encode(f, v) == held then return true end
  local ok, old = pcall(json_decode, held)
  return ok and json_hash(old) == json_hash(v) -- the same value, other key order
end

-- Turns in-place changes of handed-out JSON tables into ordinary changes.
local function sync_json(st)
  if not st.persisted then return end
  local list = st.model._json_fields
  local changes, values = st.changes, st.values
  for i = 1, #list do
    local f = list[i]
    local name, held = f.name, values[f]
    if held ~= nil and changes[name] == nil and not unchanged(f, values[name], held) then
      if changes == NO_CHANGES then
        changes = {}
        st.changes = changes
      end
      if type(held) == "string" then
        local old = json_decode(held)
        changes[name] = old == nil and NIL_OLD or { old = old }
      else -- only a hash: old_value reads the stored value when asked
        changes[name] = { unread = true }
      end
    end
  end
end
M.sync_json = sync_json

local function make_instance_mt(model)
  local fields = model.fields
  local methods = model._methods
  local mt = { __name = model.name }
  mt.__index = function(inst, k)
    local f = fields[k]
    if f then
      local st = inst[STATE] -- present, so a plain read: no metamethod, no C call
      local v = st.values[k]
      if f.is_json and type(v) == "table" and st.persisted then
        -- handed out: the caller may change it in place from now on
        local values = st.values
        if values[f] == nil then snapshot(st, f, v) end
        values[HANDED] = true
      end
      return v
    end
    local m = methods[k] or InstanceMethods[k]
    if m ~= nil then return m end
    local rel = model.relations and model.relations[k]
    if rel then return rel.accessor end
    errors.raise("ConfigError", ("%s has no field or method '%s'"):format(model.name, tostring(k)))
  end
  mt.__newindex = function(inst, k, v) M.assign(inst, k, v) end
  mt.__tostring = function(inst) return InstanceMethods.inspect(inst) end
  mt.__pairs = function(inst)
    local st = rawget(inst, STATE)
    hand_out_json(st)
    local i = 0
    return function()
      i = i + 1
      local f = model.field_list[i]
      if f then return f.name, st.values[f.name] end
    end, inst, nil
  end
  return mt
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
  local model = {
    name = model_name, table = def.table, backend = def.backend, fields = {},
    relations = {}, _events = {}, _scopes = {}, _default_scopes = {}, _methods = {},
    _write_guards = {}, _from_db = {}, _sql = {}, _validate = def.validate,
  }
  for _, e in ipairs(M.EVENTS) do model._events[e] = {} end

  -- mixins first: the model's own definitions may override them
  local mixins = {}
  for _, entry in ipairs(def.mixins or {}) do mixins[#mixins + 1] = resolve_mixin(model_name, entry) end
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
  model.primary_key = pk
  model.pk_field = pkf
  model.field_list = sorted_fields(model.fields, pk)
  for _, f in ipairs(model.field_list) do
    if f.is_json then
      model._json_fields = model._json_fields or {}
      model._json_fields[#model._json_fields + 1] = f
    end
  end
  model.columns = {}
  for _, f in ipairs(model.field_list) do
    if model.columns[f.column] then config_error(model_name, f.name, "two fields use column " .. f.column) end
    model.columns[f.column] = f
    if f.from_db then model._from_db[f.name] = f.from_db end
  end
  model.resolve = make_resolver(model)

  for _, mx in ipairs(mixins) do
    add_events(model, mx.events, "mixin: ")
    for name, fn in pairs(mx.scopes or {}) do model._scopes[name] = fn end
    for name, fn in pairs(mx.default_scopes or {}) do
      model._default_scopes[#model._default_scopes + 1] = { name = name, fn = fn }
    end
    for name, fn in pairs(mx.methods or {}) do model._methods[name] = fn end
    for name, fn in pairs(mx.class_methods or {}) do model[name] = fn end
    if mx.write_guards then model._write_guards[#model._write_guards + 1] = mx.write_guards end
  end
  add_events(model, def.events)
  for name, fn in pairs(def.scopes or {}) do
    if type(fn) ~= "function" then config_error(model_name, nil, "scope '" .. name .. "' must be a function") end
    model._scopes[name] = fn
  end
  for name, fn in pairs(def.methods or {}) do model._methods[name] = fn end
  table.sort(model._default_scopes, function(a, b) return a.name < b.name end)

  model._instance_mt = make_instance_mt(model)
  model._query_mt = {
    __index = function(_, k)
      local v = query.Query[k]
      if v ~= nil then return v end
      local qm = model._query_methods and model._query_methods[k]
      if qm then return qm end
      local scope = model._scopes[k]
      if scope then return scope end
      return nil
    end,
    __tostring = query.Query.__tostring,
  }
  setmetatable(model, M.ModelMT)
  -- User.new{...} (as in the design) and User:new{...} both work
  model.new = function(a, b)
    if a == model then return ClassMethods.new(model, b) end
    return ClassMethods.new(model, a)
  end
  for _, mx in ipairs(mixins) do
    if mx.setup then mx.setup(model) end
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

-- ---- class ----------------------------------------------------------------

local NO_METHODS = {} -- read-only: a miss must not allocate (model.backend is often nil)

M.ModelMT = {
  __index = function(cls, k)
    local m = ClassMethods[k]
    if m ~= nil then return m end
    local scope = rawget(cls, "_scopes")[k]
    if scope then return function(c, ...) return scope(c:query(), ...) end end
    local qm = query.Query[k] or (rawget(cls, "_query_methods") or NO_METHODS)[k]
    if type(qm) == "function" then
      return function(c, ...)
        local q = c:query()
        return qm(q, ...)
      end
    end
    return nil
  end,
  __tostring = function(cls) return ("Model %s (%s)"):format(cls.name, cls.table) end,
}

local function model_backend(self)
  -- raw: a model without its own backend must not go through __index
  local b = rawget(self, "backend") or registry.default_backend()
  if not b then
    errors.raise("ConfigError", self.name .. ": no backend (pass backend = db, or ar.set_default_backend(db))")
  end
  return b
end
ClassMethods._backend = model_backend

--- Class methods of every model (`User:find(1)`, `User:query()`, ...).
-- @type ClassMethods

--- A new query on the model's table, with its default scopes applied when it runs.
-- @treturn activerecord.query.Query the query
-- @usage User:query():where{ active = true }:order_by("id", "desc"):limit(10):all()
function ClassMethods:query()
  local q = query.new{ table = self.table, model = self, resolve = self.resolve,
                       backend = function() return self:_backend() end }
  return setmetatable(q, self._query_mt)
end

--- A query without the default scopes (e.g. soft_delete's filter).
-- @treturn activerecord.query.Query the query
function ClassMethods:unscoped()
  local q = self:query()
  q.skip_all_scopes = true
  return q
end

--- Adds an event handler.
-- @tparam string event `before_validate`, `after_validate`, `before_save`,
--   `after_save`, `before_create`, `after_create`, `before_update`,
--   `after_update`, `before_delete` or `after_delete`
-- @tparam function fn called with the record (after-events also get the affected rows)
-- @treturn function `fn`, for `off`
-- @raise `ConfigError` for an unknown event or a non-function
function ClassMethods:on(event, fn)
  if not EVENT_SET[event] then config_error(self.name, nil, "unknown event '" .. tostring(event) .. "'") end
  if type(fn) ~= "function" then config_error(self.name, nil, "event handlers must be functions") end
  local list = self._events[event]
  list[#list + 1] = fn
  return fn
end

--- Removes an event handler added with `on`.
-- @tparam string event the event
-- @tparam function fn the handler
-- @treturn boolean whether it was found
function ClassMethods:off(event, fn)
  local list = self._events[event] or {}
  for i = #list, 1, -1 do
    if list[i] == fn then table.remove(list, i) return true end
  end
  return false
end

--- Runs `fn` in a transaction on the model's backend (`Backend:transaction`).
-- @tparam function fn the work
-- @tparam[opt] table opts `isolation`, `read_only`, `retries`
-- @return `fn`'s results
-- @raise what `Backend:transaction` raises; `ConfigError` without a backend
function ClassMethods:transaction(fn, opts)
  return self:_backend():transaction(fn, opts)
end

-- Lua value of a field -> what the backend binds.
function ClassMethods:_to_db(name, v)
  local f = self.fields[name]
  if v == nil or v == null then return null end
  if f and f.cast then v = f.cast(v, f) end
  if f and f.to_db then return f.to_db(v, f) end
  return v
end

-- A row (column -> value) from the C core -> an instance.
-- JSON text needs decoding in Lua only when the server cannot tell the C
-- core a column is JSON (no native type, no extended metadata). Asked once.
function ClassMethods:_check_json()
  local db = self:_backend()
  local text = not (db:supports("native_json") or db:supports("json_extended_metadata"))
  for _, f in ipairs(self.field_list) do
    if f.type == "json" then f.json_text = text end
  end
  rawset(self, "_json_checked", true)
end

-- The values of `list`'s fields from a row (column -> value) into `values`,
-- each converted once by its type.
local function read_fields(list, row, values)
  for i = 1, #list do
    local f = list[i]
    local v = row[f.column]
    if v ~= nil and f.from_db then v = f.from_db(v, f) end
    values[f.name] = v
  end
  return values
end

-- `held`: for rows from `_execute_json_hashes`, a list of { field, key }:
-- row[key] is the hash of what the field's JSON column holds (see
-- `snapshot`), kept so a change made in place is seen without hashing the
-- value again when it is read.
function ClassMethods:_load(row, held)
  if not rawget(self, "_json_checked") then self:_check_json() end
  local values = read_fields(self.field_list, row, {})
  if held then -- what the JSON columns hold, in the values table's spare slots
    for i = 1, #held do
      local h = held[i]
      values[h[1]] = row[h[2]]
    end
  end
  return setmetatable({ [STATE] = { model = self, values = values, changes = NO_CHANGES, persisted = true } },
    self._instance_mt)
end

-- For a result of `_execute_json_hashes`: which row keys hold the hashes
-- of this model's JSON fields (nil when none). The core hands back one
-- columns table per statement shape, so the last answer is kept with it.
local function held_keys(self, columns)
  local fields = rawget(self, "_json_fields")
  if not fields or not columns then return nil end
  if rawget(self, "_held_for") == columns then return rawget(self, "_held") end
  local held
  for i = 1, #columns do
    local name = columns[i].name
    for j = 1, #fields do
      if fields[j].column == name then
        held = held or {}
        held[#held + 1] = { fields[j], -i }
      end
    end
  end
  rawset(self, "_held_for", columns)
  rawset(self, "_held", held)
  return held
end
ClassMethods._held_keys = held_keys

--- A new, unsaved record with defaults applied (`User.new{...}` or `User:new{...}`).
-- @tparam table cls the model class
-- @tparam[opt] table attrs field -> value
-- @return the record
-- @raise `ConfigError` for an unknown field or non-table attributes;
--   `ValidationError` for a read-only field
function ClassMethods.new(cls, attrs)
  if attrs ~= nil and type(attrs) ~= "table" then
    errors.raise("ConfigError", cls.name .. ".new expects a table of attributes")
  end
  local st = { model = cls, values = {}, changes = {}, persisted = false }
  local inst = setmetatable({ [STATE] = st }, cls._instance_mt)
  for _, f in ipairs(cls.field_list) do
    local d = f.default
    if d ~= nil then
      if type(d) == "function" then d = d() end
      if f.cast then d = f.cast(d, f) end
      st.values[f.name] = d
    end
  end
  for k, v in pairs(attrs or {}) do M.assign(inst, k, v) end
  return inst
end

-- A new instance from attributes without change tracking: for bulk
-- inserts, where every record is written whole and comes back clean.
function ClassMethods:_build(attrs)
  local fields = self.fields
  for k in pairs(attrs) do
    if not fields[k] then errors.raise("ConfigError", ("%s has no field '%s'"):format(self.name, tostring(k))) end
  end
  local values = {}
  for _, f in ipairs(self.field_list) do
    local v = attrs[f.name]
    if v == nil and f.default ~= nil then
      v = f.default
      if type(v) == "function" then v = v() end
    end
    if v == null then
      v = nil
    elseif v ~= nil and f.cast then
      v = f.cast(v, f)
    end
    values[f.name] = v
  end
  return setmetatable({ [STATE] = { model = self, values = values, changes = NO_CHANGES, persisted = false } },
    self._instance_mt)
end

--- Builds and saves a record (`new` then `InstanceMethods:save`).
-- @tparam table attrs field -> value
-- @tparam[opt] table opts the options of `save`
-- @return the saved record
-- @raise `ValidationError` (with `errors = { field = { messages } }`; nothing
--   is written), `IntegrityError` (duplicate key, foreign key, NOT NULL),
--   `DataError`, `StaleObjectError` (optimistic_lock), any error a
--   before-event raised, and the backend's statement errors
function ClassMethods:create(attrs, opts)
  local inst = self:new(attrs)
  inst:save(opts)
  return inst
end

-- find(id) runs often: without default scopes its SQL is compiled once per
-- model and only the key changes between calls. Default scopes are
-- functions (a tenant filter may read a current-tenant variable), so a
-- scoped model compiles them at each call.
local ID_SLOT = query.slot("<id>") -- bound as itself: a plain table is not a value

local function compile_find(model, db)
  local q = model:query():where(query.col(model.primary_key):eq(ID_SLOT)):limit(1)
  local sql, params = db.compiler.select(db.dialect, q:_final())
  local slot
  for i = 1, params.n do
    if params[i] == ID_SLOT then slot = i end
  end
  return { sql = sql, params = params, slot = slot, backend = db }
end

local function find_template(self)
  local db = model_backend(self)
  if #self._default_scopes > 0 then return compile_find(self, db) end
  local t = rawget(self, "_find_sql")
  if t and t.backend == db then return t end
  t = compile_find(self, db)
  rawset(self, "_find_sql", t)
  return t
end

ClassMethods._find_template = find_template

--- The record with this primary key, or nil (default scopes apply, as they
-- are when this call runs).
-- @param id the primary key value
-- @return the record or nil
-- @raise the backend's statement errors; `ConfigError` without a backend
function ClassMethods:find(id)
  if id == nil or id == null then
    errors.raise("QueryError", self.name .. ".find expects an id (a primary key value), got nil")
  end
  if type(id) == "table" then -- a decoded request body is not a key
    errors.raise("QueryError", self.name .. ".find expects an id (a primary key value), got a table")
  end
  local t = find_template(self)
  local pkf = self.pk_field
  local params = t.params
  local args = {}
  for i = 1, params.n do args[i] = params[i] end
  args[t.slot] = pkf.to_db and pkf.to_db(id, pkf) or id
  -- one row: its JSON, if read at all, is hashed when first handed out
  -- (hashing while decoding pays off for many rows, see Query:_model_rows)
  local row = t.backend:execute(t.sql, unpack(args, 1, params.n)).rows[1]
  return row and self:_load(row) or nil
end

--- Like `find`, raising when the record is absent.
-- @param id the primary key value
-- @return the record
-- @raise `RecordNotFound` (with `model` and `id`); the errors of `find`
function ClassMethods:find_or_fail(id)
  local rec = self:find(id)
  if not rec then
    errors.raise("RecordNotFound", ("%s with %s = %s not found"):format(self.name, self.primary_key,
      tostring(id)), { model = self.name, id = id })
  end
  return rec
end

--- The first record (by primary key) matching `where(conditions)`, or nil.
-- @tparam table conditions field -> value (see `activerecord.query.Query:where`)
-- @return the record or nil
-- @raise `QueryError` for a bad column name; the backend's statement errors
function ClassMethods:find_by(conditions)
  -- a table only: a string here would be raw SQL, too easy to pass user input into
  if type(conditions) ~= "table" then
    errors.raise("QueryError", self.name .. ".find_by expects a table of conditions ({ name = ... })")
  end
  return self:query():where(conditions):first()
end

--- Every record of the model (default scopes apply).
-- @treturn table an array of records
-- @raise the backend's statement errors
function ClassMethods:all()
  return self:query():all()
end

-- ---- instances ------------------------------------------------------------

local function state_of(inst)
  local st = type(inst) == "table" and rawget(inst, STATE)
  if not st then errors.raise("ConfigError", "expected a model instance (use rec:method(), not rec.method())") end
  return st
end
M.state_of = state_of

-- Assignment: casts, refuses unknown names and read-only changes, tracks
-- the old value the first time a field changes.
function M.assign(inst, name, v)
  local st = state_of(inst)
  local model = st.model
  local f = model.fields[name]
  if not f then
    errors.raise("ConfigError", ("%s has no field '%s'"):format(model.name, tostring(name)))
  end
  if f.readonly and st.persisted then
    errors.raise("ValidationError", ("%s.%s is read-only"):format(model.name, name),
      { errors = { [name] = { "is read-only" } } })
  end
  if v ~= nil and v ~= null and f.cast then v = f.cast(v, f) end
  if v == null then v = nil end
  local values, changes = st.values, st.changes
  if changes == NO_CHANGES then
    changes = {}
    st.changes = changes
  end
  local old = values[name]
  local change = changes[name]
  if change == nil then
    if old == v and type(v) ~= "table" and st.persisted then return end
    changes[name] = old == nil and NIL_OLD or { old = old }
  elseif change.old == v and not change.unread and type(v) ~= "table" and st.persisted then
    changes[name] = nil -- back to the stored value
  end
  values[name] = v
end

local function run_event(model, name, inst, ...)
  local list = model._events[name]
  for i = 1, #list do list[i](inst, ...) end
end
M.run_event = run_event

--- Methods of every record (`rec:save()`, ...); a model's own `methods`
-- and relation accessors (`post:comments()`) come with them.
-- @type InstanceMethods

--- Whether the record was never saved (or was deleted).
-- @treturn boolean
function InstanceMethods:is_new() return not state_of(self).persisted end
--- Whether some field changed since the record was loaded or saved.
-- @treturn boolean
function InstanceMethods:is_dirty()
  local st = state_of(self)
  if st.values[HANDED] then sync_json(st) end
  return next(st.changes) ~= nil
end

--- The names of the changed fields, in field order.
-- @treturn {string,...}
function InstanceMethods:dirty_fields()
  local st = state_of(self)
  if st.values[HANDED] then sync_json(st) end
  local out = {}
  for _, f in ipairs(st.model.field_list) do
    if st.changes[f.name] then out[#out + 1] = f.name end
  end
  return out
end

--- A field's value as loaded or last saved (its current value when unchanged).
-- @tparam string name the field
-- @return the old value
-- @raise `ConfigError` for an unknown field
function InstanceMethods:old_value(name)
  local st = state_of(self)
  if not st.model.fields[name] then
    errors.raise("ConfigError", ("%s has no field '%s'"):format(st.model.name, tostring(name)))
  end
  if st.values[HANDED] then sync_json(st) end
  local c = st.changes[name]
  if c and c.unread then -- a JSON table changed in place: the row still holds the old value
    local model, pkf = st.model, st.model.pk_field
    local stored = model:unscoped():where({ [pkf.name] = st.values[pkf.name] }):limit(1):all()[1]
    c.old, c.unread = stored and rawget(stored, STATE).values[name], nil
  end
  if c then return c.old end
  return st.values[name]
end

--- The field values as a plain table.
-- @treturn table field -> value
function InstanceMethods:to_table()
  local st = state_of(self)
  local model = st.model
  hand_out_json(st)
  local out, values = {}, st.values
  for _, f in ipairs(model.field_list) do out[f.name] = values[f.name] end
  return out
end

--- The record's model class.
-- @treturn table
function InstanceMethods:model() return state_of(self).model end

--- A one-line description, as `tostring(record)` shows it.
-- @treturn string e.g. `User(id=1, name="Ann")`
function InstanceMethods:inspect()
  local st = state_of(self)
  local parts = {}
  for _, f in ipairs(st.model.field_list) do
    local v = st.values[f.name]
    if v ~= nil then
      local shown = type(v) == "string" and ("%q"):format(v) or (type(v) == "table" and "{...}" or tostring(v))
      parts[#parts + 1] = f.name .. "=" .. shown
    end
  end
  return ("%s(%s)%s"):format(st.model.name, table.concat(parts, ", "), st.persisted and "" or " [new]")
end

--- Runs the validations (and the validate events); never touches the database.
-- @tparam[opt] boolean changed_only check only the fields that changed (what
--   `save` does for a stored record: the others hold what the database accepted)
-- @treturn boolean true when valid
-- @treturn table `{ field = { messages } }` when not
function InstanceMethods:valid(changed_only)
  local st = state_of(self)
  local model = st.model
  run_event(model, "before_validate", self)
  local errs = validation.new_errors()
  local changes = st.changes
  for _, f in ipairs(model.field_list) do
    local v = st.values[f.name]
    -- nil in a new record: the server fills a generated key or a column
    -- with a table default (server_default)
    if not ((f.auto or (f.server_default and not st.persisted)) and v == nil)
        and not (changed_only and changes[f.name] == nil) then
      validation.check_field(self, f, v, errs)
    end
  end
  if model._validate then model._validate(self, errs) end
  run_event(model, "after_validate", self, errs)
  if errs:any() then return false, errs:to_table(), errs end
  return true
end

-- ---- state undo after a rollback -----------------------------------------
-- A write registers a closure with the backend (`_track_undo`); when the
-- transaction or savepoint it ran in is rolled back, the closure gives the
-- record its state from before the write. It captures the change set the
-- write consumed (save replaces it, never edits it): no copies of values.

-- Back to the change set `old`, keeping changes made after the write
-- (a field absent from `old` was not written, so its `old` value holds).
local function restore_changes(st, old)
  local cur = st.changes
  if cur == NO_CHANGES or cur == old or next(cur) == nil then
    st.changes = old
    return
  end
  local merged = {}
  for k, c in next, old do merged[k] = c end
  for k, c in next, cur do
    if merged[k] == nil then merged[k] = c end
  end
  st.changes = merged
end

-- The record is held weakly (an ephemeron: its old change set lives as long
-- as it does): a record the caller dropped needs no undo, and a long
-- transaction of saves does not keep every record alive.
local EPHEMERON = { __mode = "k" }

local function insert_undo(st, old_changes, shape, generated_pk)
  local ref = setmetatable({ [st] = old_changes }, EPHEMERON)
  return function()
    local s, old = next(ref)
    if s == nil then return end
    s.persisted = false
    local values, cur = s.values, s.changes
    if generated_pk and cur[generated_pk] == nil then values[generated_pk] = nil end
    local read = shape.read
    for i = 1, #read do
      local name = read[i].name
      if cur[name] == nil then values[name] = nil end
    end
    restore_changes(s, old)
  end
end

-- An UPDATE or DELETE undone: stored again, with the changes it consumed.
local function stored_undo(st, old_changes)
  local ref = setmetatable({ [st] = old_changes }, EPHEMERON)
  return function()
    local s, old = next(ref)
    if s == nil then return end
    s.persisted = true
    restore_changes(s, old)
  end
end

-- Registers `undo` with the running transaction; false when there is none
-- (or the backend cannot track: then the caller's own wrapper undoes).
local function track(db, undo)
  local t = db._track_undo
  return t ~= nil and t(db, undo) or false
end

-- ---- writes ---------------------------------------------------------------

local function guards(model, inst)
  local out = {}
  for _, g in ipairs(model._write_guards) do
    local col, value = g(inst)
    if col then out[#out + 1] = { column = col, value = value } end
  end
  return out
end

-- What an INSERT of these columns reads back: the model's fields it does not
-- write (server defaults, generated columns, values set by triggers), with
-- RETURNING where the server has it, else by a read by primary key. A
-- generated key alone comes from the insert id. Built once per written set.
local function insert_shape(model, db, cols)
  local key = "I" .. table.concat(cols, ",")
  local shape = model._sql[key]
  if shape and shape.db == db then return shape end
  local d = db.dialect
  local pkf = model.pk_field
  local written = {}
  for _, c in ipairs(cols) do written[c] = true end
  local read = {}
  for _, f in ipairs(model.field_list) do
    if not written[f.column] and not (f == pkf and pkf.auto) then read[#read + 1] = f end
  end
  local sql = db:compile("insert", model.table, cols, 1)
  shape = { db = db, read = read, sql = sql }
  if #read > 0 then
    local names = { pkf.column }
    for _, f in ipairs(read) do
      if f ~= pkf then names[#names + 1] = f.column end
    end
    if db:supports("returning") then
      shape.sql = sql .. d:returning_clause(names, "returning", "INSERT ... RETURNING")
      shape.returning = true
    else
      shape.select = "SELECT " .. d:quote_list(names, "SELECT") .. " FROM " .. d:quote_qualified(model.table)
        .. " WHERE " .. d:quote_identifier(pkf.column) .. " = ?"
    end
  end
  model._sql[key] = shape
  return shape
end

-- The server's values of the fields the INSERT left out.
local function read_back(model, st, shape, row)
  if not rawget(model, "_json_checked") then model:_check_json() end
  read_fields(shape.read, row, st.values)
end

-- INSERT; returns the affected rows and the undo closure.
local function insert_row(model, st, db)
  local cols, vals = {}, { n = 0 }
  local values, changes = st.values, st.changes
  local list = model.field_list
  local texts
  for i = 1, #list do
    local f = list[i]
    local v = values[f.name]
    if v ~= nil or (changes[f.name] and not f.auto) then
      cols[#cols + 1] = f.column
      local b = v == nil and null or (f.to_db and f.to_db(v, f) or v)
      vals.n = vals.n + 1
      vals[vals.n] = b
      if f.is_json and type(v) == "table" then
        if texts == nil then texts = { [f.name] = b } else texts[f.name] = b end
      end
    end
  end
  local shape = insert_shape(model, db, cols)
  local res = db:execute(shape.sql, unpack(vals, 1, vals.n))
  if texts then keep_texts(st, texts) end
  local pkf = model.pk_field
  local generated_pk = false
  if values[pkf.name] == nil then
    local row = shape.returning and res.rows[1]
    local id = row and row[pkf.column]
    if id == nil and pkf.auto and res.insert_id and res.insert_id ~= 0 then id = res.insert_id end
    if id ~= nil then
      values[pkf.name] = pkf.from_db and pkf.from_db(id, pkf) or id
      generated_pk = pkf.name
    end
  end
  if shape.returning then
    if res.rows[1] then read_back(model, st, shape, res.rows[1]) end
  elseif shape.select and values[pkf.name] ~= nil then
    local id = values[pkf.name]
    local row = db:execute(shape.select, pkf.to_db and pkf.to_db(id, pkf) or id).rows[1]
    if row then read_back(model, st, shape, row) end
  end
  st.persisted = true
  return res.affected_rows, insert_undo(st, changes, shape, generated_pk)
end

-- UPDATE of the changed columns; returns the affected rows and the undo closure.
local function update_row(model, st, inst, db)
  local cols, vals = {}, { n = 0 }
  local changes = st.changes
  local texts
  for _, f in ipairs(model.field_list) do
    if changes[f.name] then
      local v = st.values[f.name]
      cols[#cols + 1] = f.column
      local b = v == nil and null or (f.to_db and f.to_db(v, f) or v)
      vals.n = vals.n + 1
      vals[vals.n] = b
      if f.is_json and type(v) == "table" then
        if texts == nil then texts = { [f.name] = b } else texts[f.name] = b end
      end
    end
  end
  if #cols == 0 then return 0 end
  local pkf = model.pk_field
  local pk_value = changes[pkf.name] and changes[pkf.name].old or st.values[pkf.name]
  vals.n = vals.n + 1
  vals[vals.n] = pkf.to_db and pkf.to_db(pk_value, pkf) or pk_value
  local gs = guards(model, inst)
  local guard_cols = {}
  for i, g in ipairs(gs) do
    guard_cols[i] = g.column
    vals.n = vals.n + 1
    vals[vals.n] = g.value
  end
  -- the SQL text depends only on which columns change: built once, reused
  local key = "U" .. table.concat(cols, ",") .. "|" .. table.concat(guard_cols, ",")
  local sql = model._sql[key]
  if not sql then
    local d = db.dialect
    local sets, where = {}, { d:quote_identifier(pkf.column) .. " = ?" }
    for i, c in ipairs(cols) do sets[i] = d:quote_identifier(c) .. " = ?" end
    for _, c in ipairs(guard_cols) do where[#where + 1] = d:quote_identifier(c) .. " = ?" end
    sql = "UPDATE " .. d:quote_qualified(model.table) .. " SET " .. table.concat(sets, ", ")
      .. " WHERE " .. table.concat(where, " AND ")
    model._sql[key] = sql
  end
  local res = db:execute(sql, unpack(vals, 1, vals.n))
  if #gs > 0 and res.affected_rows == 0 then
    errors.raise("StaleObjectError", ("%s %s = %s was changed or deleted by someone else"):format(
      model.name, pkf.name, tostring(pk_value)), { model = model.name, id = pk_value })
  end
  if texts then keep_texts(st, texts) end
  return res.affected_rows, stored_undo(st, changes)
end

-- Whether a write of this kind has after-handlers (then it and they run as
-- one unit in a transaction, or a savepoint inside one).
local function has_after(model, event)
  local ev = model._events
  return #ev[event] > 0 or (event ~= "after_delete" and #ev.after_save > 0)
end

-- Runs `write()` (which returns affected, undo) and the after-events in a
-- transaction: an error from a handler rolls the write back. The undo runs
-- with the rollback; a backend that cannot track it leaves it to us.
local function write_unit(db, inst, write, after1, after2)
  local undo, tracked
  local ok, res = pcall(db.transaction, db, function()
    local affected
    affected, undo = write()
    tracked = undo ~= nil and track(db, undo)
    local model = rawget(inst, STATE).model
    run_event(model, after1, inst, affected)
    if after2 then run_event(model, after2, inst, affected) end
    return affected
  end)
  if not ok then
    if undo and not tracked then undo() end
    error(res, 0)
  end
  return res
end

local SAVE_OPTIONS = { validate = true, upsert = true }

--- Validates, runs the events and writes: an INSERT for a new record, an
-- UPDATE of the changed columns only for a stored one (no SQL when nothing
-- changed). After an INSERT the record holds the server's values of the
-- fields it did not set (defaults, generated columns, trigger-set values).
-- The write and its after-handlers are one unit: an error raised by an
-- `after_create`, `after_update` or `after_save` handler rolls the write
-- back (a savepoint inside a transaction). When a transaction the write ran
-- in is rolled back, the record gets its state back (new or dirty again).
-- @tparam[opt] table opts `validate = false` skips validation; `upsert = true`
--   writes with INSERT ... ON DUPLICATE KEY UPDATE and returns the affected
--   rows and `"inserted"`, `"updated"` or `"unchanged"` (see `activerecord.bulk`)
-- @treturn integer the affected rows (0 when nothing changed)
-- @raise `ValidationError` (with `errors = { field = { messages } }`; nothing
--   is written), `IntegrityError` (duplicate key, foreign key, NOT NULL),
--   `DataError`, `StaleObjectError` (optimistic_lock), any error an event
--   handler raised, and the backend's statement errors; `ConfigError`
--   for unknown options
function InstanceMethods:save(opts)
  local st = state_of(self)
  if opts ~= nil then
    if type(opts) ~= "table" then errors.raise("ConfigError", "save expects an options table") end
    options.check(opts, SAVE_OPTIONS, "save")
  end
  local model = st.model
  local creating = not st.persisted
  if st.values[HANDED] then sync_json(st) end
  if not creating and next(st.changes) == nil then return 0 end
  if not (opts and opts.validate == false) then
    local ok, errs, collector = self:valid(not creating)
    if not ok then
      errors.raise("ValidationError", ("%s is invalid: %s"):format(model.name, collector:summary()),
        { errors = errs, model = model.name })
    end
  end
  run_event(model, "before_save", self)
  run_event(model, creating and "before_create" or "before_update", self)
  local db = model_backend(model)
  local after = creating and "after_create" or "after_update"
  local affected
  if has_after(model, after) then
    affected = write_unit(db, self, function()
      if creating then return insert_row(model, st, db) end
      return update_row(model, st, self, db)
    end, after, "after_save")
  else
    local undo
    if creating then
      affected, undo = insert_row(model, st, db)
    else
      affected, undo = update_row(model, st, self, db)
    end
    if undo then track(db, undo) end
  end
  st.changes = NO_CHANGES
  return affected
end

--- Assigns `attrs` and saves.
-- @tparam table attrs field -> value
-- @tparam[opt] table opts the options of `save`
-- @treturn integer the affected rows
-- @raise `ValidationError` (with `errors = { field = { messages } }`; nothing
--   is written), `IntegrityError` (duplicate key, foreign key, NOT NULL),
--   `DataError`, `StaleObjectError` (optimistic_lock), any error a
--   before-event raised, and the backend's statement errors; `ConfigError` for an unknown field
function InstanceMethods:update(attrs, opts)
  if attrs ~= nil and type(attrs) ~= "table" then
    errors.raise("ConfigError", "update expects a table of attributes, got " .. type(attrs))
  end
  for k, v in pairs(attrs or {}) do M.assign(self, k, v) end
  return self:save(opts)
end

--- Deletes the record's row (soft_delete replaces this with setting `deleted_at`).
-- The record is new again afterwards: saving it writes every value.
-- @treturn integer the affected rows
-- @raise `RecordNotFound` for a record never saved; `StaleObjectError`
--   (optimistic_lock); `IntegrityError` (a foreign key, or a `dependent =
--   "restrict"` relation that still has rows); errors of the delete events
function InstanceMethods:delete()
  local st = state_of(self)
  local model = st.model
  if not st.persisted then
    errors.raise("RecordNotFound", model.name .. ": cannot delete a record that was never saved")
  end
  run_event(model, "before_delete", self)
  local db = model_backend(model)
  local function write()
    local pkf = model.pk_field
    local changes = st.changes
    local pk_value = changes[pkf.name] and changes[pkf.name].old or st.values[pkf.name]
    local where = { db.dialect:quote_identifier(pkf.column) .. " = ?" }
    local vals = { n = 1, pkf.to_db and pkf.to_db(pk_value, pkf) or pk_value }
    local gs = guards(model, self)
    for _, g in ipairs(gs) do
      where[#where + 1] = db.dialect:quote_identifier(g.column) .. " = ?"
      vals.n = vals.n + 1
      vals[vals.n] = g.value
    end
    local res = db:execute("DELETE FROM " .. db.dialect:quote_qualified(model.table) .. " WHERE "
      .. table.concat(where, " AND "), unpack(vals, 1, vals.n))
    if #gs > 0 and res.affected_rows == 0 then
      errors.raise("StaleObjectError", ("%s %s = %s was changed or deleted by someone else"):format(
        model.name, pkf.name, tostring(pk_value)), { model = model.name, id = pk_value })
    end
    st.persisted = false
    -- a deleted record is new again: saving it writes every value
    st.changes = NO_CHANGES
    return res.affected_rows, stored_undo(st, changes)
  end
  if has_after(model, "after_delete") then
    return write_unit(db, self, write, "after_delete")
  end
  local affected, undo = write()
  track(db, undo)
  return affected
end

--- Reads the record again from the database (ignoring default scopes) and
-- drops cached relations.
-- @return the record itself
-- @raise `RecordNotFound` when its row is gone
function InstanceMethods:reload()
  local st = state_of(self)
  local model = st.model
  local pkf = model.pk_field
  local id = st.changes[pkf.name] and st.changes[pkf.name].old or st.values[pkf.name]
  local fresh = id ~= nil and model:unscoped():where({ [pkf.name] = id }):limit(1):all()[1]
  if not fresh then
    errors.raise("RecordNotFound", ("%s with %s = %s not found"):format(model.name, pkf.name, tostring(id)),
      { model = model.name, id = id })
  end
  local fst = rawget(fresh, STATE)
  st.values, st.changes, st.persisted = fst.values, NO_CHANGES, true
  if st.cache then st.cache = {} end
  return self
end

return M

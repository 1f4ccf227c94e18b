--- Records (model instances): one table per record (see
-- activerecord.model.layout), attribute access through the model's instance
-- metatable, assignment with casts and dirty tracking, and the record methods
-- that do not write (is_new, is_dirty, dirty_fields, old_value, to_table,
-- inspect, valid, reload). Writes live in activerecord.model.write.
-- @module activerecord.record
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local layout = require("activerecord.model.layout")
local json_track = require("activerecord.model.json_track")

local M = {}

local type, rawget, rawset, next = type, rawget, rawset, next
local CHANGES, PERSISTED, HANDED, MODEL = layout.CHANGES, layout.PERSISTED, layout.HANDED, layout.MODEL
local NO_CHANGES, NIL_OLD, UNREAD, old_of = layout.NO_CHANGES, layout.NIL_OLD, layout.UNREAD, layout.old_of
local model_of = layout.model_of
local hand_out, hand_out_all, sync_json = json_track.hand_out, json_track.hand_out_all, json_track.sync

--- Methods of every record (`rec:save()`, ...); a model's own `methods`
-- and relation accessors (`post:comments()`) come with them.
-- @type InstanceMethods
local InstanceMethods = {}
M.InstanceMethods = InstanceMethods

local function unknown_field(model, name)
  errors.raise("ConfigError", ("%s has no field '%s'"):format(model.name, tostring(name)))
end

-- Assignment (the records' __newindex): casts, refuses unknown names and
-- read-only changes, tracks the old value the first time a field changes.
-- Plain table reads where it can: `type`, `rawget` and `rawset` are C calls.
local function assign(inst, name, v)
  local model = inst[MODEL]
  local f = model.fields[name]
  if not f then unknown_field(model, name) end
  local persisted = inst[PERSISTED]
  if persisted and f.readonly then
    errors.raise("ValidationError", ("%s.%s is read-only"):format(model.name, name),
      { errors = { [name] = { "is read-only" } } })
  end
  local cast = f.cast
  if cast and v ~= nil and v ~= null then v = cast(v, f) end
  if v == null then v = nil end
  local changes = inst[CHANGES]
  if changes == NO_CHANGES then
    changes = {}
    inst[CHANGES] = changes
  end
  local slot = f.slot
  local old = inst[slot] -- a nil slot reads through __index, which answers nil
  local change = changes[name]
  if change == nil then
    if old == v and persisted and type(v) ~= "table" then return end
    changes[name] = old == nil and NIL_OLD or old -- the old value itself: no table per change
  elseif persisted and (change == v or (change == NIL_OLD and v == nil)) and type(v) ~= "table" then
    changes[name] = nil -- back to the stored value
  end
  if old ~= nil then inst[slot] = v else rawset(inst, slot, v) end
end

--- Assigns a field of a record as `rec[name] = v` does (checked).
function M.assign(inst, name, v)
  model_of(inst)
  return assign(inst, name, v)
end

--- The metatable of a model's records. `__index` is a function only because
-- a field's value sits in a slot: a field name maps to its slot through one
-- table (`meta.slots`); slot numbers map to false (a nil value read again
-- by number); methods come from the model's method table, which chains to
-- InstanceMethods.
function M.instance_mt(model, meta)
  local slots, json_of, methods, relations = meta.slots, meta.json_of, meta.methods, model.relations
  local mt = { __name = model.name }
  mt.__index = function(inst, k)
    local s = slots[k]
    if s then return inst[s] end
    if s == false then return nil end
    local f = json_of[k]
    if f then
      local v = inst[f.slot]
      -- handed out: the caller may change it in place from now on (what
      -- the column holds is known already for rows read with their hashes)
      if v ~= nil and inst[PERSISTED] then
        if inst[f.held] then
          inst[HANDED] = true
        elseif type(v) == "table" then
          hand_out(inst, f, v)
        end
      end
      return v
    end
    local m = methods[k]
    if m ~= nil then return m end
    local rel = relations[k]
    if rel then return rel.accessor end
    errors.raise("ConfigError", ("%s has no field or method '%s'"):format(model.name, tostring(k)))
  end
  mt.__newindex = assign
  mt.__tostring = function(inst) return InstanceMethods.inspect(inst) end
  local list = model.field_list
  mt.__pairs = function(inst)
    hand_out_all(inst)
    local i = 0
    return function()
      i = i + 1
      local f = list[i]
      if f then return f.name, rawget(inst, f.slot) end
    end, inst, nil
  end
  return mt
end

--- A field's value by name, as stored in the record (no hand-out, no checks).
function M.get(inst, name)
  return inst[inst[MODEL].fields[name].slot]
end

--- Sets a field's value without tracking (loads, read-backs, undo).
function M.set(inst, name, v)
  rawset(inst, inst[MODEL].fields[name].slot, v)
end

--- Whether the record is stored.
function M.persisted(inst) return inst[PERSISTED] end
function M.set_persisted(inst, b) inst[PERSISTED] = b end
function M.changes(inst) return inst[CHANGES] end
function M.set_changes(inst, c) inst[CHANGES] = c end

--- The record's relation cache (created on first use).
local CACHE = layout.CACHE
function M.cache(inst)
  local c = inst[CACHE]
  if not c then
    c = {}
    inst[CACHE] = c -- the slot holds false: a plain write
  end
  return c
end

-- ---- the state view (compatibility) ---------------------------------------
-- `state_of(inst)` used to return the record's private state table; it now
-- returns a view with the same fields (model, values, changes, persisted,
-- cache) over the record's slots. New code calls the functions above.

local ValuesView = {
  __index = function(v, name)
    local inst = v[1]
    local f = rawget(inst, MODEL).fields[name]
    return f and rawget(inst, f.slot) or nil
  end,
  __newindex = function(v, name, value)
    local inst = v[1]
    local f = rawget(inst, MODEL).fields[name]
    if not f then unknown_field(rawget(inst, MODEL), name) end
    rawset(inst, f.slot, value)
  end,
  __pairs = function(v)
    local inst = v[1]
    local list = rawget(inst, MODEL).field_list
    local i = 0
    return function()
      while true do
        i = i + 1
        local f = list[i]
        if not f then return nil end
        local x = rawget(inst, f.slot)
        if x ~= nil then return f.name, x end
      end
    end, v, nil
  end,
}

local STATE_GET = {
  model = function(inst) return rawget(inst, MODEL) end,
  persisted = function(inst) return inst[PERSISTED] end,
  changes = function(inst) return inst[CHANGES] end,
  cache = function(inst) return rawget(inst, layout.CACHE) or nil end,
  values = function(inst) return setmetatable({ inst }, ValuesView) end,
}
local STATE_SET = { persisted = PERSISTED, changes = CHANGES, cache = layout.CACHE }

local StateView = {
  __index = function(st, k)
    local get = STATE_GET[k]
    if get then return get(st.inst) end
    return nil
  end,
  __newindex = function(st, k, v)
    local slot = STATE_SET[k]
    if not slot then error("internal: a record's state has no settable '" .. tostring(k) .. "'", 2) end
    if slot == layout.CACHE and v == nil then v = false end -- the cache slot always holds a value
    rawset(st.inst, slot, v)
  end,
}

function M.state_of(inst)
  model_of(inst)
  return setmetatable({ inst = inst }, StateView)
end

-- ---- events -----------------------------------------------------------------

--- Runs a model's handlers of one event.
function M.run_event(model, name, inst, ...)
  local list = model._meta.events[name]
  for i = 1, #list do list[i](inst, ...) end
end
local run_event = M.run_event

-- ---- record methods that do not write -----------------------------------------

--- Whether the record was never saved (or was deleted).
-- @treturn boolean
function InstanceMethods:is_new() model_of(self) return not self[PERSISTED] end

--- Whether some field changed since the record was loaded or saved.
-- @treturn boolean
function InstanceMethods:is_dirty()
  model_of(self)
  if self[HANDED] then sync_json(self) end
  return next(self[CHANGES]) ~= nil
end

--- The names of the changed fields, in field order.
-- @treturn {string,...}
function InstanceMethods:dirty_fields()
  local model = model_of(self)
  if self[HANDED] then sync_json(self) end
  local out, changes, list = {}, self[CHANGES], model.field_list
  for i = 1, #list do
    local name = list[i].name
    if changes[name] ~= nil then out[#out + 1] = name end
  end
  return out
end

--- A field's value as loaded or last saved (its current value when unchanged).
-- @tparam string name the field
-- @return the old value
-- @raise `ConfigError` for an unknown field
function InstanceMethods:old_value(name)
  local model = model_of(self)
  local f = model.fields[name]
  if not f then unknown_field(model, name) end
  if self[HANDED] then sync_json(self) end
  local changes = self[CHANGES]
  local c = changes[name]
  if c == UNREAD then -- a JSON table changed in place: the row still holds the old value
    local pkf = model.pk_field
    local stored = model:unscoped():where({ [pkf.name] = self[pkf.slot] }):limit(1):all()[1]
    local old = stored and stored[f.slot]
    c = old == nil and NIL_OLD or old
    changes[name] = c
  end
  if c ~= nil then return old_of(c) end
  return self[f.slot]
end

--- The field values as a plain table.
-- @treturn table field -> value
function InstanceMethods:to_table()
  local model = model_of(self)
  hand_out_all(self)
  local out, list = {}, model.field_list
  for i = 1, #list do
    local f = list[i]
    out[f.name] = self[f.slot]
  end
  return out
end

--- The record's model class.
-- @treturn table
function InstanceMethods:model() return model_of(self) end

--- A one-line description, as `tostring(record)` shows it.
-- @treturn string e.g. `User(id=1, name="Ann")`
function InstanceMethods:inspect()
  local model = model_of(self)
  local parts = {}
  for _, f in ipairs(model.field_list) do
    local v = rawget(self, f.slot)
    if v ~= nil then
      local shown = type(v) == "string" and ("%q"):format(v) or (type(v) == "table" and "{...}" or tostring(v))
      parts[#parts + 1] = f.name .. "=" .. shown
    end
  end
  return ("%s(%s)%s"):format(model.name, table.concat(parts, ", "), self[PERSISTED] and "" or " [new]")
end

--- Runs the validations (and the validate events); never touches the database.
-- @tparam[opt] boolean changed_only check only the fields that changed (what
--   `save` does for a stored record: the others hold what the database accepted)
-- @treturn boolean true when valid
-- @treturn table `{ field = { messages } }` when not
function InstanceMethods:valid(changed_only)
  local model = model_of(self)
  return M.validate(model, model._meta, self, changed_only)
end

--- What `valid` does, for a record whose model is known (save calls it).
function M.validate(model, meta, inst, changed_only)
  local events = meta.events
  if #events.before_validate > 0 then run_event(model, "before_validate", inst) end
  local after = #events.after_validate > 0
  -- a collector only when someone gets it or a rule fails
  local errs = (meta.validate or after) and meta.new_errors() or nil
  errs = meta.validator(inst, changed_only and inst[CHANGES] or nil, not inst[PERSISTED], errs)
  if meta.validate then meta.validate(inst, errs) end
  if after then run_event(model, "after_validate", inst, errs) end
  if errs and errs:any() then return false, errs:to_table(), errs end
  return true
end

--- Reads the record again from the database (ignoring default scopes) and
-- drops cached relations.
-- @return the record itself
-- @raise `RecordNotFound` when its row is gone
function InstanceMethods:reload()
  local model = model_of(self)
  local pkf = model.pk_field
  local id = old_of(self[CHANGES][pkf.name])
  if id == nil then id = self[pkf.slot] end
  local fresh = id ~= nil and model:unscoped():where({ [pkf.name] = id }):limit(1):all()[1]
  if not fresh then
    errors.raise("RecordNotFound", ("%s with %s = %s not found"):format(model.name, pkf.name, tostring(id)),
      { model = model.name, id = id })
  end
  for s = HANDED, model._meta.nslots do rawset(self, s, rawget(fresh, s)) end
  self[CHANGES], self[PERSISTED], self[HANDED] = NO_CHANGES, true, rawget(fresh, HANDED)
  rawset(self, layout.CACHE, false)
  return self
end

return M

--- One job: how bulk writes read and change a record's state (its field
-- values, persisted flag and change set) and run its events, in one place:
-- the record layout is the model layer's (activerecord.model.layout: one
-- table per record, field values in slots), and this file is the only bulk
-- code that knows it. Loops call the fused functions (one call per record).
-- @module activerecord.bulk.access
local layout = require("activerecord.model.layout")
local record = require("activerecord.record")
local hooks = require("activerecord.model.hooks")

local M = {}

local rawget, rawset, next = rawget, rawset, next
local PERSISTED, CHANGES, NO_CHANGES = layout.PERSISTED, layout.CHANGES, layout.NO_CHANGES

--- The table holding `inst`'s values: `rawget(M.values(inst), M.key(f))` is
-- field `f`'s value (no metamethods on the hot path).
function M.values(inst) return inst end
--- The key of field `f` in `M.values(inst)`.
function M.key(f) return f.slot end
--- The stored value of field `f` of `inst`.
function M.get(inst, f) return rawget(inst, f.slot) end
--- Sets field `f` of `inst` without tracking (ids and RETURNING read back).
function M.set(inst, f, v) rawset(inst, f.slot, v) end

--- Whether the record is stored.
function M.persisted(inst) return rawget(inst, PERSISTED) end

--- A written record: stored, and clean. (Both slots always hold a value:
-- plain writes, no __newindex.)
function M.written(inst)
  inst[PERSISTED] = true
  inst[CHANGES] = NO_CHANGES
end

--- Whether the caller set field `f` of any of `instances` (a value a new
-- record holds from its table's default was not set). A record built for
-- the bulk call tracks no changes, and holds no table default: a value it
-- holds was given.
function M.any_changed(instances, f)
  local name, slot = f.name, f.slot
  for i = 1, #instances do
    local inst = instances[i]
    local c = inst[CHANGES]
    if c == NO_CHANGES then
      if rawget(inst, slot) ~= nil then return true end
    elseif c[name] ~= nil then
      return true
    end
  end
  return false
end

--- What a rollback must give back: the key (slot `key`), whether stored, and
-- the change set when it holds changes.
-- @return the key's value, persisted, changes or nil
function M.undo_state(inst, key)
  local c = inst[CHANGES]
  return rawget(inst, key), inst[PERSISTED], c ~= NO_CHANGES and next(c) ~= nil and c or nil
end

--- Puts back what `undo_state` returned.
function M.restore(inst, key, pk, persisted, changes)
  rawset(inst, PERSISTED, persisted or false)
  rawset(inst, key, pk)
  if changes then rawset(inst, CHANGES, changes) end
end

--- What the model's validation leaves for a write right after it: for its
-- JSON fields, `list[j] = { key, json_index }` and the scratch where a
-- validated table's text waits (`scratch.values[j]` the table,
-- `scratch.texts[j]` its text; see activerecord.model.write's json_scratch).
-- @return list, scratch (nil without JSON fields)
function M.json_scratch(model)
  local meta = model._meta
  local fields = meta.json_fields
  if not fields then return nil end
  local list = {}
  for j = 1, #fields do list[j] = { fields[j].slot, fields[j].json_index } end
  return list, meta.json_scratch
end

--- Whether user code may run between a record's validation and its write
-- (a model `validate` function or after_validate handlers: they may change
-- values the validation has checked).
function M.validation_hooks(model)
  local meta = model._meta
  return meta.validate ~= nil or #meta.events.after_validate > 0
end

--- The model's check of one record, `check(inst)` -> ok, errors,
-- collector: its records' `valid`, called without the method lookup and
-- the model check per record when it is the built-in one.
function M.validator(model)
  local meta = model._meta
  local valid = meta.methods.valid
  if valid ~= record.InstanceMethods.valid then return valid end
  local validate = record.validate
  return function(inst) return validate(model, meta, inst) end
end

--- Whether the model has handlers for `event`.
M.has_handlers = hooks.has_handlers
--- Runs the model's handlers of `event` for `inst`: `run_event(model, event, inst, ...)`.
M.run_event = record.run_event
--- The record's model (ConfigError for a non-record).
M.model_of = layout.model_of

return M

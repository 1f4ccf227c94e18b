--- One job: how bulk writes read and change a record's state (its field
-- values, persisted flag and change set) and run its events, in one place:
-- the model layer's record layout is private to it, and this file is the
-- only bulk code that knows it. A record is one table holding its values
-- in slots (`field.slot`, see activerecord.model.layout); the older layout
-- (a private state table) is read through `state_of` while it exists.
-- @module activerecord.bulk.access
local M = {}

local rawget, rawset, next = rawget, rawset, next

local impl -- the functions for the model layer in use, chosen on first use

local function slots()
  local record = require("activerecord.record")
  local hooks = require("activerecord.model").hooks
  local layout = require("activerecord.model.layout")
  local PERSISTED, CHANGES = layout.PERSISTED, layout.CHANGES
  return {
    values = function(inst) return inst end,
    key = function(f) return f.slot end,
    persisted = function(inst) return rawget(inst, PERSISTED) end,
    set_persisted = function(inst, b) rawset(inst, PERSISTED, b) end,
    changes = function(inst) return rawget(inst, CHANGES) end,
    set_changes = function(inst, c) rawset(inst, CHANGES, c) end,
    has_handlers = hooks.has_handlers,
    run_event = record.run_event,
    model_of = layout.model_of,
  }
end

local function state()
  local model = require("activerecord.model")
  local state_of = model.state_of
  return {
    values = function(inst) return state_of(inst).values end,
    key = function(f) return f.name end,
    persisted = function(inst) return state_of(inst).persisted end,
    set_persisted = function(inst, b) state_of(inst).persisted = b end,
    changes = function(inst) return state_of(inst).changes end,
    set_changes = function(inst, c) state_of(inst).changes = c end,
    has_handlers = function(m, event) return #m._events[event] > 0 end,
    run_event = model.run_event,
    model_of = function(inst) return state_of(inst).model end,
  }
end

local function get_impl()
  if not impl then impl = require("activerecord.model").hooks and slots() or state() end
  return impl
end

--- The table holding `inst`'s values: `rawget(M.values(inst), M.key(f))` is
-- field `f`'s value (no metamethods on the hot path).
function M.values(inst) return (impl or get_impl()).values(inst) end
--- The key of field `f` in `M.values(inst)`.
function M.key(f) return (impl or get_impl()).key(f) end
--- The stored value of field `f` of `inst`.
function M.get(inst, f) return rawget(M.values(inst), M.key(f)) end
--- Sets field `f` of `inst` without tracking (ids and RETURNING read back).
function M.set(inst, f, v) rawset(M.values(inst), M.key(f), v) end

--- Whether the record is stored.
function M.persisted(inst) return (impl or get_impl()).persisted(inst) end
function M.set_persisted(inst, b) return (impl or get_impl()).set_persisted(inst, b) end
--- The record's change set (replaced, never edited, by a write).
function M.changes(inst) return (impl or get_impl()).changes(inst) end
function M.set_changes(inst, c) return (impl or get_impl()).set_changes(inst, c) end

--- A written record is clean: a fresh change set unless it has none.
function M.clear_changes(inst)
  if next(M.changes(inst)) ~= nil then M.set_changes(inst, {}) end
end

--- Whether the model has handlers for `event`.
function M.has_handlers(m, event) return (impl or get_impl()).has_handlers(m, event) end
--- Runs the model's handlers of `event` for `inst`.
function M.run_event(m, event, inst, ...) return (impl or get_impl()).run_event(m, event, inst, ...) end
--- The record's model (ConfigError for a non-record).
function M.model_of(inst) return (impl or get_impl()).model_of(inst) end

return M

--- The public hook API through which mixins (the built-in ones too) and
-- other modules extend a model: events, scopes, default scopes, instance
-- and class methods, query methods, write guards, and the few record facts
-- a mixin needs (persisted or not, running an event, the plain delete).
-- Each call keeps the model's dispatch tables (records, class, queries) in
-- step, so an addition after the definition works at once.
-- `require("activerecord.model").hooks`.
-- @module activerecord.model.hooks
local errors = require("activerecord.errors")
local query = require("activerecord.query")
local layout = require("activerecord.model.layout")
local record = require("activerecord.record")
local write = require("activerecord.model.write")
local finders = require("activerecord.model.finders")
local commit_events = require("activerecord.model.commit_events")

local M = {}

local ClassMethods = finders.ClassMethods
local model_of = layout.model_of

--- The events a handler can be added for, in the order a save runs them;
-- `after_commit` and `after_rollback` run once the outermost transaction
-- has ended (see `activerecord.model.commit_events`), and
-- `after_create_commit`, `after_update_commit`, `after_delete_commit` and
-- `after_save_commit` (create or update) are `after_commit` limited to those kinds.
M.EVENTS = {
  "before_validate", "after_validate", "before_save", "after_save", "before_create",
  "after_create", "before_update", "after_update", "before_delete", "after_delete",
  "after_commit", "after_rollback", "after_create_commit", "after_update_commit",
  "after_delete_commit", "after_save_commit",
}
local EVENT_SET = {}
for _, e in ipairs(M.EVENTS) do EVENT_SET[e] = true end
M.EVENT_SET = EVENT_SET

-- The shorthands: event -> the kinds of after_commit it stands for.
local COMMIT_ALIASES = {
  after_create_commit = "create", after_update_commit = "update", after_delete_commit = "delete",
  after_save_commit = { "create", "update" },
}
local TRANSACTIONAL = { after_commit = true, after_rollback = true }
local ON_OPTIONS = { on = true }

local function config_error(model, msg)
  errors.raise("ConfigError", ("%s: %s"):format(model.name, msg), { model = model.name })
end

local function check_function(model, what, fn)
  if type(fn) ~= "function" then config_error(model, what .. " must be a function") end
end

--- Adds an event handler (what `Model:on` does).
-- @tparam table model the model class
-- @tparam string event one of `EVENTS`
-- @tparam function fn called with the record (after-events also get the
--   affected rows; `after_commit` and `after_rollback` get the kind of the
--   record's writes: `"create"`, `"update"` or `"delete"`)
-- @tparam[opt] table opts for `after_commit` and `after_rollback` only:
--   `on = "create" | "update" | "delete"` or a list of them (the handler
--   runs for records whose writes were of that kind)
-- @treturn function `fn`
-- @raise `ConfigError` for an unknown event, a non-function, or options
--   the event does not take
function M.on(model, event, fn, opts)
  if not EVENT_SET[event] then config_error(model, "unknown event '" .. tostring(event) .. "'") end
  if type(fn) ~= "function" then config_error(model, "event handlers must be functions") end
  -- single-table inheritance: a base's handler runs for its subclasses' records too
  local subs = model._meta.subclasses
  if subs then for i = 1, #subs do M.on(subs[i], event, fn, opts) end end
  local h = fn
  local alias = COMMIT_ALIASES[event]
  if opts ~= nil then
    if not TRANSACTIONAL[event] then
      config_error(model, ("event '%s' takes no options (only after_commit and after_rollback take "
        .. "{ on = \"create\" | \"update\" | \"delete\" | { kinds } })"):format(event))
    end
    if type(opts) ~= "table" then config_error(model, "event options must be a table ({ on = kind(s) })") end
    for k in pairs(opts) do
      if not ON_OPTIONS[k] then
        config_error(model, ("event '%s': unknown option '%s' (accepted: on)"):format(event, tostring(k)))
      end
    end
    h = commit_events.handler(fn, opts.on, model.name .. ": " .. event .. ": ")
  elseif alias then
    h = commit_events.handler(fn, alias)
    event = "after_commit"
  end
  local list = model._meta.events[event]
  list[#list + 1] = h
  return fn
end

--- Removes a handler added with `on`; returns whether it was found.
function M.off(model, event, fn)
  local subs = model._meta.subclasses
  if subs then for i = 1, #subs do M.off(subs[i], event, fn) end end
  if COMMIT_ALIASES[event] then event = "after_commit" end
  local list = model._meta.events[event] or {}
  for i = #list, 1, -1 do
    if commit_events.fn_of(list[i]) == fn then
      table.remove(list, i)
      return true
    end
  end
  return false
end

--- Adds a scope: `Model:name(...)` and `q:name(...)` call `fn(q, ...)`. A
-- query method or class method of the same name keeps precedence.
function M.add_scope(model, name, fn)
  check_function(model, "scope '" .. tostring(name) .. "'", fn)
  local meta = model._meta
  meta.scopes[name] = fn
  if query.Query[name] == nil then meta.query_index[name] = fn end
  if ClassMethods[name] == nil then
    meta.class_index[name] = function(c, ...) return fn(c:query(), ...) end
  end
end

--- Adds a default scope: `fn(q)` runs on every query of the model unless
-- `q:unscope(name)` or `Model:unscoped()`; applied in name order.
function M.add_default_scope(model, name, fn)
  check_function(model, "default scope '" .. tostring(name) .. "'", fn)
  local list = model._meta.default_scopes -- one table: queries read it as it is
  list[#list + 1] = { name = name, fn = fn }
  table.sort(list, function(a, b) return a.name < b.name end)
end

--- Adds a record method (`rec:name(...)`); a field of that name keeps precedence.
function M.add_method(model, name, fn)
  check_function(model, "method '" .. tostring(name) .. "'", fn)
  rawset(model._meta.methods, name, fn)
end

--- Adds a class method (`Model:name(...)`).
function M.add_class_method(model, name, fn)
  check_function(model, "class method '" .. tostring(name) .. "'", fn)
  rawset(model, name, fn)
end

--- Adds a query method: `q:name(...)` on the model's queries and
-- `Model:name(...)` (which starts a query); the query class's own methods
-- keep precedence.
function M.add_query_method(model, name, fn)
  check_function(model, "query method '" .. tostring(name) .. "'", fn)
  local meta = model._meta
  rawset(meta.query_methods, name, fn)
  if query.Query[name] == nil then meta.query_index[name] = fn end
  if ClassMethods[name] == nil and meta.scopes[name] == nil then
    meta.class_index[name] = function(c, ...)
      local q = c:query()
      return q[name](q, ...)
    end
  end
end

--- Adds a write guard: `fn(rec)` returns a column and the value it must still
-- hold (or nothing); every UPDATE and DELETE of a stored record adds
-- `AND column = value`, and a write that matches no row raises StaleObjectError.
function M.add_write_guard(model, fn)
  check_function(model, "write guard", fn)
  local list = model._meta.write_guards
  list[#list + 1] = fn
end

--- Runs the model's handlers of `event` for `rec` (extra arguments passed on).
function M.run_event(rec, event, ...)
  record.run_event(model_of(rec), event, rec, ...)
end

--- Whether the model has handlers for `event`.
function M.has_handlers(model, event)
  if COMMIT_ALIASES[event] then event = "after_commit" end
  return #model._meta.events[event] > 0
end

--- Whether the record is stored (loaded or saved, not deleted).
function M.is_persisted(rec)
  model_of(rec)
  return rec[layout.PERSISTED]
end

--- The built-in delete, for a mixin that replaces `delete` (soft_delete's
-- `hard_delete`): events, guards and undo as `rec:delete()` has them.
M.delete_row = write.delete

--- The model's backend (its own, or the default one).
-- @raise `ConfigError` when there is none
function M.backend(model) return ClassMethods._backend(model) end

-- Model:on / Model:off
--- Adds an event handler (see `hooks.on`).
function ClassMethods:on(event, fn, opts) return M.on(self, event, fn, opts) end
--- Removes an event handler added with `on`.
function ClassMethods:off(event, fn) return M.off(self, event, fn) end

return M

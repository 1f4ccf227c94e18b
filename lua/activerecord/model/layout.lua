--- The layout of a record, shared by the model files: a record is ONE table
-- whose array part holds its state and its field values, with the model's
-- instance metatable. Fixed slots: 1 the change set, 2 persisted, 3 whether a
-- JSON table was handed out, 4 the model, 5 the relation cache (or false);
-- field i of `model.field_list` at BASE + i; after the fields, one slot per
-- JSON field for what its column holds (`field.held`; false while unknown,
-- so it is always set in place). Class metadata sits under one private key,
-- `_meta`.
-- @module activerecord.model.layout
local errors = require("activerecord.errors")

local M = {}

M.CHANGES, M.PERSISTED, M.HANDED, M.MODEL = 1, 2, 3, 4
-- A record's relation cache (false until used): a slot that always holds a
-- value, so reading and setting it are plain table accesses.
M.CACHE = 5
M.BASE = 5

-- Shared, never written: a clean record's change set (one table fewer per
-- loaded row); assign() swaps in a real table on the first change.
M.NO_CHANGES = setmetatable({}, { __newindex = function() error("internal: NO_CHANGES is read-only") end })
-- A change set maps a changed field's name to its old value itself (no
-- table per change): NIL_OLD when it had none, UNREAD for a JSON table
-- changed in place whose old value is still only in the row.
M.NIL_OLD = setmetatable({}, { __newindex = function() error("internal: NIL_OLD is read-only") end,
  __tostring = function() return "<no old value>" end })
M.UNREAD = setmetatable({}, { __newindex = function() error("internal: UNREAD is read-only") end,
  __tostring = function() return "<old value unread>" end })
local NIL_OLD, UNREAD = M.NIL_OLD, M.UNREAD

--- The old value a change set entry stands for (nil for NIL_OLD and UNREAD).
function M.old_of(c)
  if c == NIL_OLD or c == UNREAD then return nil end
  return c
end

local MODEL = M.MODEL

-- Every model class (weak: a model nobody holds may go).
local MODELS = setmetatable({}, { __mode = "k" })
function M.register(model) MODELS[model] = true end

--- The model of a record, checked (a method called with `.` instead of `:`
-- gets a ConfigError, not a Lua error from deep inside). Plain table reads
-- only: `type` and `rawget` are C calls, dear on paths run per field.
function M.model_of(inst)
  local m = inst ~= nil and inst ~= false and inst ~= true and inst[MODEL]
  if not MODELS[m] then
    errors.raise("ConfigError", "expected a model instance (use rec:method(), not rec.method())")
  end
  return m
end

return M

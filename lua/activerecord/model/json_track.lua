--- JSON values changed in place: finding the changes no assignment reports.
-- A JSON field holds a Lua table the caller may change in place
-- (`r.doc.browser = "safari"`). A stored record keeps, per JSON field it
-- handed out or wrote, what the database holds in the field's held slot
-- (`field.held`): the JSON text the last write bound, or, for a loaded value,
-- its structural hash (json.hash) taken when it is first handed out or read
-- with the row. Neither builds a table: a large fetch whose JSON is read
-- allocates nothing more. A different value when asked (save, is_dirty,
-- dirty_fields, old_value) is a change. An equal table can encode
-- differently only after keys were added and removed again: at worst one
-- needless write. A change found through a hash has no old value at hand:
-- `old_value` reads it from the row when asked.
-- @module activerecord.model.json_track
local json = require("activerecord.json")
local layout = require("activerecord.model.layout")

local M = {}

local type, pcall = type, pcall
local CHANGES, PERSISTED, HANDED, MODEL = layout.CHANGES, layout.PERSISTED, layout.HANDED, layout.MODEL
local NO_CHANGES, NIL_OLD, UNREAD = layout.NO_CHANGES, layout.NIL_OLD, layout.UNREAD

local function encode(f, v)
  local ok, text = pcall(f.to_db, v, f)
  return ok and text or false -- false: not encodable, seen as changed
end
M.encode = encode

--- A JSON table goes out (read as an attribute): remember what the
-- database holds, once, and mark the record for comparison at save.
function M.hand_out(inst, f, v)
  local held = f.held
  if not inst[held] and inst[CHANGES][f.name] == nil then
    inst[held] = json.hash(v)
  end
  inst[HANDED] = true
end

--- Every JSON table of a stored record goes out at once (to_table, pairs).
function M.hand_out_all(inst)
  local list = inst[MODEL]._meta.json_fields
  if not list or not inst[PERSISTED] then return end
  local changes = inst[CHANGES]
  for i = 1, #list do
    local f = list[i]
    local v = inst[f.slot]
    if type(v) == "table" and not inst[f.held] and changes[f.name] == nil then
      inst[f.held] = json.hash(v)
    end
  end
  inst[HANDED] = true
end

--- After a write: the texts it bound (`texts[i]` for json_fields[i], or
-- nil; for a model with one JSON field, its text itself) are what the
-- database holds. (Held slots always hold a value, false for none: plain
-- writes.)
function M.keep_texts(inst, list, texts)
  if #list == 1 then
    inst[list[1].held] = texts
  else
    for i = 1, #list do
      local t = texts[i]
      if t ~= nil then inst[list[i].held] = t end
    end
  end
  inst[HANDED] = true -- the caller may still hold the tables it wrote
end

-- Whether `v` still is what the database holds (`held`: a text or a hash).
local function unchanged(f, v, held)
  if not held then return false end
  if math.type(held) == "integer" then return json.hash(v) == held end
  if encode(f, v) == held then return true end
  local ok, old = pcall(json.decode, held)
  return ok and json.hash(old) == json.hash(v) -- the same value, other key order
end

--- Turns in-place changes of handed-out JSON tables into ordinary changes.
function M.sync(inst)
  if not inst[PERSISTED] then return end
  local list = inst[MODEL]._meta.json_fields
  if not list then return end
  local changes = inst[CHANGES]
  for i = 1, #list do
    local f = list[i]
    local name, held = f.name, inst[f.held]
    if held and changes[name] == nil and not unchanged(f, inst[f.slot], held) then
      if changes == NO_CHANGES then
        changes = {}
        inst[CHANGES] = changes
      end
      if type(held) == "string" then
        local old = json.decode(held)
        changes[name] = old == nil and NIL_OLD or old
      else -- only a hash: old_value reads the stored value when asked
        changes[name] = UNREAD
      end
    end
  end
end

return M

--- One job: records that are saved with their owner. A record keeps, in
-- its relation cache, what waits for its save: owners assigned while
-- unsaved (`post.author = ann`, saved first so the key exists) and
-- children built or added through its relations (saved after it, with
-- the key it then has). The model's `save` runs all of it in one
-- transaction, so a failure anywhere leaves none of it written; a model
-- with `dependent` relations deletes in one transaction too, so its
-- children go only if it does.
-- @module activerecord.relations.autosave
local layout = require("activerecord.model.layout")
local record = require("activerecord.record")
local relation = require("activerecord.relations.relation")

local M = {}

local rawget, next = rawget, next
local CACHE = layout.CACHE
local cache_of = relation.cache_of
local persisted = record.persisted

-- The key of the pending work in a record's relation cache (relation
-- names are strings: a table key never clashes).
local PENDING = {}

-- The record's pending work, created when `create`.
local function pending(inst, create)
  local cache = create and cache_of(inst) or rawget(inst, CACHE)
  if not cache then return nil end
  local p = cache[PENDING]
  if not p and create then
    p = { owners = {}, children = {} }
    cache[PENDING] = p
  end
  return p
end

--- Adds `rec` to the records saved after `inst` through `rel` (`extra`:
-- the join attributes of a has_many_through).
function M.add(inst, rel, rec, extra)
  local list = pending(inst, true).children
  for i = 1, #list do
    if list[i][1] == rel and list[i][2] == rec then
      list[i][3] = extra
      return
    end
  end
  list[#list + 1] = { rel, rec, extra }
end

--- Removes `rec` from what waits for `inst` through `rel`; whether it was there.
function M.drop(inst, rel, rec)
  local p = pending(inst, false)
  local list = p and p.children
  if not list then return false end
  for i = #list, 1, -1 do
    if list[i][1] == rel and list[i][2] == rec then
      table.remove(list, i)
      return true
    end
  end
  return false
end

--- Removes everything waiting for `inst` through `rel`.
function M.drop_all(inst, rel)
  local p = pending(inst, false)
  local list = p and p.children
  if not list then return end
  for i = #list, 1, -1 do
    if list[i][1] == rel then table.remove(list, i) end
  end
end

--- The records waiting for `inst` through `rel` (a list), or nil.
function M.children(inst, rel)
  local p = pending(inst, false)
  local out
  for _, e in ipairs(p and p.children or {}) do
    if e[1] == rel then
      out = out or {}
      out[#out + 1] = e[2]
    end
  end
  return out
end

--- The unsaved owner assigned through belongs_to `rel` (nil: none).
function M.set_owner(inst, rel, owner)
  local p = pending(inst, owner ~= nil)
  if p then p.owners[rel] = owner end
end

--- The owner assigned through `rel` and not saved yet, if any.
function M.owner(inst, rel)
  local p = pending(inst, false)
  return p and p.owners[rel]
end

local function has_work(p)
  return p and (next(p.owners) ~= nil or #p.children > 0)
end

-- Owners first: each saved (when still unsaved) and its key taken.
local function save_owners(inst, p)
  for rel, owner in next, p.owners do
    if not persisted(owner) then owner:save() end
    rel:take_key(inst, owner)
  end
end

-- Then the children, each pointing at `inst` (or linked by a join row).
local function save_children(inst, p)
  local writes = require("activerecord.relations.writes")
  local list = p.children
  for i = 1, #list do
    local rel, rec, extra = list[i][1], list[i][2], list[i][3]
    if rel.kind == "has_many_through" then
      if not persisted(rec) then rec:save() end
      writes.insert_link(rel, inst, rec, extra or nil)
    else
      writes.link(rel, inst, rec)
      rec:save()
    end
  end
end

--- The `save` of a model with relations: `base` alone when nothing waits,
-- else the owners, the record and the children in one transaction. What
-- waited is forgotten once written; a failure keeps it for the next save.
-- @tparam function base the model's save
-- @treturn function the save
function M.save_with(base)
  return function(inst, opts)
    local cache = rawget(inst, CACHE)
    local p = cache and cache[PENDING]
    if not has_work(p) then return base(inst, opts) end
    local model = layout.model_of(inst)
    local affected = model:transaction(function()
      save_owners(inst, p)
      local n = base(inst, opts)
      save_children(inst, p)
      -- an enclosing transaction rolled back later makes the records new
      -- again: what waited waits again, for the next save
      local db = model:_backend()
      local track = db._track_undo
      if track then track(db, function() cache[PENDING] = p end) end
      return n
    end)
    cache[PENDING] = nil
    return affected
  end
end

--- The `delete` of a model with `dependent` relations: the dependents and
-- the record in one transaction.
-- @tparam function base the model's delete
-- @treturn function the delete
function M.delete_with(base)
  return function(inst, ...)
    local model = layout.model_of(inst)
    local args = table.pack(...)
    return model:transaction(function() return base(inst, table.unpack(args, 1, args.n)) end)
  end
end

return M

--- One job: the belongs_to strategy. The owner holds the target's key
-- (`post.user_id` -> `post:author()`): the key columns, the one-record
-- query, loading, eager loading (keyed), the join, and assignment
-- (`post.author = ann`, see `relations.writes`).
-- @module activerecord.relations.belongs_to
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local relation = require("activerecord.relations.relation")
local preload = require("activerecord.relations.preload")
local composite = require("activerecord.relations.composite")
local autosave = require("activerecord.relations.autosave")

local BelongsTo = relation.kind({ single = true })

local cache_of = relation.cache_of

--- Columns: the owner's foreign key and the target's key it matches.
-- @treturn string owner_key
-- @treturn string target_key
function BelongsTo:keys()
  local o = self.opts
  local target = self:target()
  -- (a composite target key needs foreign_key = { ... }: relations.composite)
  return composite.checked(self, o.foreign_key or (relation.snake(target.name) .. "_id"),
    o.primary_key or target.primary_key)
end

--- The query of the target `inst` points at (chainable).
-- @param inst the owner record
-- @return the query
function BelongsTo:query_for(inst)
  local owner_key, target_key = self:keys()
  local v = inst[owner_key]
  return self:ordered(self:target():query():where({ [target_key] = v == nil and null or v }))
end

--- The target record, or false (no key: no query at all).
-- @param inst the owner record
function BelongsTo:fetch(inst)
  if inst[(self:keys())] == nil then return false end
  return self:query_for(inst):first() or false
end

--- The accessor: an owner assigned and not saved yet; else the cached
-- target while the key still names it (a changed key loads again).
-- @param inst the record
-- @tparam[opt] table opts `reload`
-- @return the target or nil
function BelongsTo:load(inst, opts)
  local waiting = autosave.owner(inst, self)
  if waiting then return waiting end
  local v = cache_of(inst)[self.name]
  if v and not (opts and opts.reload) then
    local fk, pk = self:keys()
    if v[pk] ~= inst[fk] then opts = { reload = true } end
  end
  return relation.Relation.load(self, inst, opts)
end

--- The model of a record assigned to this relation (checked).
-- @param v the record
-- @treturn table its model
-- @raise `QueryError` for anything else than a record of the target
function BelongsTo:target_of_record(v)
  local writes = require("activerecord.relations.writes")
  local m = writes.record_model(v)
  local target = self:target()
  if not m or not relation.is_kind_of(m, target) then
    errors.raise("QueryError", ("%s.%s = expects a %s record, nil or ar.null (got %s)"):format(
      self.owner.name, self.name, target.name, m and ("a " .. m.name) or type(v)))
  end
  return m
end

--- `post.author = ann` (see `relations.writes.assign_owner`).
function BelongsTo:assign(inst, v)
  require("activerecord.relations.writes").assign_owner(self, inst, v)
end

--- After the assigned owner was saved: the record takes its key.
function BelongsTo:take_key(inst, owner)
  local fk, pk = self:keys()
  local v = owner[pk]
  if inst[fk] ~= v then inst[fk] = v end
end

--- The model of the target `inst` points at (the target itself here; the
-- polymorphic kind reads the type column).
function BelongsTo:target_model_of()
  return self:target()
end

--- Eager loading: one query per chunk of distinct keys.
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope
-- @tparam integer chunk_size keys per statement
-- @treturn table the loaded targets
function BelongsTo:preload(records, scope, chunk_size)
  return preload.keyed(self, records, scope, chunk_size)
end

return BelongsTo

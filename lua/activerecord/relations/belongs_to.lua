--- One job: the belongs_to strategy. The owner holds the target's key
-- (`post.user_id` -> `post:author()`): the key columns, the one-record
-- query, loading, eager loading (keyed) and the join.
-- @module activerecord.relations.belongs_to
local null = require("activerecord.null")
local relation = require("activerecord.relations.relation")
local preload = require("activerecord.relations.preload")

local BelongsTo = relation.kind({ single = true })

--- Columns: the owner's foreign key and the target's key it matches.
-- @treturn string owner_key
-- @treturn string target_key
function BelongsTo:keys()
  local o = self.opts
  local target = self:target()
  return o.foreign_key or (relation.snake(target.name) .. "_id"), o.primary_key or target.primary_key
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

--- Eager loading: one query per chunk of distinct keys.
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope
-- @tparam integer chunk_size keys per statement
-- @treturn table the loaded targets
function BelongsTo:preload(records, scope, chunk_size)
  return preload.keyed(self, records, scope, chunk_size)
end

return BelongsTo

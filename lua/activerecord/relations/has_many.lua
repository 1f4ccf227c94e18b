--- One job: the has_many strategy. Many targets hold the owner's key
-- (`user:posts()`): the key columns, the query of the children, loading
-- (with `inverse_of` filled without a query), eager loading (keyed) and
-- `dependent` delete/nullify. has_one reuses it with `single = true`.
-- @module activerecord.relations.has_many
local null = require("activerecord.null")
local relation = require("activerecord.relations.relation")
local preload = require("activerecord.relations.preload")

local HasMany = relation.kind()

--- Columns: the owner's key and the target's foreign key holding it.
-- @treturn string owner_key
-- @treturn string target_key
function HasMany:keys()
  local o = self.opts
  return o.primary_key or self.owner.primary_key, o.foreign_key or (relation.snake(self.owner.name) .. "_id")
end

--- The query of what `inst` relates to (chainable). An owner without a key
-- (never saved) has no children: `IN ()` matches nothing, where `{ fk = nil }`
-- would have been no condition at all.
-- @param inst the owner record
-- @return the query
function HasMany:query_for(inst)
  local owner_key, target_key = self:keys()
  local v = inst[owner_key]
  return self:ordered(self:target():query():where({ [target_key] = v == nil and {} or v }))
end

--- The children (a list), each with its inverse relation set to `inst`.
-- @param inst the owner record
function HasMany:fetch(inst)
  local list = self:query_for(inst):all()
  local inverse = self.opts.inverse_of
  if inverse then
    local cache_of = relation.cache_of
    for i = 1, #list do cache_of(list[i])[inverse] = inst end
  end
  return list
end

--- Eager loading: one query per chunk of distinct keys.
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope
-- @tparam integer chunk_size keys per statement
-- @treturn table the loaded targets
function HasMany:preload(records, scope, chunk_size)
  return preload.keyed(self, records, scope, chunk_size)
end

--- `dependent = "delete"` deletes the children, `"nullify"` clears their key.
-- @param inst the owner being deleted
-- @tparam string dep `"delete"` or `"nullify"`
function HasMany:remove_dependents(inst, dep)
  local q = self:query_for(inst)
  if dep == "delete" then
    q:delete_all()
  else
    local _, target_key = self:keys()
    q:update_all({ [target_key] = null })
  end
end

return HasMany

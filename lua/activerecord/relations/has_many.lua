--- One job: the has_many strategy. Many targets hold the owner's key
-- (`user:posts()`): the key columns, the query of the children, loading
-- (with `inverse_of` filled without a query), eager loading (keyed) and
-- `dependent` delete/nullify. has_one reuses it with `single = true`.
-- @module activerecord.relations.has_many
local null = require("activerecord.null")
local relation = require("activerecord.relations.relation")
local preload = require("activerecord.relations.preload")
local composite = require("activerecord.relations.composite")
local autosave = require("activerecord.relations.autosave")

local HasMany = relation.kind()

--- Columns: the owner's key and the target's foreign key holding it.
-- @treturn string owner_key
-- @treturn string target_key
function HasMany:keys()
  local o = self.opts
  -- (a composite owner key needs foreign_key = { ... }: relations.composite)
  return composite.checked(self, o.primary_key or self.owner.primary_key,
    o.foreign_key or (o.as and o.as .. "_id") or (relation.snake(self.owner.name) .. "_id"))
end

-- An `as` (polymorphic) relation's children also name the owner's model.
local function typed(self, q)
  local t = self.poly_type
  if t then q = q:where({ [t] = self.poly_name }) end
  return q
end

--- The query of what `inst` relates to (chainable). An owner without a key
-- (never saved) has no children: `IN ()` matches nothing, where `{ fk = nil }`
-- would have been no condition at all.
-- @param inst the owner record
-- @return the query
function HasMany:query_for(inst)
  local owner_key, target_key = self:keys()
  local v = inst[owner_key]
  return self:ordered(typed(self, self:target():query():where({ [target_key] = v == nil and {} or v })))
end

--- The children (a list), each with its inverse relation set to `inst`.
-- @param inst the owner record
function HasMany:fetch(inst)
  local list = self:query_for(inst):all()
  -- records built or added and waiting for the owner's save are its children too
  local waiting = autosave.children(inst, self)
  if waiting then
    local n = #list
    for i = 1, #waiting do
      local c = waiting[i]
      local seen = false
      for j = 1, n do if list[j] == c then seen = true break end end
      if not seen then list[#list + 1] = c end
    end
  end
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
  if self.poly_type then
    local outer = scope
    scope = function(q)
      q = typed(self, q)
      if outer then q = outer(q) end
      return q
    end
  end
  return preload.keyed(self, records, scope, chunk_size)
end

--- `dependent = "destroy"` deletes each child through its model (its
-- events and its own dependents run), `"delete"` deletes the children in
-- one statement, `"nullify"` clears their key (and type) in one statement.
-- The owner's delete runs them in its transaction (`relations.autosave`).
-- @param inst the owner being deleted
-- @tparam string dep `"destroy"`, `"delete"` or `"nullify"`
function HasMany:remove_dependents(inst, dep)
  local q = self:query_for(inst)
  if dep == "destroy" then
    local list = q:all()
    for i = 1, #list do list[i]:delete() end
  elseif dep == "delete" then
    q:delete_all()
  else
    local _, target_key = self:keys()
    local set = { [target_key] = null }
    if self.poly_type then set[self.poly_type] = null end
    q:update_all(set)
  end
end

return HasMany

--- One job: the has_one strategy. One target holds the owner's key
-- (`user:profile()`): has_many's keys, query, eager loading and dependents,
-- answering with the first record (or none) instead of a list.
-- @module activerecord.relations.has_one
local relation = require("activerecord.relations.relation")
local HasMany = require("activerecord.relations.has_many")
local autosave = require("activerecord.relations.autosave")

local HasOne = relation.kind({ single = true })
setmetatable(HasOne, HasMany)

--- The related record, or false.
-- @param inst the owner record
function HasOne:fetch(inst)
  -- one built or added and waiting for the owner's save is the one
  local waiting = autosave.children(inst, self)
  if waiting then return waiting[#waiting] end
  return self:query_for(inst):first() or false
end

--- `user.profile = p` (see `relations.writes.assign_one`).
function HasOne:assign(inst, v)
  require("activerecord.relations.writes").assign_one(self, inst, v)
end

return HasOne

--- One job: what every relation kind shares. A relation object knows its
-- owner model, its name and options, resolves its target model on first use,
-- and gives records their accessor (`post:author()`, `user:posts{ reload =
-- true }`: loads once through the kind's `fetch`, then answers from the
-- record's relation cache). The kinds (belongs_to, has_one, has_many,
-- has_many_through) are tables chaining to `Relation` that add `keys`,
-- `query_for`, `fetch`, `preload`, `join_spec` and `remove_dependents`.
-- @module activerecord.relations.relation
local errors = require("activerecord.errors")
local registry = require("activerecord.registry")
local query = require("activerecord.query")
local record = require("activerecord.record")

local M = {}

local Relation = {}
Relation.__index = Relation
M.Relation = Relation

--- A new kind: a table chaining to `Relation` (its own `__index`, so
-- relation objects of the kind find the kind's methods, then the shared ones).
-- @tparam[opt] table fields the kind's constants (`single = true`, ...)
-- @treturn table the kind
function M.kind(fields)
  local k = setmetatable(fields or {}, Relation)
  k.__index = k
  return k
end

--- The record's cache of loaded relations (name -> record, list or false),
-- kept in the record itself (activerecord.record).
-- @function cache_of
-- @param inst a record
-- @treturn table the cache
M.cache_of = record.cache
local cache_of = M.cache_of

--- "User" -> "user", "BlogPost" -> "blog_post" (default key names).
-- @tparam string name a model name
-- @treturn string the snake-case name
function M.snake(name)
  return (name:gsub("(%l)(%u)", "%1_%2"):lower())
end

--- The target model (resolved by name once, when first needed).
-- @treturn table the model
-- @raise `ConfigError` when no model has that name
function Relation:target()
  local t = self._target
  if not t then
    t = registry.resolve_model(self.target_ref, ("%s.%s"):format(self.owner.name, self.name))
    self._target = t
  end
  return t
end

--- Whether records of model `m` are records of `target`: the same model,
-- or a model extending it (single-table inheritance).
-- @tparam table m a model
-- @tparam table target a model
-- @treturn boolean
function M.is_kind_of(m, target)
  while m do
    if m == target then return true end
    local meta = rawget(m, "_meta")
    m = meta and meta.parent_model
  end
  return false
end

--- The relation's `order_by` (checked and made a list of `{ column, dir }`
-- pairs at definition) applied to a query of the target.
-- @param q the query
-- @return the ordered query
function Relation:ordered(q)
  local order = self.order
  if order then
    for i = 1, #order do q = q:order_by(order[i][1], order[i][2]) end
  end
  return q
end

--- The accessor: loads once per record and caches (false marks "none");
-- `{ reload = true }` loads again.
-- @param inst the record
-- @tparam[opt] table opts `reload`
-- @return a record, a list of records or nil
function Relation:load(inst, opts)
  if type(inst) ~= "table" then
    errors.raise("ConfigError", "expected a model instance (use rec:method(), not rec.method())")
  end
  local cache = cache_of(inst)
  local name = self.name
  local v = cache[name]
  if v == nil or (opts and opts.reload) then
    v = self:fetch(inst)
    cache[name] = v
  end
  if v == false then return nil end
  return v
end

--- Join description for `Query:joins(name)` of a kind matching one key
-- column against another: the target table and the ON.
-- @tparam string kind the join kind
-- @treturn table `{ table =, kind =, on = }`
function Relation:join_spec(kind)
  local owner, target = self.owner, self:target()
  local owner_key, target_key = self:keys()
  local oc = owner.table .. "." .. owner.fields[owner_key].column
  local tf = target.fields[target_key]
  local tc = target.table .. "." .. (tf and tf.column or target_key)
  return { table = target.table, kind = kind, on = query.col(tc):eq(query.col(oc)) }
end

--- What `dependent` does before the owner is deleted: `restrict` refuses
-- while related records exist; the kinds' `remove_dependents` do the rest.
-- @param inst the owner being deleted
-- @tparam string dep `"delete"`, `"nullify"` or `"restrict"`
-- @raise `IntegrityError` for `restrict` with related records
function Relation:before_owner_delete(inst, dep)
  if dep == "restrict" then
    if self:query_for(inst):exists() then
      errors.raise("IntegrityError", ("cannot delete %s: it still has %s"):format(tostring(inst), self.name))
    end
  else
    self:remove_dependents(inst, dep)
  end
  cache_of(inst)[self.name] = nil
end

return M

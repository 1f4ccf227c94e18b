--- One job: the polymorphic belongs_to strategy. The owner holds a key and
-- the name of the model the key belongs to (`comment.commentable_id` and
-- `comment.commentable_type = "Post"`): loading reads the type to find the
-- model, eager loading runs one query per model named, and assignment sets
-- both columns. Its counterpart is `has_many(..., { as = "commentable" })`.
-- @module activerecord.relations.polymorphic
local errors = require("activerecord.errors")
local registry = require("activerecord.registry")
local relation = require("activerecord.relations.relation")
local BelongsTo = require("activerecord.relations.belongs_to")
local autosave = require("activerecord.relations.autosave")

local Polymorphic = relation.kind({ single = true, polymorphic = true })
setmetatable(Polymorphic, BelongsTo)

local cache_of = relation.cache_of

--- What the type column holds for records of model `m`: the name of the
-- model at the root of its inheritance (the model itself without one).
-- @tparam table m a model
-- @treturn string the name
function Polymorphic.type_name(m)
  while true do
    local meta = rawget(m, "_meta")
    local parent = meta and meta.parent_model
    if not parent then return m.name end
    m = parent
  end
end

--- Columns: the owner's key column (`<name>_id`) and the target's key
-- (nil: each target model's own primary key).
function Polymorphic:keys()
  return self.opts.foreign_key or (self.target_ref .. "_id"), self.opts.primary_key
end

--- A polymorphic relation has no one target model.
-- @raise `QueryError`
function Polymorphic:target()
  errors.raise("QueryError", ("%s.%s is polymorphic: its target model is read from %s of each record")
    :format(self.owner.name, self.name, self.poly_type))
end

--- The model the type column of `inst` names, or nil when it is empty.
-- @raise `ConfigError` when no model has that name
function Polymorphic:target_model_of(inst)
  local t = inst[self.poly_type]
  if t == nil then return nil end
  local m = registry.model(t)
  if not m then
    errors.raise("ConfigError", ("%s.%s: %s = %q names no model"):format(self.owner.name, self.name,
      self.poly_type, tostring(t)))
  end
  return m
end

local function key_of_model(self, m)
  return self.opts.primary_key or m.primary_key
end

--- The query of the record `inst` points at.
-- @raise `QueryError` when its type column is empty
function Polymorphic:query_for(inst)
  local m = self:target_model_of(inst)
  if not m then
    errors.raise("QueryError", ("%s.%s: %s is empty, so no model is known"):format(self.owner.name,
      self.name, self.poly_type))
  end
  local v = inst[(self:keys())]
  return m:query():where({ [key_of_model(self, m)] = v == nil and {} or v })
end

--- The target record, or false.
function Polymorphic:fetch(inst)
  local v = inst[(self:keys())]
  local m = self:target_model_of(inst)
  if v == nil or not m then return false end
  return m:query():where({ [key_of_model(self, m)] = v }):first() or false
end

--- The accessor: as belongs_to's, the cached record kept while both the
-- key and the type still name it.
function Polymorphic:load(inst, opts)
  local waiting = autosave.owner(inst, self)
  if waiting then return waiting end
  local v = cache_of(inst)[self.name]
  if v and not (opts and opts.reload) then
    local m = v:model()
    if v[key_of_model(self, m)] ~= inst[(self:keys())] or Polymorphic.type_name(m) ~= inst[self.poly_type] then
      opts = { reload = true }
    end
  end
  return relation.Relation.load(self, inst, opts)
end

--- Any record of a registered model may be assigned.
-- @raise `QueryError` for anything else
function Polymorphic:target_of_record(v)
  local m = require("activerecord.relations.writes").record_model(v)
  if not m or registry.model(Polymorphic.type_name(m)) == nil then
    errors.raise("QueryError", ("%s.%s = expects a record of a named model, nil or ar.null (got %s)")
      :format(self.owner.name, self.name, type(v)))
  end
  return m
end

--- After the assigned record was saved: its key and type.
function Polymorphic:take_key(inst, owner)
  local m = owner:model()
  inst[(self:keys())] = owner[key_of_model(self, m)]
  inst[self.poly_type] = Polymorphic.type_name(m)
end

--- joins() cannot join a table that depends on each row.
-- @raise `QueryError`
function Polymorphic:join_spec()
  errors.raise("QueryError", ("joins(%q): a polymorphic relation has no one table to join"):format(self.name))
end

--- Eager loading: the owners grouped by type, one query per model (per
-- chunk of keys); each owner gets its record or false.
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope (applied to each model's query)
-- @tparam integer chunk_size keys per statement
-- @treturn table the loaded records (of several models)
function Polymorphic:preload(records, scope, chunk_size)
  local fk, tcol, name = self:keys(), self.poly_type, self.name
  local order, by_type = {}, {}
  for i = 1, #records do
    local r = records[i]
    local t, k = r[tcol], r[fk]
    if t ~= nil and k ~= nil then
      local g = by_type[t]
      if not g then
        g = { keys = {}, seen = {} }
        by_type[t] = g
        order[#order + 1] = t
      end
      if not g.seen[k] then
        g.seen[k] = true
        g.keys[#g.keys + 1] = k
      end
    end
  end
  local loaded, found = {}, {}
  for _, t in ipairs(order) do
    local m = registry.model(t)
    if not m then
      errors.raise("ConfigError", ("%s.%s: %s = %q names no model"):format(self.owner.name, name, tcol, t))
    end
    local pk, keys, index = key_of_model(self, m), by_type[t].keys, {}
    for first = 1, #keys, chunk_size do
      local chunk = table.move(keys, first, math.min(first + chunk_size - 1, #keys), 1, {})
      local q = m:query():where({ [pk] = chunk })
      if scope then q = scope(q) end
      local rows = q:all()
      for i = 1, #rows do
        index[rows[i][pk]] = rows[i]
        loaded[#loaded + 1] = rows[i]
      end
    end
    found[t] = index
  end
  for i = 1, #records do
    local r = records[i]
    local index = found[r[tcol]]
    cache_of(r)[name] = index and index[r[fk]] or false
  end
  return loaded
end

--- The next eager-loading level: the loaded records grouped by model, each
-- group loaded as its own model's relations.
-- @tparam table loaded the records `preload` returned
-- @tparam function run `preload.run(model, records, tree, chunk_size)`
-- @tparam table tree the next levels (`preload.parse`)
-- @tparam integer chunk_size keys per statement
function Polymorphic:preload_next(loaded, run, tree, chunk_size)
  local groups, order = {}, {}
  for i = 1, #loaded do
    local m = loaded[i]:model()
    local g = groups[m]
    if not g then
      g = {}
      groups[m] = g
      order[#order + 1] = m
    end
    g[#g + 1] = loaded[i]
  end
  for _, m in ipairs(order) do run(m, groups[m], tree, chunk_size) end
end

return Polymorphic

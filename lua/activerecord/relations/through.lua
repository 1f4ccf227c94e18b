--- One job: the has_many_through (many-to-many) strategy. A join table
-- links owners and targets (`post:tags()` through `post_tags`): the
-- subquery of linked keys, eager loading in one joined statement per chunk,
-- and `dependent` (the join rows go, the targets stay). Every statement is a
-- query compiled by the backend's compiler.
-- @module activerecord.relations.through
local errors = require("activerecord.errors")
local query = require("activerecord.query")
local relation = require("activerecord.relations.relation")
local preload = require("activerecord.relations.preload")
local collation = require("activerecord.relations.collation")
local autosave = require("activerecord.relations.autosave")

local Through = relation.kind()

--- Columns: the owner's key (the join table's columns are `link_columns`).
-- @treturn string owner_key
function Through:keys()
  return self.opts.primary_key or self.owner.primary_key, nil
end

--- The join table's columns: the one holding the owner's key and the one
-- holding the target's.
-- @treturn string source column
-- @treturn string target column
function Through:link_columns()
  local o = self.opts
  return o.source_key or (relation.snake(self.owner.name) .. "_id"),
    o.target_key or (relation.snake(self:target().name) .. "_id")
end

-- The join table as a query: `SELECT <dst> FROM <through> WHERE <src> = key`.
local function linked(self, db, key)
  local src, dst = self:link_columns()
  return query.table(self.opts.through, db):select(dst):where({ [src] = key })
end

--- The targets linked to `inst`: `pk IN (SELECT dst FROM through WHERE src = ?)`.
-- @param inst the owner record
-- @return the query
function Through:query_for(inst)
  local target = self:target()
  local key = inst[(self:keys())]
  local q = target:query()
  -- an owner without a key (never saved) is linked to nothing
  local ids = key == nil and {} or linked(self, target:_backend(), key)
  return self:ordered(q:where(query.col(target.primary_key):in_list(ids)))
end

--- The linked targets (a list).
-- @param inst the owner record
function Through:fetch(inst)
  local list = self:query_for(inst):all()
  -- records built or added and waiting for the owner's save are linked too
  local waiting = autosave.children(inst, self)
  for i = 1, waiting and #waiting or 0 do list[#list + 1] = waiting[i] end
  return list
end

--- joins("name") cannot describe two joins: join the table explicitly.
-- @raise `QueryError`
function Through:join_spec()
  errors.raise("QueryError", ("joins(%q): join the table %q explicitly for a has_many_through")
    :format(self.name, self.opts.through))
end

-- One statement per chunk: the targets (the scoped query, a derived table)
-- joined to the join table, each row tagged with the owner key it links to:
-- SELECT t.*, j.src AS __ar_owner FROM (targets) AS t
--   INNER JOIN through AS j ON j.dst = t.pk WHERE j.src IN (...) [ORDER BY t.x]
-- @param db the backend
-- @tparam[opt] function scope the `with` scope
-- @tparam table chunk owner keys
-- @return the query (rows: the target's columns and `__ar_owner`)
function Through:preload_query(db, scope, chunk)
  local target = self:target()
  local src, dst = self:link_columns()
  local inner = target:query()
  if scope then inner = scope(inner) end
  local q = query.new{ backend = db }:from(inner, "t")
    :join("inner", { table = self.opts.through, as = "j" },
      { ["j." .. dst] = "t." .. target.pk_field.column })
    :select("t.*", query.col("j." .. src):as("__ar_owner"))
    :where(query.col("j." .. src):in_list(chunk))
  -- the derived table loses any order: the relation's order_by goes outside
  for _, pair in ipairs(self.order or {}) do
    q = q:order_by(query.col("t." .. target.resolve(pair[1])), pair[2])
  end
  return q
end

--- Eager loading: the linked targets of every owner, one joined statement
-- per chunk of owner keys; owners are matched as the server compared them
-- (the join column's collation).
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope
-- @tparam integer chunk_size keys per statement
-- @treturn table the loaded targets
function Through:preload(records, scope, chunk_size)
  local target = self:target()
  local db = target:_backend()
  local owner_key = self:keys()
  local src = self:link_columns()
  local okey = preload.key_of(self.owner, owner_key)
  local keys = preload.distinct_values(records, owner_key, okey)
  local loaded, owners = {}, {}
  local n = 0
  for first = 1, #keys, chunk_size do
    local chunk = table.move(keys, first, math.min(first + chunk_size - 1, #keys), 1, {})
    local rows = self:preload_query(db, scope, chunk):all()
    for i = 1, #rows do
      local row = rows[i]
      n = n + 1
      owners[n] = row.__ar_owner
      loaded[n] = target:_load(row)
    end
  end
  local norm = collation.normaliser(db, self.opts.through, src, keys, owners)
  local by_owner = {}
  for i = 1, n do
    local k = owners[i]
    if norm then k = norm(k) end
    local list = by_owner[k]
    if not list then
      list = {}
      by_owner[k] = list
    end
    list[#list + 1] = loaded[i]
  end
  preload.attach_lists(self.name, records, owner_key, by_owner, norm, nil, okey)
  return loaded
end

--- `dependent` (delete or nullify) unlinks: the join rows of `inst` go,
-- the targets stay.
-- @param inst the owner being deleted
function Through:remove_dependents(inst)
  local key = inst[(self:keys())]
  if key == nil then return end -- never saved: nothing links to it
  local src = self:link_columns()
  query.table(self.opts.through, self.owner:_backend()):where({ [src] = key }):delete_all()
end

return Through

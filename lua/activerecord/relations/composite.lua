--- One job: relations over composite keys (`foreign_key = { "order_id",
-- "line_no" }`, and `primary_key` a list too, or the target's/owner's
-- composite primary key). A relation whose `foreign_key` or `primary_key`
-- option is a list gets a kind of its own that chains to belongs_to,
-- has_one or has_many and replaces what matches keys: `keys` (two lists of
-- equal length, else a ConfigError), the query (`b1 = ? AND b2 = ?`, bound
-- values), loading, eager loading (one query per level: `(b1 = ? AND b2 = ?)
-- OR ...` through the builder, in chunks), the join (`ON a1 = b1 AND a2 =
-- b2`) and `dependent = "nullify"` (every part cleared).
-- @module activerecord.relations.composite
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local query = require("activerecord.query")
local relation = require("activerecord.relations.relation")
local collation = require("activerecord.relations.collation")
local autosave = require("activerecord.relations.autosave")
local preload = require("activerecord.relations.preload")

local M = {}

local cache_of = relation.cache_of
local IDENT = "^[%a_][%w_]*$"

--- Whether `v` is a list of two or more distinct identifiers (a composite
-- key option's form).
-- @param v the option
-- @treturn boolean
function M.is_key_list(v)
  if type(v) ~= "table" or #v < 2 then return false end
  local n, seen = 0, {}
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return false end
  for i = 1, #v do
    local x = v[i]
    if type(x) ~= "string" or #x > 64 or not x:match(IDENT) or seen[x] then return false end
    seen[x] = true
  end
  return true
end

--- Checks the two sides of a relation's keys: both names, or two lists of
-- the same length. Returns them.
-- @param rel the relation
-- @param a the owner's side
-- @param b the target's side
-- @raise `ConfigError` naming the relation and both sides
function M.checked(rel, a, b)
  local ta, tb = type(a) == "table", type(b) == "table"
  if (ta or tb) and not (ta and tb and #a == #b) then
    local function show(v) return ta and tb and "" or (type(v) == "table" and "{ " .. table.concat(v, ", ") .. " }"
      or tostring(v)) end
    errors.raise("ConfigError", ("%s.%s: a composite key needs both sides as lists of the same length (owner "
      .. "side %s, target side %s): name them with foreign_key = { ... } (and primary_key = { ... })")
      :format(rel.owner.name, rel.name, show(a), show(b)), { model = rel.owner.name, relation = rel.name })
  end
  return a, b
end

-- The values of `names` in `inst` (nil when a part is nil).
local function values_of(inst, names)
  local out = {}
  for i = 1, #names do
    local v = inst[names[i]]
    if v == nil or v == null then return nil end
    out[i] = v
  end
  return out
end

-- A key tuple as one Lua value (integral floats as integers; strings
-- length-prefixed so no two tuples share it).
local function signature(vals, norms)
  local parts = {}
  for i = 1, #vals do
    local v = vals[i]
    if norms and norms[i] then v = norms[i](v) end
    if math.type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) or v end
    local s = tostring(v)
    parts[i] = type(v):sub(1, 1) .. #s .. ":" .. s
  end
  return table.concat(parts, "|")
end

-- `{ [b1] = v1, [b2] = v2 }` (a nil part: NULL, which matches nothing).
local function where_of(names, vals)
  local w = {}
  for i = 1, #names do w[names[i]] = vals and vals[i] or null end
  return w
end

-- ---- the kinds --------------------------------------------------------------

local kinds = {}

--- The composite kind chaining to `base` (belongs_to, has_one or has_many).
-- @tparam table base the kind
-- @tparam string kind_name its name (`"belongs_to"`: the owner holds the key)
-- @treturn table the composite kind
function M.kind_of(base, kind_name)
  local k = kinds[base]
  if k then return k end
  k = setmetatable({ single = base.single, composite = true }, base)
  k.__index = k
  local belongs = kind_name == "belongs_to"

  function k:keys()
    local o = self.opts
    if belongs then
      return M.checked(self, o.foreign_key, o.primary_key or self:target().primary_key)
    end
    return M.checked(self, o.primary_key or self.owner.primary_key, o.foreign_key)
  end

  function k:query_for(inst)
    local owner_key, target_key = self:keys()
    local vals = values_of(inst, owner_key)
    local q = self:target():query()
    if vals then
      q = q:where(where_of(target_key, vals))
    else -- an owner without a full key relates to nothing
      q = q:where({ [target_key[1]] = {} })
    end
    return self:ordered(q)
  end

  if belongs then
    function k:fetch(inst)
      if not values_of(inst, (self:keys())) then return false end
      return self:query_for(inst):first() or false
    end
    -- the cached target while the key still names it
    function k:load(inst, opts)
      -- an owner assigned and not saved yet answers (relations.autosave)
      local waiting = autosave.owner(inst, self)
      if waiting then return waiting end
      local v = cache_of(inst)[self.name]
      if v and not (opts and opts.reload) then
        local fk, pk = self:keys()
        for i = 1, #fk do
          if v[pk[i]] ~= inst[fk[i]] then
            opts = { reload = true }
            break
          end
        end
      end
      return relation.Relation.load(self, inst, opts)
    end
    --- After the assigned owner was saved: the record takes every key part.
    function k:take_key(inst, owner)
      local fk, pk = self:keys()
      for i = 1, #fk do
        local v = owner[pk[i]]
        if inst[fk[i]] ~= v then inst[fk[i]] = v end
      end
    end
  end

  function k:preload(records, scope, chunk_size)
    return M.keyed(self, records, scope, chunk_size)
  end

  function k:join_spec(kind)
    local owner, target = self.owner, self:target()
    local owner_key, target_key = self:keys()
    local on
    for i = 1, #owner_key do
      local of, tf = owner.fields[owner_key[i]], target.fields[target_key[i]]
      local c = query.col(target.table .. "." .. (tf and tf.column or target_key[i]))
        :eq(query.col(owner.table .. "." .. (of and of.column or owner_key[i])))
      on = on and on:and_(c) or c
    end
    return { table = target.table, kind = kind, on = on }
  end

  if not belongs then
    function k:remove_dependents(inst, dep)
      if dep ~= "nullify" then return base.remove_dependents(self, inst, dep) end
      local _, target_key = self:keys()
      local set = {}
      for i = 1, #target_key do set[target_key[i]] = null end
      self:query_for(inst):update_all(set)
    end
  end
  kinds[base] = k
  return k
end

-- ---- eager loading ----------------------------------------------------------

-- `(b1 = ? AND b2 = ?) OR ...` for the tuples, values converted by the fields.
local function tuples_condition(target, target_key, tuples)
  local any
  for _, vals in ipairs(tuples) do
    local all
    for i = 1, #target_key do
      local name = target_key[i]
      local v = vals[i]
      local f = target.fields[name]
      if f and f.to_db then v = f.to_db(f.cast and f.cast(v, f) or v, f) or v end
      local c = query.col(name):eq(v)
      all = all and all:and_(c) or c
    end
    any = any and any:or_(all) or all
  end
  return any
end

-- Per key part, the collation normaliser when string values need one.
local function normalisers(rel, target_key, tuples, found)
  local target = rel:target()
  local norms
  for i = 1, #target_key do
    local keys, got = {}, {}
    for j = 1, #tuples do keys[j] = tuples[j][i] end
    if collation.has_string(keys) then
      for j = 1, #found do got[j] = found[j][i] end
      local f = target.fields[target_key[i]]
      local n = collation.normaliser(target:_backend(), target.table, f and f.column or target_key[i], keys, got)
      if n then
        norms = norms or {}
        norms[i] = n
      end
    end
  end
  return norms
end

--- Eager loading over a composite key: the targets of every owner, one
-- query per chunk of distinct key tuples (`(b1 = ? AND b2 = ?) OR ...`),
-- matched to the owners as the server compares.
-- @param rel the relation
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope
-- @tparam integer chunk_size tuples per statement
-- @treturn table the loaded targets
function M.keyed(rel, records, scope, chunk_size)
  local owner_key, target_key = rel:keys()
  local target = rel:target()
  local seen, tuples, owner_vals = {}, {}, {}
  for i = 1, #records do
    local vals = values_of(records[i], owner_key)
    owner_vals[i] = vals or false
    if vals then
      local s = signature(vals)
      if not seen[s] then
        seen[s] = true
        tuples[#tuples + 1] = vals
      end
    end
  end
  local loaded = {}
  for first = 1, #tuples, chunk_size do
    local chunk = table.move(tuples, first, math.min(first + chunk_size - 1, #tuples), 1, {})
    local q = rel:ordered(target:query():where(tuples_condition(target, target_key, chunk)))
    if scope then q = scope(q) end
    local rows = q:all()
    table.move(rows, 1, #rows, #loaded + 1, loaded)
  end
  local found = {}
  for i = 1, #loaded do found[i] = values_of(loaded[i], target_key) or {} end
  local norms = normalisers(rel, target_key, tuples, found)
  local by_key = {}
  for i = 1, #loaded do
    local s = signature(found[i], norms)
    local list = by_key[s]
    if list then list[#list + 1] = loaded[i] else by_key[s] = { loaded[i] } end
  end
  local name, inverse, given = rel.name, rel.opts.inverse_of, {}
  for i = 1, #records do
    local r, vals = records[i], owner_vals[i]
    local s = vals and signature(vals, norms)
    local list = s and by_key[s]
    if rel.single then
      cache_of(r)[name] = list and list[1] or false
    else
      list = preload.take_list(by_key, s, given)
      if inverse then
        for j = 1, #list do cache_of(list[j])[inverse] = r end
      end
      cache_of(r)[name] = list
    end
  end
  return loaded
end

return M

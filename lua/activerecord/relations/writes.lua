--- One job: writes through a relation. The query `owner:<name>_query()`
-- of a has_many, has_one or has_many_through knows its owner: `build`,
-- `create`, `add`, `remove` and `clear` set or clear the key (or insert and
-- delete join rows); records built or added while the owner is unsaved wait
-- in the owner's pending list and are saved with it (`relations.autosave`).
-- The owner's cached accessor (`owner:posts()`) follows every change, so it
-- agrees with the rows without a reload.
-- @module activerecord.relations.writes
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local record = require("activerecord.record")
local layout = require("activerecord.model.layout")
local relation = require("activerecord.relations.relation")
local autosave = require("activerecord.relations.autosave")

local M = {}

local cache_of = relation.cache_of
local counted -- defined below
local persisted = record.persisted

local function query_error(msg) errors.raise("QueryError", msg) end

-- The model of `v` when it is a record, else nil.
local function record_model(v)
  if type(v) ~= "table" then return nil end
  local ok, m = pcall(layout.model_of, v)
  return ok and m or nil
end
M.record_model = record_model

-- A record of the relation's target model, or an error naming what came.
local function check_record(rel, rec, what)
  local target = rel:target()
  local m = record_model(rec)
  if not m then
    query_error(("%s.%s:%s expects a %s record, got %s"):format(rel.owner.name, rel.name, what,
      target.name, type(rec)))
  end
  if not relation.is_kind_of(m, target) then
    query_error(("%s.%s:%s expects a %s record, got a %s"):format(rel.owner.name, rel.name, what,
      target.name, m.name))
  end
  return rec
end

-- Key columns as a list (a composite key's already is one).
local function as_list(k) return type(k) == "table" and k or { k } end

-- The values of columns `names` in `rec` (nil when a part is nil).
local function values_of(rec, names)
  local out = {}
  for i = 1, #names do
    local v = rec[names[i]]
    if v == nil then return nil end
    out[i] = v
  end
  return out
end

-- Sets columns `names` of `rec` to `vals` (nil: clears them), each only
-- when it changes.
local function set_values(rec, names, vals)
  for i = 1, #names do
    local v = vals and vals[i]
    if v == nil then
      if rec[names[i]] ~= nil then rec[names[i]] = null end
    elseif rec[names[i]] ~= v then
      rec[names[i]] = v
    end
  end
end

-- The owner's key values (nil while it is unsaved).
local function owner_key_value(rel, inst)
  return values_of(inst, as_list((rel:keys())))
end

--- Points `child` at `inst` (has_many/has_one): the foreign key, and the
-- type column of an `as` (polymorphic) relation. An owner without a key yet
-- leaves the key to the autosave.
-- @param rel the relation
-- @param inst the owner
-- @param child the target record
function M.link(rel, inst, child)
  local _, fk = rel:keys()
  local v = owner_key_value(rel, inst)
  if v ~= nil then set_values(child, as_list(fk), v) end
  local as = rel.poly_type
  if as and child[as] ~= rel.poly_name then child[as] = rel.poly_name end
end

-- The loaded list (or single record) in the owner's cache follows a write.
local function cache_add(rel, inst, child)
  local cache = cache_of(inst)
  local v = cache[rel.name]
  if rel.single then
    cache[rel.name] = child
  elseif type(v) == "table" then
    for i = 1, #v do if v[i] == child then return end end
    v[#v + 1] = child
  end
end

-- The same row: the same record, or one of the same model and key.
local function same_row(a, b)
  if a == b then return true end
  local m = a:model()
  if m ~= b:model() then return false end
  local pk = as_list(m.primary_key)
  for i = 1, #pk do
    local x = a[pk[i]]
    if x == nil or x ~= b[pk[i]] then return false end
  end
  return true
end

local function cache_remove(rel, inst, child)
  local cache = cache_of(inst)
  local v = cache[rel.name]
  if rel.single then
    if v and same_row(v, child) then cache[rel.name] = false end
  elseif type(v) == "table" then
    for i = #v, 1, -1 do if same_row(v[i], child) then table.remove(v, i) end end
  end
end

-- ---- has_many / has_one ------------------------------------------------

--- `q:build(attrs)`: an unsaved target record pointing at the owner,
-- saved with the owner (or by its own `save`).
-- @return the record
function M.build(rel, inst, attrs)
  local child = rel:target():new(attrs)
  M.link(rel, inst, child)
  autosave.add(inst, rel, child)
  cache_add(rel, inst, child)
  return child
end

local function needs_saved_owner(rel, inst, what)
  if not persisted(inst) then
    query_error(("%s.%s:%s: the %s is not saved yet; save it first, or use build/add (saved with it)")
      :format(rel.owner.name, rel.name, what, rel.owner.name))
  end
end

--- `q:create(attrs)`: a target record pointing at the owner, saved now.
-- @return the saved record
-- @raise `QueryError` when the owner is unsaved; the errors of `save`
function M.create(rel, inst, attrs)
  needs_saved_owner(rel, inst, "create")
  local child = rel:target():new(attrs)
  M.link(rel, inst, child)
  child:save()
  cache_add(rel, inst, child)
  return child
end

--- `q:add(rec)`: points `rec` at the owner and saves it (with the owner
-- when the owner is unsaved).
-- @return the record
function M.add(rel, inst, child)
  check_record(rel, child, "add")
  if not persisted(inst) then
    M.link(rel, inst, child)
    autosave.add(inst, rel, child)
  else
    M.link(rel, inst, child)
    child:save()
  end
  cache_add(rel, inst, child)
  return child
end

-- Whether `child` points at `inst` through `rel`.
local function belongs(rel, inst, child)
  local _, fk = rel:keys()
  local v = owner_key_value(rel, inst)
  if v == nil then return false end
  fk = as_list(fk)
  for i = 1, #fk do
    if child[fk[i]] ~= v[i] then return false end
  end
  return not rel.poly_type or child[rel.poly_type] == rel.poly_name
end

--- `q:remove(rec)`: `rec` no longer belongs to the owner: deleted through
-- its model (`dependent = "destroy"`), by one DELETE (`"delete"`), or its
-- key cleared and saved (otherwise).
-- @return the record
-- @raise `QueryError` when `rec` does not belong to the owner
function M.remove(rel, inst, child)
  check_record(rel, child, "remove")
  if autosave.drop(inst, rel, child) then
    cache_remove(rel, inst, child)
    return child
  end
  if not persisted(child) or not belongs(rel, inst, child) then
    query_error(("%s.%s:remove: %s does not belong to this %s"):format(rel.owner.name, rel.name,
      tostring(child), rel.owner.name))
  end
  local dep = rel.opts.dependent
  if dep == "destroy" then
    child:delete()
  elseif dep == "delete" then
    local by_key = {}
    for _, c in ipairs(as_list(child:model().primary_key)) do by_key[c] = child[c] end
    rel.owner:transaction(function()
      local n = rel:target():unscoped():where(by_key):delete_all()
      counted(rel, inst, -n)
    end)
    record.set_persisted(child, false)
  else
    local _, fk = rel:keys()
    set_values(child, as_list(fk), nil)
    if rel.poly_type then child[rel.poly_type] = null end
    child:save()
  end
  cache_remove(rel, inst, child)
  return child
end

-- A statement moved `delta` children off the owner: its counter cache
-- (when the children keep one) follows.
counted = function(rel, inst, delta)
  local c = rel._counter
  if c == nil then
    c = require("activerecord.relations.counters").collection_counter(rel) or false
    rel._counter = c
  end
  if c then c(inst, delta) end
end

--- `q:clear()`: every target of the owner goes (as `remove` does each:
-- `destroy` through the model, `delete` and nullify in one statement).
-- @treturn integer how many
function M.clear(rel, inst)
  autosave.drop_all(inst, rel)
  local n = 0
  if persisted(inst) then
    local dep = rel.opts.dependent
    local q = rel:query_for(inst)
    if dep == "destroy" then -- each child's own handlers keep the counters
      local list = q:all()
      for i = 1, #list do list[i]:delete() end
      n = #list
    else
      rel.owner:transaction(function()
        if dep == "delete" then
          n = q:delete_all()
        else
          local _, fk = rel:keys()
          local set = {}
          for _, c in ipairs(as_list(fk)) do set[c] = null end
          if rel.poly_type then set[rel.poly_type] = null end
          n = q:update_all(set)
        end
        counted(rel, inst, -n)
      end)
    end
  end
  cache_of(inst)[rel.name] = rel.single and false or {}
  return n
end

--- `user.profile = p` (has_one): `p` points at the owner and is saved (with
-- the owner when it is unsaved); the one it replaces goes as `remove`
-- does (nullified, or deleted per `dependent`), in the same transaction;
-- `nil` or `ar.null` removes the current one.
-- @param rel the has_one relation
-- @param inst the owner
-- @param v the target record, nil or ar.null
function M.assign_one(rel, inst, v)
  if v ~= nil and v ~= null then check_record(rel, v, "=") end
  if not persisted(inst) then
    autosave.drop_all(inst, rel)
    if v ~= nil and v ~= null then
      M.link(rel, inst, v)
      autosave.add(inst, rel, v)
    end
    cache_of(inst)[rel.name] = (v ~= nil and v ~= null) and v or false
    return
  end
  rel.owner:transaction(function()
    local old = rel:load(inst)
    if old and (v == nil or v == null or not same_row(old, v)) then M.remove(rel, inst, old) end
    if v ~= nil and v ~= null then
      M.link(rel, inst, v)
      v:save()
    end
  end)
  cache_of(inst)[rel.name] = (v ~= nil and v ~= null) and v or false
end

-- ---- has_many_through --------------------------------------------------

-- A join row's values: the two keys and the caller's extra columns
-- (scalars only: a decoded request body is no column value).
local function join_values(rel, owner_value, target_value, attrs)
  local src, dst = rel:link_columns()
  local cols, vals = { src, dst }, { owner_value, target_value }
  if attrs ~= nil then
    if type(attrs) ~= "table" then query_error(rel.name .. ":add: the join attributes must be a table") end
    local names = {}
    for k in pairs(attrs) do
      if type(k) ~= "string" or k == src or k == dst then
        query_error(("%s:add: join attribute %s is not a column of %s it may set"):format(rel.name,
          tostring(k), rel.opts.through))
      end
      names[#names + 1] = k
    end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = attrs[k]
      local t = type(v)
      if v == null then
        v = null
      elseif t ~= "string" and t ~= "number" and t ~= "boolean" then
        query_error(("%s:add: join attribute %s must be a string, number, boolean or ar.null, got %s")
          :format(rel.name, k, t))
      end
      cols[#cols + 1], vals[#vals + 1] = k, v
    end
  end
  return cols, vals
end

--- Inserts the join row linking `inst` and `target_rec` (both saved).
function M.insert_link(rel, inst, target_rec, attrs)
  local db = rel.owner:_backend()
  local target = rel:target()
  local cols, vals = join_values(rel, inst[(rel:keys())], target_rec[target.primary_key], attrs)
  local sql = db:compile("insert", rel.opts.through, cols, 1)
  db:execute(sql, table.unpack(vals, 1, #cols))
end

--- has_many_through `q:build(attrs)`: an unsaved target, saved and linked
-- when the owner is saved.
function M.through_build(rel, inst, attrs, join_attrs)
  local rec = rel:target():new(attrs)
  autosave.add(inst, rel, rec, join_attrs or false)
  cache_add(rel, inst, rec)
  return rec
end

--- has_many_through `q:create(attrs, join_attrs)`: the target saved and
-- linked, in one transaction.
function M.through_create(rel, inst, attrs, join_attrs)
  needs_saved_owner(rel, inst, "create")
  local rec = rel:target():new(attrs)
  rel.owner:transaction(function()
    rec:save()
    M.insert_link(rel, inst, rec, join_attrs)
  end)
  cache_add(rel, inst, rec)
  return rec
end

--- has_many_through `q:add(rec, join_attrs)`: a join row linking the
-- owner and `rec` (saved first when new; both with the owner when it is
-- unsaved); `join_attrs` gives the join table's other columns.
function M.through_add(rel, inst, rec, join_attrs)
  check_record(rel, rec, "add")
  if not persisted(inst) then
    join_values(rel, 0, 0, join_attrs) -- checked now, not at the owner's save
    autosave.add(inst, rel, rec, join_attrs or false)
  else
    rel.owner:transaction(function()
      if not persisted(rec) then rec:save() end
      M.insert_link(rel, inst, rec, join_attrs)
    end)
  end
  cache_add(rel, inst, rec)
  return rec
end

--- has_many_through `q:remove(rec)`: its join rows with the owner go (the
-- target stays).
-- @treturn the record
function M.through_remove(rel, inst, rec)
  check_record(rel, rec, "remove")
  if not autosave.drop(inst, rel, rec) then
    local key = inst[(rel:keys())]
    local tk = rec[rel:target().primary_key]
    if key == nil or tk == nil then
      query_error(("%s.%s:remove: %s is not linked to this %s"):format(rel.owner.name, rel.name,
        tostring(rec), rel.owner.name))
    end
    local src, dst = rel:link_columns()
    local q = require("activerecord.query")
    q.table(rel.opts.through, rel.owner:_backend()):where({ [src] = key, [dst] = tk }):delete_all()
  end
  cache_remove(rel, inst, rec)
  return rec
end

--- has_many_through `q:clear()`: every join row of the owner goes.
-- @treturn integer the join rows deleted
function M.through_clear(rel, inst)
  autosave.drop_all(inst, rel)
  local n = 0
  local key = inst[(rel:keys())]
  if key ~= nil then
    local src = rel:link_columns()
    local q = require("activerecord.query")
    n = q.table(rel.opts.through, rel.owner:_backend()):where({ [src] = key }):delete_all()
  end
  cache_of(inst)[rel.name] = {}
  return n
end

-- ---- the owner-aware query --------------------------------------------

local COLLECTION = { build = M.build, create = M.create, add = M.add, remove = M.remove, clear = M.clear }
local THROUGH = { build = M.through_build, create = M.through_create, add = M.through_add,
                  remove = M.through_remove, clear = M.through_clear }

--- The query of `owner:<name>_query()`: the relation's query, whose class
-- (kept by every builder step) adds `build`, `create`, `add`, `remove`
-- and `clear` bound to the owner.
-- @param rel the relation
-- @param inst the owner
-- @return the query
function M.owner_query(rel, inst)
  local q = rel:query_for(inst)
  local mt = getmetatable(q)
  local ops = rel.kind == "has_many_through" and THROUGH or COLLECTION
  local index = setmetatable({}, { __index = mt.__index })
  for name, fn in pairs(ops) do
    index[name] = function(_, a, b) return fn(rel, inst, a, b) end
  end
  local rmt = {}
  for k, v in next, mt do rmt[k] = v end
  rmt.__index = index
  return setmetatable(q, rmt)
end

-- ---- belongs_to assignment ----------------------------------------------

--- `post.author = ann`: the key follows `ann` (now, or at `post`'s save
-- when `ann` is unsaved: `ann` is saved first, in the same transaction);
-- `nil` or `ar.null` clears the key.
-- @param rel the belongs_to relation
-- @param inst the record holding the key
-- @param v the target record, nil or ar.null
function M.assign_owner(rel, inst, v)
  local fk, pk = rel:keys()
  fk = as_list(fk)
  local cache = cache_of(inst)
  if v == nil or v == null then
    set_values(inst, fk, nil)
    if rel.poly_type then inst[rel.poly_type] = null end
    autosave.set_owner(inst, rel, nil)
    cache[rel.name] = false
    return
  end
  local target_model = rel:target_of_record(v)
  if rel.poly_type then inst[rel.poly_type] = rel.type_name(target_model) end
  local key = values_of(v, as_list(pk or target_model.primary_key))
  if persisted(v) and key ~= nil then
    set_values(inst, fk, key)
    autosave.set_owner(inst, rel, nil)
  else
    autosave.set_owner(inst, rel, v)
  end
  cache[rel.name] = v
end

return M

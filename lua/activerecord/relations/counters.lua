--- One job: what a belongs_to keeps right on the record it points at.
-- `counter_cache` moves the owner's `<children>_count` column by one in
-- SQL (`SET n = n + 1`, never read-modify-write, so concurrent writers
-- add up) when a child is created, deleted or moved to another owner;
-- `touch` sets the owner's `updated_at` when a child is saved or deleted.
-- Both run as after-handlers, so they are one unit with the child's write;
-- a loaded owner in the child's relation cache gets the same change (and
-- gets its old value back if the transaction rolls back).
-- @module activerecord.relations.counters
local errors = require("activerecord.errors")
local query = require("activerecord.query")
local record = require("activerecord.record")
local types = require("activerecord.types")
local clock = require("activerecord.clock")
local relation = require("activerecord.relations.relation")

local M = {}

local cache_of = relation.cache_of

-- The key each record was stored under, taken before its delete (the
-- delete leaves the record "new", its changes gone).
local stored_keys = setmetatable({}, { __mode = "k" })

--- The counter column of a belongs_to's `counter_cache`: the option's
-- name; for `true`, `<name>_count` of the owner's has_many back to this
-- model (`Board.cards` -> `cards_count`), else `<child table>_count`.
-- @param rel the belongs_to relation
-- @tparam[opt] table m the owner model (a polymorphic relation's, per record)
-- @treturn string the column
function M.counter_column(rel, m)
  local cc = rel.opts.counter_cache
  if type(cc) == "string" then return cc end
  local cols = rel._counter_columns
  if not cols then
    cols = setmetatable({}, { __mode = "k" })
    rel._counter_columns = cols
  end
  m = m or rel:target()
  local col = cols[m]
  if col then return col end
  local fk = rel:keys()
  for name, r in pairs(m.relations) do
    if r.kind == "has_many" and not r.poly_type == not rel.poly_type then
      local ok, t = pcall(r.target, r)
      local _, rfk = r:keys()
      if ok and relation.is_kind_of(rel.owner, t) and rfk == fk and (not col or name < col) then col = name end
    end
  end
  col = (col or rel.owner.table:match("([^.]+)$")) .. "_count"
  cols[m] = col
  return col
end

-- The owner model a child's key points into (polymorphic: by its type).
local function owner_model(rel, type_value)
  if rel.polymorphic then
    if type_value == nil then return nil end
    return require("activerecord.registry").model(type_value)
  end
  return rel:target()
end

-- A field of the owner, checked once per model (ConfigError otherwise).
local function owner_field(rel, m, name, what)
  if not m.fields[name] then
    errors.raise("ConfigError", ("%s.%s: %s: %s has no field '%s'"):format(rel.owner.name, rel.name,
      what, m.name, name))
  end
  return name
end

-- The loaded owner in the child's cache, when it is the one with `key`.
local function cached_owner(rel, child, m, pk, key)
  local cache = rawget(child, 5) and cache_of(child)
  local o = cache and cache[rel.name]
  if o and o:model() == m and o[pk] == key then return o end
  return nil
end

-- Sets a loaded owner's field without tracking it; a rollback of the
-- running transaction puts the old value back.
local function mirror(db, owner, name, v)
  local old = owner[name]
  record.set(owner, name, v)
  local t = db._track_undo
  if t then t(db, function() record.set(owner, name, old) end) end
end

-- `n = n + delta` on the owner keyed `key`.
local function bump(rel, child, m, key, delta)
  local col = owner_field(rel, m, M.counter_column(rel, m), "counter_cache")
  local pk = rel.opts.primary_key or m.primary_key
  local n = m:unscoped():where({ [pk] = key }):update_all({ [col] = query.col(col):add(delta) })
  local o = n > 0 and cached_owner(rel, child, m, pk, key)
  if o and o[col] ~= nil then mirror(m:_backend(), o, col, o[col] + delta) end
end

-- `updated_at = now` on the owner keyed `key`.
local function touch(rel, child, m, key)
  local opt = rel.opts.touch
  local col = owner_field(rel, m, type(opt) == "string" and opt or "updated_at", "touch")
  local pk = rel.opts.primary_key or m.primary_key
  local now = types.normalize_datetime(clock.now(), true)
  local n = m:unscoped():where({ [pk] = key }):update_all({ [col] = now })
  local o = n > 0 and cached_owner(rel, child, m, pk, key)
  if o then mirror(m:_backend(), o, col, now) end
end

-- Key order (keys of one column share a type; else by their text).
local function before(x, y)
  if type(x) == type(y) and (type(x) == "number" or type(x) == "string") then return x < y end
  return tostring(x) < tostring(y)
end

-- What a child's write changed: the owner it left (old) and the one it
-- joined (new), each as model and key.
local function apply(rel, child, old_m, old_key, new_m, new_key)
  local moved = old_m ~= new_m or old_key ~= new_key
  local cc, tc = rel.opts.counter_cache, rel.opts.touch
  if moved then
    -- two owners' rows locked in one order (model name, then key), so
    -- two writers moving children in opposite directions cannot deadlock
    local a, b = { old_m, old_key, -1 }, { new_m, new_key, 1 }
    if old_m and new_m and (old_m.name > new_m.name or (old_m == new_m and before(new_key, old_key))) then
      a, b = b, a
    end
    for _, o in ipairs({ a, b }) do
      if o[1] and o[2] ~= nil then
        if cc then bump(rel, child, o[1], o[2], o[3]) end
        if tc and o[3] < 0 then touch(rel, child, o[1], o[2]) end
      end
    end
  end
  if tc and new_m and new_key ~= nil then touch(rel, child, new_m, new_key) end
end

--- Adds the handlers of a belongs_to's `counter_cache` and `touch`.
-- @tparam table model the model holding the key
-- @param rel the belongs_to relation
-- @tparam table hooks `activerecord.model.hooks`
function M.attach(model, rel, hooks)
  if not rel.opts.counter_cache and not rel.opts.touch then return end
  if type(rel.opts.foreign_key) == "table" or type(rel.opts.primary_key) == "table" then
    errors.raise("ConfigError", ("%s.%s: counter_cache and touch take a belongs_to over one key column")
      :format(model.name, rel.name))
  end
  local tcol = rel.poly_type
  local function fk() return (rel:keys()) end
  hooks.on(model, "after_create", function(rec)
    apply(rel, rec, nil, nil, owner_model(rel, tcol and rec[tcol]), rec[fk()])
  end)
  hooks.on(model, "after_update", function(rec)
    local k = fk()
    local old_t, new_t = tcol and rec:old_value(tcol), tcol and rec[tcol]
    apply(rel, rec, owner_model(rel, old_t), rec:old_value(k), owner_model(rel, new_t), rec[k])
  end)
  hooks.on(model, "before_delete", function(rec)
    local k = fk()
    stored_keys[rec] = { tcol and rec:old_value(tcol), rec:old_value(k) }
  end)
  hooks.on(model, "after_delete", function(rec, affected)
    local s = stored_keys[rec]
    stored_keys[rec] = nil
    if not s or (type(affected) == "number" and affected == 0) then return end
    if rel.opts.counter_cache then
      local m = owner_model(rel, s[1])
      if m and s[2] ~= nil then bump(rel, rec, m, s[2], -1) end
    end
    if rel.opts.touch then
      local m = owner_model(rel, s[1])
      if m and s[2] ~= nil then touch(rel, rec, m, s[2]) end
    end
  end)
end

--- For `q:clear()` of a has_many whose children count themselves on the
-- owner: the counter moved by `delta` (the rows one statement changed).
-- @param has_many the owner's relation
-- @return a function(owner, delta), or nil when no counter applies
function M.collection_counter(has_many)
  local target = has_many:target()
  for _, r in pairs(target.relations) do
    if r.kind == "belongs_to" and r.opts.counter_cache and not r.polymorphic == not has_many.poly_type then
      local ok, t = pcall(r.target, r)
      local same = r.polymorphic or (ok and t == has_many.owner)
      local _, hfk = has_many:keys()
      if same and (r:keys()) == hfk then
        return function(owner, delta)
          if delta == 0 then return end
          local col = M.counter_column(r, has_many.owner)
          local pk = has_many:keys()
          owner:model():unscoped():where({ [pk] = owner[pk] }):update_all({ [col] = query.col(col):add(delta) })
          if owner[col] ~= nil then mirror(owner:model():_backend(), owner, col, owner[col] + delta) end
        end
      end
    end
  end
  return nil
end

return M

--- One job: eager loading. Parses `with(...)` specs into a tree, walks it
-- one statement per relation level (the kinds' `preload`), and holds the
-- keyed loader the key-matching kinds share: `WHERE key IN (...)` in
-- chunks, children grouped by key (compared as the server compares them)
-- and handed to their owners' relation caches.
-- @module activerecord.relations.preload
local errors = require("activerecord.errors")
local relation = require("activerecord.relations.relation")
local collation = require("activerecord.relations.collation")
local query = require("activerecord.query")

local M = {}

local cache_of = relation.cache_of
local math_type = math.type

-- The key under which a record of `model` holds field `name`: its slot (a
-- plain table read, no __index call), or the name itself for what is not a
-- plain field (a JSON field's read hands its table out).
local function key_of(model, name)
  local f = model and model.fields[name]
  if f and f.slot and not f.is_json then return f.slot end
  return name
end
M.key_of = key_of

--- The distinct non-nil values of field `name` over `records`, in order.
-- @tparam table records the records
-- @tparam string name the field
-- @param[opt] key where the records hold it (`key_of`; default `name`)
-- @treturn table the values
function M.distinct_values(records, name, key)
  key = key or name
  local seen, out, n = {}, {}, 0
  for i = 1, #records do
    local v = records[i][key]
    if v ~= nil and not seen[v] then
      seen[v] = true
      n = n + 1
      out[n] = v
    end
  end
  return out
end
local distinct_values = M.distinct_values

--- The list of key `k` for one owner: the loaded list itself the first
-- time, a copy for a later owner with the same key (`given` remembers),
-- a fresh empty list when there is none: two caches never share a table.
-- @tparam table by_key key -> list
-- @param k the owner's key (nil: none)
-- @tparam table given keys handed out so far
-- @treturn table the list
function M.take_list(by_key, k, given)
  local list = k ~= nil and by_key[k]
  if not list then return {} end
  if given[k] then return table.move(list, 1, #list, 1, {}) end
  given[k] = true
  return list
end

--- Hands each owner its list from `by_key` (its key normalised by `norm`).
-- A list goes to the first owner with that key as it is; owners sharing a
-- key get copies, and owners without children fresh empty lists: two
-- caches never share a table.
-- @tparam string name the relation
-- @tparam table records the owners
-- @tparam string owner_key the owners' key field
-- @tparam table by_key key -> list of records
-- @tparam[opt] function norm the key normaliser
-- @tparam[opt] string inverse the children's relation back to the owner
-- @param[opt] key where the owners hold `owner_key` (`key_of`)
function M.attach_lists(name, records, owner_key, by_key, norm, inverse, key)
  key = key or owner_key
  local given = {}
  for i = 1, #records do
    local r = records[i]
    local k = r[key]
    if norm and k ~= nil then k = norm(k) end
    local list = M.take_list(by_key, k, given)
    if inverse then
      for j = 1, #list do cache_of(list[j])[inverse] = r end
    end
    cache_of(r)[name] = list
  end
end

local function key_normaliser(rel, target_key, keys, found)
  local target = rel:target()
  local tf = target.fields[target_key]
  return collation.normaliser(target:_backend(), target.table, tf and tf.column or target_key, keys, found)
end

local INTEGER_TYPES = { integer = true, bigint = true }

-- The condition `target_key IN (keys)`. Integer keys of an integer field
-- need no conversion: they are bound as they are (a plain column
-- condition); other keys convert like the field's values (where{}).
local function key_condition(target, target_key, keys)
  local tf = target.fields[target_key]
  if tf and INTEGER_TYPES[tf.type] and not tf.to_db then
    local all_int = true
    for i = 1, #keys do
      if math_type(keys[i]) ~= "integer" then
        all_int = false
        break
      end
    end
    if all_int then return query.col(target_key):in_list(keys) end
  end
  return { [target_key] = keys }
end

-- The children of `keys`, one query per chunk.
local function load_chunks(rel, keys, scope, chunk_size)
  local target = rel:target()
  local _, target_key = rel:keys()
  local loaded
  for first = 1, #keys, chunk_size do
    local chunk = keys
    if first > 1 or #keys > chunk_size then
      chunk = table.move(keys, first, math.min(first + chunk_size - 1, #keys), 1, {})
    end
    local q = rel:ordered(target:query():where(key_condition(target, target_key, chunk)))
    if scope then q = scope(q) end
    local rows = q:all()
    if loaded then table.move(rows, 1, #rows, #loaded + 1, loaded) else loaded = rows end
  end
  return loaded or {}
end

--- Eager loading for a kind matching one key column against another
-- (belongs_to, has_one, has_many): the targets of every owner, one query
-- per chunk of distinct keys.
-- @param rel the relation
-- @tparam table records the owners
-- @tparam[opt] function scope the `with` scope
-- @tparam integer chunk_size keys per statement
-- @treturn table the loaded targets (for the next level)
function M.keyed(rel, records, scope, chunk_size)
  local owner_key, target_key = rel:keys()
  local okey = key_of(rel.owner, owner_key)
  local keys = distinct_values(records, owner_key, okey)
  local loaded = load_chunks(rel, keys, scope, chunk_size)
  local nloaded = #loaded
  -- each child's key, as the server compared it: string keys matched
  -- `target_key IN (...)` under the column's collation, so the Lua side
  -- matches the same way (`with` = the lazy accessor)
  local tkey = key_of(rel:target(), target_key)
  local found, norm -- the children's keys, only when they need normalising
  if collation.has_string(keys) then
    found = {}
    for i = 1, nloaded do found[i] = loaded[i][tkey] end
    norm = key_normaliser(rel, target_key, keys, found)
    if norm then
      for i = 1, nloaded do found[i] = norm(found[i]) end
    else
      found = nil
    end
  end
  local by_key = {}
  if rel.single then
    for i = nloaded, 1, -1 do -- the first child per key wins
      local c = loaded[i]
      by_key[found and found[i] or c[tkey]] = c
    end
    local name = rel.name
    for i = 1, #records do
      local r = records[i]
      local k = r[okey]
      if norm and k ~= nil then k = norm(k) end
      cache_of(r)[name] = k ~= nil and by_key[k] or false
    end
    return loaded
  end
  for i = 1, nloaded do -- one pass: each child onto its key's list
    local c = loaded[i]
    local k
    if found then k = found[i] else k = c[tkey] end
    local list = by_key[k]
    if list then
      list[#list + 1] = c
    else
      by_key[k] = { c }
    end
  end
  M.attach_lists(rel.name, records, owner_key, by_key, norm, rel.opts.inverse_of, okey)
  return loaded
end

-- with("posts", "posts.comments", { "orders", function(q) ... end })
-- -> { posts = { scope =, children = { comments = {...} } }, ... }
local function add_path(tree, path, scope)
  local node = { children = tree }
  for part in path:gmatch("[^.]+") do
    local children = node.children
    local child = children[part]
    if not child then
      child = { children = {} }
      children[part] = child
    end
    node = child
  end
  if scope then node.scope = scope end
end

--- The tree of `with(...)` specs.
-- @tparam table specs relation paths (`"posts.comments"`) or `{ path, scope }`
-- @treturn table name -> `{ scope =, children = { ... } }`
-- @raise `QueryError` for a malformed spec
function M.parse(specs)
  local tree = {}
  for _, s in ipairs(specs) do
    if type(s) == "string" then
      add_path(tree, s)
    elseif type(s) == "table" and type(s[1]) == "string" then
      if s[2] ~= nil and type(s[2]) ~= "function" then
        errors.raise("QueryError", "with{ name, scope }: the scope must be a function(q) returning a query")
      end
      add_path(tree, s[1], s[2])
    else
      errors.raise("QueryError", "with expects relation names (\"posts.comments\") or { name, scope }")
    end
  end
  return tree
end

--- Loads the tree's relations for `records`, level by level.
-- @tparam table model the records' model
-- @tparam table records the records
-- @tparam table tree from `parse`
-- @tparam integer chunk_size keys per statement
-- @raise `ConfigError` for an unknown relation; the errors of `Query:all`
function M.run(model, records, tree, chunk_size)
  if #records == 0 then return end
  for name, node in pairs(tree) do
    local rel = model.relations[name]
    if not rel then
      errors.raise("ConfigError", ("%s has no relation '%s'"):format(model.name, name))
    end
    local loaded = rel:preload(records, node.scope, chunk_size)
    if next(node.children) then
      if rel.preload_next then -- records of several models (polymorphic)
        rel:preload_next(loaded, M.run, node.children, chunk_size)
      else
        M.run(rel:target(), loaded, node.children, chunk_size)
      end
    end
  end
end

return M

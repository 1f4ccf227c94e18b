--- Relations: belongs_to, has_one, has_many, has_many_through. Each gives
-- instances an accessor that loads once and caches (`post:author()`,
-- `user:posts{ reload = true }`), a query accessor (`user:posts_query()`),
-- eager loading for queries (`User:query():with("posts", "posts.comments")`:
-- one statement per relation level, `WHERE key IN (...)` in chunks) and a
-- join description for `joins("author")`.
-- @module activerecord.relations
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local registry = require("activerecord.registry")
local query = require("activerecord.query")

local M = {}

local null = core.null
local unpack = table.unpack

-- IN lists are chunked so a huge eager load stays within packet limits.
M.chunk_size = 1000

local KINDS = { belongs_to = true, has_one = true, has_many = true, has_many_through = true }

local OPTIONS = {
  foreign_key = "string", primary_key = "string", inverse_of = "string", dependent = "string",
  through = "string", source_key = "string", target_key = "string", order_by = "string",
}

local function relation_spec(kind, target, opts)
  opts = opts or {}
  if type(target) ~= "string" and type(target) ~= "table" then
    errors.raise("ConfigError", kind .. " expects a model or a model name")
  end
  for k, v in pairs(opts) do
    if not OPTIONS[k] then options.check(opts, OPTIONS, kind) end
    if type(v) ~= OPTIONS[k] then
      errors.raise("ConfigError", ("%s: option '%s' must be a %s"):format(kind, k, OPTIONS[k]))
    end
  end
  if opts.dependent and opts.dependent ~= "delete" and opts.dependent ~= "nullify"
     and opts.dependent ~= "restrict" then
    errors.raise("ConfigError", "dependent must be \"delete\", \"nullify\" or \"restrict\"")
  end
  if kind == "has_many_through" and not opts.through then
    errors.raise("ConfigError", "has_many_through needs { through = \"join_table\" }")
  end
  return { __ar_relation = true, kind = kind, target_ref = target, opts = opts }
end

--- This model holds the key of one `target` (`post:author()`).
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key` (this model's column; default
--   `<target>_id`), `primary_key` (the target's; default its key)
-- @treturn table a relation spec for `relations = { ... }`
-- @raise `ConfigError` for an unknown or mistyped option
function M.belongs_to(target, opts) return relation_spec("belongs_to", target, opts) end
--- One `target` holds this model's key (`user:profile()`).
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key` (the target's column; default
--   `<owner>_id`), `primary_key`, `inverse_of`, `dependent` (`"delete"`,
--   `"nullify"` or `"restrict"`), `order_by`
-- @treturn table a relation spec
-- @raise `ConfigError` for an unknown or mistyped option
function M.has_one(target, opts) return relation_spec("has_one", target, opts) end
--- Many `target`s hold this model's key (`user:posts()`, `user:posts_query()`).
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key`, `primary_key`, `inverse_of` (the
--   target's belongs_to, filled without a query), `dependent`, `order_by`
-- @treturn table a relation spec
-- @raise `ConfigError` for an unknown or mistyped option
function M.has_many(target, opts) return relation_spec("has_many", target, opts) end
--- Many-to-many through a join table (`post:tags()`).
-- @tparam string|table target the target model or its name
-- @tparam table opts `through` (the join table, required), `source_key`
--   (its column holding this model's key; default `<owner>_id`), `target_key`
--   (its column holding the target's key; default `<target>_id`),
--   `primary_key`, `order_by`, `dependent` (both `"delete"` and `"nullify"`
--   remove the join rows)
-- @treturn table a relation spec
-- @raise `ConfigError` without `through`, or for an unknown or mistyped option
function M.has_many_through(target, opts) return relation_spec("has_many_through", target, opts) end

-- "User" -> "user", "BlogPost" -> "blog_post"
local function snake(name)
  return (name:gsub("(%l)(%u)", "%1_%2"):lower())
end

local Relation = {}
Relation.__index = Relation

function Relation:target()
  local t = self._target
  if not t then
    t = registry.resolve_model(self.target_ref, ("%s.%s"):format(self.owner.name, self.name))
    self._target = t
  end
  return t
end

-- Columns: owner_key is the owner's column matched against target_key.
function Relation:keys()
  local owner, target, o = self.owner, self:target(), self.opts
  if self.kind == "belongs_to" then
    local fk = o.foreign_key or (snake(target.name) .. "_id")
    return fk, o.primary_key or target.primary_key
  elseif self.kind == "has_many_through" then
    return o.primary_key or owner.primary_key, nil
  end
  local fk = o.foreign_key or (snake(owner.name) .. "_id")
  return o.primary_key or owner.primary_key, fk
end

local function cache_of(inst)
  local st = require("activerecord.model").state_of(inst)
  local c = st.cache
  if not c then
    c = {}
    st.cache = c
  end
  return c
end
M.cache_of = cache_of

local function d_quote_pk(db, target)
  return db.dialect:quote_identifier(target.fields[target.primary_key].column)
end

-- The query of what `inst` relates to (chainable).
function Relation:query_for(inst)
  local target = self:target()
  local owner_key, target_key = self:keys()
  local q = target:query()
  if self.kind == "has_many_through" then
    local o = self.opts
    local db = target:_backend()
    local jt = db.dialect:quote_qualified(o.through)
    local src = o.source_key or (snake(self.owner.name) .. "_id")
    local dst = o.target_key or (snake(target.name) .. "_id")
    local sub = "SELECT " .. db.dialect:quote_identifier(dst) .. " FROM " .. jt .. " WHERE "
      .. db.dialect:quote_identifier(src) .. " = ?"
    q = q:where(d_quote_pk(db, target) .. " IN (" .. sub .. ")", inst[owner_key])
  elseif self.kind == "belongs_to" then
    local v = inst[owner_key]
    q = q:where({ [target_key] = v == nil and null or v })
  else
    -- an owner without a key (never saved) has no children: `IN ()` matches
    -- nothing, where `{ fk = nil }` would have been no condition at all
    local v = inst[owner_key]
    q = q:where({ [target_key] = v == nil and {} or v })
  end
  if self.opts.order_by then q = q:order_by(self.opts.order_by) end
  return q
end

local function is_single(kind) return kind == "belongs_to" or kind == "has_one" end

-- Accessor: loads once per instance and caches (false marks "none").
function Relation:load(inst, opts)
  local cache = cache_of(inst)
  local v = cache[self.name]
  if v == nil or (opts and opts.reload) then
    if is_single(self.kind) then
      local owner_key = self:keys()
      if self.kind == "belongs_to" and inst[owner_key] == nil then
        v = false
      else
        v = self:query_for(inst):first() or false
      end
    else
      v = self:query_for(inst):all()
      if self.opts.inverse_of then
        for _, rec in ipairs(v) do cache_of(rec)[self.opts.inverse_of] = inst end
      end
    end
    cache[self.name] = v
  end
  if v == false then return nil end
  return v
end

-- ---- eager loading --------------------------------------------------------

local function chunks(list, size)
  local out = {}
  for i = 1, #list, size do
    local c = {}
    for j = i, math.min(i + size - 1, #list) do c[#c + 1] = list[j] end
    out[#out + 1] = c
  end
  return out
end

-- ---- key equality as the server sees it -----------------------------------
-- Eager loading matches children to owners in Lua; the lazy accessor lets the
-- server compare. For string keys the server compares under the key column's
-- collation ('ABC' = 'abc' on a _ci column, 'a' = 'a ' on a PAD SPACE one),
-- so the Lua side maps each string to the collation's equality key first.

-- backend -> "schema.table.column" -> { charset, collation } or false
local COLLATIONS = setmetatable({}, { __mode = "k" })

local function safe_name(s)
  return type(s) == "string" and s:match("^[%w_]+$") ~= nil
end

--- The character set and collation of a column, read from
-- information_schema once per backend (false for a column that holds no
-- text, or one not found).
-- @param db the backend
-- @tparam string table_name the table (`schema.table` allowed)
-- @tparam string column the column
-- @treturn table|false `{ charset =, collation = }`
function M.column_collation(db, table_name, column)
  local per_db = COLLATIONS[db]
  if not per_db then
    per_db = {}
    COLLATIONS[db] = per_db
  end
  local key = table_name .. "." .. column
  local c = per_db[key]
  if c == nil then
    local schema, tbl = table_name:match("^([^.]+)%.([^.]+)$")
    local row = db:query("SELECT CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll FROM information_schema.COLUMNS "
      .. "WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?",
      schema or null, tbl or table_name, column)[1]
    c = false
    -- the names are spliced into CONVERT/COLLATE later: identifiers only
    if row and safe_name(row.cs) and safe_name(row.coll) then c = { charset = row.cs, collation = row.coll } end
    per_db[key] = c
  end
  return c
end

-- PAD SPACE collations ignore trailing spaces; MariaDB names its NO PAD
-- ones *_nopad_*, MySQL 8's UCA 9.0.0 collations (*_0900_*) are NO PAD.
local function pads(collation)
  return not (collation:find("nopad", 1, true) or collation:find("_0900_", 1, true))
end

local function rtrim(s) return (s:gsub(" +$", "")) end

-- The collation's equality key (WEIGHT_STRING) of each string, asked of the
-- server in chunks; `strings` is a list of distinct strings.
local WEIGHT_CHUNK = 200
local function weights(db, coll, strings)
  local out = {}
  local expr = "WEIGHT_STRING(CONVERT(? USING " .. coll.charset .. ") COLLATE " .. coll.collation .. ") AS w"
  for i = 1, #strings, WEIGHT_CHUNK do
    local last = math.min(i + WEIGHT_CHUNK - 1, #strings)
    local cols = {}
    for j = i, last do cols[#cols + 1] = expr .. (j - i + 1) end
    local row = db:query("SELECT " .. table.concat(cols, ", "), unpack(strings, i, last))[1]
    for j = i, last do out[strings[j]] = row["w" .. (j - i + 1)] end
  end
  return out
end

-- A function mapping a key value to what the server's equality on
-- `table_name.column` compares, or nil when Lua equality already is that
-- (a binary or NO PAD _bin column). `keys` and `found` are the key values of
-- both sides (some of them strings).
local function has_string(list)
  for _, v in ipairs(list) do
    if type(v) == "string" then return true end
  end
  return false
end

local function key_normaliser(db, table_name, column, keys, found)
  local coll = M.column_collation(db, table_name, column)
  if not coll or coll.collation == "binary" then return nil end
  local pad = pads(coll.collation)
  if coll.collation:find("_bin$") then
    -- byte (code point) order: only the padding differs from Lua equality
    if not pad then return nil end
    return function(v) return type(v) == "string" and rtrim(v) or v end
  end
  local seen, strings = {}, {}
  for _, list in ipairs({ keys, found }) do
    for _, v in ipairs(list) do
      if type(v) == "string" then
        if pad then v = rtrim(v) end
        if not seen[v] then
          seen[v] = true
          strings[#strings + 1] = v
        end
      end
    end
  end
  local w = weights(db, coll, strings)
  return function(v)
    if type(v) ~= "string" then return v end
    if pad then v = rtrim(v) end
    return w[v] or v
  end
end

local function distinct_values(records, name)
  local seen, out = {}, {}
  for _, r in ipairs(records) do
    local v = r[name]
    if v ~= nil and not seen[v] then
      seen[v] = true
      out[#out + 1] = v
    end
  end
  return out
end

-- Loads this relation for every record with one query per chunk; returns
-- the loaded targets (for the next level).
function Relation:preload(records, scope)
  local target = self:target()
  local owner_key, target_key = self:keys()
  local loaded = {}
  if self.kind == "has_many_through" then return self:preload_through(records, scope) end
  local keys = distinct_values(records, owner_key)
  for _, chunk in ipairs(chunks(keys, M.chunk_size)) do
    local q = target:query():where({ [target_key] = chunk })
    if self.opts.order_by then q = q:order_by(self.opts.order_by) end
    if scope then q = scope(q) end
    for _, rec in ipairs(q:all()) do loaded[#loaded + 1] = rec end
  end
  -- the server matched `target_key IN (...)` under the column's collation:
  -- the Lua side matches the same way (`with` = the lazy accessor)
  local norm
  if has_string(keys) then
    local found = {}
    for i, rec in ipairs(loaded) do found[i] = rec[target_key] end
    local tf = target.fields[target_key]
    norm = key_normaliser(target:_backend(), target.table, tf and tf.column or target_key, keys, found)
  end
  local single = is_single(self.kind)
  local by_key = {}
  for _, rec in ipairs(loaded) do
    local k = rec[target_key]
    if norm then k = norm(k) end
    if single then
      if by_key[k] == nil then by_key[k] = rec end
    else
      local list = by_key[k]
      if not list then
        list = {}
        by_key[k] = list
      end
      list[#list + 1] = rec
    end
  end
  local inverse = self.opts.inverse_of
  for _, r in ipairs(records) do
    local k = r[owner_key]
    if norm and k ~= nil then k = norm(k) end
    local found = k ~= nil and by_key[k]
    local cache = cache_of(r)
    if is_single(self.kind) then
      cache[self.name] = found or false
    else
      -- every owner gets its own list: caches never share a table
      local list = {}
      for i, rec in ipairs(found or {}) do
        list[i] = rec
        if inverse then cache_of(rec)[inverse] = r end
      end
      cache[self.name] = list
    end
  end
  return loaded
end

function Relation:preload_through(records, scope)
  local target = self:target()
  local db = target:_backend()
  local d = db.dialect
  local o = self.opts
  local owner_key = self:keys()
  local src = o.source_key or (snake(self.owner.name) .. "_id")
  local dst = o.target_key or (snake(target.name) .. "_id")
  local keys = distinct_values(records, owner_key)
  local by_owner, loaded, owners = {}, {}, {}
  local pk_col = target.fields[target.primary_key].column
  for _, chunk in ipairs(chunks(keys, M.chunk_size)) do
    -- one statement: the targets joined to the join table, tagged with the owner key
    local q = target:query()
    if scope then q = scope(q) end
    local inner_sql, inner_params = db.compiler.select(d, q:_final())
    local placeholders = d:placeholders(#chunk)
    local sql = "SELECT t.*, j." .. d:quote_identifier(src) .. " AS `__ar_owner` FROM (" .. inner_sql
      .. ") AS t JOIN " .. d:quote_qualified(o.through) .. " AS j ON j." .. d:quote_identifier(dst)
      .. " = t." .. d:quote_identifier(pk_col) .. " WHERE j." .. d:quote_identifier(src)
      .. " IN (" .. placeholders .. ")"
    -- the derived table loses any order: the relation's order_by goes outside
    if o.order_by and not o.order_by:find(".", 1, true) then
      sql = sql .. " ORDER BY " .. d:quote_column_ref("t." .. target.resolve(o.order_by))
    end
    local params = { n = inner_params.n }
    for i = 1, inner_params.n do params[i] = inner_params[i] end
    for _, k in ipairs(chunk) do
      params.n = params.n + 1
      params[params.n] = k
    end
    for _, row in ipairs(db:execute(sql, unpack(params, 1, params.n)).rows) do
      loaded[#loaded + 1] = target:_load(row)
      owners[#owners + 1] = row.__ar_owner
    end
  end
  -- `j.src IN (...)` compared under the join column's collation: so does Lua
  local norm
  if has_string(keys) then norm = key_normaliser(db, o.through, src, keys, owners) end
  for i, rec in ipairs(loaded) do
    local k = owners[i]
    if norm then k = norm(k) end
    local list = by_owner[k]
    if not list then
      list = {}
      by_owner[k] = list
    end
    list[#list + 1] = rec
  end
  for _, r in ipairs(records) do
    local list = {}
    local k = r[owner_key]
    if norm and k ~= nil then k = norm(k) end
    for i, rec in ipairs(k ~= nil and by_owner[k] or {}) do list[i] = rec end
    cache_of(r)[self.name] = list
  end
  return loaded
end

-- with("posts", "posts.comments", { "orders", function(q) ... end })
-- -> { posts = { scope =, children = { comments = {...} } }, ... }
local function parse_includes(specs)
  local tree = {}
  local function add(path, scope)
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
  for _, s in ipairs(specs) do
    if type(s) == "string" then
      add(s)
    elseif type(s) == "table" and type(s[1]) == "string" then
      if s[2] ~= nil and type(s[2]) ~= "function" then
        errors.raise("QueryError", "with{ name, scope }: the scope must be a function(q) returning a query")
      end
      add(s[1], s[2])
    else
      errors.raise("QueryError", "with expects relation names (\"posts.comments\") or { name, scope }")
    end
  end
  return tree
end

--- Eager-loads relations for records already loaded (what `Query:with` runs
-- after a query): one statement per relation level (chunked `WHERE key IN (...)`).
-- @tparam table model the records' model
-- @tparam table records the records
-- @tparam table tree relation name -> `{ scope =, children = { ... } }`
-- @raise `ConfigError` for an unknown relation; the errors of `Query:all`
function M.preload(model, records, tree)
  if #records == 0 then return end
  for name, node in pairs(tree) do
    local rel = model.relations[name]
    if not rel then
      errors.raise("ConfigError", ("%s has no relation '%s'"):format(model.name, name))
    end
    local loaded = rel:preload(records, node.scope)
    if next(node.children) then M.preload(rel:target(), loaded, node.children) end
  end
end

-- Join description for Query:joins(name): the target table and the ON.
function Relation:join_spec(kind)
  if self.kind == "has_many_through" then
    errors.raise("QueryError", ("joins(%q): join the table %q explicitly for a has_many_through")
      :format(self.name, self.opts.through))
  end
  local owner, target = self.owner, self:target()
  local owner_key, target_key = self:keys()
  local oc = owner.table .. "." .. owner.fields[owner_key].column
  local tc = target.table .. "." .. (target.fields[target_key] and target.fields[target_key].column or target_key)
  return { table = target.table, kind = kind, on = query.col(tc):eq(query.col(oc)) }
end

-- ---- definition -----------------------------------------------------------

local function add_dependent(owner, rel)
  local dep = rel.opts.dependent
  if not dep then return end
  if rel.kind == "belongs_to" then
    errors.raise("ConfigError", owner.name .. "." .. rel.name .. ": dependent applies to has_one/has_many")
  end
  owner:on("before_delete", function(inst, info)
    -- a soft delete keeps the children (restore() must find them again);
    -- restrict still applies: the owner would vanish from every query
    if info and info.soft and dep ~= "restrict" then return end
    local q = rel:query_for(inst)
    if dep == "restrict" then
      if q:exists() then
        errors.raise("IntegrityError", ("cannot delete %s: it still has %s"):format(tostring(inst), rel.name))
      end
    elseif rel.kind == "has_many_through" then
      -- delete and nullify both unlink: the join rows go, the targets stay
      local db = owner:_backend()
      db:execute("DELETE FROM " .. db.dialect:quote_qualified(rel.opts.through) .. " WHERE "
        .. db.dialect:quote_identifier(rel.opts.source_key or (snake(owner.name) .. "_id")) .. " = ?",
        inst[(rel:keys())])
    elseif dep == "delete" then
      q:delete_all()
    else -- nullify
      local _, target_key = rel:keys()
      q:update_all({ [target_key] = null })
    end
    cache_of(inst)[rel.name] = nil
  end)
end

--- Attaches relations to a model (`activerecord.model` calls it): the
-- accessors (`rec:name(opts)`, loading once and caching; `{ reload = true }`
-- reloads), `rec:name_query()`, the `dependent` hooks, and `with` on the
-- model's queries: `Post:query():with("comments", "comments.author",
-- { "tags", function(q) return q:where{...} end })`.
-- @tparam table model the model class
-- @tparam table relations name -> relation spec
-- @raise `ConfigError` for a malformed relation or a name shared with a field
function M.define(model, relations)
  for name, spec in pairs(relations) do
    if type(spec) ~= "table" or not spec.__ar_relation or not KINDS[spec.kind] then
      errors.raise("ConfigError", ("%s.%s: a relation is ar.belongs_to/has_one/has_many/"
        .. "has_many_through(...)"):format(model.name, tostring(name)))
    end
    if model.fields[name] then
      errors.raise("ConfigError", ("%s.%s: a relation cannot share a field's name"):format(model.name, name))
    end
    local rel = setmetatable({ name = name, owner = model, kind = spec.kind, target_ref = spec.target_ref,
                               opts = spec.opts }, Relation)
    -- the accessor is what `user:posts()` calls
    rel.accessor = function(inst, opts) return rel:load(inst, opts) end
    model.relations[name] = rel
    model._methods[name .. "_query"] = function(inst) return rel:query_for(inst) end
    add_dependent(model, rel)
  end
  -- queries of this model learn `with`
  model._query_methods = model._query_methods or {}
  model._query_methods.with = function(q, ...)
    local q2 = q:clone()
    local tree = parse_includes({ ... })
    local prev = q.after_load
    q2.after_load = function(self, rows)
      if prev then prev(self, rows) end
      M.preload(model, rows, tree)
    end
    return q2
  end
end

return M

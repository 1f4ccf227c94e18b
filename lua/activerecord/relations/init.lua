--- Relations: belongs_to, has_one, has_many, has_many_through. Each gives
-- records an accessor that loads once and caches (`post:author()`,
-- `user:posts{ reload = true }`), a query accessor (`user:posts_query()`),
-- eager loading for queries (`User:query():with("posts", "posts.comments")`:
-- one statement per relation level, `WHERE key IN (...)` in chunks) and a
-- join description for `joins("author")`.
--
-- One job: the module users get — the relation constructors, `define` (what
-- `ar.Model` calls) and the eager-loading entry. The parts, a file each:
-- `relation` (what every kind shares), one strategy per kind (`belongs_to`,
-- `has_one`, `has_many`, `through`), `preload` (eager loading) and
-- `collation` (key equality as the server compares).
-- @module activerecord.relations
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local relation = require("activerecord.relations.relation")
local preload = require("activerecord.relations.preload")
local collation = require("activerecord.relations.collation")
local autosave = require("activerecord.relations.autosave")
local writes = require("activerecord.relations.writes")
local counters = require("activerecord.relations.counters")
local composite = require("activerecord.relations.composite")

local M = {}

--- Keys per eager-loading statement: IN lists are chunked so a huge eager
-- load stays within packet limits.
M.chunk_size = 1000

local STRATEGIES = {
  belongs_to = require("activerecord.relations.belongs_to"),
  has_one = require("activerecord.relations.has_one"),
  has_many = require("activerecord.relations.has_many"),
  has_many_through = require("activerecord.relations.through"),
  polymorphic = require("activerecord.relations.polymorphic"),
}

-- The options of each kind, and for each option a check and the forms it
-- takes (what a ConfigError lists).
local IDENT = "^[%a_][%w_]*$"
local function ident(v) return type(v) == "string" and #v <= 64 and v:match(IDENT) ~= nil end
local function table_name(v)
  return type(v) == "string" and #v <= 129 and (v:match(IDENT) or v:match("^[%a_][%w_]*%.[%a_][%w_]*$")) ~= nil
end

-- One `{ "col", "asc"|"desc" }` (or a bare column name) -> { col, dir }, or nil.
local function order_pair(v)
  if ident(v) then return { v, "asc" } end
  if type(v) ~= "table" or not ident(v[1]) then return nil end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v or n > 2 then return nil end
  local dir = v[2] == nil and "asc" or (type(v[2]) == "string" and v[2]:lower())
  if dir ~= "asc" and dir ~= "desc" then return nil end
  return { v[1], dir }
end

--- A relation's `order_by` as a list of `{ column, "asc"|"desc" }`, or nil
-- when the shape is not one it takes: `"id"`, `{ "id", "desc" }` or a list
-- of such pairs (`{ { "pos", "asc" }, { "id", "desc" } }`).
-- @param v the option
-- @treturn ?table the pairs
function M.order_pairs(v)
  local one = order_pair(v)
  if one then return { one } end
  if type(v) ~= "table" or #v == 0 or type(v[1]) ~= "table" then return nil end
  local n, out = 0, {}
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return nil end
  for i = 1, #v do
    out[i] = order_pair(v[i])
    if not out[i] then return nil end
  end
  return out
end

local CHECKS = {
  foreign_key = { function(v) return ident(v) or composite.is_key_list(v) end,
    "a column name (an identifier) or a list of them for a composite key ({ \"order_id\", \"line_no\" })" },
  primary_key = { function(v) return ident(v) or composite.is_key_list(v) end,
    "a column name (an identifier) or a list of them for a composite key ({ \"order_id\", \"line_no\" })" },
  source_key = { ident, "a column name of the join table (an identifier)" },
  target_key = { ident, "a column name of the join table (an identifier)" },
  inverse_of = { ident, "the name of the target's relation back (an identifier)" },
  through = { table_name, "the join table's name (\"post_tags\" or \"schema.post_tags\")" },
  dependent = { function(v) return v == "destroy" or v == "delete" or v == "nullify" or v == "restrict" end,
    "\"destroy\" (each child deleted through its model), \"delete\" (one statement), \"nullify\" or \"restrict\"" },
  counter_cache = { function(v) return v == true or ident(v) end,
    "true (the owner's <children table>_count column) or a column name" },
  touch = { function(v) return v == true or ident(v) end, "true (the owner's updated_at) or a column name" },
  polymorphic = { function(v) return v == true end, "true (the key and <name>_type name the target)" },
  foreign_type = { ident, "the column naming the target's model (an identifier; default <name>_type)" },
  as = { ident, "the name of the target's polymorphic belongs_to (\"commentable\")" },
  order_by = { M.order_pairs, "a column name (\"id\"), { \"id\", \"desc\" } or a list of such pairs "
    .. "({ { \"pos\", \"asc\" }, { \"id\", \"desc\" } }); the direction is \"asc\" or \"desc\"" },
}

local function set(...)
  local out = {}
  for _, k in ipairs({ ... }) do out[k] = CHECKS[k] end
  return out
end

-- belongs_to keeps `dependent` to refuse it with its own message (on define).
local KIND_OPTIONS = {
  belongs_to = set("foreign_key", "primary_key", "dependent", "counter_cache", "touch", "polymorphic",
    "foreign_type"),
  has_one = set("foreign_key", "primary_key", "inverse_of", "dependent", "order_by", "as"),
  has_many = set("foreign_key", "primary_key", "inverse_of", "dependent", "order_by", "as"),
  has_many_through = set("through", "source_key", "target_key", "primary_key", "order_by", "dependent"),
}

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do
    if #parts >= 4 then parts[#parts + 1] = "..." break end
    parts[#parts + 1] = (math.type(k) == "integer" and "" or tostring(k) .. " = ") .. show(x)
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function relation_spec(kind, target, opts)
  if opts ~= nil and type(opts) ~= "table" then
    errors.raise("ConfigError", ("%s: options must be a table (got %s)"):format(kind, show(opts)))
  end
  opts = opts or {}
  if type(target) ~= "string" and type(target) ~= "table" then
    errors.raise("ConfigError", kind .. " expects a model or a model name")
  end
  local accepted = KIND_OPTIONS[kind]
  options.check(opts, accepted, kind)
  local copy = {}
  for k, v in pairs(opts) do
    local check = accepted[k]
    if not check[1](v) then
      errors.raise("ConfigError", ("%s: option '%s' takes %s (got %s)"):format(kind, k, check[2], show(v)),
        { option = k })
    end
    copy[k] = v
  end
  if opts.foreign_type and not opts.polymorphic then
    errors.raise("ConfigError", "belongs_to: foreign_type goes with polymorphic = true")
  end
  if opts.polymorphic and type(target) ~= "string" then
    errors.raise("ConfigError", "belongs_to(name, { polymorphic = true }): name the relation "
      .. "(\"commentable\": its columns are commentable_id and commentable_type), not a model")
  end
  if kind == "has_many_through" and not opts.through then
    errors.raise("ConfigError", "has_many_through needs { through = \"join_table\" }")
  end
  local order = opts.order_by and M.order_pairs(opts.order_by)
  return { __ar_relation = true, kind = kind, target_ref = target, opts = copy, order = order }
end

--- This model holds the key of one `target` (`post:author()`).
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key` (this model's column, or a list for
--   a composite key; default `<target>_id`), `primary_key` (the target's;
--   default its key), `counter_cache` (`true` or the owner's column: kept
--   by `n = n + 1` in SQL), `touch` (`true` or the owner's column: set to
--   now when this record is saved or deleted), `polymorphic = true` (the
--   target's model is named by `<name>_type`, or `foreign_type`; `target`
--   is then the relation's name, `"commentable"`)
-- @treturn table a relation spec for `relations = { ... }`; records take
--   `rec.<name> = target` (see `relations.writes`)
-- @raise `ConfigError` for an unknown option or one in a shape it does not
--   take (the message lists the accepted forms)
function M.belongs_to(target, opts) return relation_spec("belongs_to", target, opts) end
--- One `target` holds this model's key (`user:profile()`).
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key` (the target's column; default
--   `<owner>_id`), `primary_key`, `inverse_of`, `dependent` (`"destroy"`,
--   `"delete"`, `"nullify"` or `"restrict"`), `order_by` (`"id"`, `{ "id",
--   "desc" }` or a list of such pairs), `as` (the target's polymorphic
--   belongs_to)
-- @treturn table a relation spec
-- @raise `ConfigError` for an unknown option or one in a shape it does not
--   take (the message lists the accepted forms)
function M.has_one(target, opts) return relation_spec("has_one", target, opts) end
--- Many `target`s hold this model's key (`user:posts()`, `user:posts_query()`).
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key`, `primary_key`, `inverse_of` (the
--   target's belongs_to, filled without a query), `dependent` (`"destroy"`:
--   each child deleted through its model; `"delete"`, `"nullify"`,
--   `"restrict"`), `as` (the target's polymorphic belongs_to), `order_by`
--   (`"id"`, `{ "id", "desc" }` or a list of such pairs:
--   `{ { "pos", "asc" }, { "id", "desc" } }`)
-- @treturn table a relation spec
-- @raise `ConfigError` for an unknown option or one in a shape it does not
--   take (the message lists the accepted forms)
function M.has_many(target, opts) return relation_spec("has_many", target, opts) end
--- Many-to-many through a join table (`post:tags()`).
-- @tparam string|table target the target model or its name
-- @tparam table opts `through` (the join table, required), `source_key`
--   (its column holding this model's key; default `<owner>_id`), `target_key`
--   (its column holding the target's key; default `<target>_id`),
--   `primary_key`, `order_by`, `dependent` (`"destroy"`, `"delete"` and
--   `"nullify"` all remove the join rows; the targets stay)
-- @treturn table a relation spec
-- @raise `ConfigError` without `through`, or for an unknown or mistyped option
function M.has_many_through(target, opts) return relation_spec("has_many_through", target, opts) end

--- The record's cache of loaded relations (see `relations.relation`).
M.cache_of = relation.cache_of

--- The character set and collation of a column (see `relations.collation`).
M.column_collation = collation.column_collation

--- Eager-loads relations for records already loaded (what `Query:with` runs
-- after a query): one statement per relation level (chunked `WHERE key IN (...)`).
-- @tparam table model the records' model
-- @tparam table records the records
-- @tparam table tree relation name -> `{ scope =, children = { ... } }`
-- @raise `ConfigError` for an unknown relation; the errors of `Query:all`
function M.preload(model, records, tree)
  preload.run(model, records, tree, M.chunk_size)
end

-- Models whose delete already runs in a transaction (weak keys).
local model_deletes_in_unit = setmetatable({}, { __mode = "k" })

local function add_dependent(owner, rel)
  local dep = rel.opts.dependent
  if not dep then return end
  if rel.kind == "belongs_to" then
    errors.raise("ConfigError", owner.name .. "." .. rel.name .. ": dependent applies to has_one/has_many")
  end
  -- the dependents and the owner go in one transaction
  -- (soft_delete's hard_delete/destroy delete rows too)
  if not model_deletes_in_unit[owner] then
    model_deletes_in_unit[owner] = true
    local methods, hooks = owner._meta.methods, require("activerecord.model.hooks")
    for _, name in ipairs({ "delete", "hard_delete", "destroy" }) do
      local base = name == "delete" and methods.delete or rawget(methods, name)
      if base then hooks.add_method(owner, name, autosave.delete_with(base)) end
    end
  end
  owner:on("before_delete", function(inst, info)
    -- a soft delete keeps the children (restore() must find them again);
    -- restrict still applies: the owner would vanish from every query
    if info and info.soft and dep ~= "restrict" then return end
    rel:before_owner_delete(inst, dep)
  end)
end

-- `with` on the model's queries: after the query runs, the tree is loaded.
local function with(model)
  return function(q, ...)
    local q2 = q:clone()
    local tree = preload.parse({ ... })
    local prev = q.after_load
    q2.after_load = function(self, rows)
      if prev then prev(self, rows) end
      M.preload(model, rows, tree)
    end
    return q2
  end
end

-- Models whose save already saves what waits for it (weak keys).
local model_saves_pending = setmetatable({}, { __mode = "k" })

--- Attaches relations to a model (`activerecord.model` calls it): the
-- accessors (`rec:name(opts)`, loading once and caching; `{ reload = true }`
-- reloads), `rec:name_query()`, the `dependent` hooks, and `with` on the
-- model's queries: `Post:query():with("comments", "comments.author",
-- { "tags", function(q) return q:where{...} end })`.
-- @tparam table model the model class
-- @tparam table relations name -> relation spec
-- @raise `ConfigError` for a malformed relation or a name shared with a field
function M.define(model, relations)
  -- the model layer's public hook API (the one mixins use)
  local hooks = require("activerecord.model.hooks")
  for name, spec in pairs(relations) do
    local kind = type(spec) == "table" and spec.__ar_relation and STRATEGIES[spec.kind]
    if not kind then
      errors.raise("ConfigError", ("%s.%s: a relation is ar.belongs_to/has_one/has_many/"
        .. "has_many_through(...)"):format(model.name, tostring(name)))
    end
    -- (a model without declared fields is checked when its table is read)
    local fields = rawget(model, "fields")
    if fields and fields[name] then
      errors.raise("ConfigError", ("%s.%s: a relation cannot share a field's name"):format(model.name, name))
    end
    -- a list foreign_key/primary_key: the kind over composite keys (relations.composite)
    if type(spec.opts.foreign_key) == "table" or type(spec.opts.primary_key) == "table" then
      if spec.kind == "has_many_through" or spec.opts.polymorphic or spec.opts.as then
        errors.raise("ConfigError", ("%s.%s: composite keys go with belongs_to, has_one and has_many (not "
          .. "has_many_through or polymorphic relations)"):format(model.name, name))
      end
      kind = composite.kind_of(kind, spec.kind)
    end
    if spec.opts.polymorphic then kind = STRATEGIES.polymorphic end
    local rel = setmetatable({ name = name, owner = model, kind = spec.kind, target_ref = spec.target_ref,
                               opts = spec.opts, order = spec.order }, kind)
    if spec.opts.polymorphic then
      rel.poly_type = spec.opts.foreign_type or (spec.target_ref .. "_type")
    elseif spec.opts.as then
      rel.poly_type, rel.poly_name = spec.opts.as .. "_type", STRATEGIES.polymorphic.type_name(model)
    end
    -- the accessor is what `user:posts()` calls
    rel.accessor = function(inst, opts) return rel:load(inst, opts) end
    model.relations[name] = rel
    local query_of
    if spec.kind == "belongs_to" then
      query_of = function(inst) return rel:query_for(inst) end
    else -- the query knows its owner: build, create, add, remove, clear
      query_of = function(inst) return writes.owner_query(rel, inst) end
    end
    hooks.add_method(model, name .. "_query", query_of)
    add_dependent(model, rel)
    if spec.kind == "belongs_to" then counters.attach(model, rel, hooks) end
  end
  -- records built, added or assigned through a relation are saved with the record
  if not model_saves_pending[model] then
    model_saves_pending[model] = true
    hooks.add_method(model, "save", autosave.save_with(model._meta.methods.save))
  end
  -- queries of this model learn `with`
  hooks.add_query_method(model, "with", with(model))
end

return M

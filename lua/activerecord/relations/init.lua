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

local M = {}

--- Keys per eager-loading statement: IN lists are chunked so a huge eager
-- load stays within packet limits.
M.chunk_size = 1000

local STRATEGIES = {
  belongs_to = require("activerecord.relations.belongs_to"),
  has_one = require("activerecord.relations.has_one"),
  has_many = require("activerecord.relations.has_many"),
  has_many_through = require("activerecord.relations.through"),
}

local OPTIONS = {
  foreign_key = "string", primary_key = "string", inverse_of = "string", dependent = "string",
  through = "string", source_key = "string", target_key = "string", order_by = "string",
}

local DEPENDENT = { delete = true, nullify = true, restrict = true }

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
  if opts.dependent and not DEPENDENT[opts.dependent] then
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
    local rel = setmetatable({ name = name, owner = model, kind = spec.kind, target_ref = spec.target_ref,
                               opts = spec.opts }, kind)
    -- the accessor is what `user:posts()` calls
    rel.accessor = function(inst, opts) return rel:load(inst, opts) end
    model.relations[name] = rel
    local query_of = function(inst) return rel:query_for(inst) end
    hooks.add_method(model, name .. "_query", query_of)
    add_dependent(model, rel)
  end
  -- queries of this model learn `with`
  hooks.add_query_method(model, "with", with(model))
end

return M

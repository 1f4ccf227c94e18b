-- activerecord: an ActiveRecord runtime for Lua 5.4 with a C MySQL core.
--
-- This module is the public face; the layers below it are
--   activerecord.backend.mysql           the backend: pool, transactions, retries, logging
--   activerecord.backend.mysql.dialect   SQL text generation (quoting, DDL, locking, JSON paths)
--   activerecord.schema                  the schema DSL
--   activerecord.errors                  error objects (design §4)
--   activerecord.backend.mysql.core      the C core (connections, statements, types)
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")

local M = {
  _VERSION = "activerecord " .. core.version,
  -- Writes SQL NULL where `nil` would mean "absent"; equal to cjson.null.
  null = core.null,
  errors = errors,
  core = core,
}

-- ar.connect{ host=, port=, user=, password=, database=, ..., url=,
--             pool = { size =, checkout_timeout =, ... }, log = fn } -> backend
function M.connect(opts)
  return require("activerecord.backend.mysql").new(opts)
end

-- ---- models -------------------------------------------------------------

local registry = require("activerecord.registry")
local model = require("activerecord.model")
local query = require("activerecord.query")
local types = require("activerecord.types")

-- ar.Model{ table =, fields =, ... } -> model class
function M.Model(def) return model.define(def) end

M.set_default_backend = registry.set_default_backend
M.default_backend = registry.default_backend
M.model = registry.model
M.register_type = types.register
M.register_mixin = registry.register_mixin

-- Relations: relations = { posts = ar.has_many("Post", { foreign_key = "user_id" }) }
local relations = require("activerecord.relations")
M.belongs_to = relations.belongs_to
M.has_one = relations.has_one
M.has_many = relations.has_many
M.has_many_through = relations.has_many_through

-- insert_all / upsert_all / save{ upsert = true }
require("activerecord.bulk").install()

-- The built-in mixins (timestamps, soft_delete, optimistic_lock, uuid) are
-- registered like a user's: ar.register_mixin(name, spec).
require("activerecord.mixins")

-- Expressions for where(): ar.col("age"):gt(18), ar.raw("LOWER(name) = ?", "ann"),
-- ar.exists(q), ar.fn.sum("x"), ar.row_number():over{...}, ar.json_value(col, path),
-- and ar.table("name") for queries without a model (see activerecord.query).
for _, name in ipairs(query.exports) do M[name] = query[name] end

-- Capability matrix for a server we are not connected to (pure function).
M.capabilities_for = core.capabilities_for

-- The schema DSL, usable on any backend: ar.schema.create_table(db, name, fn, opts).
M.schema = setmetatable({}, { __index = function(t, k)
  local schema = require("activerecord.schema")
  setmetatable(t, { __index = schema })
  return schema[k]
end })

return M

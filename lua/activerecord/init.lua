--- activerecord: an ActiveRecord runtime for Lua 5.4 with a C MySQL core.
--
-- This module is the public face; the layers below it are
--   activerecord.backend.mysql           the backend: pool, transactions, retries, logging
--   activerecord.backend.mysql.dialect   SQL text generation (quoting, DDL, locking, JSON paths)
--   activerecord.schema                  the schema DSL
--   activerecord.errors                  error objects (design section 4)
--   activerecord.backend.mysql.core      the C core (connections, statements, types)
--
-- It also re-exports the expression constructors of `activerecord.query`
-- (`ar.col`, `ar.raw`, `ar.json_value`, `ar.table`, ...), `ar.null` (writes
-- SQL NULL; equal to cjson.null), `ar.errors`, `ar.core` and `ar.schema`.
-- @module activerecord

-- The MySQL core is loaded here for `ar.core` and `ar.connect`; loading it
-- installs its JSON functions and clock into the neutral modules.
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local json = require("activerecord.json")

local M = {
  _VERSION = "activerecord " .. core.version,
  -- Writes SQL NULL where `nil` would mean "absent"; equal to cjson.null.
  null = require("activerecord.null"),
  -- ar.json_array([t]) marks t (or a new table) as a JSON array, so an empty
  -- one is stored as [] (a plain {} is stored as an object); arrays read
  -- from JSON columns carry the same mark.
  json_array = json.array,
  errors = errors,
  core = core,
}

--- Connects to a MySQL or MariaDB server and returns a backend with a pool.
-- Bad credentials fail here: one connection is opened at once, and the
-- server's flavor and version fix the dialect and the capabilities.
-- @tparam table opts connection options: `host`, `port`, `socket`, `user`,
--   `password`, `database`, `url`, `charset`, `connect_timeout`,
--   `read_timeout`, `write_timeout`, `ssl`, `init_command`, `sql_mode`,
--   `time_zone`, `statement_cache_size`, `decimal`, `pool`, `log`,
--   `log_params`, `slow_query_seconds`, `reconnect_retries` (see README.md)
-- @treturn activerecord.backend.mysql.Backend the backend (`db`)
-- @raise `ConfigError` for an unknown option or a wrong type (naming it and
--   listing the accepted ones); `ConnectionError` when the server cannot be
--   reached, refuses the login or the TLS handshake fails
-- @usage local db <close> = ar.connect{ host = "127.0.0.1", user = "app", database = "shop",
--                                  pool = { size = 10 } }
function M.connect(opts)
  return require("activerecord.backend.mysql").new(opts)
end

-- ---- models -------------------------------------------------------------

local registry = require("activerecord.registry")
local model = require("activerecord.model")
local query = require("activerecord.query")
local types = require("activerecord.types")

--- Defines a model class (see `activerecord.model.define`).
-- @tparam table def `name`, `table`, `backend`, `fields`, `primary_key`,
--   `relations`, `mixins`, `events`, `validate`, `scopes`, `methods`
-- @treturn table the model class (its methods: `activerecord.model.ClassMethods`)
-- @raise `ConfigError` for a definition mistake, naming the model and field
function M.Model(def) return model.define(def) end

--- Sets the backend models use when their definition names none.
-- @function set_default_backend
-- @tparam activerecord.backend.mysql.Backend db the backend (or nil to clear it)
M.set_default_backend = registry.set_default_backend
--- The backend set by `set_default_backend`, or nil.
-- @function default_backend
-- @treturn ?activerecord.backend.mysql.Backend the default backend
M.default_backend = registry.default_backend
--- A model class by name (its `name`, or its table when the two differ).
-- @function model
-- @tparam string name the model's name
-- @treturn ?table the model class, or nil when none has that name
M.model = registry.model
--- Registers a field type (see `activerecord.types.register`).
-- @function register_type
-- @tparam string name the type's name, used as `fields = { x = "name" }`
-- @tparam table spec `to_db`, `from_db`, `validate`, `cast`, `sql_type`, `schema_type`, `options`
-- @treturn table the registered type
-- @raise `ConfigError` for a bad name or spec
M.register_type = types.register
--- Registers a mixin under a name, for `mixins = { "name" }` in model definitions.
-- A mixin is a table with any of `fields`, `events`, `scopes`,
-- `default_scopes`, `methods`, `class_methods`, `write_guards`, `setup`,
-- `options`, or a function(options) returning one.
-- @function register_mixin
-- @tparam string name the mixin's name
-- @tparam table|function spec the mixin
M.register_mixin = registry.register_mixin
--- The public hook API mixins extend models through (`activerecord.model.hooks`):
-- `on`, `off`, `add_scope`, `add_default_scope`, `add_query_method`, `add_method`,
-- `add_class_method`, `add_write_guard`, `run_event`, `has_handlers`, `is_persisted`,
-- `delete_row`, `backend`. A mixin's `setup(Model, hooks)` receives it too.
M.hooks = model.hooks

-- Relations: relations = { posts = ar.has_many("Post", { foreign_key = "user_id" }) }
local relations = require("activerecord.relations")
--- A belongs-to relation (see `activerecord.relations.belongs_to`).
-- @function belongs_to
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key`, `primary_key`, ...
-- @treturn table a relation spec for a model's `relations`
-- @raise `ConfigError` for an unknown or mistyped option
M.belongs_to = relations.belongs_to
--- A has-one relation (see `activerecord.relations.has_one`).
-- @function has_one
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key`, `primary_key`, `dependent`, ...
-- @treturn table a relation spec
-- @raise `ConfigError` for an unknown or mistyped option
M.has_one = relations.has_one
--- A has-many relation (see `activerecord.relations.has_many`).
-- @function has_many
-- @tparam string|table target the target model or its name
-- @tparam[opt] table opts `foreign_key`, `primary_key`, `inverse_of`, `dependent`, `order_by`
-- @treturn table a relation spec
-- @raise `ConfigError` for an unknown or mistyped option
M.has_many = relations.has_many
--- A many-to-many relation through a join table (see `activerecord.relations.has_many_through`).
-- @function has_many_through
-- @tparam string|table target the target model or its name
-- @tparam table opts `through` (required), `source_key`, `target_key`, `order_by`, ...
-- @treturn table a relation spec
-- @raise `ConfigError` without `through`, or for an unknown option
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

--- Connect options from the environment: AR_MYSQL_HOST, _PORT, _SOCKET, _USER,
-- _PASSWORD, _DATABASE (or _URL): `ar.connect(ar.config_from_env{ pool = { size = 4 } })`.
-- @function config_from_env
-- @tparam[opt] table extra options added or overriding
-- @tparam[opt] string prefix another prefix than "AR_MYSQL_"
-- @treturn table the options
-- @raise `ConfigError` for a port that is not a number
M.config_from_env = require("activerecord.backend.mysql.config").from_env

--- The capability matrix of a server you are not connected to (a pure function).
-- @function capabilities_for
-- @tparam string flavor `"mysql"` or `"mariadb"`
-- @tparam string|table version `"8.0.36"` or `{ 8, 0, 36 }`
-- @treturn table capability name -> boolean (flat)
-- @raise an error for an unknown flavor or a malformed version
M.capabilities_for = core.capabilities_for

--- A migrator over a folder of migration files (see `activerecord.migrate`):
-- `ar.migrator(db, "db/migrations"):migrate()`.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string dir the folder of `<version>_<name>.lua` files
-- @tparam[opt] table opts see `activerecord.migrate.new`
-- @treturn table the migrator
function M.migrator(db, dir, opts)
  return require("activerecord.migrate").new(db, dir, opts)
end

--- Checks every defined model against its table now (what first use does
-- for one model): fields the table lacks, types that cannot hold the
-- column's values (see `activerecord.model.reflect`).
-- @tparam[opt] table opts see `activerecord.model.reflect.check_models`
-- @raise `ConfigError` naming each model, field and column that disagree
function M.check_models(opts)
  return require("activerecord.model.reflect").check_models(opts)
end

-- The schema DSL, usable on any backend: ar.schema.create_table(db, name, fn, opts).
M.schema = setmetatable({}, { __index = function(t, k)
  local schema = require("activerecord.schema")
  setmetatable(t, { __index = schema })
  return schema[k]
end })

return M

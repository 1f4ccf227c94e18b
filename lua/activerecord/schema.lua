--- Schema DSL: neutral table definitions (plain tables) that each backend's
-- dialect compiles to its own DDL, and helpers that run that DDL on a
-- backend (`db:execute(sql, ...)` plus `db.dialect`).
--
--   local def = schema.define("users", function(t)
--     t:bigint("id", { primary_key = true, auto_increment = true })
--     t:string("email", { size = 191, unique = true })
--     t:json("profile")
--     t:timestamps()
--   end, { engine = "InnoDB" })
--
-- A definition is `{ name, columns = { {name=, type=, <options>}... },
-- indexes, foreign_keys, checks, primary_key = {...} | nil, options }`.
-- Column-level `unique`, `index`, `references` and `check` stay on the
-- column; the dialect expands them (one place decides their names). This
-- file is the face (re-exports and the helpers that run DDL on a backend);
-- schema/raw.lua holds the raw fragments, schema/builder.lua the builder.
-- @module activerecord.schema
local errors = require("activerecord.errors")
local raw = require("activerecord.schema.raw")
local builder = require("activerecord.schema.builder")

local M = {}

-- ----------------------------------------------------- re-exports ----

--- Checks an SQL fragment the caller vouches for (see `activerecord.schema.raw`).
-- @function check_fragment
-- @tparam string sql the fragment
-- @tparam[opt] string what what it is, for the message
-- @treturn string the fragment, unchanged
-- @raise `QueryError` for a non-string or a forbidden token
M.check_fragment = raw.check_fragment

--- Marks `sql` as an explicit raw fragment (e.g. `schema.raw("CURRENT_TIMESTAMP(6)")`)
-- for defaults, checks, `on_update` and `generated`; the DSL takes
-- `ar.raw("...")` without parameters there too.
-- @function raw
-- @tparam string sql the fragment
-- @treturn table the fragment (cannot be forged or changed afterwards)
-- @raise `QueryError` for a statement separator or comment token
M.raw = raw.raw

--- Whether `x` is a raw fragment the DSL accepts (`raw`, or `ar.raw` without parameters).
-- @function is_raw
-- @param x any value
-- @treturn boolean
M.is_raw = raw.is_raw

--- The SQL text of a raw fragment.
-- @function raw_text
-- @param x a value
-- @treturn ?string the text, or nil for anything but a raw fragment
M.raw_text = raw.raw_text

--- Builds a neutral table definition (no SQL): a backend's dialect compiles it.
-- @function define
-- @tparam string name the table
-- @tparam function fn called with the builder `t` (see `activerecord.schema.builder`)
-- @tparam[opt] table opts table options: `engine`, `charset`, `collate`, `comment`, `if_not_exists`
-- @treturn table `{ name, columns, indexes, foreign_keys, checks, primary_key, options }`
-- @raise `ConfigError` for any definition mistake, naming the table and column
M.define = builder.define

--- One column checked as the builder's `t:column` checks it, outside a
-- table definition (what a migration's `add_column` takes).
-- @function column
-- @tparam string table_name the table, for messages
-- @tparam string name the column
-- @tparam string type_name a neutral type, or a custom one with `sql_type`
-- @tparam[opt] table opts the options of `t:column`
-- @treturn table the column `{ name, type, <options> }`
-- @raise `ConfigError` naming the table and column
M.column = builder.column

--- Normalises a foreign key action: `"set_null"` / `"SET NULL"` -> `"set null"`.
-- @function fk_action
-- @tparam string value the action
-- @treturn ?string `"cascade"`, `"set null"`, `"restrict"`, `"no action"`, or nil
M.fk_action = builder.fk_action

M.types, M.fk_actions, M.INTEGER_TYPES = builder.types, builder.fk_actions, builder.INTEGER_TYPES

-- ------------------------------------------------------------ I/O ----

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- Options of the I/O helpers that are not table options.
local function split_io_options(opts)
  local table_opts = copy(opts)
  local force = table_opts.force
  table_opts.force = nil
  return table_opts, force
end

-- schema.create_table(db, name, fn, opts) or schema.create_table(db, def, opts).
-- opts.force = true drops an existing table first. Returns the definition.
-- The I/O helpers take a backend first: a clear error, not a nil index.
local function check_backend(db, fn)
  if type(db) ~= "table" or type(db.execute) ~= "function" or db.dialect == nil then
    errors.raise("ConfigError", ("schema.%s expects a backend (from ar.connect) as its first argument")
      :format(fn))
  end
end

--- Creates a table on a backend: `schema.create_table(db, name, fn, opts)`
-- or `schema.create_table(db, def, opts)`.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string|table name the table, or a definition from `define`
-- @tparam[opt] function|table fn the builder function (or, with a definition, the options)
-- @tparam[opt] table opts the options of `define`, plus `force = true` to drop an existing table first
-- @treturn table the definition
-- @raise `ConfigError` (definition mistakes, no backend), `CapabilityError`
--   (a column feature the server lacks), and the backend's statement errors
function M.create_table(db, name, fn, opts)
  check_backend(db, "create_table")
  local def, force
  if type(name) == "table" then
    def, force = name, type(fn) == "table" and fn.force
  else
    local table_opts
    table_opts, force = split_io_options(opts)
    def = M.define(name, fn, table_opts)
  end
  if force then db:execute(db.dialect:drop_table_sql(def.name, { if_exists = true })) end
  db:execute(db.dialect:create_table_sql(def))
  return def
end

--- Drops a table.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string name the table
-- @tparam[opt] table opts `if_exists = true`
-- @raise `ConfigError` (no backend), `QueryError` (bad name) and the backend's statement errors
function M.drop_table(db, name, opts)
  check_backend(db, "drop_table")
  db:execute(db.dialect:drop_table_sql(name, opts))
end

--- Adds an index to an existing table.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string table_name the table
-- @tparam string|table columns the column(s)
-- @tparam[opt] table opts `unique`, `name`, ...
-- @raise `ConfigError` (no backend, bad option) and the backend's statement errors
function M.add_index(db, table_name, columns, opts)
  check_backend(db, "add_index")
  db:execute(db.dialect:add_index_sql(table_name, columns, opts))
end

--- Whether a table exists (`"t"` in the current database, or `"db.t"`).
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam string name the table
-- @treturn boolean
-- @raise `ConfigError` (no backend), `QueryError` (bad name)
function M.table_exists(db, name)
  check_backend(db, "table_exists")
  db.dialect:quote_qualified(name) -- validates, even though the name is bound
  local schema_name, table_name = name:match("^([^.]+)%.([^.]+)$")
  local sql, params
  if schema_name then
    sql = "SELECT 1 AS present FROM information_schema.TABLES"
      .. " WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? LIMIT 1"
    params = { schema_name, table_name }
  else
    sql = "SELECT 1 AS present FROM information_schema.TABLES"
      .. " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? LIMIT 1"
    params = { name }
  end
  local result = db:execute(sql, table.unpack(params))
  return result ~= nil and result.rows ~= nil and #result.rows > 0
end

--- The current schema of `db` as the text of a Lua migration file (see
-- `activerecord.schema.dump`).
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam[opt] table opts the options of `activerecord.schema.dump`
-- @treturn string the migration's Lua source
function M.dump(db, opts)
  check_backend(db, "dump")
  return require("activerecord.schema.dump").dump(db, opts)
end

return M

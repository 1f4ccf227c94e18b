--- Migration operations: the object `m` a migration's `up`, `down` or
-- `change` function receives, and `run`, which runs one loaded migration
-- "up" or "down" (a `change` replayed reversed for "down").
--
--   return {
--     change = function(m)
--       m:add_column("users", "email", "string", { size = 191, nullable = true })
--       m:add_index("users", "email", { unique = true })
--     end,
--   }
--
-- Each operation writes its SQL through the backend's dialect (names
-- validated and quoted, no value spliced), runs it with `db:execute` and
-- then empties the backend's schema cache (`db:reset_schema_cache()`).
-- One that fails raises a `MigrationError` naming the file, the operation
-- and the statement (MariaDB DDL is not transactional: what ran before it
-- stays). Operations are called as methods (`m:add_column(...)`) or plain
-- functions (`m.add_column(...)`). The migrator (`activerecord.migrate`)
-- calls `run`; files, versions and the lock are its business.
-- @module activerecord.migrate.operations
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local schema = require("activerecord.schema")

local M = {}

-- ---------------------------------------------------------------- labels ----

-- How many leading arguments name an operation in messages:
-- add_column("users", "email"), add_foreign_key("posts", "user_id", "users").
local LABEL_ARGS = {
  create_table = 1, drop_table = 1, rename_table = 2, add_column = 2, remove_column = 2,
  rename_column = 3, change_column = 2, add_index = 2, remove_index = 2, add_foreign_key = 3,
  remove_foreign_key = 2, execute = 1,
}

local function show(v)
  if type(v) == "string" then
    if #v > 80 then v = v:sub(1, 77) .. "..." end
    return (("%q"):format(v):gsub("\\\n", "\\n"))
  end
  if type(v) == "table" then
    if v.name ~= nil and #v == 0 then return "{ name = " .. show(v.name) .. " }" end
    local items = {}
    for i, x in ipairs(v) do items[i] = show(x) end
    return "{ " .. table.concat(items, ", ") .. " }"
  end
  return tostring(v)
end

local function label(name, args)
  local parts = {}
  for i = 1, math.min(LABEL_ARGS[name], args.n) do parts[i] = show(args[i]) end
  return name .. "(" .. table.concat(parts, ", ") .. ")"
end

-- "<file>" or "migration <version>" or "migration", for messages.
local function where_of(m)
  if m._file then return tostring(m._file) end
  if m._version then return "migration " .. tostring(m._version) end
  return "migration"
end

local function config_error(table_name, column, message, fields)
  local where = column and string.format("table %q, column %q", tostring(table_name), tostring(column))
    or string.format("table %q", tostring(table_name))
  fields = fields or {}
  fields.table, fields.column = table_name, column
  errors.raise("ConfigError", where .. ": " .. message, fields)
end

-- ---------------------------------------------------------------- helpers ----

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

local function opts_table(opts, what)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    errors.raise("ConfigError", what .. ": options must be a table, got " .. type(opts))
  end
  return opts
end

-- "a" or { "a", "b" } -> a fresh list (checked: non-empty strings).
local function column_list(columns, table_name, what)
  if type(columns) == "string" then columns = { columns } end
  local ok = type(columns) == "table" and #columns > 0
  for k, v in pairs(ok and columns or {}) do
    if math.type(k) ~= "integer" or type(v) ~= "string" or v == "" then ok = false end
  end
  if not ok then
    config_error(table_name, nil, what .. " needs a column name or a non-empty list of them")
  end
  return copy(columns)
end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- { name = "x" } (by name): the name, or nil for a column list.
local function by_name(spec, table_name, what)
  if type(spec) ~= "table" or spec.name == nil then return nil end
  options.check(spec, { name = true }, what)
  if type(spec.name) ~= "string" or spec.name == "" then
    config_error(table_name, nil, what .. ": name must be a non-empty string")
  end
  return spec.name
end

local function find_column(db, table_name, name)
  for _, c in ipairs(db:columns(table_name) or {}) do
    if c.name == name then return c end
  end
  return nil
end

-- drop_table(name[, fn][, opts]) -> fn, opts
local function drop_table_args(fn, opts)
  if type(fn) == "table" and opts == nil then fn, opts = nil, fn end
  if fn ~= nil and type(fn) ~= "function" then
    errors.raise("ConfigError", "drop_table: the builder must be a function, got " .. type(fn))
  end
  opts = opts_table(opts, "drop_table")
  options.check(opts, { if_exists = true, engine = true, charset = true, collate = true,
    comment = true }, "drop_table")
  return fn, opts
end

local CREATE_KEYS = { engine = true, charset = true, collate = true, comment = true,
  if_not_exists = true, force = true }
local INDEX_KEYS = { unique = true, name = true }
local FK_KEYS = { column = true, columns = true, name = true, on_delete = true, on_update = true }

-- remove_foreign_key(t, columns[, ref_table][, opts]) -> ref_table, opts
local function fk_args(ref_table, opts)
  if type(ref_table) == "table" and opts == nil then ref_table, opts = nil, ref_table end
  return ref_table, opts_table(opts, "remove_foreign_key")
end

-- ------------------------------------------------------------ operations ----

-- Each operation: function(ctx, ...) where ctx = { m, db, dialect, sql };
-- `exec` records the statement about to run for the error message.
local function exec(ctx, sql, ...)
  ctx.sql = sql
  return ctx.db:execute(sql, ...)
end

local OPS = {}

function OPS.create_table(ctx, name, fn, opts)
  opts = opts_table(opts, "create_table")
  options.check(opts, CREATE_KEYS, "create_table")
  local table_opts = copy(opts)
  local force = table_opts.force
  table_opts.force = nil
  local def = schema.define(name, fn, table_opts)
  if force then exec(ctx, ctx.dialect:drop_table_sql(name, { if_exists = true })) end
  exec(ctx, ctx.dialect:create_table_sql(def))
end

function OPS.drop_table(ctx, name, fn, opts)
  local _, checked = drop_table_args(fn, opts)
  exec(ctx, ctx.dialect:drop_table_sql(name, { if_exists = checked.if_exists }))
end

function OPS.rename_table(ctx, from, to)
  exec(ctx, ctx.dialect:rename_table_sql(from, to))
end

function OPS.add_column(ctx, table_name, name, type_name, opts)
  local col = schema.column(table_name, name, type_name, opts)
  exec(ctx, ctx.dialect:add_column_sql(table_name, col))
end

-- The column's single-column foreign keys go with it (the server refuses to
-- drop a column a foreign key needs); with `check` in opts, the CHECK that
-- add_column made for it too.
function OPS.remove_column(ctx, table_name, name, type_name, opts)
  if type_name ~= nil then schema.column(table_name, name, type_name, opts) end
  local fks, checks = {}, {}
  for _, fk in ipairs(ctx.db:foreign_keys(table_name) or {}) do
    if #fk.columns == 1 and fk.columns[1] == name then fks[#fks + 1] = fk.name end
  end
  if type(opts) == "table" and opts.check ~= nil then
    checks[1] = ctx.dialect.constraint_name("chk", table_name, { name })
  end
  exec(ctx, ctx.dialect:remove_column_sql(table_name, name, fks, checks))
end

function OPS.rename_column(ctx, table_name, from, to)
  local current
  if not ctx.dialect:supports("rename_column") then
    current = find_column(ctx.db, table_name, from)
    if not current then config_error(table_name, from, "no such column to rename") end
  end
  exec(ctx, ctx.dialect:rename_column_sql(table_name, from, to, current))
end

function OPS.change_column(ctx, table_name, name, type_name, opts)
  local col = schema.column(table_name, name, type_name, opts)
  local current = find_column(ctx.db, table_name, name)
  exec(ctx, ctx.dialect:change_column_sql(table_name, col, current and current.primary_key))
end

function OPS.add_index(ctx, table_name, columns, opts)
  opts = opts_table(opts, "add_index")
  options.check(opts, INDEX_KEYS, "add_index")
  exec(ctx, ctx.dialect:add_index_sql(table_name, column_list(columns, table_name, "add_index"), opts))
end

-- By name ({ name = ... } or opts.name), else the index on exactly these
-- columns, found through db:indexes (so a name the server chose is found
-- too): the one named as add_index names it first, then one whose
-- uniqueness matches opts.unique, then the first.
function OPS.remove_index(ctx, table_name, columns, opts)
  opts = opts_table(opts, "remove_index")
  options.check(opts, INDEX_KEYS, "remove_index")
  local name = by_name(columns, table_name, "remove_index") or opts.name
  if not name then
    local cols = column_list(columns, table_name, "remove_index")
    local derived = ctx.dialect.constraint_name(opts.unique and "uq" or "idx", table_name, cols)
    local found
    for _, ix in ipairs(ctx.db:indexes(table_name) or {}) do
      if not ix.primary and same_list(ix.columns, cols) then
        if ix.name == derived then found = ix; break end
        if not found or (opts.unique ~= nil and ix.unique == opts.unique and found.unique ~= opts.unique) then
          found = ix
        end
      end
    end
    if not found then
      config_error(table_name, nil, "no index on (" .. table.concat(cols, ", ") .. ")")
    end
    name = found.name
  end
  exec(ctx, ctx.dialect:remove_index_sql(table_name, name))
end

function OPS.add_foreign_key(ctx, table_name, columns, ref_table, opts)
  opts = opts_table(opts, "add_foreign_key")
  options.check(opts, FK_KEYS, "add_foreign_key")
  local cols = column_list(columns, table_name, "add_foreign_key")
  if type(ref_table) ~= "string" or ref_table == "" then
    config_error(table_name, cols[1], "add_foreign_key needs the referenced table's name")
  end
  local ref_columns = opts.columns and column_list(opts.columns, ref_table, "add_foreign_key columns")
    or { opts.column or "id" }
  exec(ctx, ctx.dialect:add_foreign_key_sql(table_name, {
    columns = cols, references = { table = ref_table, columns = ref_columns },
    name = opts.name, on_delete = opts.on_delete, on_update = opts.on_update,
  }))
end

-- By name ({ name = ... } or opts.name), else the foreign key on exactly
-- these columns (and to ref_table, when given), found through db:foreign_keys.
function OPS.remove_foreign_key(ctx, table_name, columns, ref_table, opts)
  ref_table, opts = fk_args(ref_table, opts)
  options.check(opts, FK_KEYS, "remove_foreign_key")
  local name = by_name(columns, table_name, "remove_foreign_key") or opts.name
  if not name then
    local cols = column_list(columns, table_name, "remove_foreign_key")
    for _, fk in ipairs(ctx.db:foreign_keys(table_name) or {}) do
      if same_list(fk.columns, cols) and (ref_table == nil or fk.ref_table == ref_table) then
        name = fk.name
        break
      end
    end
    if not name then
      config_error(table_name, nil, "no foreign key on (" .. table.concat(cols, ", ") .. ")"
        .. (ref_table and (" to " .. ref_table) or ""))
    end
  end
  exec(ctx, ctx.dialect:remove_foreign_key_sql(table_name, name))
end

function OPS.execute(ctx, sql, ...)
  if type(sql) ~= "string" then
    errors.raise("ConfigError", "execute needs SQL text, got " .. type(sql))
  end
  return exec(ctx, sql, ...)
end

-- --------------------------------------------------------------- inverses ----

-- For a `change` run "down": each operation's inverse as { name, args },
-- or nil and why it has none.
local function pack(...) return table.pack(...) end

local INVERSE = {
  create_table = function(a) return "drop_table", pack(a[1]) end,
  drop_table = function(a)
    local fn, opts = drop_table_args(a[2], a[3])
    if not fn then return nil, "drop_table without a builder function" end
    local create_opts = copy(opts)
    create_opts.if_exists = nil
    return "create_table", pack(a[1], fn, create_opts)
  end,
  rename_table = function(a) return "rename_table", pack(a[2], a[1]) end,
  add_column = function(a) return "remove_column", pack(a[1], a[2], a[3], a[4]) end,
  remove_column = function(a)
    if a[3] == nil then return nil, "remove_column without the column's type" end
    return "add_column", pack(a[1], a[2], a[3], a[4])
  end,
  rename_column = function(a) return "rename_column", pack(a[1], a[3], a[2]) end,
  change_column = function() return nil, "change_column (the old definition is not known)" end,
  add_index = function(a) return "remove_index", pack(a[1], a[2], a[3]) end,
  remove_index = function(a)
    if type(a[2]) == "table" and a[2].name ~= nil then
      return nil, "remove_index by name (the index's columns are not known)"
    end
    return "add_index", pack(a[1], a[2], a[3])
  end,
  add_foreign_key = function(a) return "remove_foreign_key", pack(a[1], a[2], a[3], a[4]) end,
  remove_foreign_key = function(a)
    local ref_table, opts = fk_args(a[3], a[4])
    if (type(a[2]) == "table" and a[2].name ~= nil) or ref_table == nil then
      return nil, "remove_foreign_key without the columns and the referenced table"
    end
    return "add_foreign_key", pack(a[1], a[2], ref_table, opts)
  end,
  execute = function() return nil, "execute (SQL cannot be reversed)" end,
}

-- ----------------------------------------------------------------- the m ----

local function migration_error(m, op, sql, cause)
  local message = string.format("%s: %s failed: %s", where_of(m), op, tostring(cause))
  if sql then message = message .. " (statement: " .. sql .. ")" end
  errors.raise("MigrationError", message, {
    file = m._file, version = m._version, operation = op, sql = sql, cause = cause,
  })
end

-- Runs one operation: its SQL, the schema cache emptied afterwards (also
-- when it failed: a failed ALTER may have changed something), a failure
-- raised as MigrationError.
local function perform(m, name, args)
  local op = label(name, args)
  local ctx = { m = m, db = m.db, dialect = m.db.dialect, sql = nil }
  local ok, res = pcall(OPS[name], ctx, table.unpack(args, 1, args.n))
  m.db:reset_schema_cache()
  if not ok then
    if errors.is(res, "MigrationError") then error(res, 0) end
    migration_error(m, op, ctx.sql, res)
  end
  return res
end

-- In a `change` recorded for "down": the inverse is kept, nothing runs; an
-- irreversible operation is a ConfigError at once (before any DDL).
local function record(m, name, args)
  local inverse, inverse_args = INVERSE[name](args)
  if not inverse then
    errors.raise("ConfigError", string.format("%s: %s cannot be reversed: %s is irreversible"
      .. " (write up and down instead of change)", where_of(m), label(name, args), inverse_args),
      { file = m._file, version = m._version, operation = label(name, args) })
  end
  m._record[#m._record + 1] = { name = inverse, args = inverse_args }
end

local function check_backend(db, what)
  if type(db) ~= "table" or type(db.execute) ~= "function" or db.dialect == nil then
    errors.raise("ConfigError", what .. " expects a backend (from ar.connect) as its first argument")
  end
end

-- m: operations bound to it (m:op(...) and m.op(...) both work).
local function new_ops(db, opts, recording)
  check_backend(db, "migrate.operations")
  opts = opts_table(opts, "migrate.operations")
  options.check(opts, { file = true, version = true }, "migrate.operations")
  local m = { db = db, _file = opts.file, _version = opts.version, _record = recording }
  for name in pairs(OPS) do
    m[name] = function(first, ...)
      local args = first == m and table.pack(...) or table.pack(first, ...)
      if m._record then return record(m, name, args) end
      return perform(m, name, args)
    end
  end
  m.column_exists = function(first, ...)
    if first == m then return db:column_exists(...) end
    return db:column_exists(first, ...)
  end
  m.table_exists = function(first, ...)
    if first == m then return db:table_exists(...) end
    return db:table_exists(first, ...)
  end
  return m
end

--- The operations object `m` for a backend.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam[opt] table opts `file`, `version`: what error messages name
-- @treturn table `m`: the operations below, bound to it, and `m.db`
-- @raise `ConfigError` without a backend or for an unknown option
function M.new(db, opts)
  return new_ops(db, opts, nil)
end

local function check_migration(migration, where)
  if type(migration) ~= "table" then
    errors.raise("ConfigError", where .. ": a migration is a table { up =, down = } or { change = },"
      .. " got " .. type(migration))
  end
  options.check(migration, { up = true, down = true, change = true }, where)
  for _, key in ipairs({ "up", "down", "change" }) do
    if migration[key] ~= nil and type(migration[key]) ~= "function" then
      errors.raise("ConfigError", string.format("%s: %s must be a function, got %s", where, key,
        type(migration[key])))
    end
  end
  if migration.change and (migration.up or migration.down) then
    errors.raise("ConfigError", where .. ": a migration has change, or up and down, not both")
  end
  if not (migration.change or migration.up) then
    errors.raise("ConfigError", where .. ": a migration needs change, or up and down")
  end
end

--- Runs one loaded migration. "up" runs `up` (or `change`); "down" runs
-- `down`, or `change` reversed: its operations are recorded without
-- running, inverted, and replayed newest first.
-- @tparam activerecord.backend.mysql.Backend db the backend
-- @tparam table migration `{ up = fn, down = fn }` or `{ change = fn }`, each fn(m)
-- @tparam string direction `"up"` or `"down"`
-- @tparam[opt] table info `{ file = ..., version = ... }` for messages and error fields
-- @raise `ConfigError` for a malformed migration, a direction it cannot go
--   (no `down`), or, before anything runs, a `change` holding an
--   irreversible operation (drop_table without its builder function,
--   remove_column without its type, change_column, execute, remove_index by
--   name, remove_foreign_key without columns and referenced table);
--   `MigrationError` when an operation fails (fields `file`, `version`,
--   `operation`, `sql`, `cause`)
function M.run(db, migration, direction, info)
  check_backend(db, "migrate.operations.run")
  info = opts_table(info, "migrate.operations.run")
  local m = new_ops(db, { file = info.file, version = info.version })
  local where = where_of(m)
  check_migration(migration, where)
  if direction == "up" then
    (migration.up or migration.change)(m)
  elseif direction == "down" then
    if migration.down then
      migration.down(m)
    elseif migration.change then
      local recorder = new_ops(db, { file = info.file, version = info.version }, {})
      migration.change(recorder)
      local steps = recorder._record
      for i = #steps, 1, -1 do
        m[steps[i].name](table.unpack(steps[i].args, 1, steps[i].args.n))
      end
    else
      errors.raise("ConfigError", where .. ": has up but no down, so it cannot be reverted")
    end
  else
    errors.raise("ConfigError", where .. ": direction must be \"up\" or \"down\", got "
      .. show(direction))
  end
end

--- The operations of `m` (each also callable as `m.name(...)`).
-- @section operations

--- Creates a table with the schema DSL (`activerecord.schema.define`).
-- Reverse: `drop_table(name)`.
-- @function create_table
-- @tparam string name the table
-- @tparam function fn the builder function, fn(t)
-- @tparam[opt] table opts `engine`, `charset`, `collate`, `comment`,
--   `if_not_exists`, `force` (drop an existing table first)

--- Drops a table. Reverse: `create_table(name, fn, opts)`, so only with `fn`.
-- @function drop_table
-- @tparam string name the table
-- @tparam[opt] function fn the builder function that recreates it
-- @tparam[opt] table opts `if_exists`, and table options for the reverse

--- Renames a table (RENAME TABLE). Reverse: the rename back.
-- @function rename_table
-- @tparam string from the current name
-- @tparam string to the new name

--- Adds a column (ALTER TABLE ADD COLUMN, with its `unique`, `index`,
-- `references` and `check` items). Reverse: `remove_column`.
-- @function add_column
-- @tparam string table the table
-- @tparam string name the column
-- @tparam string type a type of the schema DSL
-- @tparam[opt] table opts the options of the DSL's `t:column`

--- Removes a column (DROP COLUMN), with the single-column foreign keys it
-- carries (and with `check` in opts, its CHECK). Reverse: `add_column`, so
-- only with `type`.
-- @function remove_column
-- @tparam string table the table
-- @tparam string name the column
-- @tparam[opt] string type its type, for the reverse
-- @tparam[opt] table opts its options, for the reverse

--- Renames a column (RENAME COLUMN where the server has it, otherwise
-- CHANGE COLUMN with its definition read from `db:columns`). Reverse: the
-- rename back.
-- @function rename_column
-- @tparam string table the table
-- @tparam string from the current name
-- @tparam string to the new name

--- Replaces a column's definition (MODIFY COLUMN). Irreversible.
-- @function change_column
-- @tparam string table the table
-- @tparam string name the column
-- @tparam string type a type of the schema DSL
-- @tparam[opt] table opts the options of `t:column` (not `unique`, `index`,
--   `references`, `check` or `primary_key`)

--- Adds an index (CREATE INDEX). Reverse: `remove_index`.
-- @function add_index
-- @tparam string table the table
-- @tparam string|table columns the column(s)
-- @tparam[opt] table opts `unique`, `name`

--- Removes an index: `{ name = ... }`, or `opts.name`, or the index on
-- exactly these columns (looked up, so names the server chose are found
-- too). Reverse: `add_index`, so only given the columns.
-- @function remove_index
-- @tparam string table the table
-- @tparam string|table columns the column(s), or `{ name = ... }`
-- @tparam[opt] table opts `unique`, `name`

--- Adds a foreign key (ADD CONSTRAINT ... FOREIGN KEY). Reverse:
-- `remove_foreign_key`.
-- @function add_foreign_key
-- @tparam string table the table
-- @tparam string|table columns the referencing column(s)
-- @tparam string ref_table the referenced table
-- @tparam[opt] table opts `column`/`columns` (referenced, default "id"),
--   `name`, `on_delete`, `on_update`

--- Removes a foreign key (DROP FOREIGN KEY; its index stays): `{ name = ... }`,
-- or `opts.name`, or the one on exactly these columns (to `ref_table` when
-- given). Reverse: `add_foreign_key`, so only given columns and `ref_table`.
-- @function remove_foreign_key
-- @tparam string table the table
-- @tparam string|table columns the column(s), or `{ name = ... }`
-- @tparam[opt] string ref_table the referenced table
-- @tparam[opt] table opts the options of `add_foreign_key`, for the reverse

--- Whether the table has the column (`db:column_exists`).
-- @function column_exists
-- @tparam string table the table
-- @tparam string name the column
-- @treturn boolean

--- Whether the table exists (`db:table_exists`).
-- @function table_exists
-- @tparam string name the table
-- @treturn boolean

--- Runs a statement as it is (`db:execute(sql, ...)`, values bound).
-- Irreversible.
-- @function execute
-- @tparam string sql the statement
-- @param ... its values
-- @return the result

return M

--- One job: a field's `unique` option. Before a write, `check` asks the
-- table whether another row holds the value (the validation compiled by
-- activerecord.validation calls it); after a write that two writers raced,
-- `translate` turns the server's duplicate-key `IntegrityError` into the
-- `ValidationError` the check would have given (model/write.lua calls it).
--
-- The option: `unique = true` or `unique = { scope = "project_id" | { ... },
-- case_sensitive = true | false, message = "..." }`. The check is one
-- builder query, `SELECT 1 AS one FROM t WHERE col = ? [AND scope = ?
-- ...] [AND pk <> ?] LIMIT 1` (values bound; a scope field holding NULL is
-- `scope IS NULL`), on the table itself: no default scope hides a row
-- from it (a soft-deleted row still holds its key). A NULL value is not
-- checked (NULLs never collide in a unique key); a stored record is
-- excluded by its key. How values compare:
--
-- * `case_sensitive` not given: under the column's collation, as its
--   unique index compares (`col = ?`);
-- * `false`: `col = ?` when the column's collation is case-insensitive
--   (`..._ci`, most utf8mb4 ones), else `LOWER(col) = LOWER(?)`;
-- * `true`: `col = ?` when the collation is binary or case-sensitive, else
--   `col = ? AND col COLLATE <charset>_bin = ?` (the first term keeps the
--   index usable). A unique index under a case-insensitive collation still
--   refuses "Ann" next to "ann": that write comes back through `translate`.
--
-- The message defaults to "has already been taken".
-- @module activerecord.model.uniqueness
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local layout = require("activerecord.model.layout")
local registry = require("activerecord.registry")

local M = {}

local type, ipairs, rawget, pcall = type, ipairs, rawget, pcall
local PERSISTED, CHANGES = layout.PERSISTED, layout.CHANGES

M.MESSAGE = "has already been taken"

local query, functions, shapes -- loaded on first use (they load the model layer)
local function load()
  query = require("activerecord.query")
  functions = require("activerecord.query.functions")
  shapes = require("activerecord.model.shapes")
end

-- ---- the option ---------------------------------------------------------------

-- field -> { scope = { names }, case_sensitive, message } (the option as a
-- table; weak: a field table replaced by a new definition goes)
local OPTS = setmetatable({}, { __mode = "k" })

--- The `unique` option of a field as a table: `{ scope = { names },
-- case_sensitive = nil|boolean, message = string }`, or nil when the field
-- is not unique.
-- @tparam table f the parsed field
-- @treturn table|nil the option
function M.options(f)
  local u = f.unique
  if not u then return nil end
  local o = OPTS[f]
  if o and o.from == u then return o end
  o = { from = u, scope = {}, message = M.MESSAGE }
  if type(u) == "table" then
    local scope = u.scope
    if type(scope) == "string" then scope = { scope } end
    for i, name in ipairs(scope or {}) do o.scope[i] = name end
    o.case_sensitive = u.case_sensitive
    if type(u.message) == "string" then o.message = u.message end
  end
  OPTS[f] = o
  return o
end

--- The fields whose change calls for the check: the field and its scope.
-- @tparam table f the parsed field
-- @treturn {string,...} field names
function M.watched(f)
  local o = M.options(f)
  local out = { f.name }
  for _, s in ipairs(o and o.scope or {}) do out[#out + 1] = s end
  return out
end

-- ---- comparing ----------------------------------------------------------------

-- The column as introspected ({ collation, charset, ... }), or nil.
local function column_of(db, model, f)
  if type(db.columns) ~= "function" then return nil end
  local ok, cols = pcall(db.columns, db, model.table)
  if not ok or not cols then return nil end
  for _, c in ipairs(cols) do
    if c.name == f.column then return c end
  end
  return nil
end

local TEXT = { string = true, text = true }

-- How `f`'s values compare under option `o` on `db`: "plain", "lower", or
-- "binary" with the collation to use. Remembered per field, backend and
-- schema version.
local HOW = setmetatable({}, { __mode = "k" })

local function comparison(db, model, f, o)
  local cs = o.case_sensitive
  if cs == nil then return "plain" end
  local h = HOW[f]
  if h and h.db == db and h.version == db._schema_version and h.cs == cs then return h.how, h.coll end
  local col = column_of(db, model, f)
  local collation = col and col.collation
  local how, coll = "plain", nil
  if collation or (col == nil and TEXT[f.type]) then
    local name = (collation or ""):lower()
    if cs == false then
      if not name:match("_ci$") then how = "lower" end
    elseif not (name:match("_bin$") or name:match("_cs$") or name == "binary") then
      local charset = col and col.charset or (collation and collation:match("^(%w+)_")) or "utf8mb4"
      if charset:match("^%w+$") then how, coll = "binary", charset:lower() .. "_bin" end
    end
  end
  HOW[f] = { db = db, version = db._schema_version, cs = cs, how = how, coll = coll }
  return how, coll
end

-- The condition "the column holds `v`" (v as the database holds it).
local function value_condition(db, model, f, o, v)
  local how, coll = comparison(db, model, f, o)
  local col = query.col(f.column)
  if how == "lower" then
    return functions.func("LOWER", col):eq(functions.func("LOWER", query.value(v)))
  elseif how == "binary" then
    -- a column name is checked at definition (letters, digits, _ and $)
    return col:eq(v):and_(query.raw("`" .. f.column .. "` COLLATE " .. coll .. " = ?", v))
  end
  return col:eq(v)
end

local function config_error(model, f, msg)
  errors.raise("ConfigError", ("%s.%s: %s"):format(model.name, f.name, msg), { model = model.name, field = f.name })
end

--- The query that finds another row holding `rec`'s value of `f` (nil when
-- the value is nil or NULL: nothing to check).
-- @tparam table db the backend
-- @tparam table model the model
-- @tparam table rec the record
-- @tparam table f the field
-- @treturn Query|nil the query
function M.query(db, model, rec, f)
  if not query then load() end
  local v = rawget(rec, f.slot)
  if v == nil or v == null then return nil end
  local o = M.options(f)
  local db_value = shapes.db_value
  local q = query.table(model.table, db):where(value_condition(db, model, f, o, db_value(f, v)))
  for _, name in ipairs(o.scope) do
    local sf = model.fields[name]
    if not sf then config_error(model, f, ("unique scope names no field '%s'"):format(tostring(name))) end
    local sv = rawget(rec, sf.slot)
    if sv == nil or sv == null then
      q = q:where(query.col(sf.column):is_null())
    else
      q = q:where(query.col(sf.column):eq(db_value(sf, sv)))
    end
  end
  if rec[PERSISTED] and not model.pk_field then -- a composite key: NOT (a = ? AND b = ?)
    local cond = require("activerecord.model.composite_key").not_self(model, rec)
    if cond then q = q:where(cond) end
  elseif rec[PERSISTED] then -- the row itself (by the key it is stored under)
    local pkf = model.pk_field
    local c = rec[CHANGES][pkf.name]
    local id = c ~= nil and layout.old_of(c) or rawget(rec, pkf.slot)
    if id ~= nil then q = q:where(query.col(pkf.column):ne(db_value(pkf, id))) end
  end
  return q
end

--- Checks `rec`'s value of the unique field `f`: adds the option's message
-- to `errs` when another row holds it. Without a backend (a `valid` call
-- before one is set) nothing is checked.
-- @tparam table rec the record
-- @tparam table f the field
-- @tparam table|nil errs the collector (created when nil and the check fails)
-- @tparam function new_errors makes a collector
-- @return errs
-- @raise `ConfigError` for a scope naming no field; the backend's statement errors
function M.check(rec, f, errs, new_errors)
  local model = layout.model_of(rec)
  if not (rawget(model, "backend") or registry.default_backend()) then return errs end
  if not query then load() end
  local db = shapes.backend_of(model)
  local q = M.query(db, model, rec, f)
  if q and q:exists() then
    errs = errs or new_errors()
    errs:add(f.name, M.options(f).message)
  end
  return errs
end

-- ---- a duplicate the check did not see -------------------------------------------

-- Whether the error's table (as the backend names it: bare in the
-- connection's database) is the model's.
local function same_table(err_table, model)
  local t = model.table
  if err_table == t then return true end
  local schema, name = t:match("^(.-)%.(.*)$")
  if not schema or name ~= err_table then return false end
  local db = rawget(model, "backend") or registry.default_backend()
  return db ~= nil and db.connect_opts ~= nil and db.connect_opts.database == schema
end

local function set_of(list)
  local s, n = {}, 0
  for _, v in ipairs(list) do
    if not s[v] then s[v], n = true, n + 1 end
  end
  return s, n
end

-- The fields a duplicate of `key` (field names) is reported on, with their
-- message: a declared unique field whose field and scope are the key's, or
-- else every field of the key.
local function reported(model, key)
  local ks, kn = set_of(key)
  for _, f in ipairs(model.field_list) do
    local o = M.options(f)
    if o then
      local s, n = set_of(M.watched(f))
      local same = n == kn
      for name in pairs(s) do same = same and ks[name] == true end
      if same then return { [f.name] = { o.message } }, { f.name } end
    end
  end
  local out, order = {}, {}
  for _, name in ipairs(key) do
    if not out[name] then
      local o = M.options(model.fields[name])
      out[name], order[#order + 1] = { o and o.message or M.MESSAGE }, name
    end
  end
  return out, order
end

--- A write's error as the caller should see it: a duplicate-key
-- `IntegrityError` (1062) on `rec`'s table whose key's columns are fields
-- of its model becomes a `ValidationError` (`errors = { field = { message
-- } }`, `model`, `key`, and `cause` = the `IntegrityError`), reported on
-- the declared unique field that key backs (its field and scope are the
-- key's columns) or else on every field of the key. Any other error comes
-- back unchanged.
-- @tparam table rec the record whose INSERT or UPDATE failed
-- @param err what the write raised
-- @return the error to raise
function M.translate(rec, err)
  if not errors.is(err, "IntegrityError") or (err.code ~= 1062 and err.code ~= 1586) then return err end
  local cols = err.fields
  if type(cols) ~= "table" or #cols == 0 or type(err.table) ~= "string" then return err end
  local ok, model = pcall(layout.model_of, rec)
  if not ok or not same_table(err.table, model) then return err end
  local key = {}
  for i, c in ipairs(cols) do
    local f = model.columns[c]
    if not f then return err end
    key[i] = f.name
  end
  local list, order = reported(model, key)
  local parts = {}
  for _, name in ipairs(order) do parts[#parts + 1] = name .. " " .. list[name][1] end
  return errors.new("ValidationError", ("%s is invalid: %s"):format(model.name, table.concat(parts, "; ")),
    { errors = list, model = model.name, key = err.key, cause = err })
end

return M

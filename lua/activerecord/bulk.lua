--- Bulk writes for models: insert_all, upsert_all and save{ upsert = true }.
-- Rows go out as multi-row INSERTs sized to stay under the server's
-- max_allowed_packet and the 65,535-placeholder limit of a prepared
-- statement; several batches run in one transaction (a savepoint when one
-- is already open), so a failure half-way leaves nothing written.
-- @module activerecord.bulk
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local model_mod = require("activerecord.model")

local M = {}

local null = core.null
local unpack = table.unpack

local MAX_PLACEHOLDERS = 65535
local DEFAULT_BATCH = 1000

local OPTIONS = {
  batch_size = "number", ignore = "boolean", validate = "boolean", events = "boolean",
  returning = "table", unique_by = "any", update = "table",
}

local function check_opts(name, opts)
  if type(opts) ~= "table" then errors.raise("ConfigError", name .. " expects an options table") end
  local bs = opts.batch_size
  if bs ~= nil and (math.type(bs) ~= "integer" or bs < 1) then
    errors.raise("ConfigError", name .. ": batch_size must be a positive integer")
  end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then errors.raise("ConfigError", ("%s: unknown option '%s'"):format(name, tostring(k))) end
    if want ~= "any" and type(v) ~= want then
      errors.raise("ConfigError", ("%s: option '%s' must be a %s"):format(name, k, want))
    end
  end
end

-- The server's packet limit, asked once per backend.
local function max_packet(db)
  if not db._max_packet then
    local row = db:query("SELECT @@max_allowed_packet AS p")[1]
    db._max_packet = row and tonumber(row.p) or 4 * 1024 * 1024
  end
  return db._max_packet
end

local function value_size(v)
  if type(v) == "string" then return #v + 9 end
  return 9
end

-- Instances for every row: defaults, casts, validation and before-events.
local function prepare(model, rows, opts)
  local instances = {}
  for i, attrs in ipairs(rows) do
    local inst = attrs
    if getmetatable(attrs) ~= model._instance_mt then
      if type(attrs) ~= "table" then
        errors.raise("QueryError", ("%s row %d is a %s, not a table of attributes"):format(model.name, i, type(attrs)))
      end
      inst = model:_build(attrs)
    end
    if opts.validate ~= false then
      local ok, errs, collector = inst:valid()
      if not ok then
        errors.raise("ValidationError", ("%s row %d is invalid: %s"):format(model.name, i, collector:summary()),
          { errors = errs, row = i, model = model.name })
      end
    end
    if opts.events ~= false then
      model_mod.run_event(model, "before_save", inst)
      model_mod.run_event(model, "before_create", inst)
    end
    instances[i] = inst
  end
  return instances
end

-- The columns any row sets, in field order.
local function columns_of(model, instances)
  local used = {}
  for _, inst in ipairs(instances) do
    local st = model_mod.state_of(inst)
    for name, v in pairs(st.values) do
      if v ~= nil then used[name] = true end
    end
  end
  local fields = {}
  for _, f in ipairs(model.field_list) do
    if used[f.name] then fields[#fields + 1] = f end
  end
  return fields
end

local function db_value(f, v)
  if v == nil then return null end
  if f.to_db then return f.to_db(v, f) end
  return v
end

-- Splits rows into batches under the packet and placeholder limits. Each
-- row is its list of database values (JSON already encoded), so the sizes
-- counted are the sizes sent.
local function batches(db, nfields, rows, batch_size)
  local limit = math.floor(max_packet(db) * 0.8)
  local per_stmt = math.max(1, math.floor(MAX_PLACEHOLDERS / math.max(1, nfields)))
  batch_size = math.min(batch_size or DEFAULT_BATCH, per_stmt)
  local out, current, bytes = {}, {}, 0
  for i, params in ipairs(rows) do
    local size = 8
    for j = 1, nfields do size = size + value_size(params[j]) end
    if #current > 0 and (#current >= batch_size or bytes + size > limit) then
      out[#out + 1] = current
      current, bytes = {}, 0
    end
    current[#current + 1] = i
    bytes = bytes + size
  end
  if #current > 0 then out[#out + 1] = current end
  return out
end

local function columns_of_has(fields, f)
  for _, x in ipairs(fields) do if x == f then return true end end
  return false
end

local function run_batches(model, instances, opts, sql_opts)
  local db = model:_backend()
  local fields = columns_of(model, instances)
  if #fields == 0 then errors.raise("QueryError", model.name .. ": rows to insert have no values") end
  local columns = {}
  for i, f in ipairs(fields) do columns[i] = f.column end
  local pkf = model.pk_field
  local want_ids = pkf.auto and not columns_of_has(fields, pkf)
  -- exact generated ids: RETURNING where the server has it, else the insert id range
  local use_returning = want_ids and db:supports("returning") and not sql_opts.upsert and not sql_opts.ignore
  local returning = opts.returning
  if returning then
    db:require_capability("returning", "insert_all{ returning = ... }")
  elseif use_returning then
    returning = { pkf.column }
  end
  local result = { affected_rows = 0, rows = {} }
  local nfields = #fields
  local row_params = {}
  for i, inst in ipairs(instances) do
    local values = model_mod.state_of(inst).values
    local p = {}
    for j = 1, nfields do
      local f = fields[j]
      p[j] = db_value(f, values[f.name])
    end
    row_params[i] = p
  end
  local sql_cache = {}
  local function write()
    for _, batch in ipairs(batches(db, nfields, row_params, opts.batch_size)) do
      local sql = sql_cache[#batch]
      if not sql then
        sql = db.dialect:insert_sql(model.table, columns, #batch,
          { ignore = sql_opts.ignore, upsert = sql_opts.upsert, returning = returning })
        sql_cache[#batch] = sql
      end
      local params, n = {}, 0
      for _, idx in ipairs(batch) do
        local p = row_params[idx]
        for j = 1, nfields do params[n + j] = p[j] end
        n = n + nfields
      end
      local res = db:execute(sql, unpack(params, 1, n))
      result.affected_rows = result.affected_rows + res.affected_rows
      for i, idx in ipairs(batch) do
        local inst = instances[idx]
        local st = model_mod.state_of(inst)
        local row = res.rows[i]
        if returning and row then
          result.rows[#result.rows + 1] = row
          for col, v in pairs(row) do
            local f = model.columns[col]
            if f then st.values[f.name] = f.from_db and f.from_db(v, f) or v end
          end
        elseif want_ids and not sql_opts.upsert and not sql_opts.ignore and res.insert_id ~= 0 then
          st.values[pkf.name] = res.insert_id + i - 1
        end
        st.persisted, st.changes = true, {}
      end
    end
  end
  if #instances > (opts.batch_size or DEFAULT_BATCH) then
    db:transaction(function() write() end)
  else
    write()
  end
  if opts.events ~= false then
    for _, inst in ipairs(instances) do
      model_mod.run_event(model, "after_create", inst, 1)
      model_mod.run_event(model, "after_save", inst, 1)
    end
  end
  return result
end

--- `Model:insert_all(rows, opts)`: multi-row INSERTs; several batches run in
-- one transaction (a savepoint inside one), so a failure leaves nothing.
-- Validation and the create/save events run per row unless turned off.
-- @tparam table model the model class
-- @tparam table rows an array of attribute tables (or unsaved records)
-- @tparam[opt] table opts `batch_size` (default 1000), `ignore` (INSERT
--   IGNORE), `validate = false`, `events = false`, `returning = { columns }`
--   (capability `returning`)
-- @treturn table `{ affected_rows, rows (RETURNING rows), records (the instances, ids set) }`
-- @raise `ValidationError` (with `row`; nothing written), `ConfigError`
--   (unknown option), `QueryError` (not an array, no values),
--   `CapabilityError` (`returning` without the capability), `IntegrityError`
--   and the backend's statement errors
function M.insert_all(model, rows, opts)
  opts = opts or {}
  check_opts("insert_all", opts)
  if type(rows) ~= "table" then errors.raise("QueryError", "insert_all expects an array of rows") end
  if #rows == 0 then return { affected_rows = 0, rows = {}, records = {} } end
  local instances = prepare(model, rows, opts)
  local res = run_batches(model, instances, opts, { ignore = opts.ignore })
  res.records = instances
  return res
end

--- `Model:upsert_all(rows, opts)`: INSERT ... ON DUPLICATE KEY UPDATE (the
-- `VALUES(col)` or row-alias form by server).
-- @tparam table model the model class
-- @tparam table rows an array of attribute tables
-- @tparam[opt] table opts `unique_by` (field or fields identifying a row;
--   only used to pick the default `update`), `update` (the fields to
--   overwrite; default every written field but the keys), `batch_size`,
--   `validate`, `events`
-- @treturn table `{ affected_rows, records }`; affected rows count 1 per
--   inserted row, 2 per updated row, 0 per unchanged row
-- @raise as `insert_all`; `ConfigError` for an unknown field in `update`,
--   `QueryError` when there is nothing to update
function M.upsert_all(model, rows, opts)
  opts = opts or {}
  check_opts("upsert_all", opts)
  if type(rows) ~= "table" then errors.raise("QueryError", "upsert_all expects an array of rows") end
  if #rows == 0 then return { affected_rows = 0, rows = {}, records = {} } end
  -- unique_by must name fields (checked before any row is built)
  local unique_by = opts.unique_by
  for _, name in ipairs(type(unique_by) == "table" and unique_by or { unique_by }) do
    if not model.fields[name] then
      errors.raise("ConfigError", ("upsert_all: unique_by names no field of %s: '%s'"):format(model.name,
        tostring(name)))
    end
  end
  local instances = prepare(model, rows, opts)
  local update = opts.update
  if not update then
    -- default: every written column except the key(s) that identify the row
    local skip = {}
    local unique = type(opts.unique_by) == "table" and opts.unique_by or { opts.unique_by or model.primary_key }

    for _, name in ipairs(unique) do skip[name] = true end
    update = {}
    for _, f in ipairs(columns_of(model, instances)) do
      if not skip[f.name] and not f.primary_key then update[#update + 1] = f.name end
    end
  end
  local cols = {}
  for i, name in ipairs(update) do
    local f = model.fields[name]
    if not f then errors.raise("ConfigError", ("%s has no field '%s'"):format(model.name, tostring(name))) end
    cols[i] = f.column
  end
  if #cols == 0 then errors.raise("QueryError", "upsert_all: nothing to update on conflict") end
  local res = run_batches(model, instances, opts, { upsert = { update = cols } })
  res.records = instances
  return res
end

--- `rec:save{ upsert = true }`: writes one record with INSERT ... ON DUPLICATE KEY UPDATE.
-- @param inst the record
-- @treturn integer the affected rows
-- @treturn string `"inserted"`, `"updated"` or `"unchanged"`
-- @raise as `upsert_all`
function M.save_upsert(inst)
  local st = model_mod.state_of(inst)
  local model = st.model
  local res = M.upsert_all(model, { inst })
  local n = res.affected_rows
  return n, (n == 1 and "inserted") or (n == 2 and "updated") or "unchanged"
end

--- Installs `insert_all`, `upsert_all` and `save{ upsert = true }` on every
-- model (`activerecord` calls it once).
function M.install()
  local C, I = model_mod.ClassMethods, model_mod.InstanceMethods
  C.insert_all = M.insert_all
  C.upsert_all = M.upsert_all
  local plain_save = I.save
  I.save = function(self, opts)
    if opts and opts.upsert then return M.save_upsert(self) end
    return plain_save(self, opts)
  end
end

return M

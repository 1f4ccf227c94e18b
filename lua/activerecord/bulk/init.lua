--- Bulk writes for models: insert_all, upsert_all and save{ upsert = true }.
-- Rows go out as multi-row INSERTs sized to stay under the server's
-- max_allowed_packet and the 65,535-placeholder limit of a prepared
-- statement; several batches run in one transaction (a savepoint when one
-- is already open), so a failure half-way leaves nothing written.
--
-- One job: the module users get — the calls, their options and what they
-- return. The parts, a file each: `prepare` (records, validation, events),
-- `batches` (batching and parameters), `write` (statements, undo, outcomes),
-- `ids` (ids read back: RETURNING, insert id, LAST_INSERT_ID), `readback`
-- (unique-key read-back) and `access` (the records' state).
-- @module activerecord.bulk
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local shapes = require("activerecord.model.shapes")
local prepare = require("activerecord.bulk.prepare")
local access = require("activerecord.bulk.access")
local write = require("activerecord.bulk.write")

local M = {}

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
    if not want then options.check(opts, OPTIONS, name) end
    if want ~= "any" and type(v) ~= want then
      errors.raise("ConfigError", ("%s: option '%s' must be a %s"):format(name, k, want))
    end
  end
end

local function check_rows(name, rows)
  if type(rows) ~= "table" then errors.raise("QueryError", name .. " expects an array of rows") end
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
  check_rows("insert_all", rows)
  if #rows == 0 then return { affected_rows = 0, rows = {}, records = {} } end
  shapes.backend_of(model) -- the model's table read first (its fields, sizes, defaults)
  if not model.pk_field then require("activerecord.model.composite_key").refuse(model, "insert_all") end
  local instances, known = prepare.records(model, rows, opts)
  local res = write.run(model, instances, opts, { ignore = opts.ignore }, known)
  res.records = instances
  return res
end

-- unique_by as a list of names, each a field (checked before any row is built)
local function unique_names(model, unique_by)
  local names = type(unique_by) == "table" and unique_by or { unique_by }
  for _, name in ipairs(names) do
    if not model.fields[name] then
      errors.raise("ConfigError", ("upsert_all: unique_by names no field of %s: '%s'"):format(model.name,
        tostring(name)))
    end
  end
  return names
end

-- The columns to overwrite on conflict: `update`, or by default every
-- written column except the key(s) that identify the row and those only a
-- table default filled in (a new record holds its table's defaults; the
-- row on conflict keeps its own value).
local function update_columns(model, instances, opts)
  local update = opts.update
  if not update then
    local skip = {}
    for _, name in ipairs(type(opts.unique_by) == "table" and opts.unique_by
                          or { opts.unique_by or model.primary_key }) do
      skip[name] = true
    end
    update = {}
    for _, f in ipairs(prepare.columns(model, instances)) do
      if not skip[f.name] and not f.primary_key
          and not (f.default_src ~= nil and not access.any_changed(instances, f)) then
        update[#update + 1] = f.name
      end
    end
  end
  local cols = {}
  for i, name in ipairs(update) do
    local f = model.fields[name]
    if not f then errors.raise("ConfigError", ("%s has no field '%s'"):format(model.name, tostring(name))) end
    cols[i] = f.column
  end
  if #cols == 0 then errors.raise("QueryError", "upsert_all: nothing to update on conflict") end
  return cols
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
  check_rows("upsert_all", rows)
  if #rows == 0 then return { affected_rows = 0, rows = {}, records = {} } end
  shapes.backend_of(model) -- the model's table read first (its fields, sizes, defaults)
  if not model.pk_field then require("activerecord.model.composite_key").refuse(model, "upsert_all") end
  local names = unique_names(model, opts.unique_by)
  local instances, known = prepare.records(model, rows, opts)
  local cols = update_columns(model, instances, opts)
  -- unique_by names the key that finds each row again (without it, the
  -- table's unique keys)
  local unique_fields
  if opts.unique_by ~= nil then
    unique_fields = {}
    for i, name in ipairs(names) do unique_fields[i] = model.fields[name] end
  end
  local res = write.run(model, instances, opts, { upsert = { update = cols, unique_fields = unique_fields } },
    known)
  res.records = instances
  return res
end

--- `rec:save{ upsert = true }`: writes one record with INSERT ... ON DUPLICATE KEY UPDATE.
-- @param inst the record
-- @treturn integer the affected rows
-- @treturn string `"inserted"`, `"updated"` or `"unchanged"`
-- @raise as `upsert_all`
function M.save_upsert(inst)
  local model = require("activerecord.bulk.access").model_of(inst)
  local res = M.upsert_all(model, { inst })
  local n = res.affected_rows
  -- the row may hold what this write did not set (the update kept it, or a
  -- default filled it): the record is read back so it matches its row
  if not inst:is_new() then inst:reload() end
  return n, (n == 1 and "inserted") or (n == 2 and "updated") or "unchanged"
end

--- Installs `insert_all`, `upsert_all` and `save{ upsert = true }` on every
-- model (`activerecord` calls it once).
function M.install()
  local model_mod = require("activerecord.model")
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

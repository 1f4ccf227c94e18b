--- One job: running a bulk write. Plans the statements (RETURNING or not,
-- runs of records with and without their own key), sends the batches in one
-- transaction (a savepoint inside one) when ids depend on the connection or
-- there are several batches, registers the undo of the records' state for a
-- rollback, gives the records their ids and runs the after-events.
-- @module activerecord.bulk.write
local errors = require("activerecord.errors")
local access = require("activerecord.bulk.access")
local prepare = require("activerecord.bulk.prepare")
local batches = require("activerecord.bulk.batches")
local ids = require("activerecord.bulk.ids")
local commit_events = require("activerecord.model.commit_events")
local record = require("activerecord.record")

local M = {}

local unpack, rawget, rawset = table.unpack, rawget, rawset
local WRITTEN = ids.WRITTEN

local function has_column(list, name)
  for _, x in ipairs(list) do if x == name then return true end end
  return false
end

local function has_field(fields, f)
  for _, x in ipairs(fields) do if x == f then return true end end
  return false
end

-- Runs of consecutive records that set the same fields, each with the
-- fields it writes: a column a record leaves out is not sent for it, so
-- the table's default applies (a NULL in its place would not). Without
-- RETURNING, records that set a generated key are thus in statements
-- of their own and each statement's generated ids are a plain range.
-- The usual call, every record setting every field, is one run.
local function runs_of(instances, fields, pkf)
  local values, key = access.values, access.key
  local keys, nf = {}, #fields
  for j = 1, nf do keys[j] = key(fields[j]) end
  local n = #instances
  local full = true
  for i = 1, n do
    local t = values(instances[i])
    for j = 1, nf do
      if rawget(t, keys[j]) == nil then full = false break end
    end
    if not full then break end
  end
  if full then
    local all = {}
    for i = 1, n do all[i] = i end
    return { { idxs = all, fields = fields, shape = "", with_pk = has_field(fields, pkf) } }
  end
  local runs, cur, bits = {}, nil, {}
  for i = 1, n do
    local t = values(instances[i])
    for j = 1, nf do bits[j] = rawget(t, keys[j]) ~= nil and "1" or "0" end
    local shape = table.concat(bits)
    if not cur or cur.shape ~= shape then
      local run_fields = {}
      for j = 1, nf do
        if bits[j] == "1" then run_fields[#run_fields + 1] = fields[j] end
      end
      cur = { idxs = {}, fields = run_fields, shape = shape, with_pk = has_field(run_fields, pkf) }
      runs[#runs + 1] = cur
    end
    cur.idxs[#cur.idxs + 1] = i
  end
  return runs
end

-- The upsert of a run: only the columns its records set are overwritten
-- on conflict (a column left out keeps the stored row's value).
local function run_upsert(model, upsert, run, all_fields)
  if not upsert or run.fields == all_fields then return upsert end
  local set = {}
  for _, f in ipairs(run.fields) do set[f.column] = true end
  local update = {}
  for _, col in ipairs(upsert.update) do
    if set[col] then update[#update + 1] = col end
  end
  if #update == 0 then
    errors.raise("QueryError", ("upsert_all: %s row %d sets none of the fields to update on conflict")
      :format(model.name, run.idxs[1]))
  end
  return { update = update, unique_fields = upsert.unique_fields }
end

-- Puts the records back as they were before the call when the transaction
-- level that wrote them is rolled back (registered only inside one).
local function track_undo(db, model, instances)
  if not (db._track_undo and db:in_transaction()) then return end
  local key = access.key(model.pk_field)
  local undo_state = access.undo_state
  -- the key of each record; whether stored and the change set only for the
  -- records that had them (a record built for the call has neither)
  local prev_pk, prev_other = {}, nil
  for i = 1, #instances do
    local pk, persisted, changes = undo_state(instances[i], key)
    prev_pk[i] = pk
    if persisted or changes then
      prev_other = prev_other or {}
      prev_other[i] = { persisted, changes }
    end
  end
  db:_track_undo(function()
    local restore = access.restore
    for i, inst in ipairs(instances) do
      local other = prev_other and prev_other[i]
      if other then
        restore(inst, key, prev_pk[i], other[1], other[2])
      else
        restore(inst, key, prev_pk[i], false, nil)
      end
    end
  end)
end

-- RETURNING names each row an INSERT (or INSERT IGNORE) wrote, with its
-- key; an upsert goes without, so its affected rows keep MySQL's 1/2/0.
local function returning_of(db, model, opts, sql_opts)
  local pkf = model.pk_field
  local returning = opts.returning
  if returning then
    db:require_capability("returning", "insert_all{ returning = ... }")
    if (pkf.auto or sql_opts.ignore) and not has_column(returning, pkf.column) then
      returning = { pkf.column, unpack(returning) }
    end
  elseif db:supports("returning") and not sql_opts.upsert and (pkf.auto or sql_opts.ignore) then
    returning = { pkf.column }
  end
  return returning
end

-- How RETURNING rows are read: a list of { column, key, from_db, field }
-- when every returned column is a field's (read by name, no iteration),
-- else nil (read with pairs).
local function returned_plan(model, returning)
  if type(returning) ~= "table" then return nil end
  local plan = {}
  for i, col in ipairs(returning) do
    local f = model.columns[col]
    if not f then return nil end
    plan[i] = { col, access.key(f), f.from_db or false, f }
  end
  return plan
end

-- Sets the record's fields from a RETURNING row.
local function take_row(model, t, row, plan)
  if plan then
    for i = 1, #plan do
      local p = plan[i]
      local v = row[p[1]]
      if v ~= nil then
        local from_db = p[3]
        rawset(t, p[2], from_db and from_db(v, p[4]) or v)
      end
    end
    return
  end
  local columns = model.columns
  for col, v in pairs(row) do
    local f = columns[col]
    if f then rawset(t, access.key(f), f.from_db and f.from_db(v, f) or v) end
  end
end

-- The records get what the statements told: RETURNING columns or the
-- generated key; written ones become stored and clean.
local function apply_outcomes(model, instances, settler, result, returning)
  local values, written = access.values, access.written
  local pk_key = access.key(model.pk_field)
  local outcome, returned = settler.outcome, settler.returned
  local plan = returned_plan(model, returning)
  local out_rows, nrows = result.rows, #result.rows
  local p1 = plan and #plan == 1 and plan[1] -- the usual plan: the key alone
  for idx = 1, #instances do
    local inst = instances[idx]
    local o = outcome[idx]
    if o then
      local row = returned[idx]
      if row then
        nrows = nrows + 1
        out_rows[nrows] = row
        if p1 then -- take_row, inline
          local v = row[p1[1]]
          if v ~= nil then
            local from_db = p1[3]
            rawset(values(inst), p1[2], from_db and from_db(v, p1[4]) or v)
          end
        else
          take_row(model, values(inst), row, plan)
        end
      elseif o ~= WRITTEN then
        rawset(values(inst), pk_key, o)
      end
      written(inst)
    elseif o == false then
      result.ignored[#result.ignored + 1] = inst
    else
      result.unknown[#result.unknown + 1] = inst
    end
  end
end

-- The after-events of every record written; then each is noted for the
-- commit events (kind "create"), as a save of it would be: inside a
-- transaction for its end, outside one they run now (their failures
-- collected into one CallbackError once all ran).
local function after_events(db, model, instances)
  local after_create = access.has_handlers(model, "after_create")
  local after_save = access.has_handlers(model, "after_save")
  local commit = commit_events.wanted(model._meta)
  if not (after_create or after_save or commit) then return end
  local errs
  for _, inst in ipairs(instances) do
    if access.persisted(inst) then
      if after_create then access.run_event(model, "after_create", inst, 1) end
      if after_save then access.run_event(model, "after_save", inst, 1) end
      if commit then
        local ok, err = pcall(commit_events.note, db, model, inst, "create")
        if not ok then
          errs = errs or {}
          for _, e in ipairs(errors.is(err, "CallbackError") and err.causes or { err }) do errs[#errs + 1] = e end
        end
      end
    end
  end
  if errs then
    errors.raise("CallbackError", ("the rows were committed, then %d after-commit handler(s) failed: %s")
      :format(#errs, tostring(errs[1])), { committed = true, cause = errs[1], causes = errs })
  end
end

--- Writes `instances` with multi-row INSERTs.
-- @tparam table model the model
-- @tparam table instances the prepared records
-- @tparam table opts the call's options (`batch_size`, `returning`, `events`)
-- @tparam table sql_opts `ignore` or `upsert` (`{ update = columns, unique_fields = fields }`)
-- @tparam[opt] table known what `prepare.records` established (see there)
-- @treturn table `{ affected_rows, rows, ignored, unknown }`
-- @raise `QueryError` when no record sets a value; `ReadOnlyRecord` for a
--   record marked read-only (before any SQL); `CallbackError` (`committed
--   = true`) when `after_commit` handlers failed after the rows were
--   committed; the backend's statement errors
function M.run(model, instances, opts, sql_opts, known)
  local readonly = record.READONLY
  if next(readonly) ~= nil then -- a record from a readonly() query is never written
    for i = 1, #instances do
      if readonly[instances[i]] then record.refuse_readonly(instances[i], "writing it") end
    end
  end
  local db = model:_backend()
  local fields = prepare.columns(model, instances)
  if #fields == 0 then errors.raise("QueryError", model.name .. ": rows to insert have no values") end
  local upsert, ignore = sql_opts.upsert, sql_opts.ignore
  local returning = returning_of(db, model, opts, sql_opts)
  local runs = runs_of(instances, fields, model.pk_field)
  local run_sql_opts = {}
  for r, run in ipairs(runs) do -- checked before any SQL
    run_sql_opts[r] = { ignore = ignore, upsert = run_upsert(model, upsert, run, fields), returning = returning }
  end
  local result = { affected_rows = 0, rows = {}, ignored = {}, unknown = {} }
  local settler = ids.settler(db, model, { returning = returning, upsert = upsert })
  local sql_cache = {}

  local function write()
    track_undo(db, model, instances)
    for r, run in ipairs(runs) do
      local run_fields = run.fields
      local columns = {}
      for i, f in ipairs(run_fields) do columns[i] = f.column end
      for _, batch in ipairs(batches.split(db, instances, run.idxs, run_fields, opts.batch_size, known)) do
        local ckey = run.shape .. ":" .. batch.rows
        local sql = sql_cache[ckey]
        if not sql then
          sql = ids.insert_sql(db, model, columns, batch.rows, run_sql_opts[r])
          sql_cache[ckey] = sql
        end
        local res = db:execute(sql, unpack(batch.params, 1, batch.n))
        result.affected_rows = result.affected_rows + res.affected_rows
        settler.settle(run_fields, run.with_pk, batch, res)
      end
    end
  end
  -- one connection for the whole call when ids come from the insert id
  -- range or a read-back, or when there are several batches
  if #runs > 1 or #instances > (opts.batch_size or batches.DEFAULT_BATCH) or not returning or ignore then
    db:transaction(write)
  else
    write()
  end
  apply_outcomes(model, instances, settler, result, returning)
  if opts.events ~= false then after_events(db, model, instances) end
  return result
end

return M

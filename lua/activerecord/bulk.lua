--- Bulk writes for models: insert_all, upsert_all and save{ upsert = true }.
-- Rows go out as multi-row INSERTs sized to stay under the server's
-- max_allowed_packet and the 65,535-placeholder limit of a prepared
-- statement; several batches run in one transaction (a savepoint when one
-- is already open), so a failure half-way leaves nothing written.
-- @module activerecord.bulk
local core = require("activerecord.backend.mysql.core")
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local model_mod = require("activerecord.model")
local relations = require("activerecord.relations")

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
    if not want then options.check(opts, OPTIONS, name) end
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

local function columns_of_has_name(list, name)
  for _, x in ipairs(list) do if x == name then return true end end
  return false
end

local function columns_of_has(fields, f)
  for _, x in ipairs(fields) do if x == f then return true end end
  return false
end

-- ---- which rows were written, and their ids ---------------------------------
-- Ids are never guessed (design §8). RETURNING names the rows a statement
-- wrote; without it a multi-row INSERT's generated ids are insert_id,
-- insert_id + inc, ... (InnoDB hands a simple INSERT consecutive values at
-- the session's auto_increment_increment). When rows were skipped (IGNORE)
-- or updated (ON DUPLICATE KEY UPDATE), the rows are found again by a unique
-- key of the table; a record whose row cannot be told for certain is left
-- new, without a generated id, and listed in the result's `unknown`.

local WRITTEN = {} -- outcome: written, the record already holds its key

-- The session's auto_increment_increment, read on the connection the
-- INSERTs use (the caller pins it in a transaction). It can be SET per
-- session, so it is read for each call, never cached.
local function id_increment(db)
  local row = db:query("SELECT @@SESSION.auto_increment_increment AS i")[1]
  return math.tointeger(tonumber(row and row.i)) or 1
end

-- backend -> model -> the table's unique keys as lists of fields, PRIMARY
-- first (keys over columns the model lacks are left out)
local UNIQUE_KEYS = setmetatable({}, { __mode = "k" })

local function unique_keys(db, model)
  local per_db = UNIQUE_KEYS[db]
  if not per_db then
    per_db = setmetatable({}, { __mode = "k" })
    UNIQUE_KEYS[db] = per_db
  end
  local keys = per_db[model]
  if keys then return keys end
  local schema, tbl = model.table:match("^([^.]+)%.([^.]+)$")
  local rows = db:query("SELECT INDEX_NAME AS k, COLUMN_NAME AS c FROM information_schema.STATISTICS "
    .. "WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0 "
    .. "ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX", schema or null, tbl or model.table)
  keys = {}
  local by_name, dropped = {}, {}
  for _, r in ipairs(rows) do
    local f = model.columns[r.c]
    local key = by_name[r.k]
    if not key then
      key = {}
      by_name[r.k] = key
      keys[#keys + 1] = key
    end
    if f then key[#key + 1] = f else dropped[key] = true end
  end
  local out = {}
  for _, key in ipairs(keys) do
    if not dropped[key] then out[#out + 1] = key end
  end
  -- IGNORE skips a row for a duplicate key, and also for a failed foreign
  -- key or CHECK: with neither, a duplicate key is the only reason
  local other = db:query("SELECT COUNT(*) AS n FROM information_schema.TABLE_CONSTRAINTS "
    .. "WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? "
    .. "AND CONSTRAINT_TYPE IN ('FOREIGN KEY', 'CHECK')", schema or null, tbl or model.table)[1]
  out.keys_only = other ~= nil and tonumber(other.n) == 0
  per_db[model] = out
  return out
end

-- The key columns' comparison as the server's unique index makes it: a
-- bound string is converted to the column's character set and collation.
local function key_match(db, model, f, d)
  local coll = relations.column_collation(db, model.table, f.column)
  local v = "v." .. d:quote_identifier(f.column)
  if coll and coll.collation ~= "binary" then
    v = "CONVERT(" .. v .. " USING " .. coll.charset .. ") COLLATE " .. coll.collation
  end
  return "t." .. d:quote_identifier(f.column) .. " = " .. v
end

local LOOKUP_CHUNK = 500

-- For the rows `{ idx, values }` (values of `key`'s fields), the primary key
-- of the table's row with equal key values; calls found(idx, id).
local function lookup(db, model, key, rows, found)
  local d = db.dialect
  local pkf = model.pk_field
  local on = {}
  for j, f in ipairs(key) do on[j] = key_match(db, model, f, d) end
  for first = 1, #rows, LOOKUP_CHUNK do
    local last = math.min(first + LOOKUP_CHUNK - 1, #rows)
    local selects, params, n = {}, {}, 0
    for r = first, last do
      local cols = { "SELECT " .. (r - first + 1) .. " AS `__ar_i`" }
      for j, f in ipairs(key) do
        cols[j + 1] = r == first and ("? AS " .. d:quote_identifier(f.column)) or "?"
        n = n + 1
        params[n] = rows[r][2][j]
      end
      selects[#selects + 1] = table.concat(cols, ", ")
    end
    local sql = "SELECT v.`__ar_i` AS i, t." .. d:quote_identifier(pkf.column) .. " AS id FROM ("
      .. table.concat(selects, " UNION ALL ") .. ") AS v JOIN " .. d:quote_qualified(model.table)
      .. " AS t ON " .. table.concat(on, " AND ")
    for _, row in ipairs(db:query(sql, unpack(params, 1, n))) do
      local id = row.id
      if pkf.from_db then id = pkf.from_db(id, pkf) end
      found(rows[first + row.i - 1][1], id)
    end
  end
end

local function same_values(a, b, n)
  for j = 1, n do if a[j] ~= b[j] then return false end end
  return true
end

-- Outcomes of the batch rows `poss` (positions in `params`) found again by
-- the table's unique keys (`prefer`, a list of fields, first when given).
-- `inserted(id)` says whether this statement wrote the row `id` (IGNORE);
-- without it (upsert) every row was written. out[pos] = id, false (not
-- written) or nil (unknown).
local function resolve(db, model, fields, params, poss, inserted, prefer)
  local pos_of = {}
  for j, f in ipairs(fields) do pos_of[f] = j end
  local table_keys = unique_keys(db, model)
  local keys = prefer and { prefer } or table_keys
  local cand, usable, blocked = {}, {}, {}
  for _, key in ipairs(keys) do
    local rows = {}
    for _, pos in ipairs(poss) do
      local p, vals = params[pos], {}
      for j, f in ipairs(key) do
        local v = pos_of[f] and p[pos_of[f]]
        if v == nil or v == null then
          vals = nil
          break
        end
        vals[j] = v
      end
      -- a NULL in a unique key conflicts with nothing: that key cannot tell
      if vals then
        rows[#rows + 1] = { pos, vals }
        usable[pos] = true
      end
    end
    if #rows > 0 then
      lookup(db, model, key, rows, function(pos, id)
        if inserted and not inserted(id) then
          -- a row this statement did not write holds its key: it was skipped
          blocked[pos] = true
          return
        end
        local c = cand[pos]
        if c == nil then cand[pos] = id elseif c ~= id then cand[pos] = false end
      end)
    end
  end
  local out, by_id = {}, {}
  for _, pos in ipairs(poss) do
    local c = cand[pos]
    if inserted and blocked[pos] then
      out[pos] = false
    elseif c == nil then
      -- no key found a row this statement wrote: skipped (IGNORE), when a key could tell
      if inserted and usable[pos] then out[pos] = false end
    elseif c ~= false then
      local list = by_id[c]
      if not list then
        list = {}
        by_id[c] = list
      end
      list[#list + 1] = pos
      out[pos] = c
    end
  end
  if inserted then
    -- one inserted row, several rows of the batch with its key: the server
    -- wrote the first it did not skip. That is the first of them when they
    -- are alike, or when only a duplicate key can skip a row (the others
    -- are not blocked); else which one it was cannot be told
    local n = #fields
    for _, list in pairs(by_id) do
      if #list > 1 then
        local alike = true
        for i = 2, #list do alike = alike and same_values(params[list[1]], params[list[i]], n) end
        local certain = table_keys.keys_only or alike
        -- certain: the others were skipped (false); else none is known (nil)
        local rest
        if certain then rest = false end
        for i = 2, #list do out[list[i]] = rest end
        if not certain then out[list[1]] = nil end
      end
    end
  end
  return out
end

-- Runs of consecutive rows that do / do not set the primary key, so that
-- without RETURNING each statement's generated ids are a plain range.
local function runs_of(instances, pkf, split)
  if not split then
    local all = {}
    for i = 1, #instances do all[i] = i end
    return { { idxs = all, with_pk = true } }
  end
  local runs, cur = {}, nil
  for i, inst in ipairs(instances) do
    local has = model_mod.state_of(inst).values[pkf.name] ~= nil
    if not cur or cur.with_pk ~= has then
      cur = { idxs = {}, with_pk = has }
      runs[#runs + 1] = cur
    end
    cur.idxs[#cur.idxs + 1] = i
  end
  return runs
end

local function params_of(instances, idxs, fields)
  local nfields = #fields
  local out = {}
  for k, idx in ipairs(idxs) do
    local values = model_mod.state_of(instances[idx]).values
    local p = {}
    for j = 1, nfields do
      local f = fields[j]
      p[j] = db_value(f, values[f.name])
    end
    out[k] = p
  end
  return out
end

-- Puts the records back as they were before the call when the transaction
-- level that wrote them is rolled back (registered only inside one).
local function track_undo(db, model, instances)
  if not (db._track_undo and db:in_transaction()) then return end
  local pk = model.pk_field.name
  local prev_pk, prev_persisted, prev_changes = {}, {}, {}
  for i, inst in ipairs(instances) do
    local st = model_mod.state_of(inst)
    prev_pk[i] = st.values[pk]
    if st.persisted then prev_persisted[i] = true end
    if next(st.changes) ~= nil then prev_changes[i] = st.changes end
  end
  db:_track_undo(function()
    for i, inst in ipairs(instances) do
      local st = model_mod.state_of(inst)
      st.persisted = prev_persisted[i] or false
      st.values[pk] = prev_pk[i]
      if prev_changes[i] then st.changes = prev_changes[i] end
    end
  end)
end

local function run_batches(model, instances, opts, sql_opts)
  local db = model:_backend()
  local fields = columns_of(model, instances)
  if #fields == 0 then errors.raise("QueryError", model.name .. ": rows to insert have no values") end
  local pkf = model.pk_field
  local upsert, ignore = sql_opts.upsert, sql_opts.ignore
  local can_return = db:supports("returning")
  -- RETURNING names each row an INSERT (or INSERT IGNORE) wrote, with its
  -- key; an upsert goes without, so its affected rows keep MySQL's 1/2/0
  local returning = opts.returning
  if returning then
    db:require_capability("returning", "insert_all{ returning = ... }")
    if (pkf.auto or ignore) and not columns_of_has_name(returning, pkf.column) then
      returning = { pkf.column, unpack(returning) }
    end
  elseif can_return and not upsert and (pkf.auto or ignore) then
    returning = { pkf.column }
  end
  -- without RETURNING, rows that set the key go in statements of their own
  local split = not returning and not upsert and pkf.auto and columns_of_has(fields, pkf)
  local runs = runs_of(instances, pkf, split)
  local fields_without_pk = {}
  for _, f in ipairs(fields) do if f ~= pkf then fields_without_pk[#fields_without_pk + 1] = f end end
  local result = { affected_rows = 0, rows = {}, ignored = {}, unknown = {} }
  local outcome = {} -- instance index -> id | WRITTEN | false | nil
  local returned = {} -- instance index -> RETURNING row
  local sql_cache = {}
  local inc -- auto_increment_increment, read when first needed

  local function settle(run, run_fields, params, batch, res)
    local n = #batch
    local idxs = run.idxs
    if returning then
      local rows = res.rows
      if #rows == n then
        for k = 1, n do
          local idx = idxs[batch[k]]
          returned[idx] = rows[k]
          outcome[idx] = WRITTEN
        end
        return
      end
      -- IGNORE skipped some: the RETURNING rows name the ones written
      local wrote, by_id = {}, {}
      for _, row in ipairs(rows) do
        local id = row[pkf.column]
        if pkf.from_db then id = pkf.from_db(id, pkf) end
        wrote[id] = true
        by_id[id] = row
      end
      local out = resolve(db, model, run_fields, params, batch, function(id) return wrote[id] end)
      for k = 1, n do
        local idx, id = idxs[batch[k]], out[batch[k]]
        outcome[idx] = id
        if id then returned[idx] = by_id[id] end
      end
      return
    end
    local with_pk = run.with_pk and columns_of_has(run_fields, pkf)
    local generated = pkf.auto and not with_pk
    if upsert then
      if n == 1 and pkf.auto then
        -- `pk = LAST_INSERT_ID(pk)` in the update clause: insert_id is the
        -- row's key whether it was inserted, updated or left unchanged
        local id = res.insert_id
        local idx = idxs[batch[1]]
        if id and id ~= 0 then outcome[idx] = id
        elseif with_pk then outcome[idx] = WRITTEN end
        return
      end
      local out = resolve(db, model, run_fields, params, batch, nil, upsert.unique_fields)
      for k = 1, n do outcome[idxs[batch[k]]] = out[batch[k]] end
      return
    end
    if res.affected_rows == n then
      if generated and res.insert_id and res.insert_id ~= 0 then
        inc = inc or id_increment(db)
        local first = res.insert_id
        for k = 1, n do outcome[idxs[batch[k]]] = first + (k - 1) * inc end
      elseif not generated then
        for k = 1, n do outcome[idxs[batch[k]]] = WRITTEN end
      end
      return
    end
    -- IGNORE skipped some (no RETURNING): this statement's generated ids lie
    -- in insert_id + k * inc, k < n; a row outside was there before
    local inserted
    if generated and res.insert_id and res.insert_id ~= 0 then
      inc = inc or id_increment(db)
      local first, last = res.insert_id, res.insert_id + (n - 1) * inc
      inserted = function(id)
        return math.type(id) == "integer" and id >= first and id <= last and (id - first) % inc == 0
      end
    end
    if inserted then
      local out = resolve(db, model, run_fields, params, batch, inserted)
      for k = 1, n do outcome[idxs[batch[k]]] = out[batch[k]] end
    end
    -- else: which rows of explicit keys were skipped cannot be told: unknown
  end

  local function write()
    track_undo(db, model, instances)
    for _, run in ipairs(runs) do
      local run_fields = (split and not run.with_pk) and fields_without_pk or fields
      local nfields = #run_fields
      local columns = {}
      for i, f in ipairs(run_fields) do columns[i] = f.column end
      local params = params_of(instances, run.idxs, run_fields)
      for _, batch in ipairs(batches(db, nfields, params, opts.batch_size)) do
        local ckey = (run_fields == fields and "a" or "b") .. #batch
        local sql = sql_cache[ckey]
        if not sql then
          sql = db:compile("insert", model.table, columns, #batch,
            { ignore = ignore, upsert = upsert and { update = upsert.update }, returning = returning })
          if upsert and #batch == 1 and pkf.auto then
            local q = db.dialect:quote_identifier(pkf.column)
            sql = sql .. ", " .. q .. " = LAST_INSERT_ID(" .. q .. ")"
          end
          sql_cache[ckey] = sql
        end
        local flat, n = {}, 0
        for _, pos in ipairs(batch) do
          local p = params[pos]
          for j = 1, nfields do flat[n + j] = p[j] end
          n = n + nfields
        end
        local res = db:execute(sql, unpack(flat, 1, n))
        result.affected_rows = result.affected_rows + res.affected_rows
        settle(run, run_fields, params, batch, res)
      end
    end
  end
  -- one connection for the whole call when ids come from the insert id
  -- range or a read-back, or when there are several batches
  if #instances > (opts.batch_size or DEFAULT_BATCH) or not returning or ignore then
    db:transaction(function() write() end)
  else
    write()
  end

  for idx, inst in ipairs(instances) do
    local st = model_mod.state_of(inst)
    local o = outcome[idx]
    if o then
      local row = returned[idx]
      if row then
        result.rows[#result.rows + 1] = row
        for col, v in pairs(row) do
          local f = model.columns[col]
          if f then st.values[f.name] = f.from_db and f.from_db(v, f) or v end
        end
      elseif o ~= WRITTEN then
        st.values[pkf.name] = o
      end
      st.persisted = true
      -- a record built for the call has no changes table to replace
      if next(st.changes) ~= nil then st.changes = {} end
    elseif o == false then
      result.ignored[#result.ignored + 1] = inst
    else
      result.unknown[#result.unknown + 1] = inst
    end
  end
  if opts.events ~= false then
    for _, inst in ipairs(instances) do
      if model_mod.state_of(inst).persisted then
        model_mod.run_event(model, "after_create", inst, 1)
        model_mod.run_event(model, "after_save", inst, 1)
      end
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
  -- unique_by names the key that finds each row again (without it, the
  -- table's unique keys)
  local unique_fields
  if unique_by ~= nil then
    unique_fields = {}
    for i, name in ipairs(type(unique_by) == "table" and unique_by or { unique_by }) do
      unique_fields[i] = model.fields[name]
    end
  end
  local res = run_batches(model, instances, opts, { upsert = { update = cols, unique_fields = unique_fields } })
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
  -- the row may hold what this write did not set (the update kept it, or a
  -- default filled it): the record is read back so it matches its row
  if not inst:is_new() then inst:reload() end
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

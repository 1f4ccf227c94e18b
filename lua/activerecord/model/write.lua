--- A record's writes: save (INSERT or UPDATE of the changed columns),
-- update, delete, and putting the record back when the transaction they ran
-- in is rolled back. The SQL comes from the compiler only, through the
-- shapes of activerecord.model.shapes (compiled once per column set); per
-- write only the values are bound, the way Sequel's `_update_dataset` and
-- its fast instance paths work.
-- @module activerecord.model.write
local errors = require("activerecord.errors")
local options = require("activerecord.options")
local layout = require("activerecord.model.layout")
local json_track = require("activerecord.model.json_track")
local record = require("activerecord.record")
local shapes = require("activerecord.model.shapes")
local registry = require("activerecord.registry")
local commit_events = require("activerecord.model.commit_events")
local composite_key = require("activerecord.model.composite_key")

local M = {}

local type, rawget, rawset, next, pcall, setmetatable = type, rawget, rawset, next, pcall, setmetatable
local unpack = table.unpack
local CHANGES, PERSISTED, HANDED = layout.CHANGES, layout.PERSISTED, layout.HANDED
local NO_CHANGES, old_of = layout.NO_CHANGES, layout.old_of
local model_of = layout.model_of
local backend_of, db_value, run_shape = shapes.backend_of, shapes.db_value, shapes.run_shape
local written_fields, insert_shape, apply_guards = shapes.written_fields, shapes.insert_shape, shapes.apply_guards
local compile_shape, pk_query, guarded = shapes.compile_shape, shapes.pk_query, shapes.guarded
local shape_node, SHAPE, VALUE_SLOTS, PK_SLOT = shapes.shape_node, shapes.SHAPE, shapes.VALUE_SLOTS, shapes.PK_SLOT
local run_event = record.run_event
local default_backend = registry.default_backend
local sync_json, keep_texts = json_track.sync, json_track.keep_texts
local InstanceMethods = record.InstanceMethods
local READONLY, refuse_readonly = record.READONLY, record.refuse_readonly
local note_commit, commit_wanted = commit_events.note, commit_events.wanted

-- activerecord.model.uniqueness, loaded at the first failed write that
-- needs it (false while it cannot be loaded)
local uniqueness = false

-- A failed INSERT or UPDATE of `rec`: a duplicate key of its table becomes
-- the ValidationError `uniqueness.translate` makes of it.
local function translate(rec, err)
  if not errors.is(err, "IntegrityError") then return err end
  if not uniqueness then
    local mod = package.loaded["activerecord.model.uniqueness"]
    if mod == nil then
      local ok, m = pcall(require, "activerecord.model.uniqueness")
      mod = ok and m or nil
    end
    if type(mod) ~= "table" or type(mod.translate) ~= "function" then return err end
    uniqueness = mod
  end
  return uniqueness.translate(rec, err)
end

-- ---- state undo after a rollback --------------------------------------------
-- A write registers an undo action with the backend (`_track_undo`); when
-- the transaction or savepoint it ran in is rolled back, the action gives the
-- record its state from before the write. It holds the change set the write
-- consumed (save replaces it, never edits it): no copies of values. The
-- action is a callable table, not a closure.

-- Back to the change set `old`, keeping changes made after the write
-- (a field absent from `old` was not written, so its `old` value holds).
local function restore_changes(inst, old)
  local cur = inst[CHANGES]
  if cur == NO_CHANGES or cur == old or next(cur) == nil then
    inst[CHANGES] = old
    return
  end
  local merged = {}
  for k, c in next, old do merged[k] = c end
  for k, c in next, cur do
    if merged[k] == nil then merged[k] = c end
  end
  inst[CHANGES] = merged
end

-- u = { record, old changes, read-back fields or false, generated key field or false, persisted before,
--       [6] fields an UPDATE read back, [7] their values before it }
local Undo = {
  __call = function(u)
    local inst, old = u[1], u[2]
    inst[PERSISTED] = u[5]
    local read, pkf = u[3], u[4]
    if read then -- an INSERT undone: the values the server gave go
      local cur = inst[CHANGES]
      if pkf and cur[pkf.name] == nil then rawset(inst, pkf.slot, nil) end
      for i = 1, #read do
        local f = read[i]
        if cur[f.name] == nil then rawset(inst, f.slot, nil) end
      end
    end
    local after = u[6]
    if after then -- an UPDATE undone: the server's values from before it come back
      local cur, before = inst[CHANGES], u[7]
      for i = 1, #after do
        local f = after[i]
        if cur[f.name] == nil then rawset(inst, f.slot, before[i]) end
      end
    end
    restore_changes(inst, old)
  end,
}

-- Registers the undo with the running transaction; false when there is
-- none (or the backend cannot track: then the caller's own wrapper undoes).
local function track(db, undo)
  local t = db._track_undo
  return t ~= nil and t(db, undo) or false
end

-- ---- writes ---------------------------------------------------------------

-- The server's values of the fields the INSERT left out.
local function read_back(model, meta, inst, read, row)
  if not meta.json_checked then model:_check_json() end
  for i = 1, #read do
    local f = read[i]
    local v = row[f.column]
    if v ~= nil and f.from_db then v = f.from_db(v, f) end
    rawset(inst, f.slot, v)
  end
end

-- What activerecord.model.composite_key's writes use of this file.
local W = { written_fields = written_fields, keep_texts = keep_texts, read_back = read_back,
  apply_guards = apply_guards, guarded = guarded }

-- INSERT; returns the affected rows and the undo action.
local function insert_row(model, meta, inst, db, scratch)
  if meta.composite then
    local changes = inst[CHANGES]
    local affected, read, generated = composite_key.insert_row(model, meta, inst, db, scratch, W)
    return affected, setmetatable({ inst, changes, read, generated, false }, Undo)
  end
  local list = model.field_list
  local changes = inst[CHANGES]
  local src, n, texts, key = meta.collect_insert(inst, changes, scratch)
  local node = meta.insert_shapes[key] or shape_node(meta.insert_shapes, key)
  local shape = node[SHAPE]
  if not shape or shape.db ~= db then
    shape = insert_shape(model, meta, db, written_fields(list, inst, changes))
    node[SHAPE] = shape
  end
  local res = db:execute(shape.sql, unpack(src, 1, n))
  if texts then keep_texts(inst, meta.json_fields, texts) end
  local pkf = model.pk_field
  local generated = false
  local row = shape.returning and res.rows[1] or nil
  if inst[pkf.slot] == nil then
    local id = row and row[pkf.column] or nil
    if id == nil and pkf.auto and res.insert_id and res.insert_id ~= 0 then id = res.insert_id end
    if id ~= nil then
      rawset(inst, pkf.slot, pkf.from_db and pkf.from_db(id, pkf) or id)
      generated = pkf
    end
  end
  if row then
    read_back(model, meta, inst, shape.read, row)
  elseif shape.select then
    local id = inst[pkf.slot]
    if id ~= nil then
      local got = run_shape(shape.select, { db_value(pkf, id) }).rows[1]
      if got then read_back(model, meta, inst, shape.read, got) end
    end
  end
  inst[PERSISTED] = true
  return res.affected_rows, setmetatable({ inst, changes, shape.read, generated, false }, Undo)
end

local function stale(model, pkf, pk_value)
  errors.raise("StaleObjectError", ("%s %s = %s was changed or deleted by someone else"):format(
    model.name, pkf.name, tostring(pk_value)), { model = model.name, id = pk_value })
end

-- The key the row is stored under (the old one when the key itself changed).
local function stored_key(inst, pkf)
  local c = inst[CHANGES][pkf.name]
  if c ~= nil then return old_of(c) end
  return inst[pkf.slot]
end

-- What an UPDATE of this shape reads back: the generated columns and the
-- ON UPDATE columns it did not set, by the primary-key query (compiled once
-- per shape); false when nothing.
local function update_read_shape(model, meta, db, changes)
  local read, names = shapes.update_reads(meta, changes, { model.pk_field.name })
  if #read == 0 then return false end
  local q = pk_query(model, meta):select(unpack(names))
  return { read = read, select = compile_shape(db, { [PK_SLOT] = 1 }, "select", q:_final()) }
end

-- Whether an UPDATE of these changes reads something back (a generated
-- column, or an ON UPDATE column it does not set).
local function reads_after_update(meta, changes)
  local list = meta.update_read
  for i = 1, #list do
    local f = list[i]
    if f.generated or changes[f.name] == nil then return true end
  end
  return false
end

-- After an UPDATE: the values the server computed, so the record matches
-- its row (design section 8); the undo keeps the ones they replace.
local function read_after_update(model, meta, inst, db, changes, shape, undo)
  local rb = shape.read_back
  if rb == nil then
    rb = update_read_shape(model, meta, db, changes)
    shape.read_back = rb
  end
  if not rb then return end
  local pkf = model.pk_field
  local row = run_shape(rb.select, { db_value(pkf, inst[pkf.slot]) }).rows[1]
  if not row then return end
  local read, before = rb.read, {}
  for i = 1, #read do before[i] = rawget(inst, read[i].slot) end
  read_back(model, meta, inst, read, row)
  undo[6], undo[7] = read, before
end

-- UPDATE of the changed columns; returns the affected rows and the undo action.
local function update_row(model, meta, inst, db, scratch)
  if meta.composite then
    local changes = inst[CHANGES]
    local affected, wrote, read, before = composite_key.update_row(model, meta, inst, db, scratch, W)
    if not wrote then return 0 end
    return affected, setmetatable({ inst, changes, false, false, true, read, before }, Undo)
  end
  local list = model.field_list
  local changes = inst[CHANGES]
  local src, m, texts, key = meta.collect_update(inst, changes, scratch)
  if m == 0 then return 0 end
  local node = meta.update_shapes[key] or shape_node(meta.update_shapes, key)
  local pkf = model.pk_field
  local c = changes[pkf.name]
  local pk_value = inst[pkf.slot]
  if c ~= nil then pk_value = old_of(c) end
  local to = pkf.to_db
  src[m + 1] = to and to(pk_value, pkf) or pk_value
  local ng, guard_cols = 0, nil
  if #meta.write_guards > 0 then node, ng, guard_cols = apply_guards(meta, inst, src, m + 1, node) end
  local shape = node[SHAPE]
  if not shape or shape.db ~= db then
    local numbers, sets, k = { [PK_SLOT] = m + 1 }, {}, 0
    for i = 1, #list do
      local f = list[i]
      if changes[f.name] ~= nil then
        k = k + 1
        numbers[VALUE_SLOTS[k]] = k
        sets[k] = { column = f.name, value = VALUE_SLOTS[k] }
      end
    end
    local q = guarded(pk_query(model, meta), guard_cols or {}, numbers, m + 1)
    shape = compile_shape(db, numbers, "update", q:_final(), sets)
    node[SHAPE] = shape
  end
  local res
  if shape.identity then
    res = db:execute(shape.sql, unpack(src, 1, shape.n))
  else
    res = run_shape(shape, src)
  end
  if ng > 0 and res.affected_rows == 0 then stale(model, pkf, pk_value) end
  if texts then keep_texts(inst, meta.json_fields, texts) end
  local undo = { inst, changes, false, false, true }
  -- (a row the UPDATE did not change had nothing recomputed)
  if meta.update_read and res.affected_rows > 0 then read_after_update(model, meta, inst, db, changes, shape, undo) end
  return res.affected_rows, setmetatable(undo, Undo)
end

-- DELETE by primary key (and guards); returns the affected rows and the undo action.
local function delete_row(model, meta, inst, db)
  if meta.composite then
    local changes = inst[CHANGES]
    local affected = composite_key.delete_row(model, meta, inst, db, W)
    return affected, setmetatable({ inst, changes, false, false, true }, Undo)
  end
  local pkf = model.pk_field
  local changes = inst[CHANGES]
  local pk_value = stored_key(inst, pkf)
  local src = { db_value(pkf, pk_value) }
  local node, ng, guard_cols = apply_guards(meta, inst, src, 1, meta.delete_shapes)
  local shape = node[SHAPE]
  if not shape or shape.db ~= db then
    local numbers = { [PK_SLOT] = 1 }
    local q = guarded(pk_query(model, meta), guard_cols or {}, numbers, 1)
    shape = compile_shape(db, numbers, "delete", q:_final())
    node[SHAPE] = shape
  end
  local res = run_shape(shape, src)
  if ng > 0 and res.affected_rows == 0 then stale(model, pkf, pk_value) end
  inst[PERSISTED] = false
  -- a deleted record is new again: saving it writes every value
  inst[CHANGES] = NO_CHANGES
  return res.affected_rows, setmetatable({ inst, changes, false, false, true }, Undo)
end

-- Whether a write of this kind has after-handlers (then it and they run as
-- one unit in a transaction, or a savepoint inside one).
local function has_after(meta, event)
  local ev = meta.events
  return #ev[event] > 0 or (event ~= "after_delete" and #ev.after_save > 0)
end

-- Runs `write(model, meta, inst, db)` (which returns affected, undo) and the
-- after-events in a transaction: an error from a handler rolls the write
-- back. The undo runs with the rollback; a backend that cannot track it
-- leaves it to us.
-- The record's changes are consumed inside the unit (before the
-- `after_commit` handlers run at its end), and the write is noted for them.
local function write_unit(db, model, meta, inst, write, scratch, after1, after2, kind)
  local undo, tracked
  local ok, res = pcall(db.transaction, db, function()
    local affected
    affected, undo = write(model, meta, inst, db, scratch)
    tracked = undo ~= nil and track(db, undo)
    if commit_wanted(meta) then note_commit(db, model, inst, kind) end
    run_event(model, after1, inst, affected)
    if after2 then run_event(model, after2, inst, affected) end
    if kind ~= "delete" then inst[CHANGES] = NO_CHANGES end
    return affected
  end)
  if not ok then
    -- (a CallbackError with `committed`: the unit committed, nothing to undo)
    if undo and not tracked and not (errors.is(res, "CallbackError") and res.committed) then undo() end
    error(res, 0)
  end
  return res
end

local function update_or_insert(model, meta, inst, db, scratch)
  if inst[PERSISTED] then return update_row(model, meta, inst, db, scratch) end
  return insert_row(model, meta, inst, db, scratch)
end

-- The JSON texts the validation just encoded may be written as they are
-- when no user code ran in between (it could change a table in place).
local function json_scratch(meta, creating)
  local ev = meta.events
  if meta.json_fields == nil or meta.validate or #ev.after_validate > 0 or #ev.before_save > 0
      or #ev[creating and "before_create" or "before_update"] > 0 then
    return nil
  end
  return meta.json_scratch
end

-- The write of a save, after validation and the before-events: the unit
-- with the after-events, or the plain INSERT/UPDATE; then the commit events.
local function write_record(inst, model, meta, db, scratch, creating)
  local ev = meta.events
  local after = creating and "after_create" or "after_update"
  local kind = creating and "create" or "update"
  local affected
  if #ev[after] > 0 or #ev.after_save > 0
      -- an UPDATE and the read-back of what the server computed: one unit too
      or (meta.update_read and not creating and reads_after_update(meta, inst[CHANGES])
          and not db:in_transaction()) then
    return write_unit(db, model, meta, inst, update_or_insert, scratch, after, "after_save", kind)
  end
  local undo
  if creating then
    affected, undo = insert_row(model, meta, inst, db, scratch)
  else
    affected, undo = update_row(model, meta, inst, db, scratch)
  end
  if undo then
    local t = db._track_undo
    if t ~= nil then t(db, undo) end
  end
  inst[CHANGES] = NO_CHANGES
  if #ev.after_commit > 0 or #ev.after_rollback > 0 then note_commit(db, model, inst, kind) end
  return affected
end

local SAVE_OPTIONS = { validate = true, upsert = true }

--- Validates, runs the events and writes: an INSERT for a new record, an
-- UPDATE of the changed columns only for a stored one (no SQL when nothing
-- changed). After an INSERT the record holds the server's values of the
-- fields it did not set (defaults, generated columns, trigger-set values);
-- after an UPDATE, those of its generated columns and of the ON UPDATE
-- columns the UPDATE did not set (read back by primary key, in one unit
-- with the UPDATE). The model's table is read first (its first use).
-- The write and its after-handlers are one unit: an error raised by an
-- `after_create`, `after_update` or `after_save` handler rolls the write
-- back (a savepoint inside a transaction). When a transaction the write ran
-- in is rolled back, the record gets its state back (new or dirty again).
-- `after_commit` handlers run once the outermost transaction committed (at
-- once for a write outside any), `after_rollback` ones once it rolled back
-- (see `activerecord.model.commit_events`). A duplicate key of the model's
-- table comes back as the `ValidationError` of
-- `activerecord.model.uniqueness` (when that module is installed) with the
-- server's `IntegrityError` as `cause`. A record marked read-only
-- (`record.mark_readonly`, a `readonly()` query) is refused.
-- @tparam[opt] table opts `validate = false` skips validation; `upsert = true`
--   writes with INSERT ... ON DUPLICATE KEY UPDATE and returns the affected
--   rows and `"inserted"`, `"updated"` or `"unchanged"` (see `activerecord.bulk`)
-- @treturn integer the affected rows (0 when nothing changed)
-- @raise `ValidationError` (with `errors = { field = { messages } }`; nothing
--   is written; a duplicate key with `cause`), `IntegrityError` (duplicate
--   key, foreign key, NOT NULL), `DataError`, `StaleObjectError`
--   (optimistic_lock), any error an event handler raised, `CallbackError`
--   (`committed = true`: written, then `after_commit` handlers failed),
--   `ReadOnlyRecord`, and the backend's statement errors; `ConfigError`
--   for unknown options
function InstanceMethods:save(opts)
  local model = model_of(self)
  if READONLY[self] then refuse_readonly(self, "save") end
  if opts ~= nil then
    if type(opts) ~= "table" then errors.raise("ConfigError", "save expects an options table") end
    options.check(opts, SAVE_OPTIONS, "save")
  end
  local meta = model._meta
  local creating = not self[PERSISTED]
  if self[HANDED] then sync_json(self) end
  if not creating and next(self[CHANGES]) == nil then return 0 end
  -- the backend first: the model's table read on it (at its schema
  -- version) before the validation uses what the table says
  local db = rawget(model, "backend") or default_backend()
  if db == nil or meta.reflected_for ~= db or meta.schema_version ~= db._schema_version then
    db = backend_of(model) -- raises without a backend
  end
  local scratch
  if not (opts and opts.validate == false) then
    local valid = meta.methods.valid
    local ok, errs, collector
    if valid == InstanceMethods.valid then
      ok, errs, collector = record.validate(model, meta, self, not creating)
    else -- a model's own `valid`
      ok, errs, collector = valid(self, not creating)
    end
    if not ok then
      errors.raise("ValidationError", ("%s is invalid: %s"):format(model.name, collector:summary()),
        { errors = errs, model = model.name })
    end
    scratch = json_scratch(meta, creating)
  end
  local ev = meta.events
  if #ev.before_save > 0 then run_event(model, "before_save", self) end
  local before = creating and "before_create" or "before_update"
  if #ev[before] > 0 then run_event(model, before, self) end
  local ok, affected = pcall(write_record, self, model, meta, db, scratch, creating)
  if not ok then error(translate(self, affected), 0) end
  return affected
end

--- Assigns `attrs` and saves.
-- @tparam table attrs field -> value
-- @tparam[opt] table opts the options of `save`
-- @treturn integer the affected rows
-- @raise `ValidationError` (with `errors = { field = { messages } }`; nothing
--   is written), `IntegrityError` (duplicate key, foreign key, NOT NULL),
--   `DataError`, `StaleObjectError` (optimistic_lock), any error a
--   before-event raised, and the backend's statement errors; `ConfigError` for an unknown field
function InstanceMethods:update(attrs, opts)
  if attrs ~= nil and type(attrs) ~= "table" then
    errors.raise("ConfigError", "update expects a table of attributes, got " .. type(attrs))
  end
  if READONLY[self] then refuse_readonly(self, "update") end
  for k, v in pairs(attrs or {}) do record.assign(self, k, v) end
  return self:save(opts)
end

--- Deletes the record's row (soft_delete replaces this with setting `deleted_at`).
-- The record is new again afterwards: saving it writes every value.
-- @treturn integer the affected rows
-- @raise `RecordNotFound` for a record never saved; `StaleObjectError`
--   (optimistic_lock); `IntegrityError` (a foreign key, or a `dependent =
--   "restrict"` relation that still has rows); errors of the delete events;
--   `CallbackError` (`committed = true`) from `after_commit` handlers of a
--   delete outside a transaction; `ReadOnlyRecord` for a read-only record
function InstanceMethods:delete()
  local model = model_of(self)
  if not self[PERSISTED] then
    errors.raise("RecordNotFound", model.name .. ": cannot delete a record that was never saved")
  end
  if READONLY[self] then refuse_readonly(self, "delete") end
  local meta = model._meta
  run_event(model, "before_delete", self)
  local db = backend_of(model)
  if has_after(meta, "after_delete") then
    return write_unit(db, model, meta, self, delete_row, nil, "after_delete", nil, "delete")
  end
  local affected, undo = delete_row(model, meta, self, db)
  track(db, undo)
  if commit_wanted(meta) then note_commit(db, model, self, "delete") end
  return affected
end
M.delete = InstanceMethods.delete

return M

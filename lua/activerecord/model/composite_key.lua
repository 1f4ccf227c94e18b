--- Composite primary keys, the model side: `primary_key = { "order_id",
-- "line_no" }` (or several fields declared with `primary_key = true`, or a
-- model without `fields` on a table whose PRIMARY KEY has several columns).
-- Such a model has `primary_key` and `primary_keys` (the key's field names,
-- in key order), `pk_fields` (its fields) and no `pk_field`; a single-key
-- model keeps `primary_key` a string and `pk_field` its field (and has
-- `primary_keys`/`pk_fields` of one) and never enters this file: the model
-- code branches on `_meta.composite` only where a key is used.
--
-- What it does here: finishing the fields (key order first), `find{...}`
-- by the full key, and the writes of one record (INSERT, UPDATE and DELETE
-- `WHERE a = ? AND b = ?`, each a statement shape compiled once per column
-- set and write guard, like activerecord.model.shapes does for one key).
-- Changing a key part of a stored record is an UPDATE of that part WHERE
-- the key the row is stored under (as for a single key); an integer key
-- part is not AUTO_INCREMENT unless declared `auto_increment = true` or the
-- table says so.
-- @module activerecord.model.composite_key
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local query = require("activerecord.query")
local layout = require("activerecord.model.layout")
local shapes = require("activerecord.model.shapes")

local M = {}

local rawget, rawset, setmetatable, type = rawget, rawset, setmetatable, type
local unpack = table.unpack
local CHANGES, PERSISTED, NO_CHANGES, old_of = layout.CHANGES, layout.PERSISTED, layout.NO_CHANGES, layout.old_of
local db_value, run_shape, compile_shape = shapes.db_value, shapes.run_shape, shapes.compile_shape
local shape_node, SHAPE, VALUE_SLOTS = shapes.shape_node, shapes.SHAPE, shapes.VALUE_SLOTS

-- One slot per key part, apart from the written values' slots.
local KEY_SLOTS = setmetatable({}, { __index = function(t, i)
  local s = query.slot("<key part " .. i .. ">")
  rawset(t, i, s)
  return s
end })

local IDENT = "^[%a_][%w_$]*$"

local function config_error(model_name, msg)
  errors.raise("ConfigError", ("%s: %s"):format(model_name, msg), { model = model_name })
end

--- Checks a model's `primary_key` option: a field name, or a list of two or
-- more distinct field names. A list of one is that name.
-- @tparam string model_name the model
-- @param pk the option
-- @return the name, or the list (a copy)
-- @raise `ConfigError` listing the accepted forms
function M.check_option(model_name, pk)
  if type(pk) == "string" then return pk end
  local bad = type(pk) ~= "table" or #pk == 0
  local n, seen, copy = 0, {}, {}
  if not bad then
    for _ in pairs(pk) do n = n + 1 end
    bad = n ~= #pk
    for i = 1, #pk do
      local v = pk[i]
      if type(v) ~= "string" or not v:match(IDENT) or #v > 64 or seen[v] then bad = true break end
      seen[v], copy[i] = true, v
    end
  end
  if bad then
    config_error(model_name, "primary_key takes a field name (\"id\") or a list of distinct field names "
      .. "({ \"order_id\", \"line_no\" })")
  end
  if #copy == 1 then return copy[1] end
  return copy
end

--- Whether field `name` is part of key `pk` (a name or a list).
function M.in_key(pk, name)
  if type(pk) ~= "table" then return pk == name end
  for i = 1, #pk do
    if pk[i] == name then return true end
  end
  return false
end

--- `finish` for a composite key (see `activerecord.model.fields.finish`):
-- `primary_key` and `primary_keys` the names, `pk_fields` their fields, no
-- `pk_field`; `field_list` the key parts first (in key order), then by name.
-- @tparam table model the model
-- @tparam table names the key's field names
-- @tparam[opt] boolean read whether the fields' options came from the table
-- @tparam function default_auto fields.default_auto
-- @treturn table the field list (for `columns`)
function M.finish(model, names, read, default_auto)
  local pkfs, rank = {}, {}
  for i, name in ipairs(names) do
    local f = model.fields[name]
    if not f then config_error(model.name, ("primary key part '%s' names no field"):format(name)) end
    pkfs[i], rank[f] = f, i
  end
  for _, f in pairs(model.fields) do
    if rank[f] then
      f.primary_key = true
      -- a composite key's integer part is given, not generated, unless declared so
      if not read then f.auto = f.declared.auto_increment and default_auto(f) or nil end
    else
      f.primary_key = f.declared.primary_key
    end
  end
  local list = rawget(model, "field_list") or {}
  for i = #list, 1, -1 do list[i] = nil end
  for _, f in pairs(model.fields) do list[#list + 1] = f end
  table.sort(list, function(a, b)
    local ra, rb = rank[a] or math.huge, rank[b] or math.huge
    if ra ~= rb then return ra < rb end
    return a.name < b.name
  end)
  local copy = table.move(names, 1, #names, 1, {})
  rawset(model, "primary_key", copy)
  rawset(model, "primary_keys", copy)
  rawset(model, "pk_fields", pkfs)
  rawset(model, "pk_field", nil)
  local auto
  for _, f in ipairs(pkfs) do
    if f.auto then
      if auto then config_error(model.name, "a composite key has at most one AUTO_INCREMENT part") end
      auto = f
    end
  end
  model._meta.composite = { fields = pkfs, names = copy, auto = auto or false }
  return list
end

-- ---- keys of records ----------------------------------------------------------

--- "order_id = 1, line_no = 2" for messages.
-- @tparam table model the model
-- @tparam table values key part name -> value (or the list, in key order)
-- @treturn string
function M.describe(model, values)
  local parts = {}
  for i, name in ipairs(model.primary_keys) do
    local v = values[name]
    if v == nil then v = values[i] end
    parts[i] = ("%s = %s"):format(name, type(v) == "string" and ("%q"):format(v) or tostring(v))
  end
  return table.concat(parts, ", ")
end

--- The key the record's row is stored under (old values of changed parts),
-- as name -> value; nil when a part is nil.
-- @param inst the record
-- @treturn ?table the key
function M.stored_key(inst)
  local model = layout.model_of(inst)
  local changes, out = inst[CHANGES], {}
  for _, f in ipairs(model.pk_fields) do
    local c = changes[f.name]
    local v
    if c ~= nil then v = old_of(c) else v = rawget(inst, f.slot) end
    if v == nil then return nil end
    out[f.name] = v
  end
  return out
end

--- The unscoped query of the row stored under `key` (name -> value).
function M.row_query(model, key)
  return model:unscoped():where(key)
end

--- `find{ order_id = 1, line_no = 2 }`: the record with this full key, or
-- nil (default scopes apply).
-- @tparam table model the model
-- @param key part name -> value
-- @return the record or nil
-- @raise `QueryError` when `key` is not a table naming every key part and nothing else
function M.find(model, key)
  local names = model.primary_keys
  local example = {}
  for i, name in ipairs(names) do example[i] = name .. " = ..." end
  local usage = ("%s:find{ %s }"):format(model.name, table.concat(example, ", "))
  if type(key) ~= "table" then
    errors.raise("QueryError", ("%s has a composite primary key (%s): find takes a table of every part, %s "
      .. "(got %s)"):format(model.name, table.concat(names, ", "), usage, tostring(key)), { model = model.name })
  end
  local n, where = 0, {}
  for _, name in ipairs(names) do
    local v = key[name]
    if v == nil or v == null then
      errors.raise("QueryError", ("%s.find: the key part '%s' is missing (%s)"):format(model.name, name, usage),
        { model = model.name })
    end
    where[name] = v
    n = n + 1
  end
  for k in pairs(key) do
    if where[k] == nil then
      errors.raise("QueryError", ("%s.find: '%s' is not a part of the primary key (%s)"):format(model.name,
        tostring(k), usage), { model = model.name })
    end
  end
  return model:query():where(where):limit(1):all()[1]
end

--- What `find_or_fail` raises for a composite key that found nothing.
function M.not_found(model, key)
  errors.raise("RecordNotFound", ("%s with %s not found"):format(model.name, M.describe(model, key)),
    { model = model.name, id = key })
end

--- `find(5)` on a composite model: the compiled single-key finder cannot be made.
function M.refuse_single(model)
  errors.raise("QueryError", ("%s has a composite primary key (%s): find takes a table of every part")
    :format(model.name, table.concat(model.primary_keys, ", ")), { model = model.name })
end

--- A bulk write a composite model does not take (yet): a clear error, never a wrong write.
-- @tparam table model the model
-- @tparam string what the method
function M.refuse(model, what)
  errors.raise("ConfigError", ("%s.%s: not supported for a composite primary key (%s); create the "
    .. "records one by one in a transaction, or use a query's update_all/delete_all"):format(model.name, what,
    table.concat(model.primary_keys, ", ")), { model = model.name })
end

--- The conditions `a = ? AND b = ?` for `key` (name -> value) on columns
-- qualified by `source`, as an expression (values bound, converted by the fields).
function M.key_condition(model, key, source)
  local cond
  for _, f in ipairs(model.pk_fields) do
    local col = source and (source .. "." .. f.column) or f.column
    local c = query.col(col):eq(db_value(f, key[f.name]))
    cond = cond and cond:and_(c) or c
  end
  return cond
end

-- ---- writes of one record -------------------------------------------------------

--- The model's full-key query `WHERE a = <key part 1> AND ...` (no default scopes), built once.
local function pk_query(model, meta)
  local q = meta.composite.pk_query
  if not q then
    q = model:unscoped()
    for i, name in ipairs(model.primary_keys) do q = q:where(query.col(name):eq(KEY_SLOTS[i])) end
    meta.composite.pk_query = q
  end
  return q
end
M.pk_query = pk_query

-- numbers[KEY_SLOTS[i]] = base + i
local function key_numbers(numbers, k, base)
  for i = 1, k do numbers[KEY_SLOTS[i]] = base + i end
  return numbers
end

-- Binds the key values (current or stored) at src[base + 1 ...].
local function bind_key(inst, pkfs, src, base, stored)
  local changes = inst[CHANGES]
  for i, f in ipairs(pkfs) do
    local v = rawget(inst, f.slot)
    if stored then
      local c = changes[f.name]
      if c ~= nil then v = old_of(c) end
    end
    src[base + i] = db_value(f, v)
  end
end

local function stale(model, inst)
  local key = M.stored_key(inst) or {}
  errors.raise("StaleObjectError", ("%s %s was changed or deleted by someone else"):format(model.name,
    M.describe(model, key)), { model = model.name, id = key })
end

-- The INSERT shape: the fields the server fills are read back with
-- RETURNING, or by the full key afterwards.
local function insert_shape(model, meta, db, written)
  local comp = meta.composite
  local cols, read = shapes.insert_columns(model, written, comp.auto or false)
  local opts, select
  if #read > 0 then
    if db:supports("returning") then
      local names = {}
      for _, f in ipairs(read) do names[#names + 1] = f.column end
      opts = { returning = names }
    else
      local names = {}
      for _, f in ipairs(read) do names[#names + 1] = f.name end
      local q = pk_query(model, meta):select(unpack(names))
      select = compile_shape(db, key_numbers({}, #comp.fields, 0), "select", q:_final())
    end
  end
  return {
    db = db, sql = db:compile("insert", model.table, cols, 1, opts), n = #cols,
    read = read, returning = opts ~= nil, select = select,
  }
end

--- INSERT of a new record (what write.lua's insert_row does for one key).
-- @treturn integer affected rows
-- @treturn table the undo's fields `{ read, generated }`
function M.insert_row(model, meta, inst, db, scratch, w)
  local comp = meta.composite
  local changes = inst[CHANGES]
  local src, n, texts, key = meta.collect_insert(inst, changes, scratch)
  local node = meta.insert_shapes[key] or shape_node(meta.insert_shapes, key)
  local shape = node[SHAPE]
  if not shape or shape.db ~= db then
    shape = insert_shape(model, meta, db, w.written_fields(model.field_list, inst, changes))
    node[SHAPE] = shape
  end
  local res = db:execute(shape.sql, unpack(src, 1, n))
  if texts then w.keep_texts(inst, meta.json_fields, texts) end
  local generated = false
  local auto = comp.auto
  if auto and rawget(inst, auto.slot) == nil and res.insert_id and res.insert_id ~= 0 then
    local id = res.insert_id
    rawset(inst, auto.slot, auto.from_db and auto.from_db(id, auto) or id)
    generated = auto
  end
  local row = shape.returning and res.rows[1] or nil
  if row then
    w.read_back(model, meta, inst, shape.read, row)
  elseif shape.select then
    local src2 = {}
    bind_key(inst, comp.fields, src2, 0, false)
    local got = run_shape(shape.select, src2).rows[1]
    if got then w.read_back(model, meta, inst, shape.read, got) end
  end
  inst[PERSISTED] = true
  return res.affected_rows, shape.read, generated
end

-- What an UPDATE of this shape reads back (generated and ON UPDATE columns)
-- by the full key: compiled once per shape; false when nothing.
local function update_read_shape(model, meta, db, changes)
  local read, names = shapes.update_reads(meta, changes, {})
  if #read == 0 then return false end
  local q = pk_query(model, meta):select(unpack(names))
  return { read = read, select = compile_shape(db, key_numbers({}, #meta.composite.fields, 0), "select",
    q:_final()) }
end

--- UPDATE of the changed columns WHERE the key the row is stored under.
-- @treturn integer affected rows (0 and no SQL when nothing changed)
-- @treturn boolean whether it ran
-- @treturn ?table the fields read back and their values before (for the undo)
function M.update_row(model, meta, inst, db, scratch, w)
  local list, pkfs = model.field_list, meta.composite.fields
  local changes = inst[CHANGES]
  local src, m, texts, key = meta.collect_update(inst, changes, scratch)
  if m == 0 then return 0, false end
  local k = #pkfs
  local node = meta.update_shapes[key] or shape_node(meta.update_shapes, key)
  bind_key(inst, pkfs, src, m, true)
  local ng, guard_cols = 0, nil
  if #meta.write_guards > 0 then node, ng, guard_cols = w.apply_guards(meta, inst, src, m + k, node) end
  local shape = node[SHAPE]
  if not shape or shape.db ~= db then
    local numbers, sets, j = key_numbers({}, k, m), {}, 0
    for i = 1, #list do
      local f = list[i]
      if changes[f.name] ~= nil then
        j = j + 1
        numbers[VALUE_SLOTS[j]] = j
        sets[j] = { column = f.name, value = VALUE_SLOTS[j] }
      end
    end
    local q = w.guarded(pk_query(model, meta), guard_cols or {}, numbers, m + k)
    shape = compile_shape(db, numbers, "update", q:_final(), sets)
    node[SHAPE] = shape
  end
  local res = run_shape(shape, src)
  if ng > 0 and res.affected_rows == 0 then stale(model, inst) end
  if texts then w.keep_texts(inst, meta.json_fields, texts) end
  local read, before
  if meta.update_read and res.affected_rows > 0 then
    local rb = shape.read_back
    if rb == nil then
      rb = update_read_shape(model, meta, db, changes)
      shape.read_back = rb
    end
    if rb then
      local ksrc = {}
      bind_key(inst, pkfs, ksrc, 0, false)
      local row = run_shape(rb.select, ksrc).rows[1]
      if row then
        read, before = rb.read, {}
        for i = 1, #read do before[i] = rawget(inst, read[i].slot) end
        w.read_back(model, meta, inst, read, row)
      end
    end
  end
  return res.affected_rows, true, read, before
end

--- DELETE WHERE the stored key (and the guards).
-- @treturn integer affected rows
function M.delete_row(model, meta, inst, db, w)
  local pkfs = meta.composite.fields
  local k = #pkfs
  local src = {}
  bind_key(inst, pkfs, src, 0, true)
  local node, ng, guard_cols = w.apply_guards(meta, inst, src, k, meta.delete_shapes)
  local shape = node[SHAPE]
  if not shape or shape.db ~= db then
    local numbers = key_numbers({}, k, 0)
    local q = w.guarded(pk_query(model, meta), guard_cols or {}, numbers, k)
    shape = compile_shape(db, numbers, "delete", q:_final())
    node[SHAPE] = shape
  end
  local res = run_shape(shape, src)
  if ng > 0 and res.affected_rows == 0 then stale(model, inst) end
  inst[PERSISTED] = false
  inst[CHANGES] = NO_CHANGES
  return res.affected_rows
end

--- The condition excluding the record's own row (uniqueness checks):
-- `NOT (a = ? AND b = ?)` by the key it is stored under; nil when a part is nil.
function M.not_self(model, inst)
  local key = M.stored_key(inst)
  if not key then return nil end
  return M.key_condition(model, key):not_()
end

return M

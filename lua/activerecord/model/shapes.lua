--- Statement shapes of the model's writes: the SQL of an INSERT, UPDATE or
-- DELETE of one record comes from the compiler (`db:compile`) once per model,
-- column set and write guard, with slots where the values go, and a binding
-- plan fixed with the text. An UPDATE or DELETE is the model's primary-key
-- query (plus one condition per guard); an INSERT reads back the columns the
-- server fills with RETURNING or the primary-key query. The collectors that
-- gather a write's values are generated once per model.
-- @module activerecord.model.shapes
local errors = require("activerecord.errors")
local null = require("activerecord.null")
local query = require("activerecord.query")
local registry = require("activerecord.registry")

local M = {}

local type, rawget, rawset, setmetatable = type, rawget, rawset, setmetatable
local unpack = table.unpack

-- The model's backend: its own, or the default one; the model's table is
-- read on it first when it was not at the backend's schema version
-- (activerecord.model.reflect: one compare per call once read).
local reflect -- activerecord.model.reflect, loaded on first use (it requires this file)
local default_backend = registry.default_backend
local function backend_of(model)
  local b = rawget(model, "backend") or default_backend()
  if not b then
    errors.raise("ConfigError", model.name .. ": no backend (pass backend = db, or ar.set_default_backend(db))")
  end
  local meta = model._meta
  if meta.reflected_for ~= b or meta.schema_version ~= b._schema_version then
    reflect = reflect or require("activerecord.model.reflect")
    reflect.ensure(model, b)
  end
  return b
end
M.backend_of = backend_of

-- ---- statement shapes -------------------------------------------------------
-- Slots stand where values go; after compiling, the parameter list tells
-- where each lands (`plan`). Values are numbered: the written columns
-- first, then the primary key, then the guards' values.

local VALUE_SLOTS = setmetatable({}, { __index = function(t, i)
  local s = query.slot("<value " .. i .. ">")
  rawset(t, i, s)
  return s
end })
local PK_SLOT = query.slot("<primary key>")
M.PK_SLOT = PK_SLOT

-- Private keys of the shape tries (field indexes and guard columns are the others).
local SHAPE, GUARDS = {}, {}

local function child(node, key)
  local c = node[key]
  if not c then
    c = {}
    node[key] = c
  end
  return c
end

--- Compiles `kind` and fixes its binding plan: `numbers` maps each slot to
-- its value's number. Returns { sql, n, plan, consts, identity, db }.
local function compile_shape(db, numbers, kind, ...)
  local sql, params = db:compile(kind, ...)
  local n = params.n or #params
  local plan, consts, identity = {}, {}, true
  for p = 1, n do
    local k = numbers[params[p]]
    plan[p] = k or false
    if not k then consts[p] = params[p] end
    if k ~= p then identity = false end
  end
  return { sql = sql, n = n, plan = plan, consts = consts, identity = identity, db = db }
end
M.compile_shape = compile_shape

--- Runs a shape with the numbered values `src`.
local function run_shape(shape, src)
  local args = src
  if not shape.identity then
    local plan, consts = shape.plan, shape.consts
    args = {}
    for p = 1, shape.n do
      local k = plan[p]
      if k then args[p] = src[k] else args[p] = consts[p] end
    end
  end
  return shape.db:execute(shape.sql, unpack(args, 1, shape.n))
end
M.run_shape = run_shape

--- The model's primary-key query (no default scopes), built once.
local function pk_query(model, meta)
  local q = meta.pk_query
  if not q then
    -- (a subclass of single-table inheritance writes its row by key alone, as its base)
    q = (meta.sti_root or model):unscoped():where(query.col(model.primary_key):eq(PK_SLOT))
    meta.pk_query = q
  end
  return q
end
M.pk_query = pk_query

-- The guard conditions added to the primary-key query.
local function guarded(q, guard_cols, numbers, base)
  for j = 1, #guard_cols do
    local s = VALUE_SLOTS[base + j]
    numbers[s] = base + j
    q = q:where(query.col(guard_cols[j]):eq(s))
  end
  return q
end


local function db_value(f, v)
  if v == nil then return null end
  local to = f.to_db
  return to and to(v, f) or v
end

-- The fields an INSERT of this record writes (never a generated column).
local function written_fields(list, inst, changes)
  local out = {}
  for i = 1, #list do
    local f = list[i]
    if not f.generated and (inst[f.slot] ~= nil or (changes[f.name] ~= nil and not f.auto)) then
      out[#out + 1] = f
    end
  end
  return out
end

-- What an INSERT of these fields reads back: the model's fields it does not
-- write (server defaults, generated columns, values set by triggers), with
-- RETURNING where the server has it, else by the primary-key query. A
-- generated key alone comes from the insert id. Built once per written set.
local function insert_shape(model, meta, db, written)
  local pkf = model.pk_field
  local cols, is_written = {}, {}
  for i, f in ipairs(written) do
    cols[i] = f.column
    is_written[f] = true
  end
  local read = {}
  for _, f in ipairs(model.field_list) do
    if not is_written[f] and not (f == pkf and pkf.auto) then read[#read + 1] = f end
  end
  local opts, select
  if #read > 0 then
    if db:supports("returning") then
      local names = { pkf.column }
      for _, f in ipairs(read) do
        if f ~= pkf then names[#names + 1] = f.column end
      end
      opts = { returning = names }
    else
      local names = { pkf.name }
      for _, f in ipairs(read) do
        if f ~= pkf then names[#names + 1] = f.name end
      end
      local q = pk_query(model, meta):select(unpack(names))
      select = compile_shape(db, { [PK_SLOT] = 1 }, "select", q:_final())
    end
  end
  local shape = {
    db = db, sql = db:compile("insert", model.table, cols, 1, opts), n = #cols, identity = true,
    read = read, returning = opts ~= nil, select = select,
  }
  return shape
end

-- The values a write binds, in field order: for an INSERT every field with
-- a value or assigned nil (a generated key left out), for an UPDATE the
-- changed ones; a generated column never. A collector returns the values, their count, the JSON texts
-- by json_index (or nil) and the key of the column set (a bit per field).
-- It is generated once per model and kind, unrolled over the fields (the
-- text holds slot numbers, bits and field names, which are identifiers);
-- past 62 fields a loop does the same with a string key.
local MAX_BITS = 62

-- Binding field f's value v: to_db, or the text the validation just encoded.
local function bind_code(f, i, single)
  local j = f.json_index
  if j then
    -- a model with one JSON field hands back its text itself (no table)
    local keep = single and "texts = b" or ("texts = texts or {}; texts[%d] = b"):format(j)
    return ("if JV and JV[%d] == v then b = JT[%d]; JV[%d], JT[%d] = nil, nil else b = TO[%d](v, F[%d]) or v end\n"
      .. "if type(v) == 'table' then %s end\n"):format(j, j, j, j, i, i, keep)
  end
  if f.to_db then return ("b = TO[%d](v, F[%d]) or v\n"):format(i, i) end
  return "b = v\n"
end

local function generic_collector(list, creating, single)
  return function(inst, changes, scratch)
    local src, n, texts, idx = {}, 0, nil, {}
    for i = 1, #list do
      local f = list[i]
      local v, take
      if f.generated then
        take = false
      elseif creating then
        v = inst[f.slot]
        take = v ~= nil or (changes[f.name] ~= nil and not f.auto)
      elseif changes[f.name] ~= nil then
        v, take = inst[f.slot], true
      end
      if take then
        n = n + 1
        idx[n] = i
        local b = null
        if v ~= nil then
          local j = f.json_index
          if j and scratch and scratch.values[j] == v then
            b = scratch.texts[j]
            scratch.values[j], scratch.texts[j] = nil, nil
          else
            local to = f.to_db
            b = to and to(v, f) or v
          end
          if j and type(v) == "table" then
            if single then
              texts = b
            else
              if texts == nil then texts = {} end
              texts[j] = b
            end
          end
        end
        src[n] = b
      end
    end
    return src, n, texts, table.concat(idx, ",")
  end
end

--- The model's collector for an INSERT (`creating`) or an UPDATE.
function M.make_collector(model, creating)
  local list = model.field_list
  local json_fields = model._meta.json_fields
  local single = json_fields ~= nil and #json_fields == 1
  if #list > MAX_BITS then return generic_collector(list, creating, single) end
  local TO, F = {}, {}
  -- the values' list sized at once (for an UPDATE: every field, the key and
  -- two guards): no growth while it fills
  local size = #list + (creating and 0 or 3)
  local code = { "local TO, F, NULL, type = ...\nreturn function(inst, changes, scratch)\n"
    .. "local src = { " .. ("nil, "):rep(size - 1) .. "nil }\n"
    .. "local n, key, texts, v, b = 0, 0, nil, nil, nil\n"
    .. "local JV, JT\nif scratch then JV, JT = scratch.values, scratch.texts end\n" }
  for i, f in ipairs(list) do
    TO[i], F[i] = f.to_db or false, f
    local bit = 1 << (i - 1)
    if f.generated then -- computed by the server: never written
      code[#code + 1] = ""
    elseif creating then
      code[#code + 1] = ("v = inst[%d]\nif v ~= nil then\nn = n + 1\nkey = key + %d\n%ssrc[n] = b\n")
        :format(f.slot, bit, bind_code(f, i, single))
      if not f.auto then
        code[#code + 1] = ("elseif changes[%q] ~= nil then\nn = n + 1\nkey = key + %d\nsrc[n] = NULL\n")
          :format(f.name, bit)
      end
      code[#code + 1] = "end\n"
    else
      code[#code + 1] = ("if changes[%q] ~= nil then\nv = inst[%d]\nn = n + 1\nkey = key + %d\n"
        .. "if v == nil then src[n] = NULL else\n%ssrc[n] = b\nend\nend\n")
        :format(f.name, f.slot, bit, bind_code(f, i, single))
    end
  end
  code[#code + 1] = "return src, n, texts, key\nend\n"
  local name = ("=(%s collector %s)"):format(creating and "insert" or "update", model.name)
  return assert(load(table.concat(code), name, "t"))(TO, F, null, type)
end

-- Appends the guards' values to src (from position base + 1) and walks the
-- trie by their columns; returns the node, the guard count and the columns.
local function apply_guards(meta, inst, src, base, node)
  local guards = meta.write_guards
  if #guards == 0 then return node, 0 end
  local cols = {}
  for j = 1, #guards do
    local col, value = guards[j](inst)
    if col then
      cols[#cols + 1] = col
      src[base + #cols] = value
      node = child(child(node, GUARDS), col)
    end
  end
  return node, #cols, cols
end

M.db_value, M.written_fields, M.insert_shape, M.apply_guards = db_value, written_fields, insert_shape, apply_guards
M.shape_node, M.SHAPE, M.guarded, M.VALUE_SLOTS = child, SHAPE, guarded, VALUE_SLOTS

return M

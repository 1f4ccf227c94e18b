--- One job: unique-key read-back. When a statement skipped rows (INSERT
-- IGNORE) or updated them (ON DUPLICATE KEY UPDATE), the rows of a batch
-- are found again by a unique key of the table, and each batch row gets the
-- primary key of the table row that holds its key values, `false` (it was
-- skipped) or nil (cannot be told for certain: ids are never guessed,
-- design §8). The look-ups are builder queries; the table's unique keys,
-- foreign keys and checks come from the backend's introspection
-- (`db:indexes`, `db:foreign_keys`, `db:checks`).
-- @module activerecord.bulk.readback
local null = require("activerecord.null")
local query = require("activerecord.query")
local batches = require("activerecord.bulk.batches")

local M = {}

-- backend -> model -> the table's unique keys as lists of fields, PRIMARY
-- first (keys over columns the model lacks are left out), read again when
-- the backend's schema version moved on
local UNIQUE_KEYS = setmetatable({}, { __mode = "k" })

local function unique_keys(db, model)
  local per_db = UNIQUE_KEYS[db]
  if not per_db then
    per_db = setmetatable({}, { __mode = "k" })
    UNIQUE_KEYS[db] = per_db
  end
  local keys = per_db[model]
  if keys and keys.version == db._schema_version then return keys end
  -- db:indexes: PRIMARY first, then by name; columns in key order
  local out = {}
  for _, index in ipairs(db:indexes(model.table) or {}) do
    if index.unique then
      local key = {}
      for _, c in ipairs(index.columns) do
        local f = model.columns[c]
        if not f then
          key = nil
          break
        end
        key[#key + 1] = f
      end
      if key then out[#out + 1] = key end
    end
  end
  -- IGNORE skips a row for a duplicate key, and also for a failed foreign
  -- key or CHECK: with neither, a duplicate key is the only reason
  local fks, checks = db:foreign_keys(model.table), db:checks(model.table)
  out.keys_only = #(fks or {}) + #(checks or {}) == 0
  out.version = db._schema_version
  per_db[model] = out
  return out
end

local LOOKUP_CHUNK = 200

-- For the rows `{ k, values }` (values of `key`'s fields), the primary key
-- of each table row with equal key values; calls found(k, id) per pair. The
-- server compares (`col = ?` under the column's collation, as the unique
-- index does): SELECT pk AS id, (k1 = ? AND ...) AS m1, ... FROM table
-- WHERE k1 IN (...) AND ...; row r of the chunk matched where m<r> is 1.
local function lookup(db, model, key, rows, found)
  local pkf = model.pk_field
  local base = query.table(model.table, db)
  for first = 1, #rows, LOOKUP_CHUNK do
    local last = math.min(first + LOOKUP_CHUNK - 1, #rows)
    local items = { query.col(pkf.column):as("id") }
    local lists = {}
    for j = 1, #key do lists[j] = {} end
    for r = first, last do
      local vals, cond = rows[r][2], nil
      for j, f in ipairs(key) do
        local c = query.col(f.column):eq(vals[j])
        cond = cond and cond:and_(c) or c
        local list = lists[j]
        list[#list + 1] = vals[j]
      end
      items[#items + 1] = cond:as("m" .. (r - first + 1))
    end
    local q = base:select(table.unpack(items))
    for j, f in ipairs(key) do q = q:where(query.col(f.column):in_list(lists[j])) end
    for _, row in ipairs(q:all()) do
      local id = row.id
      if pkf.from_db then id = pkf.from_db(id, pkf) end
      for r = first, last do
        if row["m" .. (r - first + 1)] == 1 then found(rows[r][1], id) end
      end
    end
  end
end

local function same_row(batch, nfields, a, b)
  local p = batch.params
  local oa, ob = (a - 1) * nfields, (b - 1) * nfields
  for j = 1, nfields do if p[oa + j] ~= p[ob + j] then return false end end
  return true
end

-- Candidate ids per batch row, found by each key in turn.
local function candidates(db, model, fields, batch, keys, inserted)
  local nfields = #fields
  local pos_of = {}
  for j, f in ipairs(fields) do pos_of[f] = j end
  local cand, usable, blocked = {}, {}, {}
  for _, key in ipairs(keys) do
    local rows = {}
    for k = 1, batch.rows do
      local vals = {}
      for j, f in ipairs(key) do
        local v = pos_of[f] and batches.value(batch, nfields, k, pos_of[f])
        if v == nil or v == null then
          vals = nil
          break
        end
        vals[j] = v
      end
      -- a NULL in a unique key conflicts with nothing: that key cannot tell
      if vals then
        rows[#rows + 1] = { k, vals }
        usable[k] = true
      end
    end
    if #rows > 0 then
      lookup(db, model, key, rows, function(k, id)
        if inserted and not inserted(id) then
          -- a row this statement did not write holds its key: it was skipped
          blocked[k] = true
          return
        end
        local c = cand[k]
        if c == nil then cand[k] = id elseif c ~= id then cand[k] = false end
      end)
    end
  end
  return cand, usable, blocked
end

--- Outcomes of a batch's rows found again by the table's unique keys
-- (`prefer`, a list of fields, alone when given). `inserted(id)` says
-- whether this statement wrote the row `id` (IGNORE); without it (upsert)
-- every row was written.
-- @param db the backend
-- @tparam table model the model
-- @tparam table fields the batch's columns' fields
-- @tparam table batch the batch (see `batches.split`)
-- @tparam[opt] function inserted id -> whether this statement wrote it
-- @tparam[opt] table prefer the key to use
-- @treturn table out[k] = id, false (not written) or nil (unknown)
function M.resolve(db, model, fields, batch, inserted, prefer)
  local table_keys = unique_keys(db, model)
  local cand, usable, blocked = candidates(db, model, fields, batch, prefer and { prefer } or table_keys, inserted)
  local out, by_id = {}, {}
  for k = 1, batch.rows do
    local c = cand[k]
    if inserted and blocked[k] then
      out[k] = false
    elseif c == nil then
      -- no key found a row this statement wrote: skipped (IGNORE), when a key could tell
      if inserted and usable[k] then out[k] = false end
    elseif c ~= false then
      local list = by_id[c]
      if not list then
        list = {}
        by_id[c] = list
      end
      list[#list + 1] = k
      out[k] = c
    end
  end
  if inserted then
    -- one inserted row, several rows of the batch with its key: the server
    -- wrote the first it did not skip. That is the first of them when they
    -- are alike, or when only a duplicate key can skip a row (the others
    -- are not blocked); else which one it was cannot be told
    local nfields = #fields
    for _, list in pairs(by_id) do
      if #list > 1 then
        local alike = true
        for i = 2, #list do alike = alike and same_row(batch, nfields, list[1], list[i]) end
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

return M

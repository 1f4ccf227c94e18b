--- One job: batching and parameter building. The records' values go out as
-- multi-row INSERTs sized to stay under the server's max_allowed_packet and
-- the 65,535-placeholder limit of a prepared statement; each batch is one
-- flat list of database values (JSON already encoded, so the sizes counted
-- are the sizes sent), built straight from the records without a list per row.
-- @module activerecord.bulk.batches
local null = require("activerecord.null")
local access = require("activerecord.bulk.access")

local M = {}

local MAX_PLACEHOLDERS = 65535
M.DEFAULT_BATCH = 1000

local floor, max, min, move = math.floor, math.max, math.min, table.move

-- The server's packet limit, asked once per backend (a system variable:
-- constant text, nothing to build).
local function max_packet(db)
  if not db._max_packet then
    local row = db:query("SELECT @@max_allowed_packet AS p")[1]
    db._max_packet = row and tonumber(row.p) or 4 * 1024 * 1024
  end
  return db._max_packet
end

-- ---- a row's values, generated per model and column set ----------------------
-- One function per column set, unrolled over its fields: it puts a record's
-- database values at params[n + 1 ..] and returns the row's size (8 plus
-- each value's: a string's length + 9, anything else 9). With `known` (the
-- call validated every record and no user code ran after), a built-in
-- type's value is of its kind already: its size needs no type test, and a
-- JSON table the validation encoded is sent as that text.

-- What a built-in type's validated database value is.
local KIND = {
  integer = "number", float = "number", boolean = "number",
  string = "string", text = "string", binary = "string", enum = "string", uuid = "string", json = "string",
}

local function size_code(f, trusted)
  local kind = trusted and f.type_spec.builtin and KIND[f.type]
  if kind == "number" then return "size = size + 9\n" end
  if kind == "string" then return "size = size + #v + 9\n" end
  return "if type(v) == 'string' then size = size + #v + 9 else size = size + 9 end\n"
end

local function make_filler(fields, trusted)
  local TO, F, code = {}, {}, {
    "local TO, F, NULL, type = ...\nreturn function(params, n, t, idx, texts)\nlocal size, v, p = 8, nil, nil\n" }
  local json_j = 0
  for j, f in ipairs(fields) do
    TO[j], F[j] = f.to_db or false, f
    -- a plain read: the key is an array slot, nil only for an unset value
    code[#code + 1] = ("v = t[%s]\nif v == nil then\nv = NULL\nsize = size + 9\nelse\n"):format(access.key(f))
    if f.is_json then
      json_j = json_j + 1
      code[#code + 1] = ("p = texts and texts[%d]\np = p and p[idx]\n"):format(f.json_index)
        .. ("if p then v = p else v = TO[%d](v, F[%d]) end\n"):format(j, j)
    elseif f.to_db then
      code[#code + 1] = ("v = TO[%d](v, F[%d])\n"):format(j, j)
    end
    code[#code + 1] = size_code(f, trusted) .. ("end\nparams[n + %d] = v\n"):format(j)
  end
  code[#code + 1] = "return size\nend\n"
  return assert(load(table.concat(code), "=(bulk row values)", "t"))(TO, F, null, type)
end

-- Fillers per model, column set and trust (a column set by its fields' keys).
local FILLERS = setmetatable({}, { __mode = "k" })

local function filler(model, fields, trusted)
  local per = FILLERS[model]
  if not per then
    per = {}
    FILLERS[model] = per
  end
  local keys = {}
  for j = 1, #fields do keys[j] = tostring(access.key(fields[j])) end
  local id = (trusted and "t:" or "u:") .. table.concat(keys, ",")
  local fn = per[id]
  if not fn then
    fn = make_filler(fields, trusted)
    per[id] = fn
  end
  return fn
end

--- Splits the records `idxs` (positions in `instances`) into batches of
-- database values for `fields`. A batch is `{ params = { ... }, n = values,
-- rows = k, idxs = { instance positions } }`; value j of its row k is
-- `params[(k - 1) * #fields + j]`.
-- @param db the backend
-- @tparam table instances the records
-- @tparam table idxs the positions to send, in order
-- @tparam table fields the columns' fields
-- @tparam[opt] integer batch_size rows per statement at most
-- @tparam[opt] table known what `prepare.records` established
-- @treturn table the batches
function M.split(db, instances, idxs, fields, batch_size, known)
  local nfields = #fields
  local limit = floor(max_packet(db) * 0.8)
  local per_stmt = max(1, floor(MAX_PLACEHOLDERS / max(1, nfields)))
  batch_size = min(batch_size or M.DEFAULT_BATCH, per_stmt)
  local out = {}
  if #idxs == 0 then return out end
  local fill = filler(access.model_of(instances[idxs[1]]), fields, known ~= nil)
  local texts = known and known.texts
  local values_of = access.values
  local params, n, rows, bidx, bytes = {}, 0, 0, {}, 0
  for k = 1, #idxs do
    local idx = idxs[k]
    local size = fill(params, n, values_of(instances[idx]), idx, texts)
    if rows > 0 and (rows >= batch_size or bytes + size > limit) then
      -- the row just built starts the next batch: its values move over
      local moved = move(params, n + 1, n + nfields, 1, {})
      for j = n + 1, n + nfields do params[j] = nil end
      out[#out + 1] = { params = params, n = n, rows = rows, idxs = bidx }
      params, n, rows, bidx, bytes = moved, 0, 0, {}, 0
    end
    n = n + nfields
    rows = rows + 1
    bidx[rows] = idx
    bytes = bytes + size
  end
  if rows > 0 then out[#out + 1] = { params = params, n = n, rows = rows, idxs = bidx } end
  return out
end

--- Value j of row k of a batch.
-- @tparam table batch the batch
-- @tparam integer nfields values per row
-- @tparam integer k the row
-- @tparam integer j the column
function M.value(batch, nfields, k, j)
  return batch.params[(k - 1) * nfields + j]
end

return M

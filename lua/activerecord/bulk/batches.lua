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

local rawget, type, floor, max, min, move = rawget, type, math.floor, math.max, math.min, table.move

-- The server's packet limit, asked once per backend (a system variable:
-- constant text, nothing to build).
local function max_packet(db)
  if not db._max_packet then
    local row = db:query("SELECT @@max_allowed_packet AS p")[1]
    db._max_packet = row and tonumber(row.p) or 4 * 1024 * 1024
  end
  return db._max_packet
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
-- @treturn table the batches
function M.split(db, instances, idxs, fields, batch_size)
  local nfields = #fields
  local limit = floor(max_packet(db) * 0.8)
  local per_stmt = max(1, floor(MAX_PLACEHOLDERS / max(1, nfields)))
  batch_size = min(batch_size or M.DEFAULT_BATCH, per_stmt)
  local keys, to_db = {}, {}
  for j = 1, nfields do
    local f = fields[j]
    keys[j] = access.key(f)
    to_db[j] = f.to_db or false
  end
  local values_of = access.values
  local out = {}
  local params, n, rows, bidx, bytes = {}, 0, 0, {}, 0
  for k = 1, #idxs do
    local idx = idxs[k]
    local t = values_of(instances[idx])
    local size = 8
    for j = 1, nfields do
      local v = rawget(t, keys[j])
      if v == nil then
        v = null
      else
        local conv = to_db[j]
        if conv then v = conv(v, fields[j]) end
      end
      if type(v) == "string" then size = size + #v + 9 else size = size + 9 end
      params[n + j] = v
    end
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

--- One job: which rows a statement wrote, and their ids. Ids are never
-- guessed (design §8). RETURNING names the rows a statement wrote; without
-- it a multi-row INSERT's generated ids are insert_id, insert_id + inc, ...
-- (InnoDB hands a simple INSERT consecutive values at the session's
-- auto_increment_increment); a one-row upsert reads its key back through
-- `pk = LAST_INSERT_ID(pk)`. When rows were skipped (IGNORE) or updated
-- (ON DUPLICATE KEY UPDATE), they are found again by a unique key
-- (`readback`); a record whose row cannot be told for certain is left new.
-- @module activerecord.bulk.ids
local readback = require("activerecord.bulk.readback")

local M = {}

--- Outcome: written, and the record already holds its key.
M.WRITTEN = {}
local WRITTEN = M.WRITTEN

-- The session's auto_increment_increment, read on the connection the
-- INSERTs use (the caller pins it in a transaction). It can be SET per
-- session, so it is read for each call, never cached (a system variable:
-- constant text, nothing to build).
local function id_increment(db)
  local row = db:query("SELECT @@SESSION.auto_increment_increment AS i")[1]
  return math.tointeger(tonumber(row and row.i)) or 1
end

--- The INSERT text of one statement shape. A one-row upsert of a model with
-- a generated key also sets `pk = LAST_INSERT_ID(pk)`, so insert_id is the
-- row's key whether it was inserted, updated or left unchanged.
-- @param db the backend
-- @tparam table model the model
-- @tparam table columns the column names
-- @tparam integer nrows rows in the statement
-- @tparam table opts `ignore`, `upsert` (`{ update = columns }`), `returning`
-- @treturn string the SQL
function M.insert_sql(db, model, columns, nrows, opts)
  local upsert = opts.upsert
  local key = upsert and nrows == 1 and model.pk_field.auto and model.pk_field.column or nil
  return db:compile("insert", model.table, columns, nrows,
    { ignore = opts.ignore, upsert = upsert and { update = upsert.update, key = key }, returning = opts.returning })
end

--- A call's state of outcomes: `outcome[idx]` = id | WRITTEN | false | nil,
-- `returned[idx]` = the RETURNING row.
-- @param db the backend
-- @tparam table model the model
-- @tparam table plan `returning` (columns or nil), `upsert` (or nil)
-- @treturn table the settler: `settle(run_fields, with_pk, batch, res)`
function M.settler(db, model, plan)
  local pkf = model.pk_field
  local returning, upsert = plan.returning, plan.upsert
  local outcome, returned = {}, {}
  local inc -- auto_increment_increment, read when first needed
  local self = { outcome = outcome, returned = returned }

  local function apply(batch, out)
    local idxs = batch.idxs
    for k = 1, batch.rows do outcome[idxs[k]] = out[k] end
  end

  local function returned_rows(fields, batch, res)
    local rows, n, idxs = res.rows, batch.rows, batch.idxs
    if #rows == n then
      for k = 1, n do
        local idx = idxs[k]
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
    local out = readback.resolve(db, model, fields, batch, function(id) return wrote[id] end)
    for k = 1, n do
      local idx, id = idxs[k], out[k]
      outcome[idx] = id
      if id then returned[idx] = by_id[id] end
    end
  end

  local function upserted(fields, with_pk, batch, res)
    if batch.rows == 1 and pkf.auto then
      -- `pk = LAST_INSERT_ID(pk)`: insert_id is the row's key
      local id = res.insert_id
      local idx = batch.idxs[1]
      if id and id ~= 0 then outcome[idx] = id
      elseif with_pk then outcome[idx] = WRITTEN end
      return
    end
    apply(batch, readback.resolve(db, model, fields, batch, nil, upsert.unique_fields))
  end

  --- Records the outcome of one statement.
  function self.settle(fields, with_pk, batch, res)
    if returning then return returned_rows(fields, batch, res) end
    if upsert then return upserted(fields, with_pk, batch, res) end
    local n, idxs = batch.rows, batch.idxs
    local generated = pkf.auto and not with_pk
    local first = res.insert_id
    if res.affected_rows == n then
      if generated and first and first ~= 0 then
        inc = inc or id_increment(db)
        for k = 1, n do outcome[idxs[k]] = first + (k - 1) * inc end
      elseif not generated then
        for k = 1, n do outcome[idxs[k]] = WRITTEN end
      end
      return
    end
    -- IGNORE skipped some (no RETURNING): this statement's generated ids lie
    -- in insert_id + k * inc, k < n; a row outside was there before. Else
    -- which rows of explicit keys were skipped cannot be told: unknown
    if generated and first and first ~= 0 then
      inc = inc or id_increment(db)
      local last = first + (n - 1) * inc
      apply(batch, readback.resolve(db, model, fields, batch, function(id)
        return math.type(id) == "integer" and id >= first and id <= last and (id - first) % inc == 0
      end))
    end
  end

  return self
end

return M

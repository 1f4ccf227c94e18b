--- One job: the records a bulk write sends. Each row becomes a record
-- (defaults and casts; a record passed in is used as it is), is validated
-- and gets its before_save/before_create events, unless turned off; then
-- the columns any record sets are gathered, in field order.
-- @module activerecord.bulk.prepare
local errors = require("activerecord.errors")
local access = require("activerecord.bulk.access")

local M = {}

local getmetatable, type, rawget = getmetatable, type, rawget

local function invalid(model, i, errs, collector)
  errors.raise("ValidationError", ("%s row %d is invalid: %s"):format(model.name, i, collector:summary()),
    { errors = errs, row = i, model = model.name })
end

--- Records for `rows`: defaults, casts, validation and before-events.
-- @tparam table model the model
-- @tparam table rows attribute tables or unsaved records
-- @tparam table opts `validate`, `events`
-- @treturn table the records
-- @treturn ?table what the validation established, for `batches.split`,
--   when no user code ran after it (no before-events, no model `validate`,
--   no after_validate): `{ texts = { [j] = { [i] = JSON text of record i's
--   j-th JSON field } } }`: every value is of its built-in type's kind and
--   a validated JSON table need not be encoded again
-- @raise `QueryError` for a row that is not a table, `ValidationError`
--   (with `row`) for an invalid one, any error a before-event raised
function M.records(model, rows, opts)
  local instances = {}
  local build, mt = model._build, model._instance_mt
  local validate = opts.validate ~= false
  local events = opts.events ~= false
  local A = access
  local before_save = events and A.has_handlers(model, "before_save")
  local before_create = events and A.has_handlers(model, "before_create")
  local run_event = A.run_event
  local known, jlist, JV, JT
  if validate and not before_save and not before_create and not A.validation_hooks(model) then
    known = { texts = {} }
    local scratch
    jlist, scratch = A.json_scratch(model)
    if jlist then
      JV, JT = scratch.values, scratch.texts
      for j = 1, #jlist do known.texts[j] = {} end
    end
  end
  local valid = validate and A.validator(model)
  for i = 1, #rows do
    local attrs = rows[i]
    local inst = attrs
    if getmetatable(attrs) ~= mt then
      if type(attrs) ~= "table" then
        errors.raise("QueryError", ("%s row %d is a %s, not a table of attributes"):format(model.name, i, type(attrs)))
      end
      inst = build(model, attrs)
    end
    if validate then
      local ok, errs, collector = valid(inst)
      if not ok then invalid(model, i, errs, collector) end
      if jlist then -- the texts the validation encoded, taken before the next record's
        for j = 1, #jlist do
          local key, ji = jlist[j][1], jlist[j][2]
          local v = JV[ji]
          if v ~= nil then
            if rawget(A.values(inst), key) == v then known.texts[j][i] = JT[ji] end
            JV[ji], JT[ji] = nil, nil
          end
        end
      end
    end
    if before_save then run_event(model, "before_save", inst) end
    if before_create then run_event(model, "before_create", inst) end
    instances[i] = inst
  end
  return instances, known
end

--- The fields any record sets (a non-nil value), in field order.
-- @tparam table model the model
-- @tparam table instances the records
-- @treturn table the fields
function M.columns(model, instances)
  local list = model.field_list
  local missing, keys, nmissing = {}, {}, #list -- fields no record has set yet, and their keys
  local values, key = access.values, access.key
  for j = 1, nmissing do missing[j], keys[j] = list[j], key(list[j]) end
  local used = {}
  for i = 1, #instances do
    local t = values(instances[i])
    local j = 1
    while j <= nmissing do
      if rawget(t, keys[j]) ~= nil then
        used[missing[j]] = true
        missing[j], keys[j] = missing[nmissing], keys[nmissing]
        missing[nmissing], keys[nmissing] = nil, nil
        nmissing = nmissing - 1
      else
        j = j + 1
      end
    end
    if nmissing == 0 then break end
  end
  local fields = {}
  for _, f in ipairs(list) do
    if used[f] then fields[#fields + 1] = f end
  end
  return fields
end

return M

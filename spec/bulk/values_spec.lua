-- The values bulk writes bind, without a server: records prepared as
-- insert_all prepares them, then split into batches by the generated row
-- filler. A validated JSON table is encoded once (its validation's text is
-- sent) unless user code ran after the validation.
local ar = require("activerecord")
local json = require("activerecord.json")
local prepare = require("activerecord.bulk.prepare")
local batches = require("activerecord.bulk.batches")
local fake_backend = require("model.fake_backend")

local n = 0
local function model(events)
  n = n + 1
  local db = fake_backend()
  db._max_packet = 1024 * 1024
  return ar.Model{ name = "SpecBulkValues" .. n, table = "spec_bulk_values", backend = db, events = events,
    fields = { id = "integer", name = "string", active = "boolean", doc = "json" } }
end

local function split(M, rows, opts, batch_size)
  local instances, known = prepare.records(M, rows, opts or {})
  local fields = prepare.columns(M, instances)
  local idxs = {}
  for i = 1, #instances do idxs[i] = i end
  return batches.split(M:_backend(), instances, idxs, fields, batch_size, known), fields
end

describe("bulk row values (no server)", function()
  local real_encode, encodes
  before_each(function()
    real_encode, encodes = json.encode, 0
    json.encode = function(v) encodes = encodes + 1 return real_encode(v) end
  end)
  after_each(function() json.encode = real_encode end)

  it("binds every column in field order, nil as null, a validated JSON table encoded once", function()
    local M = model()
    local out, fields = split(M, { { name = "a", active = true, doc = { k = 1 } }, { name = "b" } })
    assert.are.equal(1, #out)
    local names = {}
    for i, f in ipairs(fields) do names[i] = f.name end
    assert.are.same({ "active", "doc", "name" }, names)
    assert.are.same({ 1, '{"k":1}', "a", ar.null, ar.null, "b" }, { table.unpack(out[1].params, 1, out[1].n) })
    assert.are.equal(1, encodes) -- by the validation; the batch sends its text
  end)

  it("encodes again when a before_save handler may have changed the table", function()
    local M = model({ before_save = function(r) r.doc.k = 2 end })
    local out = split(M, { { name = "a", doc = { k = 1 } } })
    assert.are.equal('{"k":2}', out[1].params[1])
    assert.are.equal(2, encodes)
  end)

  it("without validation, values are sized by their type and sent as they are", function()
    local M = model()
    local out = split(M, { { name = 5, doc = { k = 1 } } }, { validate = false })
    assert.are.same({ '{"k":1}', 5 }, { table.unpack(out[1].params, 1, out[1].n) })
    assert.are.equal(1, encodes)
  end)

  it("starts a new batch when the packet limit would be passed", function()
    local M = model()
    M:_backend()._max_packet = 100
    local long = ("x"):rep(30) -- 47 bytes a row against a limit of 80
    local out = split(M, { { name = long }, { name = long }, { name = "y" } })
    assert.are.equal(2, #out)
    assert.are.same({ 1 }, out[1].idxs)
    assert.are.same({ 2, 3 }, out[2].idxs)
  end)
end)

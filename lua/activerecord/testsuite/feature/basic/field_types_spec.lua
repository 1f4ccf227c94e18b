-- Field types: every built-in type round-trips at its edges through save +
-- find (and what the database holds is checked where the mapping matters);
-- column renaming; defaults; required, nullable and read-only fields.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/basic/types"

describe("model field types", function()
  local scenario = testsuite.default_scenario()
  local db, Rec

  setup(function()
    db = provider.setup(GROUP, scenario, { "typed_records" })
    Rec = ar.Model{ name = "TypesRecord", table = "typed_records", backend = db, fields = {
      id = { type = "integer", primary_key = true },
      int_v = "integer",
      float_v = "float",
      dec_v = { type = "decimal", precision = 12, scale = 2 },
      big_dec = { type = "decimal", precision = 65, scale = 30 },
      str_v = { type = "string", size = 10 },
      text_v = "text",
      bool_v = "boolean",
      date_v = "date",
      dt_v = "datetime",
      ts_v = "timestamp",
      time_v = "time",
      json_v = "json",
      enum_v = { type = "enum", values = { "small", "medium", "large" } },
      set_v = { type = "set", values = { "red", "green", "blue" } },
      bin_v = "binary",
      uuid_v = "uuid",
      uuid_bin = { type = "uuid", binary = true },
      name = { type = "string", size = 100, column = "user_name" },
    } }
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM typed_records")
  end)

  local function count()
    return db:query("SELECT COUNT(*) AS n FROM typed_records")[1].n
  end

  -- the column as the database holds it (the C core's conversion, no model)
  local function stored(id, column)
    return db:query("SELECT " .. column .. " AS v FROM typed_records WHERE id = ?", id)[1].v
  end

  -- save + find through a fresh instance
  local function roundtrip(attrs)
    local r = Rec:create(attrs)
    assert.is_number(r.id)
    local back = Rec:find(r.id)
    assert.is_not_nil(back)
    return back, r
  end

  -- the ValidationError `fn` raises, and that nothing was written
  local function refused(field, attrs)
    local before = count()
    local err = testsuite.error_of(function() return Rec:create(attrs) end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.is_table(err.errors[field], "no message for " .. field .. ": " .. tostring(err))
    assert.are.equal(before, count())
    return err.errors[field]
  end

  describe("integer", function()
    it("round-trips the 64-bit minimum, maximum, zero and -1", function()
      for _, v in ipairs({ math.mininteger, math.maxinteger, 0, -1 }) do
        local back = roundtrip{ int_v = v }
        assert.are.equal(v, back.int_v)
        assert.are.equal("integer", math.type(back.int_v))
      end
    end)

    it("accepts an integral float as an integer and refuses a fractional one", function()
      local back = roundtrip{ int_v = 42.0 }
      assert.are.equal("integer", math.type(back.int_v))
      assert.are.equal(42, back.int_v)
      refused("int_v", { int_v = 1.5 })
      refused("int_v", { int_v = "12" })
    end)
  end)

  describe("float", function()
    it("round-trips doubles exactly, including extremes", function()
      for _, v in ipairs({ 0.1, -2.5, 1.7976931348623157e308, 4.9e-324, 1 / 3 }) do
        local back = roundtrip{ float_v = v }
        assert.are.equal(v, back.float_v)
        assert.are.equal("float", math.type(back.float_v))
      end
      assert.are.equal("float", math.type(roundtrip{ float_v = 3 }.float_v))
    end)

    it("refuses NaN and infinities", function()
      refused("float_v", { float_v = 0 / 0 })
      refused("float_v", { float_v = math.huge })
      refused("float_v", { float_v = -math.huge })
    end)
  end)

  describe("decimal", function()
    it("round-trips exact strings at the edges of DECIMAL(12,2)", function()
      for _, v in ipairs({ "9999999999.99", "-9999999999.99", "0.01", "0.00", "-0.05" }) do
        assert.are.equal(v, roundtrip{ dec_v = v }.dec_v)
      end
      -- fewer decimals are padded by the server, never rounded
      assert.are.equal("12.50", roundtrip{ dec_v = "12.5" }.dec_v)
      assert.are.equal("100.00", roundtrip{ dec_v = "100" }.dec_v)
      assert.are.equal("7.00", roundtrip{ dec_v = 7 }.dec_v)
    end)

    it("round-trips a 65-digit DECIMAL(65,30) exactly", function()
      local v = "12345678901234567890123456789012345.123456789012345678901234567890"
      assert.are.equal(v, roundtrip{ big_dec = v }.big_dec)
      local neg = "-99999999999999999999999999999999999.999999999999999999999999999999"
      assert.are.equal(neg, roundtrip{ big_dec = neg }.big_dec)
    end)

    it("refuses values with more decimals than the scale", function()
      local msgs = refused("dec_v", { dec_v = "1.234" })
      assert.matches("2 decimal", msgs[1], 1, true)
    end)

    it("refuses values with more integer digits than precision - scale", function()
      local msgs = refused("dec_v", { dec_v = "12345678901.00" })
      assert.matches("10 digits", msgs[1], 1, true)
      -- the same without a decimal point, as a string and as an integer
      refused("dec_v", { dec_v = "12345678901" })
      refused("dec_v", { dec_v = "10000000000000" })
      refused("dec_v", { dec_v = 10000000000000 })
    end)

    it("takes floats only when they are exact at the scale", function()
      assert.are.equal("12.50", roundtrip{ dec_v = 12.5 }.dec_v)
      assert.are.equal("-0.25", roundtrip{ dec_v = -0.25 }.dec_v)
      local msgs = refused("dec_v", { dec_v = 1 / 3 })
      assert.matches("exactly", msgs[1], 1, true)
      refused("dec_v", { dec_v = 0.125 }) -- 3 decimals at scale 2
      refused("dec_v", { dec_v = 0 / 0 })
    end)

    it("refuses text that is not a decimal number", function()
      refused("dec_v", { dec_v = "12,50" })
      refused("dec_v", { dec_v = "1e5" })
      refused("dec_v", { dec_v = "abc" })
    end)
  end)

  describe("string", function()
    it("counts its maximum length in characters, not bytes", function()
      local ten = "ñandúçã€日本" -- 10 characters, 21 bytes
      assert.are.equal(10, utf8.len(ten))
      assert.are.equal(ten, roundtrip{ str_v = ten }.str_v)
      assert.are.equal("", roundtrip{ str_v = "" }.str_v)
      local msgs = refused("str_v", { str_v = ten .. "x" })
      assert.matches("10 characters", msgs[1], 1, true)
      refused("str_v", { str_v = 12 })
    end)
  end)

  describe("text", function()
    it("round-trips long text with newlines, quotes and multibyte characters", function()
      local v = ("line 'one' \"two\" \\ ünïcödé\n"):rep(1500)
      assert.are.equal(v, roundtrip{ text_v = v }.text_v)
    end)
  end)

  describe("boolean", function()
    it("stores TINYINT(1) 1/0 and reads true/false", function()
      local t = roundtrip{ bool_v = true }
      local f = roundtrip{ bool_v = false }
      assert.is_true(t.bool_v)
      assert.is_false(f.bool_v)
      assert.are.equal(1, stored(t.id, "bool_v"))
      assert.are.equal(0, stored(f.id, "bool_v"))
      refused("bool_v", { bool_v = 1 })
      refused("bool_v", { bool_v = "true" })
    end)
  end)

  describe("date", function()
    it("round-trips the range edges and accepts tables and epoch seconds", function()
      assert.are.equal("1000-01-01", roundtrip{ date_v = "1000-01-01" }.date_v)
      assert.are.equal("9999-12-31", roundtrip{ date_v = "9999-12-31" }.date_v)
      assert.are.equal("2024-02-29", roundtrip{ date_v = { year = 2024, month = 2, day = 29 } }.date_v)
      -- 2026-11-27 23:59:59 UTC
      assert.are.equal("2026-11-27", roundtrip{ date_v = 1795823999 }.date_v)
      refused("date_v", { date_v = "2026-13-01" })
      refused("date_v", { date_v = "27/11/2026" })
    end)
  end)

  for _, field in ipairs({ "dt_v", "ts_v" }) do
    describe(field == "dt_v" and "datetime" or "timestamp", function()
      it("accepts an os.time() integer, stored as UTC", function()
        local epoch = 1795816800 -- 2026-11-27 22:00:00 UTC
        assert.are.equal("2026-11-27 22:00:00.000000", roundtrip{ [field] = epoch }[field])
        local now = os.time()
        assert.are.equal(os.date("!%Y-%m-%d %H:%M:%S", now) .. ".000000",
          roundtrip{ [field] = now }[field])
      end)

      it("accepts an os.date(\"*t\") table as local time and stores it as UTC", function()
        local now = os.time()
        assert.are.equal(os.date("!%Y-%m-%d %H:%M:%S", now) .. ".000000",
          roundtrip{ [field] = os.date("*t", now) }[field])
      end)

      it("accepts a table marked utc = true as UTC", function()
        local now = os.time()
        local t = os.date("!*t", now)
        t.utc = true
        assert.are.equal(os.date("!%Y-%m-%d %H:%M:%S", now) .. ".000000", roundtrip{ [field] = t }[field])
      end)

      it("accepts ISO strings, converting offsets to UTC", function()
        local cases = {
          { "2026-11-27 10:00:00", "2026-11-27 10:00:00.000000" },
          { "2026-11-27T10:00:00Z", "2026-11-27 10:00:00.000000" },
          { "2026-11-27T10:00:00+02:00", "2026-11-27 08:00:00.000000" },
          { "2026-11-27T23:30:00-05:00", "2026-11-28 04:30:00.000000" },
          { "2026-01-01T00:15:00+0100", "2025-12-31 23:15:00.000000" },
          { "2026-11-27", "2026-11-27 00:00:00.000000" },
        }
        for _, c in ipairs(cases) do
          assert.are.equal(c[2], roundtrip{ [field] = c[1] }[field], c[1])
        end
      end)

      it("keeps fractional seconds, with and without an offset", function()
        assert.are.equal("2026-11-27 10:00:00.123456",
          roundtrip{ [field] = "2026-11-27 10:00:00.123456" }[field])
        assert.are.equal("2026-11-27 08:00:00.500000",
          roundtrip{ [field] = "2026-11-27T10:00:00.5+02:00" }[field])
        assert.are.equal("2026-11-27 22:00:00.250000",
          roundtrip{ [field] = 1795816800.25 }[field])
        assert.are.equal("2026-11-27 10:00:00.000001",
          roundtrip{ [field] = { year = 2026, month = 11, day = 27, hour = 10, usec = 1, utc = true } }[field])
      end)

      it("refuses malformed values", function()
        refused(field, { [field] = "2026-11-27 25:00" })
        refused(field, { [field] = "2026-11-27T10:00:00+2" })
        refused(field, { [field] = "2026-11-27 10:00:00.1234567" })
        refused(field, { [field] = { year = 2026 } })
        refused(field, { [field] = true })
      end)
    end)
  end

  describe("time", function()
    it("round-trips the TIME range with fractions", function()
      assert.are.equal("00:00:00.000000", roundtrip{ time_v = "00:00:00" }.time_v)
      assert.are.equal("838:59:59.000000", roundtrip{ time_v = "838:59:59" }.time_v)
      assert.are.equal("-838:59:59.000000", roundtrip{ time_v = "-838:59:59" }.time_v)
      assert.are.equal("-12:30:00.500000", roundtrip{ time_v = "-12:30:00.5" }.time_v)
      assert.are.equal("23:59:59.999999", roundtrip{ time_v = "23:59:59.999999" }.time_v)
      refused("time_v", { time_v = "noon" })
      refused("time_v", { time_v = 3600 })
    end)
  end)

  describe("json", function()
    it("round-trips nested tables and arrays", function()
      local v = { theme = "dark", tags = { 1, 2, 3 }, nested = { deep = { ok = true, n = 1.5 } },
                  list = { { a = 1 }, { b = "x" } } }
      assert.are.same(v, roundtrip{ json_v = v }.json_v)
      assert.are.same({ "a", "b", "c" }, roundtrip{ json_v = { "a", "b", "c" } }.json_v)
      assert.are.same({ 10, { 20, { 30 } } }, roundtrip{ json_v = { 10, { 20, { 30 } } } }.json_v)
    end)

    it("stores valid JSON the server can query", function()
      local r = Rec:create{ json_v = { key = "value_1", tags = { 1, 2 } } }
      local row = db:query("SELECT JSON_UNQUOTE(JSON_EXTRACT(json_v, '$.key')) AS k, "
        .. "JSON_LENGTH(json_v, '$.tags') AS n FROM typed_records WHERE id = ?", r.id)[1]
      assert.are.equal("value_1", row.k)
      assert.are.equal(2, row.n)
    end)

    it("round-trips scalars: numbers and booleans", function()
      assert.are.equal(42, roundtrip{ json_v = 42 }.json_v)
      assert.are.equal(1.5, roundtrip{ json_v = 1.5 }.json_v)
      assert.are.equal(true, roundtrip{ json_v = true }.json_v)
    end)

    it("round-trips a string (validation accepts strings as JSON values)", function()
      assert.are.equal("hello", roundtrip{ json_v = "hello" }.json_v)
      -- a string that looks like JSON stays a string
      assert.are.equal("[1,2]", roundtrip{ json_v = "[1,2]" }.json_v)
    end)

    it("refuses values JSON cannot encode", function()
      refused("json_v", { json_v = { f = function() end } })
      refused("json_v", { json_v = function() end })
    end)
  end)

  describe("enum", function()
    it("round-trips allowed values and refuses others before any SQL", function()
      for _, v in ipairs({ "small", "medium", "large" }) do
        assert.are.equal(v, roundtrip{ enum_v = v }.enum_v)
      end
      local msgs = refused("enum_v", { enum_v = "huge" })
      assert.matches("small", msgs[1], 1, true)
      local n = testsuite.count_statements(db, function()
        assert.is_false((Rec.new{ enum_v = "huge" }:valid()))
      end)
      assert.are.equal(0, n)
    end)
  end)

  describe("set", function()
    it("maps a Lua array to a SET and back", function()
      local r = roundtrip{ set_v = { "red", "blue" } }
      assert.are.same({ "red", "blue" }, r.set_v)
      assert.are.equal("red,blue", stored(r.id, "set_v"))
      -- the server keeps members in definition order
      assert.are.same({ "red", "green", "blue" }, roundtrip{ set_v = { "blue", "green", "red" } }.set_v)
      assert.are.same({}, roundtrip{ set_v = {} }.set_v)
      assert.are.same({ "green" }, roundtrip{ set_v = { "green" } }.set_v)
    end)

    it("refuses members outside the allowed values", function()
      refused("set_v", { set_v = { "red", "purple" } })
      refused("set_v", { set_v = { "red,green" } })
      refused("set_v", { set_v = "red" })
    end)
  end)

  describe("binary", function()
    it("round-trips bytes with embedded zeros and every byte value", function()
      local bytes = {}
      for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
      local v = "\0\0ab\0" .. table.concat(bytes) .. "\0"
      local back = roundtrip{ bin_v = v }
      assert.are.equal(#v, #back.bin_v)
      assert.are.equal(v, back.bin_v)
      assert.are.equal(#v, db:query("SELECT LENGTH(bin_v) AS n FROM typed_records WHERE id = ?",
        back.id)[1].n)
    end)
  end)

  describe("uuid", function()
    local U = "6f9619ff-8b86-d011-b42d-00c04fc964ff"

    it("stores the string form in CHAR(36), lower-cased", function()
      local r = roundtrip{ uuid_v = U:upper() }
      assert.are.equal(U, r.uuid_v)
      assert.are.equal(U, stored(r.id, "uuid_v"))
    end)

    it("stores 16 bytes in BINARY(16) and reads the string form back", function()
      local r = roundtrip{ uuid_bin = U }
      assert.are.equal(U, r.uuid_bin)
      local row = db:query("SELECT LENGTH(uuid_bin) AS n, LOWER(HEX(uuid_bin)) AS h "
        .. "FROM typed_records WHERE id = ?", r.id)[1]
      assert.are.equal(16, row.n)
      assert.are.equal((U:gsub("%-", "")), row.h)
      -- zero bytes survive
      local zeros = "00000000-0000-0000-0000-000000000000"
      assert.are.equal(zeros, roundtrip{ uuid_bin = zeros }.uuid_bin)
    end)

    it("refuses strings that are not UUIDs", function()
      refused("uuid_v", { uuid_v = "not-a-uuid" })
      refused("uuid_bin", { uuid_bin = U .. "0" })
    end)
  end)

  describe("NULL", function()
    it("round-trips nil for every type", function()
      local r = Rec:create{ int_v = 1 }
      local back = Rec:find(r.id)
      for name in pairs(Rec.fields) do
        if name ~= "id" and name ~= "int_v" then assert.is_nil(back[name], name) end
      end
    end)
  end)

  describe("column renaming", function()
    it("reads and writes the renamed column under the field name", function()
      local r = roundtrip{ name = "Ann" }
      assert.are.equal("Ann", r.name)
      assert.are.equal("Ann", stored(r.id, "user_name"))
      assert.are.equal(r.id, Rec:find_by{ name = "Ann" }.id)
      r.name = "Bo"
      r:save()
      assert.are.equal("Bo", stored(r.id, "user_name"))
      assert.are.equal("Bo", Rec:find(r.id):to_table().name)
    end)
  end)
end)

describe("model field options", function()
  local scenario = testsuite.default_scenario()
  local db
  local GROUP2 = "feature/basic/field_options"

  setup(function()
    db = provider.setup(GROUP2, scenario, { "typed_records" })
  end)

  teardown(function()
    provider.teardown(GROUP2, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM typed_records")
  end)

  local function count()
    return db:query("SELECT COUNT(*) AS n FROM typed_records")[1].n
  end

  it("applies a value default and a function default to new records", function()
    local calls = 0
    local Rec = ar.Model{ name = "OptionsDefaults", table = "typed_records", backend = db, fields = {
      int_v = { type = "integer", default = 5 },
      str_v = { type = "string", size = 10, default = function() calls = calls + 1 return "gen" .. calls end },
      json_v = { type = "json", default = function() return { fresh = true } end },
    } }
    local a, b = Rec.new{}, Rec.new{}
    assert.are.equal(5, a.int_v)
    assert.are.equal("gen1", a.str_v)
    assert.are.equal("gen2", b.str_v)
    -- a function default gives every record its own table
    a.json_v.fresh = false
    assert.is_true(b.json_v.fresh)
    a:save()
    local back = Rec:find(a.id)
    assert.are.equal(5, back.int_v)
    assert.are.equal("gen1", back.str_v)
    -- an explicit value wins over the default
    assert.are.equal(9, Rec:create{ int_v = 9 }.int_v)
    -- loaded records do not get defaults
    db:execute("INSERT INTO typed_records (str_v) VALUES (?)", "raw")
    local raw = Rec:find_by{ str_v = "raw" }
    assert.is_nil(raw.int_v)
  end)

  it("requires a required field, refusing nil and the empty string", function()
    local Rec = ar.Model{ name = "OptionsRequired", table = "typed_records", backend = db, fields = {
      str_v = { type = "string", size = 10, required = true },
    } }
    for _, attrs in ipairs({ {}, { str_v = "" } }) do
      local err = testsuite.error_of(function() return Rec:create(attrs) end)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.are.same({ "is required" }, err.errors.str_v)
    end
    assert.are.equal(0, count())
    assert.are.equal("ok", Rec:create{ str_v = "ok" }.str_v)
  end)

  it("refuses NULL for nullable = false and accepts it by default", function()
    local Rec = ar.Model{ name = "OptionsNullable", table = "typed_records", backend = db, fields = {
      int_v = { type = "integer", nullable = false },
      str_v = { type = "string", size = 10 },
    } }
    local err = testsuite.error_of(function() return Rec:create{ str_v = "x" } end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.is_table(err.errors.int_v)
    assert.is_nil(err.errors.str_v)
    assert.are.equal(0, count())
    local r = Rec:create{ int_v = 0 }
    assert.is_nil(Rec:find(r.id).str_v)
  end)

  it("refuses a read-only field on create (its default sets it) and never changes it afterwards", function()
    local Rec = ar.Model{ name = "OptionsReadonly", table = "typed_records", backend = db, fields = {
      str_v = { type = "string", size = 10, readonly = true, default = "fixed" },
      int_v = "integer",
    } }
    local before = db:query("SELECT COUNT(*) AS n FROM typed_records")[1].n
    local refused = testsuite.error_of(Rec.create, Rec, { str_v = "given", int_v = 1 })
    assert.is_true(ar.errors.is(refused, "ValidationError"), tostring(refused))
    assert.same({ "is read-only" }, refused.errors.str_v)
    assert.are.equal(before, db:query("SELECT COUNT(*) AS n FROM typed_records")[1].n)
    local r = Rec:create{ int_v = 1 }
    assert.are.equal("fixed", r.str_v)
    local err = testsuite.error_of(function() r.str_v = "changed" end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.is_table(err.errors.str_v)
    assert.are.equal("fixed", r.str_v)
    assert.is_false(r:is_dirty())
    local loaded = Rec:find(r.id)
    assert.has_error(function() loaded:update{ str_v = "changed" } end)
    assert.are.equal("fixed", db:query("SELECT str_v FROM typed_records WHERE id = ?", r.id)[1].str_v)
    -- other fields stay writable
    loaded = Rec:find(r.id)
    loaded:update{ int_v = 2 }
    assert.are.equal(2, Rec:find(r.id).int_v)
  end)
end)

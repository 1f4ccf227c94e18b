-- Type conversion of the C core (design §3), both directions, at the edges:
-- every value is written as a bound parameter (or an SQL literal where the
-- edge cannot be expressed as a Lua value), read back through a real table on
-- the server, and checked for its exact value AND its Lua type.
local db = require("support.db")
local core = db.core

local MiB = 1024 * 1024

-- ---- helpers ------------------------------------------------------------

local function count(conn, tbl)
  return conn:execute("SELECT COUNT(*) AS n FROM `" .. tbl .. "`").rows[1].n
end

local function column(res, name)
  for _, c in ipairs(res.columns) do
    if c.name == name then return c end
  end
  error("no column " .. name .. " in result")
end

-- Inserts `value` into `tbl`.`col` as a bound parameter and returns what a
-- fresh SELECT of that row gives back (and the whole result).
local function roundtrip(conn, tbl, col, value)
  local ins = conn:execute("INSERT INTO `" .. tbl .. "` (`" .. col .. "`) VALUES (?)", value)
  assert(ins.affected_rows == 1, "insert did not write a row")
  local res = conn:execute("SELECT `" .. col .. "` FROM `" .. tbl .. "` WHERE id = ?",
                           ins.insert_id)
  assert(#res.rows == 1, "row not found")
  return res.rows[1][col], res
end

-- Same, but the value is an SQL literal (for edges a Lua value cannot carry).
local function roundtrip_literal(conn, tbl, col, literal)
  local ins = conn:execute("INSERT INTO `" .. tbl .. "` (`" .. col .. "`) VALUES (" .. literal .. ")")
  local res = conn:execute("SELECT `" .. col .. "` FROM `" .. tbl .. "` WHERE id = ?",
                           ins.insert_id)
  return res.rows[1][col], res
end

-- Byte-exact comparison that never prints the (possibly huge) strings.
local function assert_same_bytes(expected, got, what)
  assert.are.equal("string", type(got), what .. ": not a string")
  assert.are.equal(#expected, #got, what .. ": length differs")
  if expected ~= got then
    local i = 1
    while expected:byte(i) == got:byte(i) do i = i + 1 end
    error(string.format("%s: first difference at byte %d (expected %d, got %d)",
                        what, i, expected:byte(i), got:byte(i) or -1), 2)
  end
end

local function all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

-- Binary-safe pseudo-random bytes (every byte value, many zeros).
local function blob_of(n)
  local chunk = all_bytes() .. string.rep("\0", 64) .. "\1\0\255\0"
  return string.rep(chunk, n // #chunk + 1):sub(1, n)
end

describe("core type conversion", function()
  local conn
  local created = {}

  local function recreate(name, body)
    db.recreate(conn, name, body)
    created[name] = true
  end

  setup(function()
    conn = db.connect()
  end)

  after_each(function()
    for name in pairs(created) do
      conn:execute("DROP TABLE IF EXISTS `" .. name .. "`")
      created[name] = nil
    end
  end)

  teardown(function()
    if conn then conn:close() end
  end)

  -- ---- integers ----------------------------------------------------------

  describe("BIGINT", function()
    before_each(function()
      recreate("types_bigint", [[id INT AUTO_INCREMENT PRIMARY KEY,
        s BIGINT NULL, u BIGINT UNSIGNED NULL]])
    end)

    it("round-trips math.mininteger and math.maxinteger as exact integers", function()
      -- 2^53 + 1 and maxinteger - 1 have no exact double: they catch any
      -- detour through floating point
      for _, n in ipairs{ math.mininteger, math.maxinteger, math.mininteger + 1,
                          math.maxinteger - 1, 9007199254740993, -1, 0 } do
        local v = roundtrip(conn, "types_bigint", "s", n)
        assert.are.equal("integer", math.type(v))
        assert.are.equal(n, v)
      end
    end)

    it("reads BIGINT UNSIGNED max as the exact string 18446744073709551615", function()
      local v = roundtrip(conn, "types_bigint", "u", "18446744073709551615")
      assert.are.equal("string", type(v))
      assert.are.equal("18446744073709551615", v)
      v = roundtrip_literal(conn, "types_bigint", "u", "18446744073709551615")
      assert.are.equal("18446744073709551615", v)
    end)

    it("reads 2^63 as \"9223372036854775808\", never wrapped to a negative", function()
      local v = roundtrip(conn, "types_bigint", "u", "9223372036854775808")
      assert.are.equal("string", type(v))
      assert.are.equal("9223372036854775808", v)
      assert.are_not.equal(math.mininteger, v)
    end)

    it("reads unsigned values up to 2^63-1 as integers", function()
      for _, n in ipairs{ 0, 42, math.maxinteger } do
        local v = roundtrip(conn, "types_bigint", "u", n)
        assert.are.equal("integer", math.type(v))
        assert.are.equal(n, v)
      end
    end)

    it("rejects a negative integer into BIGINT UNSIGNED (DataError 1264), writing nothing", function()
      local err = db.error_of(conn.execute, conn,
                              "INSERT INTO types_bigint (u) VALUES (?)", math.mininteger)
      assert.are.equal("DataError", err.kind)
      assert.are.equal(1264, err.code)
      assert.are.equal(0, count(conn, "types_bigint"))
    end)
  end)

  describe("TINYINT, SMALLINT, MEDIUMINT, INT", function()
    local cases = {
      { "TINYINT", -128, 127, 255 },
      { "SMALLINT", -32768, 32767, 65535 },
      { "MEDIUMINT", -8388608, 8388607, 16777215 },
      { "INT", -2147483648, 2147483647, 4294967295 },
    }
    for _, case in ipairs(cases) do
      local typ, min, max, umax = case[1], case[2], case[3], case[4]

      it(typ .. " signed and unsigned bounds round-trip as integers", function()
        recreate("types_int", "id INT AUTO_INCREMENT PRIMARY KEY, s " .. typ ..
                 " NULL, u " .. typ .. " UNSIGNED NULL")
        conn:execute("INSERT INTO types_int (s, u) VALUES (?, ?), (?, ?)", min, 0, max, umax)
        local res = conn:execute("SELECT s, u FROM types_int ORDER BY id")
        local expected = { { min, 0 }, { max, umax } }
        for i, row in ipairs(res.rows) do
          assert.are.equal("integer", math.type(row.s))
          assert.are.equal("integer", math.type(row.u))
          assert.are.equal(expected[i][1], row.s)
          assert.are.equal(expected[i][2], row.u)
        end
        assert.are.equal(2, #res.rows)
        assert.are.equal(typ, column(res, "s").type)
        assert.is_false(column(res, "s").unsigned)
        assert.are.equal(typ, column(res, "u").type)
        assert.is_true(column(res, "u").unsigned)
      end)

      it(typ .. " out of range raises DataError 1264 and writes nothing", function()
        recreate("types_int", "id INT AUTO_INCREMENT PRIMARY KEY, s " .. typ ..
                 " NULL, u " .. typ .. " UNSIGNED NULL")
        for _, bad in ipairs{ { "s", max + 1 }, { "s", min - 1 }, { "u", umax + 1 }, { "u", -1 } } do
          local err = db.error_of(conn.execute, conn,
                                  "INSERT INTO types_int (" .. bad[1] .. ") VALUES (?)", bad[2])
          assert.are.equal("DataError", err.kind)
          assert.are.equal(1264, err.code)
        end
        assert.are.equal(0, count(conn, "types_int"))
      end)
    end
  end)

  describe("YEAR", function()
    it("reads as an integer", function()
      recreate("types_year", "id INT AUTO_INCREMENT PRIMARY KEY, y YEAR NULL")
      for _, n in ipairs{ 1901, 2024, 2155 } do
        local v = roundtrip(conn, "types_year", "y", n)
        assert.are.equal("integer", math.type(v))
        assert.are.equal(n, v)
      end
      local v = roundtrip(conn, "types_year", "y", "1999")
      assert.are.equal("integer", math.type(v))
      assert.are.equal(1999, v)
    end)
  end)

  -- ---- DECIMAL -----------------------------------------------------------

  describe("DECIMAL(65,30)", function()
    local max = string.rep("9", 35) .. "." .. string.rep("9", 30)
    local tiny = "0." .. string.rep("0", 29) .. "1"

    before_each(function()
      recreate("types_decimal", "id INT AUTO_INCREMENT PRIMARY KEY, d DECIMAL(65,30) NULL")
    end)

    it("keeps the maximum 65-digit value exact, as a string", function()
      local v, res = roundtrip(conn, "types_decimal", "d", max)
      assert.are.equal("string", type(v))
      assert.are.equal(max, v)
      assert.are.equal("DECIMAL", column(res, "d").type)
      assert.are.equal(30, column(res, "d").decimals)
    end)

    it("keeps the negative maximum and the smallest step exact", function()
      assert.are.equal("-" .. max, roundtrip(conn, "types_decimal", "d", "-" .. max))
      assert.are.equal(tiny, roundtrip(conn, "types_decimal", "d", tiny))
      assert.are.equal("-" .. tiny, roundtrip(conn, "types_decimal", "d", "-" .. tiny))
    end)

    it("reads the column's scale (trailing zeros), not a float rendering", function()
      local v = roundtrip(conn, "types_decimal", "d", "1.5")
      assert.are.equal("1.5" .. string.rep("0", 29), v)
    end)

    it("becomes a float with the decimal = \"number\" connect option", function()
      conn:execute("INSERT INTO types_decimal (d) VALUES (?), (?), (?)", max, "-1.5", "0.1")
      local c2 = db.connect{ decimal = "number" }
      local ok, res = pcall(c2.execute, c2, "SELECT d FROM types_decimal ORDER BY id")
      c2:close()
      assert(ok, tostring(res))
      local expected = { 1e35, -1.5, 0.1 }
      for i, want in ipairs(expected) do
        local v = res.rows[i].d
        assert.are.equal("float", math.type(v))
        assert.are.equal(want, v)
      end
    end)
  end)

  -- ---- FLOAT and DOUBLE --------------------------------------------------

  describe("FLOAT and DOUBLE", function()
    before_each(function()
      recreate("types_real", "id INT AUTO_INCREMENT PRIMARY KEY, f FLOAT NULL, d DOUBLE NULL")
    end)

    it("FLOAT 1.1 reads back as the float 1.1, not 1.100000023841858", function()
      for _, x in ipairs{ 1.1, 0.1, -2.5, 3.14159, 1234.567, 1e-10, 3.4e38 } do
        local v = roundtrip(conn, "types_real", "f", x)
        assert.are.equal("float", math.type(v))
        assert.are.equal(x, v)
      end
    end)

    it("DOUBLE round-trips exactly at the edges", function()
      local values = { 0.1 + 0.2, 1e308, -2.2250738585072014e-308, 1.7976931348623157e308,
                       math.pi, -0.5 }
      for _, x in ipairs(values) do
        local v = roundtrip(conn, "types_real", "d", x)
        assert.are.equal("float", math.type(v))
        assert.are.equal(x, v) -- exact: 0.30000000000000004, not 0.3
      end
    end)

    it("an integer parameter into DOUBLE reads back as a float", function()
      local v = roundtrip(conn, "types_real", "d", 7)
      assert.are.equal("float", math.type(v))
      assert.are.equal(7.0, v)
      v = roundtrip(conn, "types_real", "f", 7)
      assert.are.equal("float", math.type(v))
      assert.are.equal(7.0, v)
    end)
  end)

  -- ---- temporal ----------------------------------------------------------

  describe("temporal types", function()
    before_each(function()
      recreate("types_time", [[id INT AUTO_INCREMENT PRIMARY KEY,
        dt6 DATETIME(6) NULL, dt0 DATETIME NULL, da DATE NULL,
        t0 TIME NULL, t6 TIME(6) NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL]])
    end)

    local function check(col, input, expected)
      local v, res = roundtrip(conn, "types_time", col, input)
      assert.are.equal("string", type(v))
      assert.are.equal(expected or input, v)
      return res
    end

    it("DATETIME(6) keeps microseconds", function()
      local res = check("dt6", "2024-02-29 23:59:59.123456")
      check("dt6", "1000-01-01 00:00:00.000001")
      check("dt6", "9999-12-31 23:59:59.999999")
      check("dt6", "2024-01-01 12:00:00", "2024-01-01 12:00:00.000000")
      assert.are.equal("DATETIME", column(res, "dt6").type)
      assert.are.equal(6, column(res, "dt6").decimals)
    end)

    it("DATETIME(0) has no fractional part", function()
      local res = check("dt0", "2024-02-29 23:59:59")
      check("dt0", "1000-01-01 00:00:00")
      assert.are.equal("DATETIME", column(res, "dt0").type)
    end)

    it("DATE reads as YYYY-MM-DD", function()
      local res = check("da", "2024-02-29")
      check("da", "1000-01-01")
      check("da", "9999-12-31")
      assert.are.equal("DATE", column(res, "da").type)
    end)

    it("TIME keeps negative and >24h values, with and without microseconds", function()
      local res = check("t6", "-838:59:59.000000")
      check("t6", "838:59:59", "838:59:59.000000")
      check("t6", "-00:00:00.000001")
      check("t6", "25:30:00.5", "25:30:00.500000")
      check("t0", "838:59:59")
      check("t0", "-838:59:59")
      check("t0", "00:00:00")
      assert.are.equal("TIME", column(res, "t6").type)
    end)

    it("TIMESTAMP(3) reads in the session time_zone given at connect", function()
      local utc = db.connect{ time_zone = "+00:00" }
      local ok, err = pcall(function()
        local first = utc:execute("INSERT INTO types_time (ts3) VALUES (?)", "1970-01-01 00:00:01.000")
        utc:execute("INSERT INTO types_time (ts3) VALUES (?)", "2038-01-19 03:14:07.999")
        local res = utc:execute("SELECT ts3 FROM types_time ORDER BY id")
        assert.are.equal("1970-01-01 00:00:01.000", res.rows[1].ts3)
        assert.are.equal("2038-01-19 03:14:07.999", res.rows[2].ts3)
        assert.are.equal("string", type(res.rows[2].ts3))
        assert.are.equal("TIMESTAMP", column(res, "ts3").type)
        -- the same instant seen from +02:00: the option really sets the zone
        local east = db.connect{ time_zone = "+02:00" }
        local r2 = east:execute("SELECT ts3 FROM types_time WHERE id = ?", first.insert_id)
        east:close()
        assert.are.equal("1970-01-01 02:00:01.000", r2.rows[1].ts3)
      end)
      utc:close()
      assert(ok, err)
    end)

    it("zero dates stay strings under a permissive sql_mode", function()
      local loose = db.connect{ sql_mode = "" }
      local ok, err = pcall(function()
        assert.are.equal("", loose:execute("SELECT @@SESSION.sql_mode AS m").rows[1].m)
        loose:execute("INSERT INTO types_time (da, dt0, dt6) VALUES (?, ?, ?)",
                      "0000-00-00", "0000-00-00 00:00:00", "0000-00-00 00:00:00")
        loose:execute("INSERT INTO types_time (da, dt0) VALUES ('0000-00-00', '0000-00-00 00:00:00')")
        local res = loose:execute("SELECT da, dt0, dt6 FROM types_time ORDER BY id")
        for _, row in ipairs(res.rows) do
          assert.are.equal("string", type(row.da))
          assert.are.equal("0000-00-00", row.da)
          assert.are.equal("0000-00-00 00:00:00", row.dt0)
        end
        assert.are.equal("0000-00-00 00:00:00.000000", res.rows[1].dt6)
        assert.are.equal(2, #res.rows)
      end)
      loose:close()
      assert(ok, err)
    end)
  end)

  -- ---- BIT, ENUM, SET ----------------------------------------------------

  describe("BIT", function()
    before_each(function()
      recreate("types_bit", "id INT AUTO_INCREMENT PRIMARY KEY, " ..
                            "b1 BIT(1) NULL, b8 BIT(8) NULL, b64 BIT(64) NULL")
    end)

    it("BIT(1) and BIT(8) read as integers", function()
      local v, res = roundtrip_literal(conn, "types_bit", "b1", "b'1'")
      assert.are.equal("integer", math.type(v))
      assert.are.equal(1, v)
      assert.are.equal("BIT", column(res, "b1").type)
      v = roundtrip_literal(conn, "types_bit", "b1", "b'0'")
      assert.are.equal("integer", math.type(v))
      assert.are.equal(0, v)
      v = roundtrip_literal(conn, "types_bit", "b8", "b'11111111'")
      assert.are.equal("integer", math.type(v))
      assert.are.equal(255, v)
      v = roundtrip(conn, "types_bit", "b8", 165)
      assert.are.equal("integer", math.type(v))
      assert.are.equal(165, v)
    end)

    it("BIT(64) all ones reads as the string 18446744073709551615", function()
      local v = roundtrip_literal(conn, "types_bit", "b64", "b'" .. string.rep("1", 64) .. "'")
      assert.are.equal("string", type(v))
      assert.are.equal("18446744073709551615", v)
      v = roundtrip(conn, "types_bit", "b64", -1) -- integer -1 is all 64 bits set
      assert.are.equal("18446744073709551615", v)
    end)

    it("BIT(64) below 2^63 is an integer, the top bit alone is an exact string", function()
      local v = roundtrip(conn, "types_bit", "b64", math.maxinteger)
      assert.are.equal("integer", math.type(v))
      assert.are.equal(math.maxinteger, v)
      v = roundtrip_literal(conn, "types_bit", "b64", "b'1" .. string.rep("0", 63) .. "'")
      assert.are.equal("9223372036854775808", v)
    end)
  end)

  describe("ENUM and SET", function()
    before_each(function()
      recreate("types_enum", [[id INT AUTO_INCREMENT PRIMARY KEY,
        e ENUM('small','medium','large') NULL, s SET('x','y','z') NULL]])
    end)

    it("ENUM reads as its label", function()
      local v, res = roundtrip(conn, "types_enum", "e", "medium")
      assert.are.equal("medium", v)
      assert.are.equal("ENUM", column(res, "e").type)
      -- an integer parameter selects by index
      assert.are.equal("large", roundtrip(conn, "types_enum", "e", 3))
    end)

    it("SET reads as the comma-separated string \"x,y\" in definition order", function()
      local v, res = roundtrip(conn, "types_enum", "s", "y,x")
      assert.are.equal("string", type(v))
      assert.are.equal("x,y", v)
      assert.are.equal("SET", column(res, "s").type)
      assert.are.equal("", roundtrip(conn, "types_enum", "s", ""))
    end)
  end)

  -- ---- JSON ----------------------------------------------------------------

  describe("JSON (MariaDB: LONGTEXT + CHECK, detected from extended metadata)", function()
    local doc = '{"name":"Ann","tags":["a","b"],"nested":{"deep":[1,{"x":null}],"ok":true},' ..
                '"none":null,"big":9007199254740993,"min":-9223372036854775808,"f":2.5,' ..
                '"esc":"\\u00e9\\ud83d\\ude00\\n"}'

    before_each(function()
      recreate("types_json", "id INT AUTO_INCREMENT PRIMARY KEY, j JSON NULL, t LONGTEXT NULL")
    end)

    it("decodes nested objects and arrays to tables, JSON null to core.null", function()
      local v, res = roundtrip(conn, "types_json", "j", doc)
      assert.are.equal("table", type(v))
      assert.are.equal("Ann", v.name)
      assert.are.same({ "a", "b" }, v.tags)
      assert.are.equal("table", type(v.nested.deep))
      assert.are.equal(1, v.nested.deep[1])
      assert.are.equal(core.null, v.nested.deep[2].x)
      assert.is_true(v.nested.ok)
      assert.are.equal(core.null, v.none)
      assert.are.equal("JSON", column(res, "j").type)
    end)

    it("keeps JSON integers as exact Lua integers and decodes escapes", function()
      local v = roundtrip(conn, "types_json", "j", doc)
      assert.are.equal("integer", math.type(v.nested.deep[1]))
      assert.are.equal("integer", math.type(v.big))
      assert.are.equal(9007199254740993, v.big) -- not rounded through a double
      assert.are.equal(math.mininteger, v.min)
      assert.are.equal("float", math.type(v.f))
      assert.are.equal(2.5, v.f)
      assert.are.equal("\u{E9}\u{1F600}\n", v.esc)
    end)

    it("is LONGTEXT on the wire: the type comes from metadata, not the type code", function()
      local _, res = roundtrip(conn, "types_json", "j", "[]")
      assert.are.equal(252, column(res, "j").type_code) -- MYSQL_TYPE_BLOB
      assert.are.equal("JSON", column(res, "j").type)
    end)

    it("a top-level JSON null document is core.null, unlike SQL NULL (absent)", function()
      conn:execute("INSERT INTO types_json (j) VALUES ('null'), (NULL)")
      local res = conn:execute("SELECT j FROM types_json ORDER BY id")
      assert.are.equal(core.null, res.rows[1].j)
      assert.is_nil(res.rows[2].j)
    end)

    it("leaves JSON-looking text in a plain LONGTEXT column a string", function()
      local v, res = roundtrip(conn, "types_json", "t", doc)
      assert.are.equal("string", type(v))
      assert.are.equal(doc, v)
      assert.are.equal("TEXT", column(res, "t").type)
    end)

    it("rejects invalid JSON through the column's CHECK", function()
      local err = db.error_of(conn.execute, conn, "INSERT INTO types_json (j) VALUES (?)", "{nope")
      assert.are.equal("IntegrityError", err.kind)
      assert.are.equal(4025, err.code)
      assert.are.equal(0, count(conn, "types_json"))
    end)
  end)

  -- ---- strings and bytes ---------------------------------------------------

  describe("binary data", function()
    before_each(function()
      recreate("types_bin", [[id INT AUTO_INCREMENT PRIMARY KEY,
        vb VARBINARY(300) NULL, bl BLOB NULL, lb LONGBLOB NULL, tx TEXT NULL,
        vc VARCHAR(16) NULL]])
    end)

    it("keeps embedded zero bytes in VARBINARY and BLOB", function()
      local s = "a\0b\0\0c\0"
      local v, res = roundtrip(conn, "types_bin", "vb", s)
      assert_same_bytes(s, v, "VARBINARY")
      assert.are.equal("VARBINARY", column(res, "vb").type)
      assert.is_true(column(res, "vb").binary)
      v, res = roundtrip(conn, "types_bin", "bl", s)
      assert_same_bytes(s, v, "BLOB")
      assert.are.equal("BLOB", column(res, "bl").type)
    end)

    it("round-trips all 256 byte values", function()
      local s = all_bytes()
      assert_same_bytes(s, roundtrip(conn, "types_bin", "vb", s), "VARBINARY")
      assert_same_bytes(s, roundtrip(conn, "types_bin", "bl", s), "BLOB")
      assert_same_bytes(s .. s, roundtrip(conn, "types_bin", "lb", s .. s), "LONGBLOB")
    end)

    it("round-trips an 8 MiB LONGBLOB byte-exactly", function()
      local s = blob_of(8 * MiB)
      local v = roundtrip(conn, "types_bin", "lb", s)
      assert_same_bytes(s, v, "8 MiB LONGBLOB")
      local len = conn:execute("SELECT LENGTH(lb) AS n FROM types_bin").rows[1].n
      assert.are.equal(8 * MiB, len)
    end)

    it("round-trips a 16 MiB LONGBLOB byte-exactly", function()
      local size = 16 * MiB
      local max = conn:execute("SELECT @@max_allowed_packet AS m").rows[1].m
      -- the execute packet carries the value plus a few header bytes
      if max < size + 1024 then
        pending(string.format("16 MiB blob skipped: server max_allowed_packet is %d bytes, " ..
                              "needs at least %d", max, size + 1024))
        return
      end
      local s = blob_of(size)
      assert_same_bytes(s, roundtrip(conn, "types_bin", "lb", s), "16 MiB LONGBLOB")
    end)

    it("round-trips the largest blob one packet carries (up to 16 MiB)", function()
      local max = conn:execute("SELECT @@max_allowed_packet AS m").rows[1].m
      local size = math.min(16 * MiB, max - 1024)
      local s = blob_of(size)
      assert_same_bytes(s, roundtrip(conn, "types_bin", "lb", s), size .. "-byte LONGBLOB")
    end)

    it("keeps the empty string distinct from NULL", function()
      local v = roundtrip(conn, "types_bin", "vc", "")
      assert.are.equal("", v)
      assert.are.equal("", roundtrip(conn, "types_bin", "lb", ""))
      local n = conn:execute("SELECT COUNT(*) AS n FROM types_bin WHERE vc = '' OR lb = ''").rows[1].n
      assert.are.equal(2, n)
    end)

    it("keeps every value exact when row sizes grow and shrink within one result", function()
      local sizes = { 10, 5000, 10, 100000, 3, 0, 70000 }
      local values = {}
      for i, n in ipairs(sizes) do
        values[i] = blob_of(n + i):sub(i + 1) -- a different byte pattern per row
        conn:execute("INSERT INTO types_bin (lb, tx) VALUES (?, ?)", values[i], ("t"):rep(n % 60000))
      end
      local res = conn:execute("SELECT lb, tx FROM types_bin ORDER BY id")
      assert.are.equal(#sizes, #res.rows)
      for i, row in ipairs(res.rows) do
        assert_same_bytes(values[i], row.lb, "row " .. i .. " via execute")
        assert.are.equal(sizes[i] % 60000, #row.tx)
      end
      local i = 0
      for row in conn:each("SELECT lb FROM types_bin ORDER BY id") do
        i = i + 1
        assert_same_bytes(values[i], row.lb, "row " .. i .. " via each")
      end
      assert.are.equal(#sizes, i)
    end)

    it("round-trips invalid UTF-8 in VARBINARY and BLOB", function()
      local s = "\xff\xfe"
      assert_same_bytes(s, roundtrip(conn, "types_bin", "vb", s), "VARBINARY")
      assert_same_bytes(s, roundtrip(conn, "types_bin", "bl", s), "BLOB")
    end)

    it("rejects invalid UTF-8 in a utf8mb4 TEXT column (DataError 1366), writing nothing", function()
      local err = db.error_of(conn.execute, conn, "INSERT INTO types_bin (tx) VALUES (?)", "ok\xff\xfe")
      assert.are.equal("DataError", err.kind)
      assert.are.equal(1366, err.code)
      assert.are.equal(0, count(conn, "types_bin"))
    end)

    it("round-trips 4-byte UTF-8 characters (emoji) in VARCHAR", function()
      local s = "a\u{1F600}b\u{1F389}\u{E9}"
      local v = roundtrip(conn, "types_bin", "vc", s)
      assert.are.equal("string", type(v))
      assert.are.equal(s, v)
      local row = conn:execute("SELECT CHAR_LENGTH(vc) AS c, LENGTH(vc) AS b FROM types_bin").rows[1]
      assert.are.equal(5, row.c) -- stored as 5 characters, not mangled bytes
      assert.are.equal(#s, row.b)
    end)
  end)

  -- ---- NULL ----------------------------------------------------------------

  describe("NULL", function()
    local cols = { "i", "u", "ti", "f", "d", "dec", "dt", "da", "tm", "ts", "y", "b",
                   "e", "s", "j", "v", "t", "vb", "bl" }

    before_each(function()
      recreate("types_null", [[id INT AUTO_INCREMENT PRIMARY KEY,
        i BIGINT NULL, u BIGINT UNSIGNED NULL, ti TINYINT NULL, f FLOAT NULL, d DOUBLE NULL,
        `dec` DECIMAL(10,2) NULL, dt DATETIME(6) NULL, da DATE NULL, tm TIME NULL,
        ts TIMESTAMP NULL DEFAULT NULL, y YEAR NULL, b BIT(8) NULL,
        e ENUM('a','b') NULL, s SET('a','b') NULL, j JSON NULL, v VARCHAR(10) NULL,
        t TEXT NULL, vb VARBINARY(10) NULL, bl BLOB NULL]])
    end)

    local function insert_all(value)
      local quoted, marks, params = {}, {}, { n = #cols }
      for i, name in ipairs(cols) do
        quoted[i] = "`" .. name .. "`"
        marks[i] = "?"
        params[i] = value
      end
      return conn:execute("INSERT INTO types_null (" .. table.concat(quoted, ", ") ..
                          ") VALUES (" .. table.concat(marks, ", ") .. ")",
                          table.unpack(params, 1, params.n))
    end

    local function check_row(id)
      local res = conn:execute("SELECT * FROM types_null WHERE id = ?", id)
      assert.are.equal(1, #res.rows)
      local keys = {}
      for k in pairs(res.rows[1]) do keys[#keys + 1] = k end
      assert.are.same({ "id" }, keys) -- every NULL column is absent
      assert.are.equal(#cols + 1, #res.columns) -- but listed in `columns`
      for i, name in ipairs(cols) do
        assert.are.equal(name, res.columns[i + 1].name)
        assert.is_true(res.columns[i + 1].nullable)
      end
    end

    it("binds nil as NULL in every type", function()
      check_row(insert_all(nil).insert_id)
    end)

    it("binds core.null (== cjson.null) as NULL in every type", function()
      assert.are.equal(require("cjson").null, core.null)
      check_row(insert_all(core.null).insert_id)
    end)
  end)

  -- ---- parameters ----------------------------------------------------------

  describe("parameters", function()
    before_each(function()
      recreate("types_param", "id INT AUTO_INCREMENT PRIMARY KEY, flag TINYINT(1) NULL, " ..
                              "d DOUBLE NULL, v VARCHAR(20) NULL")
    end)

    it("binds booleans as 1 and 0", function()
      local t = roundtrip(conn, "types_param", "flag", true)
      local f = roundtrip(conn, "types_param", "flag", false)
      assert.are.equal("integer", math.type(t))
      assert.are.equal(1, t)
      assert.are.equal("integer", math.type(f))
      assert.are.equal(0, f)
      local row = conn:execute("SELECT ? + 0 AS a, ? + 0 AS b", true, false).rows[1]
      assert.are.equal(1, row.a)
      assert.are.equal(0, row.b)
    end)

    local function rejects(value, label, pattern)
      it("rejects " .. label .. " with a DataError naming the parameter, writing nothing", function()
        local err = db.error_of(conn.execute, conn,
                                "INSERT INTO types_param (v, d) VALUES (?, ?)", "x", value)
        assert.are.equal("table", type(err))
        assert.are.equal("DataError", err.kind)
        assert.matches("parameter 2", err.message, 1, true)
        if pattern then assert.matches(pattern, err.message) end
        assert.matches("^DataError", tostring(err))
        assert.are.equal(0, count(conn, "types_param"))
        -- the connection and the cached statement still work
        conn:execute("INSERT INTO types_param (v, d) VALUES (?, ?)", "x", 1.5)
        assert.are.equal(1, count(conn, "types_param"))
      end)
    end

    rejects(0 / 0, "NaN", "NaN")
    rejects(math.huge, "inf", "infinite")
    rejects(-math.huge, "-inf", "infinite")
    rejects({ 1, 2 }, "a table", "table")
    rejects(print, "a function", "function")
    rejects(coroutine.create(print), "a coroutine", "thread")
  end)

  -- ---- cached statements -----------------------------------------------------

  describe("a cached statement after its table is re-created", function()
    it("by this process: follows new names, types and signedness", function()
      recreate("types_shape", "a BIGINT NULL")
      conn:execute("INSERT INTO types_shape VALUES (?)", -1)
      local res = conn:execute("SELECT * FROM types_shape")
      assert.are.same({ a = -1 }, res.rows[1])
      -- same SQL text, so the same cache entry
      recreate("types_shape", "b BIGINT UNSIGNED NULL")
      conn:execute("INSERT INTO types_shape VALUES (?)", "18446744073709551615")
      res = conn:execute("SELECT * FROM types_shape")
      assert.are.same({ b = "18446744073709551615" }, res.rows[1])
      assert.are.equal("b", res.columns[1].name)
      assert.is_true(res.columns[1].unsigned)
      recreate("types_shape", "c VARCHAR(10) NULL")
      conn:execute("INSERT INTO types_shape VALUES ('42')")
      assert.are.same({ c = "42" }, conn:execute("SELECT * FROM types_shape").rows[1])
    end)

    -- DDL this process does not see (a migration run elsewhere): the server
    -- re-prepares the statement and the client must notice the new metadata
    local function ddl_elsewhere(sql)
      assert(not sql:find("'", 1, true), "no single quotes: the script is shell-quoted")
      local script = 'package.path = "spec/?.lua;" .. package.path; ' ..
                     'package.cpath = "build/?.so;" .. package.cpath; ' ..
                     'local c = require("support.db").connect(); c:execute("' .. sql .. '"); c:close()'
      local proc = assert(io.popen("lua5.4 -e '" .. script .. "' 2>&1"))
      local out = proc:read("a")
      local ok = proc:close()
      assert(ok, "could not run DDL in a separate process: " .. sql .. ": " .. out)
    end

    local function swap(body)
      ddl_elsewhere("DROP TABLE types_shape")
      ddl_elsewhere("CREATE TABLE types_shape (" .. body .. ") ENGINE=InnoDB")
    end

    it("by another process: reads the new signedness, BIGINT UNSIGNED max is not -1", function()
      recreate("types_shape", "v BIGINT NULL")
      conn:execute("INSERT INTO types_shape VALUES (?)", -1)
      local res = conn:execute("SELECT v FROM types_shape")
      assert.are.equal(-1, res.rows[1].v)
      assert.is_false(res.columns[1].unsigned)
      swap("v BIGINT UNSIGNED NULL")
      conn:execute("INSERT INTO types_shape VALUES (?)", "18446744073709551615")
      res = conn:execute("SELECT v FROM types_shape")
      assert.are.equal("18446744073709551615", res.rows[1].v)
      assert.is_true(res.columns[1].unsigned)
    end)

    it("by another process: reports the new scale of a DECIMAL column", function()
      recreate("types_shape", "v DECIMAL(10,2) NULL")
      conn:execute("INSERT INTO types_shape VALUES (?)", "1.25")
      local res = conn:execute("SELECT v FROM types_shape")
      assert.are.equal("1.25", res.rows[1].v)
      assert.are.equal(2, res.columns[1].decimals)
      swap("v DECIMAL(10,4) NULL")
      conn:execute("INSERT INTO types_shape VALUES (?)", "1.2345")
      res = conn:execute("SELECT v FROM types_shape")
      assert.are.equal("1.2345", res.rows[1].v)
      assert.are.equal(4, res.columns[1].decimals)
    end)

    it("by another process: follows a change of type (INT -> VARCHAR -> DOUBLE)", function()
      recreate("types_shape", "v INT NULL")
      conn:execute("INSERT INTO types_shape VALUES (42)")
      assert.are.equal(42, conn:execute("SELECT v FROM types_shape").rows[1].v)
      swap("v VARCHAR(10) NULL")
      conn:execute("INSERT INTO types_shape VALUES ('42')")
      local v = conn:execute("SELECT v FROM types_shape").rows[1].v
      assert.are.equal("string", type(v))
      assert.are.equal("42", v)
      swap("v DOUBLE NULL")
      conn:execute("INSERT INTO types_shape VALUES (1.5)")
      v = conn:execute("SELECT v FROM types_shape").rows[1].v
      assert.are.equal("float", math.type(v))
      assert.are.equal(1.5, v)
    end)
  end)

  -- ---- columns metadata ----------------------------------------------------

  describe("columns metadata", function()
    it("describes a known table, even with no rows", function()
      recreate("types_meta", [[id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name VARCHAR(40) NOT NULL, score INT NULL, price DECIMAL(10,2) NOT NULL DEFAULT 0,
        photo BLOB NULL, born DATE NULL]])
      local res = conn:execute("SELECT id, name, score, price, photo, born FROM types_meta " ..
                               "WHERE id > ?", 0)
      assert.are.same({}, res.rows)
      local expect = {
        { "id", "BIGINT", true, false, true },
        { "name", "VARCHAR", false, false, false },
        { "score", "INT", false, true, false },
        { "price", "DECIMAL", false, false, false },
        { "photo", "BLOB", false, true, false },
        { "born", "DATE", false, true, false },
      }
      assert.are.equal(#expect, #res.columns)
      for i, e in ipairs(expect) do
        local c = res.columns[i]
        assert.are.equal(e[1], c.name)
        assert.are.equal(e[2], c.type, e[1] .. " type")
        assert.are.equal(e[3], c.unsigned, e[1] .. " unsigned")
        assert.are.equal(e[4], c.nullable, e[1] .. " nullable")
        assert.are.equal(e[5], c.primary_key, e[1] .. " primary_key")
        assert.are.equal("types_meta", c.org_table)
      end
      assert.is_true(res.columns[1].auto_increment)
      assert.is_false(res.columns[2].auto_increment)
      assert.are.equal(2, res.columns[4].decimals)
      assert.is_true(res.columns[5].binary)
      assert.is_false(res.columns[2].binary)
      assert.are.equal(160, res.columns[2].length) -- 40 utf8mb4 characters
    end)
  end)
end)

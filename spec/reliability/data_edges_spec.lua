-- Data edges through the ORM: invalid UTF-8 into utf8mb4 (server error
-- mapped, nothing written), 16 MiB strings, NUL bytes, BIGINT UNSIGNED max,
-- DECIMAL(65,30), NaN/inf, zero dates (permissive sql_mode), TIME over 24
-- hours and negative zero.
local ar = require("activerecord")
local H = require("reliability.helpers")

describe("reliability: data edges", function()
  local db, loose, Edge, LooseEdge

  local function count() return db:query("SELECT COUNT(*) AS n FROM rel_edges")[1].n end

  local fields = {
    id = { type = "integer", primary_key = true },
    name = { type = "string", size = 50 }, body = "text", bin = "binary",
    big = "bigint", amount = { type = "decimal", precision = 65, scale = 30 },
    ratio = "float", day = "date", at = "datetime", span = "time",
  }

  setup(function()
    db = ar.connect(H.support.options{ pool = { size = 2 } })
    loose = ar.connect(H.support.options{ pool = { size = 1 }, sql_mode = "" })
    db:execute("DROP TABLE IF EXISTS rel_edges")
    db:execute([[CREATE TABLE rel_edges (
      id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50) CHARACTER SET utf8mb4, body LONGTEXT CHARACTER SET utf8mb4,
      bin LONGBLOB, big BIGINT UNSIGNED, amount DECIMAL(65,30), ratio DOUBLE, day DATE, at DATETIME(6),
      span TIME(6)) ENGINE=InnoDB]])
    Edge = ar.Model{ name = "RelEdge", table = "rel_edges", backend = db, fields = fields }
    LooseEdge = ar.Model{ name = "RelLooseEdge", table = "rel_edges", backend = loose, fields = fields }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS rel_edges")
    loose:close()
    db:close()
  end)

  before_each(function() db:execute("DELETE FROM rel_edges") end)

  it("invalid UTF-8 into a utf8mb4 column: a mapped server error, nothing written", function()
    for _, bad in ipairs{ "\xff\xfe", "ok\xc3", "\xf8\x88\x80\x80\x80", "a\xc0\xafb", "\xe2\x82", "\x80" } do
      local err = H.error_of(Edge.create, Edge, { name = bad })
      H.assert_error(err, { "DataError", "ValidationError" }, "name")
      err = H.error_of(Edge.create, Edge, { body = "fine " .. bad })
      H.assert_error(err, { "DataError", "ValidationError" }, "body")
      assert.are.equal(0, count())
    end
    -- the same bytes are fine in a binary column
    local rec = Edge:create{ bin = "\xff\xfe\xc3" }
    assert.are.equal("\xff\xfe\xc3", Edge:find(rec.id).bin)
    -- valid 4-byte UTF-8 round-trips
    local emoji = Edge:create{ name = "𝄞😀中文é" }
    assert.are.equal("𝄞😀中文é", Edge:find(emoji.id).name)
    -- an encoded UTF-16 surrogate (ED A0 80) is not valid UTF-8, but MariaDB's
    -- utf8mb4 accepts it and the library does no client-side check
    local ok = pcall(Edge.create, Edge, { name = "\xed\xa0\x80" })
    if ok then
      pending("FINDING: invalid UTF-8 ED A0 80 (a surrogate) is written to a utf8mb4 column: the server accepts "
        .. "it and the ORM does not validate UTF-8 for string fields")
    end
  end)

  it("a 16 MiB string and a 16 MiB blob round-trip exactly", function()
    local text = string.rep("0123456789abcdé", 16 * 1024 * 1024 // 16 + 1):sub(1, 16 * 1024 * 1024)
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local blob = string.rep(table.concat(bytes), 16 * 1024 * 1024 // 256)
    local rec = Edge:create{ body = nil, bin = blob }
    rec.body = text:gsub("\xc3$", "")    -- do not cut a character in half
    rec:save()
    local back = Edge:find(rec.id)
    assert.are.equal(16 * 1024 * 1024, #back.bin)
    assert.is_true(back.bin == blob, "blob differs")
    assert.is_true(back.body == rec.body, "text differs")
    assert.are.equal(#rec.body, db:query("SELECT LENGTH(body) AS n FROM rel_edges")[1].n)
  end)

  it("NUL bytes survive in text and binary columns, in values and in WHERE", function()
    local s = "a\0b\0\0c"
    local rec = Edge:create{ name = s, body = "\0" .. s, bin = "\0\0\0" }
    local back = Edge:find(rec.id)
    assert.are.equal(s, back.name)
    assert.are.equal("\0" .. s, back.body)
    assert.are.equal("\0\0\0", back.bin)
    assert.are.equal(1, Edge:where{ name = s }:count())
    assert.are.equal(0, Edge:where{ name = "a" }:count())
    assert.are.equal(6, db:query("SELECT LENGTH(name) AS n FROM rel_edges")[1].n)
  end)

  it("BIGINT UNSIGNED max and the signed limits", function()
    local max = "18446744073709551615"
    db:execute("INSERT INTO rel_edges (id, big) VALUES (1, ?)", max)
    assert.are.equal(max, Edge:find(1).big)
    assert.are.equal(max, db:query("SELECT big FROM rel_edges")[1].big)
    assert.are.equal(1, Edge:where{ big = max }:count())
    -- a record read with the max value saves its other changes
    local r1 = Edge:find(1)
    r1.name = "max"
    r1:save()
    assert.are.equal(max, Edge:find(1).big)
    local rec = Edge:create{ big = math.maxinteger }
    assert.are.equal(math.maxinteger, Edge:find(rec.id).big)
    -- one past the column's range: mapped, nothing written
    local n = count()
    H.assert_error(H.error_of(Edge.create, Edge, { big = "18446744073709551616" }),
      { "DataError", "ValidationError" }, "big")
    H.assert_error(H.error_of(Edge.create, Edge, { big = -1 }), { "DataError", "ValidationError" }, "big")
    assert.are.equal(n, count())
    -- math.mininteger and maxinteger as parameters are exact
    assert.are.equal(math.mininteger, db:query("SELECT CAST(? AS SIGNED) AS v", math.mininteger)[1].v)
    -- the exact string the core returns cannot be written back through a bigint field
    local ok, err = pcall(Edge.create, Edge, { big = max })
    if not ok then
      pending("BUG: a bigint field refuses BIGINT UNSIGNED values above 2^63-1 in the exact-string form the "
        .. "core reads them in: Edge:create{ big = '" .. max .. "' } -> " .. tostring(err))
    end
    assert.are.equal(max, Edge:find(Edge:where{ big = max }:order_by("id", "desc"):first().id).big)
  end)

  it("DECIMAL(65,30) keeps all 65 digits as an exact string", function()
    for _, v in ipairs{ "99999999999999999999999999999999999.999999999999999999999999999999",
                        "-99999999999999999999999999999999999.999999999999999999999999999999",
                        "0.000000000000000000000000000001", "0.000000000000000000000000000000" } do
      local rec = Edge:create{ amount = v }
      assert.are.equal(v, Edge:find(rec.id).amount)
    end
    local n = count()
    H.assert_error(H.error_of(Edge.create, Edge,
      { amount = "999999999999999999999999999999999999.0" }), { "DataError", "ValidationError" }, "amount")
    assert.are.equal(n, count())
  end)

  it("NaN and infinities are refused before anything is written; negative zero reads as zero", function()
    for _, v in ipairs{ 0 / 0, math.huge, -math.huge } do
      H.assert_error(H.error_of(Edge.create, Edge, { ratio = v }), { "DataError", "ValidationError" })
      H.assert_error(H.error_of(db.execute, db, "INSERT INTO rel_edges (ratio) VALUES (?)", v), "DataError")
    end
    assert.are.equal(0, count())
    local rec = Edge:create{ ratio = -0.0 }
    local back = Edge:find(rec.id).ratio
    assert.are.equal(0, back)
    assert.are.equal("float", math.type(back))
    assert.are.equal(1, Edge:where{ ratio = 0.0 }:count())
    assert.are.equal(1, Edge:where{ ratio = -0.0 }:count())
  end)

  it("zero dates under a permissive sql_mode are kept as strings; strict mode refuses them", function()
    local rec = LooseEdge:create{ day = "0000-00-00", at = "0000-00-00 00:00:00" }
    local back = LooseEdge:find(rec.id)
    assert.are.equal("0000-00-00", back.day)
    assert.matches("^0000%-00%-00 00:00:00", back.at)
    local raw = loose:query("SELECT day, at FROM rel_edges WHERE id = ?", rec.id)[1]
    assert.are.equal("0000-00-00", raw.day)
    local n = count()
    H.assert_error(H.error_of(db.execute, db, "INSERT INTO rel_edges (day) VALUES (?)", "2024-02-30"),
      "DataError", "day")
    assert.are.equal(n, count())
  end)

  it("TIME beyond 24 hours and negative, to the column's limits", function()
    for _, v in ipairs{ "25:00:00", "838:59:59", "-838:59:59", "100:00:00.500000", "-00:00:01" } do
      local rec = Edge:create{ span = v }
      local back = Edge:find(rec.id).span
      assert.matches("^" .. v:gsub("%-", "%%-"):gsub("%.", "%%."), back)
    end
    local n = count()
    H.assert_error(H.error_of(db.execute, db, "INSERT INTO rel_edges (span) VALUES (?)", "839:00:00"),
      "DataError", "span")
    assert.are.equal(n, count())
  end)
end)

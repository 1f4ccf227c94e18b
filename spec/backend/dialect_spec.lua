-- The MySQL/MariaDB dialect, pure: SQL text for servers we cannot run here
-- (MySQL 5.7/8.0, older MariaDB) is checked against the manuals; the live
-- round trips are in schema_spec.lua.
local Dialect = require("activerecord.backend.mysql.dialect")
local schema = require("activerecord.schema")
local errors = require("activerecord.errors")
local core = require("activerecord.backend.mysql.core")
local compiler = require("activerecord.backend.mysql.compiler")
local insert = compiler.insert

local function dialect(flavor, version)
  return Dialect.new{ flavor = flavor, version = version }
end

local mariadb = dialect("mariadb", { 10, 11, 6 })
local mariadb_105 = dialect("mariadb", { 10, 5, 4 })
local mariadb_102 = dialect("mariadb", { 10, 2, 44 })
local mysql8 = dialect("mysql", { 8, 0, 36 })
local mysql_8018 = dialect("mysql", { 8, 0, 18 })
local mysql57 = dialect("mysql", { 5, 7, 44 })

-- The error object fn raised; fails unless it is of `kind`.
local function error_of(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a " .. kind)
  assert.is_true(errors.is(err, kind), "expected " .. kind .. ", got " .. tostring(err))
  return err
end

local function table_def(fn, opts)
  return schema.define("t", fn, opts)
end

-- CREATE TABLE text of one column `c` (without the table wrapper).
local function column_ddl(d, type_name, opts)
  local def = table_def(function(t) t:column("c", type_name, opts) end)
  return d:column_sql(def.columns[1], "t")
end

describe("Dialect.new", function()
  it("computes capabilities from flavor and version when none are given", function()
    assert.same(core.capabilities_for("mariadb", { 10, 11, 6 }), mariadb.capabilities)
    assert.equal("10.11.6", mariadb.version_string)
  end)

  it("takes the capability table it is given", function()
    local d = Dialect.new{ flavor = "mysql", version = "8.0.36", capabilities = { returning = true } }
    assert.is_true(d:supports("returning"))
    assert.is_false(d:supports("cte"))
  end)

  it("rejects unknown flavors and unreadable versions", function()
    error_of("ConfigError", Dialect.new, { flavor = "postgres", version = { 16, 0, 0 } })
    error_of("ConfigError", Dialect.new, { flavor = "mysql", version = "eight" })
  end)
end)

describe("capabilities", function()
  it("answers supports() per flavor, not per version number", function()
    assert.is_true(mariadb:supports("returning"))
    assert.is_false(mysql8:supports("returning"))
    assert.is_false(mariadb:supports("json_arrow_operators"))
    assert.is_true(mysql8:supports("json_arrow_operators"))
    assert.is_false(mariadb:supports("no_such_capability"))
  end)

  it("raises CapabilityError naming feature, flavor and version", function()
    local err = error_of("CapabilityError", mariadb_105.require, mariadb_105, "skip_locked")
    assert.equal("SKIP LOCKED needs MariaDB 10.6+ (server: mariadb 10.5.4)", err.message)
    assert.equal("mariadb", err.flavor)
    assert.equal("10.5.4", err.version)
    err = error_of("CapabilityError", mysql8.require, mysql8, "returning", "INSERT ... RETURNING")
    assert.equal("INSERT ... RETURNING is not available on MySQL (server: mysql 8.0.36)",
      err.message)
  end)

  -- The hints only word the message; the C matrix decides. Keep them equal.
  it("words thresholds that agree with the C core's matrix", function()
    local function below(v)
      local a, b, c = v:match("^(%d+)%.(%d+)%.(%d+)$")
      a, b, c = tonumber(a), tonumber(b), tonumber(c)
      if c > 0 then return { a, b, c - 1 } end
      if b > 0 then return { a, b - 1, 99 } end
      return { a - 1, 99, 99 }
    end
    for name, hint in pairs(Dialect.CAPABILITY_HINTS) do
      for i, flavor in ipairs({ "mysql", "mariadb" }) do
        local since = hint[i + 1]
        if since == true then
          assert.is_true(core.capabilities_for(flavor, { 1, 0, 0 })[name], name .. " always")
        elseif since then
          assert.is_true(core.capabilities_for(flavor, since)[name], name .. " at " .. since)
          assert.is_false(core.capabilities_for(flavor, below(since))[name],
            name .. " below " .. since)
        else
          assert.is_false(core.capabilities_for(flavor, { 99, 0, 0 })[name], name .. " never")
        end
      end
    end
  end)
end)

describe("quote_identifier", function()
  it("wraps names in backticks", function()
    assert.equal("`users`", mariadb:quote_identifier("users"))
    assert.equal("`select`", mariadb:quote_identifier("select"))
    assert.equal("`na\195\175ve name`", mariadb:quote_identifier("na\195\175ve name"))
  end)

  it("keeps an injection attempt inside one identifier, backtick doubled", function()
    assert.equal("`users``; DROP TABLE x; --`", mariadb:quote_identifier("users`; DROP TABLE x; --"))
    assert.equal("`a````b`", mariadb:quote_identifier("a``b"))
  end)

  it("rejects what MySQL cannot store, with a QueryError naming the problem", function()
    local cases = {
      { "", "is empty" },
      { "a\0b", "NUL" },
      { string.rep("x", 65), "65 characters" },
      { "trailing ", "ends with a space" },
      { "\255\254", "UTF%-8" },
      { "emoji\240\159\152\128", "outside the BMP" },
    }
    for _, case in ipairs(cases) do
      local err = error_of("QueryError", mariadb.quote_identifier, mariadb, case[1])
      assert.matches(case[2], err.message)
    end
    error_of("QueryError", mariadb.quote_identifier, mariadb, nil)
    error_of("QueryError", mariadb.quote_identifier, mariadb, 42)
  end)

  it("counts the 64-character limit in characters, not bytes", function()
    local name = string.rep("\195\169", 64) -- 64 x "é" = 128 bytes
    assert.equal("`" .. name .. "`", mariadb:quote_identifier(name))
  end)
end)

describe("quote_qualified and quote_column_ref", function()
  it("quotes each dotted part", function()
    assert.equal("`db`.`users`", mariadb:quote_qualified("db.users"))
    assert.equal("`u`.`name`", mariadb:quote_qualified("u.name"))
    assert.equal("`db`.`u`.`name`", mariadb:quote_qualified("db.u.name"))
    assert.equal("`we``ird`.`x`", mariadb:quote_qualified("we`ird.x"))
  end)

  it("always splits on dots (a dot inside a name is not supported)", function()
    error_of("QueryError", mariadb.quote_qualified, mariadb, "a..b")
    error_of("QueryError", mariadb.quote_qualified, mariadb, ".a")
    error_of("QueryError", mariadb.quote_qualified, mariadb, "a.")
    error_of("QueryError", mariadb.quote_qualified, mariadb, "a.b.c.d")
  end)

  it("allows * only as the last part of a column reference", function()
    assert.equal("`t`.*", mariadb:quote_column_ref("t.*"))
    assert.equal("*", mariadb:quote_column_ref("*"))
    assert.equal("`t`.`id`", mariadb:quote_column_ref("t.id"))
    error_of("QueryError", mariadb.quote_column_ref, mariadb, "*.id")
    -- outside a column reference a star is just a (quoted) name
    assert.equal("`t`.`*`", mariadb:quote_qualified("t.*"))
  end)
end)

describe("placeholders and LIMIT", function()
  it("uses ? placeholders", function()
    assert.equal("?", mariadb.placeholder)
    assert.equal("?, ?, ?", mariadb:placeholders(3))
    assert.equal("?", mariadb:placeholders(1))
    error_of("QueryError", mariadb.placeholders, mariadb, 0)
    error_of("QueryError", mariadb.placeholders, mariadb, -1)
  end)

  it("binds LIMIT and OFFSET", function()
    local sql, params = mariadb:limit_offset(10, 20)
    assert.equal("LIMIT ? OFFSET ?", sql)
    assert.same({ 10, 20 }, params)
    sql, params = mariadb:limit_offset(5)
    assert.equal("LIMIT ?", sql)
    assert.same({ 5 }, params)
    sql, params = mariadb:limit_offset(nil, nil)
    assert.equal("", sql)
    assert.same({}, params)
  end)

  it("writes the manual's largest LIMIT for OFFSET alone", function()
    local sql, params = mariadb:limit_offset(nil, 7)
    assert.equal("LIMIT 18446744073709551615 OFFSET ?", sql)
    assert.same({ 7 }, params)
  end)

  it("accepts integral floats and rejects negatives, fractions and strings", function()
    local _, params = mariadb:limit_offset(3.0, 0)
    assert.equal("integer", math.type(params[1]))
    for _, bad in ipairs({ -1, 1.5, "10; DROP TABLE x", 0 / 0, math.huge }) do
      error_of("QueryError", mariadb.limit_offset, mariadb, bad)
      error_of("QueryError", mariadb.limit_offset, mariadb, 1, bad)
    end
  end)
end)

describe("lock_clause", function()
  it("writes FOR UPDATE everywhere", function()
    for _, d in ipairs({ mariadb, mysql8, mysql57 }) do
      assert.equal("FOR UPDATE", d:lock_clause{ mode = "update" })
    end
    assert.equal("FOR UPDATE", mariadb:lock_clause())
  end)

  it("writes FOR SHARE on MySQL 8 and LOCK IN SHARE MODE on MariaDB and MySQL 5.7", function()
    assert.equal("FOR SHARE", mysql8:lock_clause{ mode = "share" })
    assert.equal("LOCK IN SHARE MODE", mariadb:lock_clause{ mode = "share" })
    assert.equal("LOCK IN SHARE MODE", mysql57:lock_clause{ mode = "share" })
  end)

  it("adds NOWAIT / SKIP LOCKED where the server has them", function()
    assert.equal("FOR UPDATE NOWAIT", mysql8:lock_clause{ nowait = true })
    assert.equal("FOR SHARE SKIP LOCKED", mysql8:lock_clause{ mode = "share", skip_locked = true })
    assert.equal("FOR UPDATE SKIP LOCKED", mariadb:lock_clause{ skip_locked = true })
    assert.equal("LOCK IN SHARE MODE SKIP LOCKED",
      mariadb:lock_clause{ mode = "share", skip_locked = true })
    assert.equal("LOCK IN SHARE MODE NOWAIT", mariadb_105:lock_clause{ mode = "share", nowait = true })
  end)

  it("raises CapabilityError before any SQL on servers without them", function()
    local err = error_of("CapabilityError", mariadb_105.lock_clause, mariadb_105, { skip_locked = true })
    assert.equal("SKIP LOCKED needs MariaDB 10.6+ (server: mariadb 10.5.4)", err.message)
    err = error_of("CapabilityError", mysql57.lock_clause, mysql57, { nowait = true })
    assert.equal("NOWAIT needs MySQL 8.0.1+ (server: mysql 5.7.44)", err.message)
    err = error_of("CapabilityError", mariadb_102.lock_clause, mariadb_102, { nowait = true })
    assert.equal("NOWAIT needs MariaDB 10.3+ (server: mariadb 10.2.44)", err.message)
  end)

  it("rejects both at once, unknown modes and unknown options", function()
    error_of("QueryError", mysql8.lock_clause, mysql8, { nowait = true, skip_locked = true })
    error_of("QueryError", mysql8.lock_clause, mysql8, { mode = "exclusive" })
    -- an unknown option is a ConfigError everywhere, naming the accepted ones
    local err = error_of("ConfigError", mysql8.lock_clause, mysql8, { wait = 5 })
    assert.equal("lock: unknown option 'wait' (accepted: mode, nowait, skip_locked)", err.message)
  end)
end)

describe("compiler.insert (INSERT text)", function()
  it("writes multi-row INSERT with placeholders", function()
    assert.equal("INSERT INTO `users` (`name`, `score`) VALUES (?, ?), (?, ?), (?, ?)",
      insert(mariadb, "users", { "name", "score" }, 3))
    assert.equal("INSERT IGNORE INTO `db`.`users` (`name`) VALUES (?)",
      insert(mariadb, "db.users", { "name" }, 1, { ignore = true }))
  end)

  it("upserts with VALUES(col) on MariaDB and MySQL before 8.0.19", function()
    local want = "INSERT INTO `users` (`id`, `name`, `score`) VALUES (?, ?, ?), (?, ?, ?)"
      .. " ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `score` = VALUES(`score`)"
    for _, d in ipairs({ mariadb, mysql_8018, mysql57 }) do
      assert.equal(want, insert(d, "users", { "id", "name", "score" }, 2,
        { upsert = { update = { "name", "score" } } }))
    end
  end)

  it("upserts with a row alias on MySQL 8.0.19+", function()
    assert.equal("INSERT INTO `users` (`id`, `name`, `score`) VALUES (?, ?, ?), (?, ?, ?)"
      .. " AS new ON DUPLICATE KEY UPDATE `name` = new.`name`, `score` = new.`score`",
      insert(mysql8, "users", { "id", "name", "score" }, 2,
        { upsert = { update = { "name", "score" } } }))
  end)

  it("picks another alias when the table itself is called new", function()
    assert.matches("AS new_row ON DUPLICATE KEY UPDATE `a` = new_row.`a`$",
      insert(mysql8, "new", { "id", "a" }, 1, { upsert = { update = { "a" } } }))
  end)

  it("appends RETURNING on MariaDB and refuses it on MySQL", function()
    assert.equal("INSERT INTO `users` (`name`) VALUES (?) RETURNING `id`, `name`",
      insert(mariadb, "users", { "name" }, 1, { returning = { "id", "name" } }))
    local err = error_of("CapabilityError", insert, mysql8, "users", { "name" }, 1,
      { returning = { "id" } })
    assert.matches("RETURNING is not available on MySQL %(server: mysql 8%.0%.36%)", err.message)
    error_of("CapabilityError", insert, mariadb_102, "users", { "name" }, 1,
      { returning = { "id" } })
  end)

  it("quotes every name and rejects bad input", function()
    assert.matches("^INSERT INTO `x``y` %(`a``; %-%-`%)",
      insert(mariadb, "x`y", { "a`; --" }, 1))
    assert.equal("INSERT INTO `users` () VALUES ()", insert(mariadb, "users", {}, 1))
    error_of("QueryError", insert, mariadb, "users", { "a" }, 0)
    error_of("QueryError", insert, mariadb, "users", { "a" }, 1, { upsert = { update = {} } })
    error_of("ConfigError", insert, mariadb, "users", { "a" }, 1, { replace = true })
  end)
end)

describe("JSON paths", function()
  local valid_everywhere = {
    "$", "$.a", "$.a.b", "$.$x_1", "$._", "$.*", "$[0]", "$[12]", "$[*]", "$.a[3].b",
    '$."key with spaces"', '$."quo\\"te"', '$."back\\\\slash"', '$."\\u00e9"', "$**.a",
    "$**[0]", "$.a**.b", "$.a[*][1]", "$.*.b",
  }
  local mysql_only = { "$[last]", "$[last-1]", "$[last - 2]", "$[1 to 3]", "$[0 to last]" }
  local invalid = {
    "", "a", "$.", "$..a", "$.1a", "$.a-b", "$[", "$[-1]", "$[1.5]", "$[a]", "$**",
    "$.a**", "$***.a", '$."unterminated', '$."bad \\x escape"', "$ .a", "$.a b",
    "$.a'); DROP TABLE x; --", "$.a' OR '1'='1", "$[0]; DROP TABLE x", "$.a\0",
    "$.\"a\nb\"",
  }

  it("accepts the MySQL JSON path grammar", function()
    for _, path in ipairs(valid_everywhere) do
      assert.equal(path, mariadb:validate_json_path(path))
      assert.equal(path, mysql8:validate_json_path(path))
    end
  end)

  it("accepts last / last-N / M to N on MySQL 8 only", function()
    for _, path in ipairs(mysql_only) do
      assert.equal(path, mysql8:validate_json_path(path))
      error_of("QueryError", mariadb.validate_json_path, mariadb, path)
      error_of("QueryError", mysql57.validate_json_path, mysql57, path)
    end
  end)

  it("rejects everything else with a QueryError naming the path", function()
    for _, path in ipairs(invalid) do
      local err = error_of("QueryError", mysql8.validate_json_path, mysql8, path)
      assert.equal(path, err.path)
      assert.matches("invalid JSON path", err.message)
    end
    error_of("QueryError", mysql8.validate_json_path, mysql8, nil)
  end)

  it("binds the path; it never appears in the SQL text", function()
    local path = '$."secret key"[0]'
    local sql, params = mariadb:json_extract("`profile`", path)
    assert.equal("JSON_EXTRACT(`profile`, ?)", sql)
    assert.same({ path }, params)
    assert.is_nil(sql:find("secret", 1, true))
    sql, params = mariadb:json_value(mariadb:quote_column_ref("u.profile"), "$.theme")
    assert.equal("JSON_UNQUOTE(JSON_EXTRACT(`u`.`profile`, ?))", sql)
    assert.same({ "$.theme" }, params)
  end)

  it("never emits the -> operators on MariaDB", function()
    local sql = mariadb:json_value("`p`", "$.a")
    assert.is_nil(sql:find("->", 1, true))
  end)

  it("binds JSON_CONTAINS candidates and paths", function()
    local sql, params = mariadb:json_contains("`tags`", "[1]")
    assert.equal("JSON_CONTAINS(`tags`, ?)", sql)
    assert.same({ "[1]" }, params)
    sql, params = mariadb:json_contains("`p`", '"x"', "$.a")
    assert.equal("JSON_CONTAINS(`p`, ?, ?)", sql)
    assert.same({ '"x"', "$.a" }, params)
    error_of("QueryError", mariadb.json_contains, mariadb, "`p`", { 1 })
    error_of("QueryError", mariadb.json_extract, mariadb, "`p`", "$.a'); DROP TABLE x; --")
  end)

  it("needs JSON support on the server", function()
    local old = dialect("mariadb", { 10, 1, 40 })
    local err = error_of("CapabilityError", old.json_extract, old, "`p`", "$.a")
    assert.equal("JSON functions needs MariaDB 10.2.7+ (server: mariadb 10.1.40)", err.message)
  end)
end)

describe("literals", function()
  it("writes numbers and booleans as numbers", function()
    assert.equal("42", Dialect.literal(42))
    assert.equal("-9223372036854775808", Dialect.literal(math.mininteger))
    assert.equal("0.1", Dialect.literal(0.1))
    assert.equal("1e+300", Dialect.literal(1e300))
    assert.equal("1", Dialect.literal(true))
    assert.equal("0", Dialect.literal(false))
    assert.is_nil(Dialect.literal(0 / 0))
    assert.is_nil(Dialect.literal(math.huge))
    assert.is_nil(Dialect.literal({}))
  end)

  it("quotes plain strings with ' doubled", function()
    assert.equal("'it''s'", Dialect.literal("it's"))
    assert.equal("''", Dialect.literal(""))
    assert.equal("'x'' OR ''1''=''1'", Dialect.literal("x' OR '1'='1"))
  end)

  -- A backslash means different things with and without NO_BACKSLASH_ESCAPES,
  -- and a NUL has no business in statement text: hex has no escapes at all.
  it("keeps tab, newline and carriage return in a quoted literal (they read as themselves in any sql_mode)", function()
    assert.equal("'a\nb\tc\r'", Dialect.literal("a\nb\tc\r"))
    assert.equal("'line 1\nline ''2'''", Dialect.string_literal("line 1\nline '2'", "plain"))
  end)

  it("writes strings with backslashes or other control bytes as hex", function()
    assert.equal("_utf8mb4 X'615C27620063'", Dialect.literal("a\\'b\0c"))
    assert.equal("X'5C'", Dialect.string_literal("\\", "bytes"))
    assert.equal("_utf8mb4 X'0B'", Dialect.literal("\v"))
    assert.is_nil(Dialect.string_literal("a\1b", "plain"))
    assert.is_nil(Dialect.string_literal("a\\b", "plain"))
  end)
end)

describe("column types", function()
  local cases = {
    { "integer", nil, "INT" }, { "bigint", nil, "BIGINT" }, { "smallint", nil, "SMALLINT" },
    { "tinyint", nil, "TINYINT" }, { "integer", { unsigned = true }, "INT UNSIGNED" },
    { "float", nil, "FLOAT" }, { "double", nil, "DOUBLE" },
    { "decimal", nil, "DECIMAL(10,0)" },
    { "decimal", { precision = 12, scale = 2 }, "DECIMAL(12,2)" },
    { "decimal", { precision = 65, scale = 30 }, "DECIMAL(65,30)" },
    { "string", nil, "VARCHAR(255)" }, { "string", { size = 191 }, "VARCHAR(191)" },
    { "string", { size = 16383 }, "VARCHAR(16383)" },
    { "text", nil, "TEXT" }, { "text", { size = 65535 }, "TEXT" },
    { "text", { size = 65536 }, "MEDIUMTEXT" }, { "text", { size = "long" }, "LONGTEXT" },
    { "text", { size = 16777216 }, "LONGTEXT" },
    { "binary", nil, "VARBINARY(255)" }, { "binary", { size = 32 }, "VARBINARY(32)" },
    { "binary", { size = 16, fixed = true }, "BINARY(16)" },
    { "blob", nil, "BLOB" }, { "blob", { size = "long" }, "LONGBLOB" },
    { "blob", { size = 100000 }, "MEDIUMBLOB" },
    { "boolean", nil, "TINYINT(1)" }, { "date", nil, "DATE" },
    { "datetime", nil, "DATETIME" }, { "datetime", { precision = 6 }, "DATETIME(6)" },
    { "time", { precision = 3 }, "TIME(3)" }, { "timestamp", nil, "TIMESTAMP" },
    { "timestamp", { precision = 6 }, "TIMESTAMP(6)" },
    { "json", nil, "JSON" },
    { "enum", { values = { "a", "b" } }, "ENUM('a','b')" },
    { "enum", { values = { "it's", "back\\slash" } }, "ENUM('it''s',X'6261636B5C736C617368')" },
    { "set", { values = { "x", "y" } }, "SET('x','y')" },
    { "uuid", nil, "CHAR(36)" }, { "uuid", { binary = true }, "BINARY(16)" },
    { "point", { sql_type = "POINT" }, "POINT" },
    { "money", { sql_type = "DECIMAL(19, 4)" }, "DECIMAL(19, 4)" },
  }

  it("maps every neutral type to MySQL", function()
    for _, case in ipairs(cases) do
      local def = table_def(function(t) t:column("c", case[1], case[2]) end)
      assert.equal(case[3], mariadb:column_type_sql(def.columns[1], "t"),
        case[1] .. " " .. tostring(case[2] and next(case[2])))
    end
  end)

  it("writes JSON on MySQL and MariaDB alike", function()
    assert.equal("`c` JSON NULL", column_ddl(mysql8, "json"))
    assert.equal("`c` JSON NULL", column_ddl(mariadb, "json"))
  end)

  it("rejects sizes, precisions and sql_types out of range as ConfigError naming the column", function()
    local bad = {
      { "decimal", { precision = 66 } }, { "decimal", { precision = 0 } },
      { "decimal", { precision = 5, scale = 6 } }, { "decimal", { scale = 31, precision = 40 } },
      { "string", { size = 0 } }, { "string", { size = 16384 } },
      { "datetime", { precision = 7 } }, { "time", { precision = -1 } },
      { "binary", { size = 256, fixed = true } }, { "text", { size = 0 } },
      { "enum", { values = { "a", "a" } } }, { "set", { values = { "a,b" } } },
      { "x", { sql_type = "INT; DROP TABLE x" } }, { "x", { sql_type = "INT) -- " } },
      { "x", { sql_type = "VARCHAR('a')" } },
    }
    for _, case in ipairs(bad) do
      local def = { name = "t", columns = { { name = "c", type = case[1] } } }
      for k, v in pairs(case[2]) do def.columns[1][k] = v end
      local err = error_of("ConfigError", mariadb.create_table_sql, mariadb, def)
      assert.matches('table "t", column "c"', err.message, 1, true)
      assert.equal("c", err.column)
    end
  end)
end)

describe("column definitions", function()
  it("writes NULL / NOT NULL, defaults, AUTO_INCREMENT, charset and comments", function()
    assert.equal("`c` VARCHAR(255) NULL", column_ddl(mariadb, "string"))
    assert.equal("`c` VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'x'"
      .. " COMMENT 'the ''c'''", column_ddl(mariadb, "string", { size = 20, charset = "ascii",
        collate = "ascii_bin", null = false, default = "x", comment = "the 'c'" }))
    assert.equal("`c` INT UNSIGNED NOT NULL AUTO_INCREMENT",
      column_ddl(mariadb, "integer", { primary_key = true, unsigned = true, auto_increment = true }))
    assert.equal("`c` TINYINT(1) NOT NULL DEFAULT 1",
      column_ddl(mariadb, "boolean", { nullable = false, default = true }))
    assert.equal("`c` DECIMAL(12,2) NULL DEFAULT 0.25",
      column_ddl(mariadb, "decimal", { precision = 12, scale = 2, default = 0.25 }))
    assert.equal("`c` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)",
      column_ddl(mariadb, "datetime", { precision = 6, nullable = false,
        default = schema.raw("CURRENT_TIMESTAMP(6)"), on_update = schema.raw("CURRENT_TIMESTAMP(6)") }))
  end)

  it("writes string defaults that cannot inject under either sql_mode", function()
    local nasty = "O'Brien \\' ); DROP TABLE x; -- \0 end"
    local sql = column_ddl(mariadb, "string", { default = nasty })
    assert.equal("`c` VARCHAR(255) NULL DEFAULT _utf8mb4 X'4F27427269656E205C2720293B2044524F50"
      .. "205441424C4520783B202D2D200020656E64'", sql)
    assert.equal("`c` VARCHAR(255) NULL DEFAULT 'it''s'", column_ddl(mariadb, "string",
      { default = "it's" }))
    assert.equal("`c` VARBINARY(255) NULL DEFAULT X'00FF'", column_ddl(mariadb, "binary",
      { default = "\0\255" }))
    assert.equal("`c` BINARY(16) NULL DEFAULT X'00'", column_ddl(mariadb, "uuid",
      { binary = true, default = "\0" }))
    -- TEXT/JSON defaults are expressions on MariaDB: bare hex, no introducer
    assert.equal("`c` TEXT NULL DEFAULT X'5C'", column_ddl(mariadb, "text", { default = "\\" }))
    assert.equal("`c` JSON NULL DEFAULT X'225C5C22'", column_ddl(mariadb, "json",
      { default = '"\\\\"' }))
  end)

  it("refuses defaults it cannot write safely", function()
    error_of("ConfigError", column_ddl, mariadb, "integer", { default = "1\\0" })
    error_of("ConfigError", column_ddl, mariadb, "string", { comment = "C:\\temp" })
    local def = { name = "t", columns = { { name = "c", type = "string", default = {} } } }
    error_of("ConfigError", mariadb.create_table_sql, mariadb, def)
  end)

  it("wraps TEXT/BLOB/JSON defaults in parentheses on MySQL 8.0.13+", function()
    assert.equal("`c` JSON NULL DEFAULT ('{}')", column_ddl(mysql8, "json", { default = "{}" }))
    assert.equal("`c` JSON NULL DEFAULT '{}'", column_ddl(mariadb, "json", { default = "{}" }))
    assert.equal("`c` JSON NULL DEFAULT (_utf8mb4 X'225C5C22')", column_ddl(mysql8, "json",
      { default = '"\\\\"' }))
    error_of("CapabilityError", column_ddl, mysql57, "text", { default = "x" })
  end)
end)

describe("create_table_sql", function()
  it("writes keys, indexes, foreign keys, checks and table options", function()
    local def = schema.define("posts", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("user_id", { nullable = false, references = { table = "users", on_delete = "cascade" } })
      t:string("slug", { size = 100, unique = true })
      t:integer("rank", { index = true, check = schema.raw("`rank` >= 0") })
      t:index({ "user_id", "rank" }, { name = "by_user_rank" })
      t:foreign_key("rank", { table = "ranks", column = "n", on_delete = "set null",
        on_update = "restrict" })
      t:check("slug_not_empty", schema.raw("`slug` <> ''"))
    end, { engine = "InnoDB", collate = "utf8mb4_bin", comment = "posts", if_not_exists = true })
    assert.equal("CREATE TABLE IF NOT EXISTS `posts` ("
      .. "`id` BIGINT NOT NULL AUTO_INCREMENT, `user_id` BIGINT NOT NULL, `slug` VARCHAR(100) NULL, "
      .. "`rank` INT NULL, PRIMARY KEY (`id`), UNIQUE KEY `uq_posts_slug` (`slug`), "
      .. "KEY `idx_posts_rank` (`rank`), KEY `by_user_rank` (`user_id`, `rank`), "
      .. "CONSTRAINT `fk_posts_user_id` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) "
      .. "ON DELETE CASCADE, "
      .. "CONSTRAINT `fk_posts_rank` FOREIGN KEY (`rank`) REFERENCES `ranks` (`n`) "
      .. "ON DELETE SET NULL ON UPDATE RESTRICT, "
      .. "CONSTRAINT `chk_posts_rank` CHECK (`rank` >= 0), "
      .. "CONSTRAINT `slug_not_empty` CHECK (`slug` <> '')"
      .. ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT 'posts'",
      mariadb:create_table_sql(def))
  end)

  it("writes composite primary keys and timestamps", function()
    local def = schema.define("memberships", function(t)
      t:bigint("user_id")
      t:bigint("group_id")
      t:primary_key{ "user_id", "group_id" }
      t:timestamps()
    end)
    assert.equal("CREATE TABLE `memberships` (`user_id` BIGINT NOT NULL, `group_id` BIGINT NOT NULL, "
      .. "`created_at` DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)), "
      .. "`updated_at` DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6)), "
      .. "PRIMARY KEY (`user_id`, `group_id`)"
      .. ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", mariadb:create_table_sql(def))
  end)

  it("gates CHECK constraints on the server", function()
    local def = schema.define("t", function(t) t:integer("a", { check = schema.raw("a > 0") }) end)
    local err = error_of("CapabilityError", mysql57.create_table_sql, mysql57, def)
    assert.equal("CHECK constraints needs MySQL 8.0.16+ (server: mysql 5.7.44)", err.message)
  end)

  it("quotes table and column names that look like attacks", function()
    local def = schema.define("t`; DROP TABLE x; --", function(t) t:integer("c`) --") end)
    assert.matches("^CREATE TABLE `t``; DROP TABLE x; %-%-` %(`c``%) %-%-` INT NULL%)",
      mariadb:create_table_sql(def))
  end)

  it("validates engine, charset and collate names", function()
    for _, opts in ipairs({ { engine = "InnoDB; DROP" }, { charset = "utf8 x" }, { collate = "a'b" } }) do
      local ok, err = pcall(schema.define, "t", function(t) t:integer("a") end, opts)
      if ok then err = select(2, pcall(mariadb.create_table_sql, mariadb, err)) end
      assert.is_true(errors.is(err, "ConfigError"), tostring(err))
    end
    local def = { name = "t", columns = { { name = "a", type = "integer" } }, options = { engine = "x y" } }
    error_of("ConfigError", mariadb.create_table_sql, mariadb, def)
  end)

  it("keeps generated names within 64 characters, deterministically", function()
    local long = string.rep("c", 60)
    local name = Dialect.constraint_name("idx", "table_with_a_long_name", { long })
    assert.equal(64, #name)
    assert.equal(name, Dialect.constraint_name("idx", "table_with_a_long_name", { long }))
    assert.are_not.equal(name, Dialect.constraint_name("idx", "table_with_a_long_name", { long .. "d" }))
    assert.equal("idx_users_a_b", Dialect.constraint_name("idx", "db.users", { "a", "b" }))
  end)
end)

describe("drop_table_sql and add_index_sql", function()
  it("writes DROP TABLE and CREATE INDEX", function()
    assert.equal("DROP TABLE IF EXISTS `users`", mariadb:drop_table_sql("users", { if_exists = true }))
    assert.equal("DROP TABLE `db`.`users`", mariadb:drop_table_sql("db.users"))
    assert.equal("CREATE UNIQUE INDEX `uq_users_email` ON `users` (`email`)",
      mariadb:add_index_sql("users", "email", { unique = true }))
    assert.equal("CREATE INDEX `by_name` ON `users` (`last`, `first`)",
      mariadb:add_index_sql("users", { "last", "first" }, { name = "by_name" }))
    error_of("ConfigError", mariadb.drop_table_sql, mariadb, "users", { cascade = true })
    error_of("QueryError", mariadb.add_index_sql, mariadb, "users", {})
  end)
end)

-- test/c/oom.lua: the fixed script of core operations run by test/c/oom.c
-- under a failing allocator. setup() runs once, unmeasured; run() is the
-- measured section and must not swallow errors it did not expect: expect()
-- re-raises anything that is not the error kind it was written for, so a
-- memory error always reaches the harness.
local M = {}

local function expect(kind, f, ...)
  local ok, err = pcall(f, ...)
  if ok then error("expected a " .. kind .. " but the call succeeded", 0) end
  if type(err) ~= "table" or err.kind ~= kind then error(err, 0) end
  return err
end

local COLUMNS = [[id INT PRIMARY KEY AUTO_INCREMENT, ti TINYINT, si SMALLINT,
  mi MEDIUMINT, i INT, bi BIGINT, bu BIGINT UNSIGNED, f FLOAT, d DOUBLE,
  de DECIMAL(65,30), dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(3) NULL,
  y YEAR, bt BIT(64), ch CHAR(10), vc VARCHAR(64), tx TEXT, bl BLOB, lb LONGBLOB,
  j JSON, e ENUM('a','b'), st SET('x','y'), vb VARBINARY(16), u VARCHAR(32) UNIQUE]]

local INSERT = [[INSERT INTO ar_oom (ti, si, mi, i, bi, bu, f, d, de, dt, tm, dtm,
  ts, y, bt, ch, vc, tx, bl, lb, j, e, st, vb, u)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]]

local function row_values(k)
  return -128, -32768, 8388607, 2147483647, math.mininteger, "18446744073709551615",
    1.1, 2.5e-300, "-12345678901234567890123456789012345.123456789012345678901234567891",
    "2024-02-29", "-838:59:58.999999", "9999-12-31 23:59:59.999999",
    "2038-01-19 03:14:07.123", 2155, 0x7fffffffffffffff, "char", "varchar é",
    string.rep("text ", 20), "bin\0ary", string.rep("\255\0", 3000),
    '{"k": [1, 2.5, "s", true, null, {"n": {}}]}', "b", "x,y", "\0\1\2", "key" .. k
end

function M.setup(core, opts)
  local c = core.connect(opts)
  c:execute("DROP TABLE IF EXISTS ar_oom")
  c:execute("CREATE TABLE ar_oom (" .. COLUMNS .. ") ENGINE=InnoDB")
  for k = 1, 3 do c:execute(INSERT, row_values(k)) end
  c:close()
end

function M.run(core, opts, conns)
  local c = core.connect(opts)
  conns[#conns + 1] = c

  -- parameters of every type, and a result row of every column type
  c:execute("SELECT ? AS i, ? AS f, ? AS s, ? AS b, ? AS n, ? AS z, ? AS big",
    42, 1.5, "a\0b", true, nil, core.null, math.maxinteger)
  local r = c:execute("SELECT * FROM ar_oom ORDER BY id")
  assert(#r.rows == 3 and #r.columns == 26)

  -- streaming, to the end and broken off early
  local n = 0
  for _ in c:each("SELECT id, j, lb, de, dtm FROM ar_oom WHERE id >= ?", 1) do n = n + 1 end
  assert(n == 3)
  for _ in c:each("SELECT id FROM ar_oom") do break end
  do -- an open cursor makes the connection busy
    local next_row, cursor, _, closing <close> = c:each("SELECT id FROM ar_oom")
    next_row(cursor)
    expect("QueryError", c.execute, c, "SELECT 1")
  end

  -- user-held statements
  local st = c:prepare("SELECT ? + 1 AS x, CAST(? AS DATETIME(6)) AS t")
  st:execute(1, "2024-01-02 03:04:05.123456")
  for _ in st:each(2, "2024-01-02") do end
  st:close()

  -- transactions and savepoints
  c:begin()
  c:execute(INSERT, row_values("tx"))
  c:savepoint("sp1")
  c:execute("UPDATE ar_oom SET vc = ? WHERE u = ?", "changed", "keytx")
  c:rollback_to("sp1")
  c:release_savepoint("sp1")
  assert(c:in_transaction())
  c:rollback()
  c:begin { isolation = "read committed", read_only = true }
  c:commit()

  -- error paths
  expect("QueryError", c.execute, c, "SELEC 1")
  expect("IntegrityError", c.execute, c, "INSERT INTO ar_oom (id) VALUES (1)")
  expect("DataError", c.execute, c, "SELECT ?", 0 / 0)
  expect("DataError", c.execute, c, "SELECT ?", {})
  expect("QueryError", c.execute, c, "SELECT ?, ?", 1)
  expect("TransactionError", c.savepoint, c, "bad name")
  expect("TransactionError", c.begin, c, "sometimes")

  -- text protocol (statements that cannot be prepared) and DDL
  c:execute("PREPARE ar_s FROM 'SELECT 1 AS one, 1.5 AS d, NULL AS z'")
  assert(c:execute("EXECUTE ar_s").rows[1].one == 1)
  c:execute("DEALLOCATE PREPARE ar_s")
  c:execute("CREATE TEMPORARY TABLE ar_tmp (a INT)")
  c:execute("DROP TEMPORARY TABLE ar_tmp")

  -- session and server
  c:server()
  c:capabilities()
  assert(c:ping())
  c:probe()
  c:statement_cache()
  tostring(c)
  c:thread_id()
  c:reset()

  -- pure functions
  core.capabilities_for("mariadb", "10.11.6-MariaDB-0+deb12u1")
  core.capabilities_for("mysql", { 8, 0, 31 })
  expect("ConfigError", core.capabilities_for, "oracle", "1")
  expect("ConfigError", core.capabilities_for, "mysql", "latest")
  core.parse_version("5.5.5-10.4.1-MariaDB")
  core.json_decode('{"a":[1,-2.5e3,"x\\u00e9\\n\\ud83d\\ude00",true,false,null,{"b":{}}],'
    .. '"big":123456789012345678901234567890}')
  expect("DataError", core.json_decode, "[1,")
  tostring(core.error("QueryError", "made by hand", { extra = 1 }))

  -- a second connection: tiny cache (evictions), decimals as numbers,
  -- session settings re-applied after reset
  local o2 = {}
  for k, v in pairs(opts) do o2[k] = v end
  o2.statement_cache_size = 1
  o2.decimal = "number"
  o2.sql_mode = "ANSI_QUOTES"
  o2.time_zone = "+00:00"
  o2.init_command = "SET @ar_x = 1"
  local c2 = core.connect(o2)
  conns[#conns + 1] = c2
  c2:execute("SELECT de FROM ar_oom")
  c2:execute("SELECT 1 AS a")
  c2:execute("SELECT ? AS b", 2)
  c2:reset()
  c2:close()

  -- connect failures
  local bad = {}
  for k, v in pairs(opts) do bad[k] = v end
  bad.password = "wrong"
  expect("ConnectionError", core.connect, bad)
  expect("ConfigError", core.connect, { bogus = 1 })

  c:close()
  expect("ConnectionError", c.execute, c, "SELECT 1")
end

return M

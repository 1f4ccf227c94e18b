-- The capability matrix (design §5) is a pure function of flavor and
-- version, so servers we cannot run here are covered directly; one spec
-- checks that a live connection reports the same answer for its server.
local core = require("activerecord.backend.mysql.core")

local function caps(flavor, version)
  return core.capabilities_for(flavor, version)
end

-- Asserts each listed capability has exactly the given boolean.
local function expect(flavor, version, wanted)
  local c = caps(flavor, version)
  for name, value in pairs(wanted) do
    assert.are.equal(value, c[name],
                     string.format("%s %s: %s should be %s", flavor,
                                   type(version) == "table" and table.concat(version, ".") or version,
                                   name, tostring(value)))
  end
end

-- Everything MySQL 8.4 ships, and what no MySQL has.
local MYSQL_HAS = {
  "cte", "recursive_cte", "window_functions", "json", "native_json", "json_table",
  "json_arrow_operators", "set_operations", "intersect", "except", "check_constraints",
  "locking", "for_share", "nowait", "skip_locked", "upsert", "upsert_alias", "full_text",
  "lateral", "max_execution_time", "invisible_columns", "descending_indexes",
  "explain_json", "grouping_function", "savepoints", "read_only_transactions",
  "json_path_ranges", "lob_defaults", "rename_column",
}
local MYSQL_NEVER = {
  "returning", "delete_returning", "sequences", "system_versioning",
  "json_extended_metadata", "bulk_array_binding", "uuid_type",
}

describe("core.capabilities_for", function()
  it("returns a flat table of booleans covering every documented category", function()
    local c = caps("mysql", "8.0.31")
    local n = 0
    for name, value in pairs(c) do
      assert.are.equal("string", type(name))
      assert.are.equal("boolean", type(value), name)
      n = n + 1
    end
    for _, name in ipairs{ "json", "cte", "window_functions", "set_operations", "returning",
                           "upsert", "locking", "full_text", "check_constraints", "sequences",
                           "bulk_array_binding", "json_arrow_operators" } do
      assert.is_not_nil(c[name], name .. " missing")
    end
    assert.are.equal(#MYSQL_HAS + #MYSQL_NEVER, n)
  end)

  describe("MySQL", function()
    it("5.7: JSON but no CTEs, window functions, JSON_TABLE or INTERSECT", function()
      expect("mysql", "5.7.44", {
        cte = false, recursive_cte = false, window_functions = false,
        json = true, native_json = true, json_arrow_operators = true,
        json_table = false, intersect = false, except = false,
        returning = false, skip_locked = false, check_constraints = false,
        set_operations = true, upsert = true, max_execution_time = true,
      })
    end)

    it("5.7.7 predates JSON, 5.7.8 has it", function()
      expect("mysql", "5.7.7", { json = false, native_json = false })
      expect("mysql", "5.7.8", { json = true, native_json = true })
    end)

    it("CTEs arrive in 8.0.1, not 8.0.0", function()
      expect("mysql", "8.0.0", { cte = false, recursive_cte = false, skip_locked = false })
      expect("mysql", "8.0.1", { cte = true, recursive_cte = true, skip_locked = true, nowait = true })
    end)

    it("8.0.31: INTERSECT/EXCEPT and the upsert alias, still no RETURNING or sequences", function()
      expect("mysql", "8.0.30", { intersect = false, except = false })
      expect("mysql", "8.0.31", {
        intersect = true, except = true, upsert_alias = true, cte = true,
        window_functions = true, json_table = true, check_constraints = true,
        returning = false, sequences = false, delete_returning = false,
      })
    end)

    it("8.4 has everything MySQL has, and still no RETURNING", function()
      local c = caps("mysql", "8.4.0")
      for _, name in ipairs(MYSQL_HAS) do
        assert.is_true(c[name], "mysql 8.4: " .. name)
      end
      for _, name in ipairs(MYSQL_NEVER) do
        assert.is_false(c[name], "mysql 8.4: " .. name)
      end
    end)
  end)

  describe("MariaDB", function()
    it("10.2: CTEs and window functions; JSON from 10.2.7; no RETURNING or INTERSECT", function()
      expect("mariadb", "10.2.44", {
        cte = true, recursive_cte = true, window_functions = true, json = true,
        returning = false, intersect = false, except = false, json_table = false,
        check_constraints = true, sequences = false,
      })
      expect("mariadb", "10.2.6", { json = false, cte = true })
      expect("mariadb", "10.2.7", { json = true })
      expect("mariadb", "10.2.0", { cte = false, window_functions = true })
    end)

    it("10.5: RETURNING, but no JSON_TABLE or SKIP LOCKED", function()
      expect("mariadb", "10.5.0", {
        returning = true, delete_returning = true, json_table = false,
        skip_locked = false, intersect = true, sequences = true,
      })
    end)

    it("10.6: JSON_TABLE and SKIP LOCKED", function()
      expect("mariadb", "10.6.0", { json_table = true, skip_locked = true, returning = true })
    end)

    for _, version in ipairs{ "10.11.6", "11.4.2" } do
      it(version .. ": no -> operators, native JSON or upsert alias; sequences yes", function()
        expect("mariadb", version, {
          json_arrow_operators = false, native_json = false, upsert_alias = false,
          for_share = false, lateral = false, grouping_function = false,
          sequences = true, returning = true, json = true, json_table = true,
          json_extended_metadata = true, cte = true, intersect = true, skip_locked = true,
        })
      end)
    end

    it("compares versions numerically: 10.11 is newer than 10.6 and 10.2", function()
      expect("mariadb", "10.11.0", { json_table = true, descending_indexes = true })
      expect("mariadb", "10.1.48", { cte = false, json = false, window_functions = false })
    end)
  end)

  describe("version arguments", function()
    it("accepts version tables like {8, 0, 31}", function()
      assert.are.same(caps("mysql", "8.0.31"), caps("mysql", { 8, 0, 31 }))
      expect("mysql", { 8, 0, 31 }, { intersect = true })
      expect("mysql", { 8, 0, 30 }, { intersect = false })
      expect("mariadb", { 10, 6, 0 }, { json_table = true })
    end)

    it("treats missing table parts as 0", function()
      expect("mysql", { 8 }, { cte = false })
      expect("mysql", { 8, 1 }, { intersect = true })
      expect("mariadb", { 10, 5 }, { returning = true, json_table = false })
    end)

    it("accepts full server version strings", function()
      expect("mysql", "8.0.36-0ubuntu0.22.04.1", { intersect = true, returning = false })
      expect("mariadb", "5.5.5-10.4.1-MariaDB", { intersect = true, returning = false })
      expect("mariadb", "10.11.6-MariaDB-0+deb12u1", { returning = true, json_table = true })
      expect("mysql", "8.0", { cte = false })
    end)

    it("raises ConfigError for an unknown flavor", function()
      local ok, err = pcall(core.capabilities_for, "postgres", "16.0")
      assert.is_false(ok)
      assert.are.equal("table", type(err))
      assert.are.equal("ConfigError", err.kind)
      assert.matches("postgres", err.message, 1, true)
      assert.matches("^ConfigError", tostring(err))
    end)

    it("raises ConfigError for a version it cannot read", function()
      local ok, err = pcall(core.capabilities_for, "mysql", "latest")
      assert.is_false(ok)
      assert.are.equal("ConfigError", err.kind)
      assert.matches("latest", err.message, 1, true)
    end)
  end)
end)

describe("core.parse_version", function()
  it("strips the 5.5.5- replication prefix of old MariaDB servers", function()
    local flavor, v = core.parse_version("5.5.5-10.4.1-MariaDB")
    assert.are.equal("mariadb", flavor)
    assert.are.same({ 10, 4, 1 }, v)
  end)

  it("reads distribution-suffixed MariaDB and MySQL versions", function()
    local flavor, v = core.parse_version("10.11.6-MariaDB-0+deb12u1")
    assert.are.equal("mariadb", flavor)
    assert.are.same({ 10, 11, 6 }, v)
    flavor, v = core.parse_version("8.0.36-0ubuntu0.22.04.1")
    assert.are.equal("mysql", flavor)
    assert.are.same({ 8, 0, 36 }, v)
    flavor, v = core.parse_version("5.7.44-log")
    assert.are.equal("mysql", flavor)
    assert.are.same({ 5, 7, 44 }, v)
  end)

  it("returns integers, and nothing for a string without a version", function()
    local _, v = core.parse_version("11.4.2-MariaDB")
    for i = 1, 3 do assert.are.equal("integer", math.type(v[i])) end
    assert.are.equal(0, select("#", core.parse_version("not a version")))
  end)
end)

describe("live server capabilities", function()
  local db = require("support.db")
  local conn

  setup(function()
    conn = db.connect()
    db.recreate(conn, "caps_probe", "id INT PRIMARY KEY, v INT, j JSON")
    conn:execute("INSERT INTO caps_probe VALUES (1, 1, '{\"a\": 1}')")
  end)

  teardown(function()
    if conn then
      conn:execute("DROP TEMPORARY SEQUENCE IF EXISTS caps_seq")
      conn:execute("DROP TABLE IF EXISTS caps_probe")
      conn:close()
    end
  end)

  it("conn:server() names the flavor and the version SELECT VERSION() reports", function()
    local version = conn:execute("SELECT VERSION() AS v").rows[1].v
    local major, minor, patch = version:match("^(%d+)%.(%d+)%.(%d+)")
    local server = conn:server()
    assert.are.equal("mariadb", server.flavor)
    assert.are.same({ tonumber(major), tonumber(minor), tonumber(patch) }, server.version)
    assert.are.equal(version, server.version_string)
  end)

  it("conn:capabilities() equals capabilities_for(flavor, version) of that server", function()
    local server = conn:server()
    local expected = core.capabilities_for(server.flavor, server.version)
    if not core.nonblocking then
      expected.bulk_array_binding = false -- a Connector/C feature, not the server's
    end
    local got = conn:capabilities()
    assert.are.same(expected, got)
    -- and it is the MariaDB answer, not the MySQL one for the same numbers
    assert.are_not.same(core.capabilities_for("mysql", server.version), got)
    assert.is_true(got.returning)
  end)

  -- One statement per capability that only parses or runs when the server
  -- really has the feature.
  local probes = {
    cte = "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    recursive_cte = "WITH RECURSIVE x(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM x WHERE n < 3) " ..
                    "SELECT n FROM x",
    window_functions = "SELECT ROW_NUMBER() OVER (ORDER BY id) AS r FROM caps_probe",
    json_table = "SELECT x FROM JSON_TABLE('[1,2]', '$[*]' COLUMNS (x INT PATH '$')) AS t",
    json_arrow_operators = "SELECT j->'$.a' FROM caps_probe",
    returning = "INSERT INTO caps_probe (id, v) VALUES (2, 2) RETURNING id",
    delete_returning = "DELETE FROM caps_probe WHERE id = 2 RETURNING id",
    intersect = "SELECT 1 INTERSECT SELECT 1",
    except = "SELECT 1 EXCEPT SELECT 2",
    for_share = "SELECT id FROM caps_probe FOR SHARE",
    nowait = "SELECT id FROM caps_probe FOR UPDATE NOWAIT",
    skip_locked = "SELECT id FROM caps_probe FOR UPDATE SKIP LOCKED",
    upsert_alias = "INSERT INTO caps_probe (id, v) VALUES (1, 5) AS new ON DUPLICATE KEY UPDATE v = new.v",
    sequences = "CREATE TEMPORARY SEQUENCE caps_seq",
    lateral = "SELECT t.x FROM caps_probe, LATERAL (SELECT caps_probe.id AS x) AS t",
    grouping_function = "SELECT v, GROUPING(v) FROM caps_probe GROUP BY v WITH ROLLUP",
    uuid_type = "SELECT CAST('123e4567-e89b-12d3-a456-426614174000' AS UUID)",
  }

  it("claims exactly the features the running server accepts", function()
    local c = conn:capabilities()
    local wrong = {}
    for name, sql in pairs(probes) do
      local ok, err = pcall(conn.execute, conn, sql)
      assert.are.equal("boolean", type(c[name]), name)
      if ok ~= c[name] then
        wrong[#wrong + 1] = string.format("%s: matrix says %s, server %s", name,
                                          tostring(c[name]),
                                          ok and "accepts it" or ("refuses it: " .. tostring(err)))
      end
    end
    table.sort(wrong)
    assert.are.same({}, wrong)
  end)
end)

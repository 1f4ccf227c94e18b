-- The schema DSL: definition errors (pure), then the DDL it compiles to,
-- run on the real server and checked by what a user would notice: defaults
-- read back exactly, cascades cascade, CHECKs reject, options stick.
local schema = require("activerecord.schema")
local compiler = require("activerecord.backend.mysql.compiler")
local Dialect = require("activerecord.backend.mysql.dialect")
local errors = require("activerecord.errors")

local function error_of(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a " .. kind)
  assert.is_true(errors.is(err, kind), "expected " .. kind .. ", got " .. tostring(err))
  return err
end

-- ConfigError from defining table `t` with builder `fn`, naming the column.
local function definition_error(fn, column, opts)
  local err = error_of("ConfigError", schema.define, "t", fn, opts)
  assert.equal("t", err.table)
  assert.matches('table "t"', err.message, 1, true)
  if column then
    assert.equal(column, err.column)
    assert.matches('column "' .. column .. '"', err.message, 1, true)
  end
  return err
end

describe("schema.define", function()
  it("returns a plain neutral definition, columns in order", function()
    local def = schema.define("users", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("email", { size = 191, unique = true, null = false })
      t:decimal("balance", { precision = 12, scale = 2 })
      t:json("profile")
      t:index({ "email", "balance" }, { unique = true, name = "by_email" })
      t:timestamps()
    end, { engine = "InnoDB", collate = "utf8mb4_bin" })
    assert.is_nil(getmetatable(def))
    assert.equal("users", def.name)
    local names = {}
    for i, col in ipairs(def.columns) do names[i] = col.name end
    assert.same({ "id", "email", "balance", "profile", "created_at", "updated_at" }, names)
    assert.same({ name = "email", type = "string", size = 191, unique = true, nullable = false },
      def.columns[2])
    assert.same({ "id" }, def.primary_key)
    assert.same({ { columns = { "email", "balance" }, unique = true, name = "by_email" } }, def.indexes)
    assert.same({ engine = "InnoDB", collate = "utf8mb4_bin" }, def.options)
    assert.is_true(schema.is_raw(def.columns[6].default))
    assert.is_nil(def.columns[6].on_update) -- UTC_TIMESTAMP: no ON UPDATE (session-local time)
  end)

  it("has a builder method for every neutral type", function()
    local def = schema.define("all", function(t)
      for type_name in pairs(schema.types) do
        local opts = (type_name == "enum" or type_name == "set") and { values = { "a" } } or nil
        t[type_name](t, "c_" .. type_name, opts)
      end
    end)
    local n = 0
    for _ in pairs(schema.types) do n = n + 1 end
    assert.equal(n, #def.columns)
  end)

  it("rejects duplicate columns", function()
    definition_error(function(t) t:integer("a"); t:string("a") end, "a")
  end)

  it("rejects two primary keys", function()
    definition_error(function(t)
      t:integer("a", { primary_key = true }); t:integer("b", { primary_key = true })
    end, "b")
    definition_error(function(t)
      t:integer("a", { primary_key = true }); t:integer("b"); t:primary_key{ "a", "b" }
    end, "a")
    definition_error(function(t) t:integer("a"); t:primary_key("a"); t:primary_key("a") end)
  end)

  it("rejects unknown types unless sql_type names one", function()
    local err = definition_error(function(t) t:column("geo", "point") end, "geo")
    assert.matches('unknown type "point"', err.message, 1, true)
    local def = schema.define("t", function(t) t:column("geo", "point", { sql_type = "POINT" }) end)
    assert.equal("POINT", def.columns[1].sql_type)
  end)

  it("rejects unknown options, listing the accepted ones", function()
    local err = definition_error(function(t) t:string("name", { sise = 10 }) end, "name")
    assert.matches("unknown option 'sise'", err.message, 1, true)
    assert.matches("size", err.message, 1, true)
    definition_error(function(t) t:string("name", { unsigned = true }) end, "name")
    definition_error(function(t) t:string("name", { auto_increment = true }) end, "name")
    definition_error(function(t) t:integer("n", { precision = 3 }) end, "n")
  end)

  it("rejects options of the wrong type", function()
    definition_error(function(t) t:string("s", { size = "191" }) end, "s")
    definition_error(function(t) t:string("s", { nullable = "no" }) end, "s")
    definition_error(function(t) t:string("s", { default = {} }) end, "s")
    definition_error(function(t) t:double("d", { default = 0 / 0 }) end, "d")
    definition_error(function(t) t:string("s", { charset = "utf8; DROP" }) end, "s")
    definition_error(function(t) t:enum("e", { values = {} }) end, "e")
    definition_error(function(t) t:enum("e", { values = { 1, 2 } }) end, "e")
    definition_error(function(t) t:datetime("d", { on_update = "CURRENT_TIMESTAMP" }) end, "d")
    definition_error(function(t) t:integer("a", { check = "a > 0" }) end, "a")
    definition_error(function(t) t:integer("a", 5) end, "a")
  end)

  it("rejects contradictory or dangling definitions", function()
    definition_error(function(t) t:integer("a", { primary_key = true, nullable = true }) end, "a")
    definition_error(function(t) t:integer("a", { null = true, nullable = false }) end, "a")
    definition_error(function(t) t:integer("a", { nullable = true }); t:primary_key("a") end, "a")
    definition_error(function(t) t:integer("a"); t:index("b") end, "b")
    definition_error(function(t) t:integer("a"); t:primary_key{ "a", "z" } end, "z")
    definition_error(function(t) t:integer("a"); t:foreign_key("b", { table = "x" }) end, "b")
    definition_error(function(t) t:integer("a", { references = { column = "id" } }) end, "a")
    definition_error(function(t)
      t:integer("a", { references = { table = "x", on_delete = "explode" } })
    end, "a")
    definition_error(function(t) t:integer("a"); t:check("c", "a > 0") end)
    definition_error(function() end)
    definition_error(function(t) t:integer("a") end, nil, { engine = "InnoDB", egnine = "x" })
    error_of("ConfigError", schema.define, "", function(t) t:integer("a") end)
  end)
end)

describe("schema.raw", function()
  it("marks fragments that cannot be forged or changed", function()
    local r = schema.raw("CURRENT_TIMESTAMP(6)")
    assert.is_true(schema.is_raw(r))
    assert.equal("CURRENT_TIMESTAMP(6)", r.sql)
    assert.is_false(schema.is_raw({ sql = "1" }))
    assert.is_false(schema.is_raw("CURRENT_TIMESTAMP"))
    assert.is_false(schema.is_raw(setmetatable({ sql = "1" }, { __index = {} })))
    assert.has_error(function() r.sql = "1; DROP TABLE x" end)
    assert.equal("CURRENT_TIMESTAMP(6)", r.sql)
  end)

  it("refuses fragments that would end or comment out the statement", function()
    for _, bad in ipairs({ "1; DROP TABLE x", "a > 0 -- x", "a /* */", "a # x", "a\0", "", "  ", 5,
      -- a quote left open, a token after a closed string, and a backslash:
      -- where 'a\' ends depends on NO_BACKSLASH_ESCAPES, so no string is
      -- skipped in text holding one
      "CONCAT('a, b)", "CONCAT('a', b); DROP TABLE x", "CONCAT('a\\'; DROP TABLE x; #', b)",
      "CONCAT(\"#\", `x;`) -- c" }) do
      error_of("QueryError", schema.raw, bad)
    end
  end)

  it("lets the tokens stand inside quoted strings and identifiers", function()
    for _, ok in ipairs({ "CONCAT('#', sku)", "CONCAT('it''s -- ', `odd;col`)", "REPLACE(a, \"/*\", \"\")" }) do
      assert.equal(ok, schema.raw(ok).sql)
    end
  end)
end)

describe("generated columns and ar.raw in the DSL", function()
  local ar_raw = require("activerecord.query").raw

  it("keeps a generated column as { expr = <raw>, stored = <boolean> }", function()
    local def = schema.define("t", function(t)
      t:integer("qty")
      t:decimal("price", { precision = 8, scale = 2 })
      t:decimal("total", { precision = 12, scale = 2,
        generated = { expr = schema.raw("qty * price"), stored = true } })
      t:string("label", { size = 20, generated = { expr = ar_raw("concat('n', qty)") } })
    end)
    local total, label = def.columns[3], def.columns[4]
    assert.is_true(total.generated.stored)
    assert.equal("qty * price", schema.raw_text(total.generated.expr))
    assert.is_false(label.generated.stored)
    -- an ar.raw expression becomes a schema.raw fragment, frozen
    assert.equal("activerecord.schema.raw", getmetatable(label.generated.expr))
    assert.equal("concat('n', qty)", label.generated.expr.sql)
  end)

  it("refuses a generated column with a default, auto_increment or on_update", function()
    local gen = { expr = schema.raw("a + 1") }
    for _, extra in ipairs({ { default = 1 }, { default = false }, { auto_increment = true } }) do
      local opts = { generated = gen }
      for k, v in pairs(extra) do opts[k] = v end
      local err = definition_error(function(t) t:integer("a"); t:integer("g", opts) end, "g")
      assert.matches("generated column cannot have", err.message, 1, true)
    end
    definition_error(function(t)
      t:integer("a"); t:datetime("g", { generated = gen, on_update = schema.raw("CURRENT_TIMESTAMP") })
    end, "g")
    -- auto_increment = false says nothing
    schema.define("t", function(t) t:integer("a"); t:integer("g", { generated = gen, auto_increment = false }) end)
  end)

  it("refuses malformed generated options", function()
    for _, bad in ipairs({
      "a + 1", { expr = "a + 1" }, { expr = schema.raw("a"), stored = "yes" },
      { expr = schema.raw("a"), virtual = true }, { stored = true },
      { expr = ar_raw("a + ?", 1) }, { expr = ar_raw("a; DROP TABLE x") },
      { expr = { kind = "raw", sql = "a", params = { n = 0 } } },
    }) do
      definition_error(function(t) t:integer("a"); t:integer("g", { generated = bad }) end, "g")
    end
  end)

  it("takes ar.raw without parameters wherever it takes schema.raw", function()
    local def = schema.define("t", function(t)
      t:datetime("at", { precision = 6, default = ar_raw("CURRENT_TIMESTAMP(6)"),
        on_update = ar_raw("CURRENT_TIMESTAMP(6)") })
      t:integer("n", { check = ar_raw("n > 0") })
      t:check("n_small", ar_raw("n < 100"))
      t:check(ar_raw("n <> 50"))
    end)
    local at = def.columns[1]
    assert.is_true(schema.is_raw(at.default))
    assert.equal("CURRENT_TIMESTAMP(6)", schema.raw_text(at.default))
    assert.equal("CURRENT_TIMESTAMP(6)", schema.raw_text(at.on_update))
    assert.equal("n > 0", schema.raw_text(def.columns[2].check))
    assert.equal("n < 100", schema.raw_text(def.checks[1].expr))
    assert.equal("n <> 50", schema.raw_text(def.checks[2].expr))
    assert.is_nil(def.checks[2].name)
  end)

  it("refuses ar.raw with parameters or a forbidden token, and forged raw nodes", function()
    local forged = setmetatable({ kind = "raw", sql = "1", params = { n = 0 } }, { __index = {} })
    for _, bad in ipairs({ ar_raw("? + 1", 1), ar_raw("1; DROP TABLE x"), ar_raw("1 -- x"),
      ar_raw("1 /* x */"), forged, { kind = "raw", sql = "1" } }) do
      definition_error(function(t) t:integer("a", { default = bad }) end, "a")
      definition_error(function(t) t:datetime("a", { on_update = bad }) end, "a")
      definition_error(function(t) t:integer("a", { check = bad }) end, "a")
      definition_error(function(t) t:integer("a"); t:check("c", bad) end)
    end
    assert.is_true(schema.is_raw(ar_raw("NOW()")))
    assert.is_false(schema.is_raw(ar_raw("? + 1", 1)))
    assert.is_false(schema.is_raw(forged))
    assert.equal("NOW()", schema.raw_text(ar_raw("NOW()")))
    error_of("QueryError", schema.raw_text, ar_raw("1; DROP TABLE x"))
  end)

  it("writes AS (expr) VIRTUAL|STORED, with the NULL clause only on MySQL", function()
    local def = schema.define("t", function(t)
      t:integer("a", { nullable = false })
      t:integer("v", { generated = { expr = schema.raw("a * 2") }, comment = "twice" })
      t:bigint("s", { generated = { expr = ar_raw("a + 1"), stored = true }, unique = true })
    end)
    local maria = Dialect.new{ flavor = "mariadb", version = "10.11.0" }
    local mysql = Dialect.new{ flavor = "mysql", version = "8.0.36" }
    assert.equal("`v` INT AS (a * 2) VIRTUAL COMMENT 'twice'", maria:column_sql(def.columns[2], "t"))
    assert.equal("`s` BIGINT AS (a + 1) STORED", maria:column_sql(def.columns[3], "t"))
    assert.equal("`v` INT AS (a * 2) VIRTUAL NULL COMMENT 'twice'", mysql:column_sql(def.columns[2], "t"))
    assert.matches("UNIQUE KEY `uq_t_s` (`s`)", maria:create_table_sql(def), 1, true)
    local not_null = schema.define("t", function(t)
      t:integer("a")
      t:integer("g", { nullable = false, generated = { expr = schema.raw("a") } })
    end)
    assert.equal("`g` INT AS (a) VIRTUAL NOT NULL", mysql:column_sql(not_null.columns[2], "t"))
    local err = error_of("ConfigError", maria.column_sql, maria, not_null.columns[2], "t")
    assert.matches("MariaDB takes no NOT NULL on a generated column", err.message, 1, true)
    -- a hand-made definition is checked by the dialect too
    error_of("ConfigError", maria.column_sql, maria,
      { name = "g", type = "integer", default = 1, generated = { expr = schema.raw("a") } }, "t")
    error_of("ConfigError", maria.column_sql, maria, { name = "g", type = "integer", generated = "a" }, "t")
  end)
end)

-- ------------------------------------------------------------------ live ----

describe("schema on the server", function()
  local support = require("support.db")
  local conn, db

  local function dialect_for(c)
    local server = c:server()
    return Dialect.new{ flavor = server.flavor, version = server.version }
  end

  local function query(sql, ...)
    return conn:execute(sql, ...).rows
  end

  setup(function()
    conn = support.connect()
    db = { execute = function(_, sql, ...) return conn:execute(sql, ...) end, dialect = dialect_for(conn) }
    conn:execute("SET SESSION sql_mode = DEFAULT")
  end)

  teardown(function()
    for _, name in ipairs({ "ar_every_type", "ar_children", "ar_parents", "ar_checked", "ar_opts",
      "ar_defaults", "t`; DROP TABLE x; --", "ar_indexed", "ar_upserts", "ar_generated" }) do
      pcall(schema.drop_table, db, name, { if_exists = true })
    end
    conn:close()
  end)

  it("creates a table with every neutral type and reads its defaults back", function()
    schema.create_table(db, "ar_every_type", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:integer("i", { default = -5 })
      t:bigint("bi", { default = 9007199254740993 })
      t:bigint("ubi", { unsigned = true, default = 0 })
      t:smallint("si", { default = 7 })
      t:tinyint("ti", { default = -1 })
      t:float("f", { default = 1.5 })
      t:double("d", { default = 0.1 })
      t:decimal("dec", { precision = 12, scale = 2, default = "12.34" })
      t:string("s", { size = 191, unique = true, default = [[it's "q" \ back]] })
      t:text("tx", { default = "long text", size = "medium" })
      t:binary("vb", { size = 4, default = "\0\1\2\255" })
      t:binary("fb", { size = 2, fixed = true, default = "\0\0" })
      t:blob("bl")
      t:boolean("b", { default = true, nullable = false })
      t:date("dt", { default = "2024-02-29" })
      t:datetime("dtm", { precision = 6, default = "2024-02-29 12:34:56.123456" })
      t:time("tm", { precision = 3, default = "12:34:56.789" })
      t:timestamp("ts", { precision = 6, default = schema.raw("CURRENT_TIMESTAMP(6)") })
      t:json("j", { default = '{"a": [1, 2]}' })
      t:enum("e", { values = { "small", "it's", [[back\slash]] }, default = [[back\slash]] })
      t:set("st", { values = { "x", "y", "z" }, default = "x,z" })
      t:uuid("u", { index = true })
      t:uuid("ub", { binary = true })
      t:column("mi", "mediumint", { sql_type = "MEDIUMINT", unsigned = true, default = 16777215 })
      t:index({ "si", "ti" })
    end, { force = true })

    conn:execute("INSERT INTO `ar_every_type` () VALUES ()")
    local res = conn:execute("SELECT * FROM `ar_every_type`")
    local row = res.rows[1]
    assert.equal(-5, row.i)
    assert.equal(9007199254740993, row.bi)
    assert.equal(0, row.ubi)
    assert.equal(7, row.si)
    assert.equal(-1, row.ti)
    assert.equal(1.5, row.f)
    assert.equal(0.1, row.d)
    assert.equal("12.34", row.dec)
    assert.equal([[it's "q" \ back]], row.s)
    assert.equal("long text", row.tx)
    assert.equal("\0\1\2\255", row.vb)
    assert.equal("\0\0", row.fb)
    assert.is_nil(row.bl)
    assert.equal(1, row.b)
    assert.equal("2024-02-29", row.dt)
    assert.equal("2024-02-29 12:34:56.123456", row.dtm)
    assert.equal("12:34:56.789", row.tm)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d%d%d%d$", row.ts)
    assert.same({ a = { 1, 2 } }, row.j)
    assert.equal([[back\slash]], row.e)
    assert.equal("x,z", row.st)
    assert.equal(16777215, row.mi)

    -- MariaDB stores JSON as LONGTEXT; extended metadata still says JSON.
    for _, col in ipairs(res.columns) do
      if col.name == "j" then assert.equal("JSON", col.type) end
      if col.name == "ubi" then assert.is_true(col.unsigned) end
    end

    local indexes = {}
    for _, r in ipairs(query("SELECT INDEX_NAME AS name, NON_UNIQUE AS non_unique, COLUMN_NAME AS col"
      .. " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
      .. " ORDER BY INDEX_NAME, SEQ_IN_INDEX", "ar_every_type")) do
      indexes[r.name] = indexes[r.name] or { unique = r.non_unique == 0, columns = {} }
      table.insert(indexes[r.name].columns, r.col)
    end
    assert.same({ unique = true, columns = { "id" } }, indexes.PRIMARY)
    assert.same({ unique = true, columns = { "s" } }, indexes.uq_ar_every_type_s)
    assert.same({ unique = false, columns = { "u" } }, indexes.idx_ar_every_type_u)
    assert.same({ unique = false, columns = { "si", "ti" } }, indexes.idx_ar_every_type_si_ti)

    local dup = error_of("IntegrityError", conn.execute, conn,
      "INSERT INTO `ar_every_type` () VALUES ()")
    assert.equal(1062, dup.code) -- the unique default collides
  end)

  it("cascades ON DELETE CASCADE and enforces the foreign key", function()
    schema.drop_table(db, "ar_children", { if_exists = true })
    schema.create_table(db, "ar_parents", function(t)
      t:bigint("id", { primary_key = true })
    end, { force = true })
    schema.create_table(db, "ar_children", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("parent_id", { nullable = false,
        references = { table = "ar_parents", column = "id", on_delete = "cascade" } })
    end)
    conn:execute("INSERT INTO `ar_parents` (id) VALUES (1), (2)")
    conn:execute("INSERT INTO `ar_children` (parent_id) VALUES (1), (1), (2)")
    conn:execute("DELETE FROM `ar_parents` WHERE id = 1")
    assert.same({ { parent_id = 2 } }, query("SELECT parent_id FROM `ar_children`"))
    local err = error_of("IntegrityError", conn.execute, conn,
      "INSERT INTO `ar_children` (parent_id) VALUES (?)", 99)
    assert.equal(1452, err.code)
  end)

  it("makes the server reject rows that violate a CHECK (4025)", function()
    assert.is_true(db.dialect:supports("check_constraints"))
    schema.create_table(db, "ar_checked", function(t)
      t:integer("age", { check = schema.raw("`age` >= 0") })
      t:string("name", { default = "x" })
      t:check("name_not_empty", schema.raw("`name` <> ''"))
    end, { force = true })
    conn:execute("INSERT INTO `ar_checked` (age, name) VALUES (?, ?)", 3, "ok")
    local err = error_of("IntegrityError", conn.execute, conn,
      "INSERT INTO `ar_checked` (age) VALUES (?)", -1)
    assert.equal(4025, err.code)
    err = error_of("IntegrityError", conn.execute, conn,
      "INSERT INTO `ar_checked` (age, name) VALUES (?, ?)", 1, "")
    assert.equal(4025, err.code)
    assert.matches("name_not_empty", err.message, 1, true)
  end)

  it("applies ENGINE, CHARSET, COLLATE and COMMENT", function()
    schema.create_table(db, "ar_opts", function(t)
      t:string("code", { size = 10, unique = true })
    end, { engine = "InnoDB", charset = "utf8mb4", collate = "utf8mb4_bin",
      comment = "fixture's table", force = true })
    local info = query("SELECT t.ENGINE AS engine, t.TABLE_COLLATION AS coll, t.TABLE_COMMENT AS cmt,"
      .. " c.CHARACTER_SET_NAME AS cs FROM information_schema.TABLES t"
      .. " JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION"
      .. " WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = ?", "ar_opts")[1]
    assert.same({ engine = "InnoDB", coll = "utf8mb4_bin", cmt = "fixture's table", cs = "utf8mb4" },
      info)
    -- utf8mb4_bin is case-sensitive: 'a' and 'A' are different unique keys
    conn:execute("INSERT INTO `ar_opts` (code) VALUES (?), (?)", "a", "A")
    assert.equal(2, #query("SELECT code FROM `ar_opts`"))
  end)

  for _, mode in ipairs({ "", "NO_BACKSLASH_ESCAPES" }) do
    it("round-trips string defaults exactly under sql_mode '" .. mode .. "'", function()
      local values = {
        "it's", [[back\slash]], [[both \' and '' and \\]], "trailing\\", "nul\0byte",
        "tab\tand\nnewline", "caf\195\169 \228\184\173\230\150\135", "' OR '1'='1",
        "x'); DROP TABLE y; --", [[\0 \n \Z \%]], "",
      }
      conn:execute("SET SESSION sql_mode = ?", mode)
      assert.equal(mode, query("SELECT @@SESSION.sql_mode AS m")[1].m)
      local ok, err = pcall(function()
        schema.create_table(db, "ar_defaults", function(t)
          t:bigint("id", { primary_key = true, auto_increment = true })
          for i, v in ipairs(values) do t:string("d" .. i, { size = 100, default = v }) end
          t:text("tx", { default = values[3] })
          t:enum("e", { values = { values[2], values[3] }, default = values[3] })
        end, { force = true })
        conn:execute("INSERT INTO `ar_defaults` () VALUES ()")
        local row = query("SELECT * FROM `ar_defaults`")[1]
        for i, v in ipairs(values) do assert.equal(v, row["d" .. i], "default #" .. i) end
        assert.equal(values[3], row.tx)
        assert.equal(values[3], row.e)
      end)
      conn:execute("SET SESSION sql_mode = DEFAULT")
      assert(ok, err)
    end)
  end

  it("answers table_exists, adds indexes and drops tables", function()
    local name = "ar_indexed"
    schema.drop_table(db, name, { if_exists = true })
    assert.is_false(schema.table_exists(db, name))
    schema.create_table(db, name, function(t)
      t:integer("a")
      t:integer("b")
    end)
    assert.is_true(schema.table_exists(db, name))
    assert.is_true(schema.table_exists(db, support.options().database .. "." .. name))
    assert.is_false(schema.table_exists(db, "no_such_db_xyz." .. name))
    schema.add_index(db, name, { "a", "b" }, { unique = true })
    local idx = query("SELECT INDEX_NAME AS n, NON_UNIQUE AS nu FROM information_schema.STATISTICS"
      .. " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1", name)
    assert.same({ { n = "uq_ar_indexed_a_b", nu = 0 } }, idx)
    schema.drop_table(db, name)
    assert.is_false(schema.table_exists(db, name))
    error_of("QueryError", schema.drop_table, db, name)
    schema.drop_table(db, name, { if_exists = true })
  end)

  it("creates a table whose name is an injection attempt as one literal name", function()
    local name = "t`; DROP TABLE x; --"
    schema.create_table(db, name, function(t) t:integer("a`) --") end, { force = true })
    assert.is_true(schema.table_exists(db, name))
    local cols = query("SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS"
      .. " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", name)
    assert.same({ { c = "a`) --" } }, cols)
    schema.drop_table(db, name)
    assert.is_false(schema.table_exists(db, name))
  end)

  it("runs the dialect's locking, upsert and JSON SQL", function()
    local d = db.dialect
    schema.create_table(db, "ar_upserts", function(t)
      t:bigint("id", { primary_key = true })
      t:string("name")
      t:integer("score")
      t:json("doc")
    end, { force = true })
    local insert = compiler.insert(d, "ar_upserts", { "id", "name", "score", "doc" }, 2,
      { upsert = { update = { "name", "score" } } })
    conn:execute(insert, 1, "a", 1, '{"k": "v1"}', 2, "b", 2, '{"it\'s": [5]}')
    conn:execute(insert, 1, "A", 10, "{}", 3, "c", 3, "{}")
    assert.same({ { id = 1, name = "A", score = 10 }, { id = 2, name = "b", score = 2 },
      { id = 3, name = "c", score = 3 } }, query("SELECT id, name, score FROM `ar_upserts` ORDER BY id"))
    if d:supports("returning") then
      local rows = query(compiler.insert(d, "ar_upserts", { "id", "name" }, 1, { returning = { "id", "name" } }),
        4, "d")
      assert.same({ { id = 4, name = "d" } }, rows)
    end
    -- the path is bound: a quoted key full of SQL is just a key
    local sql, params = d:json_value("`doc`", '$."it\'s"[0]')
    assert.same({ { v = "5" } }, query("SELECT " .. sql .. " AS v FROM `ar_upserts` WHERE id = ?",
      params[1], 2))
    sql, params = d:json_contains("`doc`", '"v1"', "$.k")
    assert.same({ { id = 1 } }, query("SELECT id FROM `ar_upserts` WHERE " .. sql, table.unpack(params)))
    local limit, lparams = d:limit_offset(nil, 1)
    assert.equal(3, #query("SELECT id FROM `ar_upserts` ORDER BY id " .. limit, table.unpack(lparams)))
    conn:begin()
    for _, opts in ipairs({ { mode = "update" }, { mode = "share" }, { mode = "share", nowait = true },
      { mode = "share", skip_locked = true }, { skip_locked = true } }) do
      local usable = (not opts.nowait or d:supports("nowait"))
        and (not opts.skip_locked or d:supports("skip_locked"))
      if usable then
        assert.equal(1, #query("SELECT id FROM `ar_upserts` WHERE id = ? " .. d:lock_clause(opts), 1))
      end
    end
    conn:rollback()
    schema.drop_table(db, "ar_upserts")
  end)

  it("creates generated columns the server computes, and ar.raw defaults", function()
    local ar_raw = require("activerecord.query").raw
    schema.create_table(db, "ar_generated", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:integer("qty", { nullable = false, default = 1 })
      t:decimal("price", { precision = 8, scale = 2, nullable = false, default = "0" })
      t:decimal("total", { precision = 12, scale = 2,
        generated = { expr = schema.raw("`qty` * `price`"), stored = true }, index = true })
      -- a # inside a quoted string is text, not a comment
      t:string("label", { size = 40, generated = { expr = ar_raw("concat('#', `qty`)") } })
      t:datetime("at", { precision = 6, default = ar_raw("CURRENT_TIMESTAMP(6)"), nullable = false })
    end, { force = true })
    conn:execute("INSERT INTO `ar_generated` (qty, price) VALUES (?, ?)", 3, "2.50")
    assert.same({ { total = "7.50", label = "#3" } }, query("SELECT total, label FROM `ar_generated`"))
    conn:execute("UPDATE `ar_generated` SET qty = ?", 4)
    assert.same({ { total = "10.00", label = "#4" } }, query("SELECT total, label FROM `ar_generated`"))
    assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+$", query("SELECT at FROM `ar_generated`")[1].at)
    -- the server refuses a value for a generated column
    error_of("QueryError", conn.execute, conn, "INSERT INTO `ar_generated` (qty, price, total) VALUES (1, 1, 5)")
    local cols = {}
    for _, r in ipairs(query("SELECT COLUMN_NAME AS c, EXTRA AS e, GENERATION_EXPRESSION AS g"
      .. " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
      "ar_generated")) do
      cols[r.c] = r
    end
    assert.matches("STORED GENERATED", cols.total.e, 1, true)
    assert.matches("VIRTUAL GENERATED", cols.label.e, 1, true)
    assert.matches("qty", cols.total.g, 1, true)
    -- the index on the stored generated column is there
    assert.same({ { n = "idx_ar_generated_total" } }, query("SELECT DISTINCT INDEX_NAME AS n"
      .. " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
      .. " AND COLUMN_NAME = 'total'", "ar_generated"))
    schema.drop_table(db, "ar_generated")
  end)

  it("rejects an invalid table name before any SQL", function()
    error_of("QueryError", schema.table_exists, db, string.rep("x", 65))
    error_of("QueryError", schema.create_table, db, "bad\0name", function(t) t:integer("a") end)
  end)
end)

-- The dialect's ALTER statements (backend/mysql/ddl_alter.lua): the SQL they
-- write for each flavor, names quoted, values only through the literal
-- writers, mistakes refused before any SQL; and the RENAME COLUMN form run
-- on the server. The operations that use them: spec/migrate/operations_spec.lua.
local Dialect = require("activerecord.backend.mysql.dialect")
local core = require("activerecord.backend.mysql.core")
local schema = require("activerecord.schema")
local errors = require("activerecord.errors")
local ar_raw = require("activerecord.query").raw

local function error_of(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a " .. kind)
  assert.is_true(errors.is(err, kind), "expected " .. kind .. ", got " .. tostring(err))
  return err
end

-- A dialect, with `rename_column` set as given (the matrix may not know it yet).
local function dialect(flavor, version, rename_column)
  local caps = core.capabilities_for(flavor, version)
  caps.rename_column = rename_column == true
  return Dialect.new{ flavor = flavor, version = version, capabilities = caps }
end

local maria = dialect("mariadb", "10.11.0")
local mysql = dialect("mysql", "8.0.36")

describe("ALTER SQL", function()
  it("renames tables, names quoted", function()
    assert.equal("RENAME TABLE `a` TO `db`.`b`", maria:rename_table_sql("a", "db.b"))
    assert.equal("RENAME TABLE `x``; DROP TABLE y; --` TO `z`", maria:rename_table_sql("x`; DROP TABLE y; --", "z"))
    error_of("QueryError", maria.rename_table_sql, maria, "a", string.rep("x", 65))
  end)

  it("adds a column with its primary key, keys, foreign key and check", function()
    local col = schema.column("t", "code", "string", { size = 8, unique = true, index = true,
      default = "it's\\", references = { table = "codes", column = "code", on_delete = "cascade" },
      check = ar_raw("code <> ''") })
    assert.equal("ALTER TABLE `t` ADD COLUMN `code` VARCHAR(8) NULL DEFAULT _utf8mb4 X'697427735C',"
      .. " ADD UNIQUE KEY `uq_t_code` (`code`), ADD KEY `idx_t_code` (`code`),"
      .. " ADD CONSTRAINT `fk_t_code` FOREIGN KEY (`code`) REFERENCES `codes` (`code`) ON DELETE CASCADE,"
      .. " ADD CONSTRAINT `chk_t_code` CHECK (code <> '')", maria:add_column_sql("t", col))
    local id = schema.column("t", "id", "bigint", { primary_key = true, auto_increment = true })
    assert.equal("ALTER TABLE `t` ADD COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT, ADD PRIMARY KEY (`id`)",
      maria:add_column_sql("t", id))
    error_of("ConfigError", maria.add_column_sql, maria, "t", "code")
  end)

  it("adds generated columns per flavor", function()
    local col = schema.column("t", "total", "decimal", { precision = 12, scale = 2,
      generated = { expr = ar_raw("qty * price"), stored = true } })
    assert.equal("ALTER TABLE `t` ADD COLUMN `total` DECIMAL(12,2) AS (qty * price) STORED",
      maria:add_column_sql("t", col))
    assert.equal("ALTER TABLE `t` ADD COLUMN `total` DECIMAL(12,2) AS (qty * price) STORED NULL",
      mysql:add_column_sql("t", col))
  end)

  it("drops a column with the foreign keys and checks it carries, in one statement", function()
    assert.equal("ALTER TABLE `t` DROP COLUMN `a`", maria:remove_column_sql("t", "a"))
    assert.equal("ALTER TABLE `t` DROP FOREIGN KEY `fk_t_a`, DROP CONSTRAINT `chk_t_a`, DROP COLUMN `a`",
      maria:remove_column_sql("t", "a", { "fk_t_a" }, { "chk_t_a" }))
    assert.equal("ALTER TABLE `t` DROP FOREIGN KEY `fk_t_a`, DROP CHECK `chk_t_a`, DROP COLUMN `a`",
      mysql:remove_column_sql("t", "a", { "fk_t_a" }, { "chk_t_a" }))
    error_of("ConfigError", maria.remove_column_sql, maria, "t", nil)
  end)

  it("renames a column by RENAME COLUMN, or by CHANGE with the introspected definition", function()
    local modern = dialect("mariadb", "10.11.0", true)
    assert.equal("ALTER TABLE `t` RENAME COLUMN `a` TO `b`", modern:rename_column_sql("t", "a", "b"))
    local err = error_of("ConfigError", maria.rename_column_sql, maria, "t", "a", "b")
    assert.matches("needs its current definition", err.message, 1, true)
    local current = { name = "a", type = "string", sql_type = "varchar(10)", nullable = false,
      default = "x\\y", charset = "utf8mb4", collation = "utf8mb4_bin", comment = "it's" }
    assert.equal("ALTER TABLE `t` CHANGE COLUMN `a` `b` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
      .. " NOT NULL DEFAULT _utf8mb4 X'785C79' COMMENT 'it''s'", maria:rename_column_sql("t", "a", "b", current))
    local cases = {
      { { name = "e", type = "enum", sql_type = "enum('a','it''s')", values = { "a", "it's" }, nullable = true,
          default = "it's" }, "`f` ENUM('a','it''s') NULL DEFAULT 'it''s'" },
      { { name = "e", type = "json", sql_type = "longtext", nullable = true, charset = "utf8mb4",
          collation = "utf8mb4_bin", default = "{}" }, "`f` JSON NULL DEFAULT '{}'" },
      { { name = "e", type = "integer", sql_type = "int(11)", nullable = true,
          generated = { expr = "`a` * 2", stored = true } }, "`f` int(11) AS (`a` * 2) STORED" },
      { { name = "e", type = "bigint", sql_type = "bigint(20) unsigned", nullable = false, primary_key = true,
          auto_increment = true }, "`f` bigint(20) unsigned NOT NULL AUTO_INCREMENT" },
      { { name = "e", type = "datetime", sql_type = "datetime(6)", nullable = false,
          default = ar_raw("current_timestamp(6)"), on_update = ar_raw("current_timestamp(6)") },
        "`f` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6)" },
      { { name = "e", type = "boolean", sql_type = "tinyint(1)", nullable = true, default = true },
        "`f` tinyint(1) NULL DEFAULT 1" },
    }
    for _, case in ipairs(cases) do
      assert.equal("ALTER TABLE `t` CHANGE COLUMN `e` " .. case[2], maria:rename_column_sql("t", "e", "f", case[1]))
    end
    -- a sql_type the server could not have printed is refused, not spliced
    error_of("ConfigError", maria.rename_column_sql, maria, "t", "e", "f",
      { name = "e", type = "integer", sql_type = "int); DROP TABLE x; --", nullable = true })
    error_of("QueryError", maria.rename_column_sql, maria, "t", "e", "f",
      { name = "e", type = "integer", sql_type = "int", nullable = true, default = ar_raw("1; DROP TABLE x") })
  end)

  it("modifies a column, refusing what belongs to other operations", function()
    local col = schema.column("t", "n", "integer", { unsigned = true, default = 3 })
    assert.equal("ALTER TABLE `t` MODIFY COLUMN `n` INT UNSIGNED NULL DEFAULT 3", maria:change_column_sql("t", col))
    assert.equal("ALTER TABLE `t` MODIFY COLUMN `n` INT UNSIGNED NOT NULL DEFAULT 3",
      maria:change_column_sql("t", col, true))
    for _, opt in ipairs({ "unique", "index", "primary_key" }) do
      local err = error_of("ConfigError", maria.change_column_sql, maria, "t",
        schema.column("t", "n", "integer", { [opt] = true }))
      assert.matches(opt, err.message, 1, true)
    end
  end)

  it("drops indexes and foreign keys by name; adds foreign keys", function()
    assert.equal("ALTER TABLE `t` DROP INDEX `idx_t_a`", maria:remove_index_sql("t", "idx_t_a"))
    assert.equal("ALTER TABLE `t` DROP PRIMARY KEY", maria:remove_index_sql("t", "PRIMARY"))
    assert.equal("ALTER TABLE `t` DROP FOREIGN KEY `fk`", maria:remove_foreign_key_sql("t", "fk"))
    assert.equal("ALTER TABLE `t` ADD CONSTRAINT `fk_t_a_b` FOREIGN KEY (`a`, `b`) REFERENCES `u` (`x`, `y`)"
      .. " ON DELETE SET NULL ON UPDATE NO ACTION", maria:add_foreign_key_sql("t", {
        columns = { "a", "b" }, references = { table = "u", columns = { "x", "y" } },
        on_delete = "set_null", on_update = "NO ACTION" }))
    error_of("ConfigError", maria.add_foreign_key_sql, maria, "t",
      { columns = { "a" }, references = { table = "u", columns = { "x", "y" } } })
    error_of("ConfigError", maria.add_foreign_key_sql, maria, "t",
      { columns = { "a" }, references = { table = "u", columns = { "x" } }, on_delete = "explode" })
    error_of("ConfigError", maria.remove_index_sql, maria, "t", "")
    error_of("ConfigError", maria.remove_foreign_key_sql, maria, "t", 5)
  end)
end)

describe("RENAME COLUMN on the server", function()
  local support = require("support.db")
  local conn

  setup(function()
    conn = support.connect()
    conn:execute("DROP TABLE IF EXISTS `ar_rename_col`")
  end)

  teardown(function()
    conn:execute("DROP TABLE IF EXISTS `ar_rename_col`")
    conn:close()
  end)

  it("renames a column, keeping its definition and index", function()
    local server = conn:server()
    local v = server.version
    local has = server.flavor == "mysql" and v[1] >= 8
      or (v[1] > 10 or (v[1] == 10 and (v[2] > 5 or (v[2] == 5 and v[3] >= 2))))
    if not has then return end -- RENAME COLUMN: MySQL 8.0, MariaDB 10.5.2
    local d = dialect(server.flavor, v, true)
    conn:execute(d:create_table_sql(schema.define("ar_rename_col", function(t)
      t:string("a", { size = 5, nullable = false, default = "x", index = true })
    end)))
    conn:execute(d:rename_column_sql("ar_rename_col", "a", "b"))
    local rows = conn:execute("SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t, IS_NULLABLE AS n, COLUMN_DEFAULT AS d"
      .. " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", "ar_rename_col").rows
    assert.same({ { c = "b", t = "varchar(5)", n = "NO", d = server.flavor == "mysql" and "x" or "'x'" } }, rows)
    rows = conn:execute("SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS"
      .. " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", "ar_rename_col").rows
    assert.same({ { c = "b" } }, rows)
  end)
end)

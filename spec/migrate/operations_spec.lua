-- Migration operations (activerecord.migrate.operations): each operation up
-- and down on the real server, checked through introspection; a `change`
-- replayed reversed; irreversible operations refused before any DDL; a
-- failing operation's MigrationError. The ALTER SQL itself: spec/backend/ddl_alter_spec.lua.
local ar = require("activerecord")
local ops = require("activerecord.migrate.operations")
local errors = require("activerecord.errors")
local support = require("support.db")

local function error_of(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected a " .. kind)
  assert.is_true(errors.is(err, kind), "expected " .. kind .. ", got " .. tostring(err))
  return err
end

describe("migration operations", function()
  local db, m
  local TABLES = { "op_children", "op_parents", "op_things", "op_renamed", "op_other", "op_gen",
    "op_change_a", "op_change_b", "op_fk_child", "op_fk_parent", "op_kept", "op_fail" }

  local function drop_all()
    db:execute("SET FOREIGN_KEY_CHECKS = 0")
    for _, t in ipairs(TABLES) do db:execute("DROP TABLE IF EXISTS `" .. t .. "`") end
    db:execute("SET FOREIGN_KEY_CHECKS = 1")
  end

  local function column(t, name)
    for _, c in ipairs(db:columns(t) or {}) do
      if c.name == name then return c end
    end
    return nil
  end

  local function index_named(t, name)
    for _, ix in ipairs(db:indexes(t) or {}) do
      if ix.name == name then return ix end
    end
    return nil
  end

  local function index_names(t)
    local out = {}
    for _, ix in ipairs(db:indexes(t) or {}) do out[#out + 1] = ix.name end
    return out
  end

  local function fk_names(t)
    local out = {}
    for _, fk in ipairs(db:foreign_keys(t) or {}) do out[#out + 1] = fk.name end
    return out
  end

  -- everything introspection says about a table, for before/after comparisons
  -- (columns by name: a column removed and added back comes last, as in Rails)
  local function snapshot(t)
    local columns
    for _, c in ipairs(db:columns(t) or {}) do
      columns = columns or {}
      columns[c.name] = c
    end
    return { columns = columns, indexes = db:indexes(t), foreign_keys = db:foreign_keys(t) }
  end

  local function things()
    m:create_table("op_things", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 50, nullable = false, default = "n/a", comment = "the name" })
      t:integer("qty", { default = 0 })
    end)
  end

  setup(function()
    db = ar.connect(support.options())
    drop_all()
  end)

  before_each(function()
    drop_all()
    m = ops.new(db, { file = "20240101000000_spec.lua", version = "20240101000000" })
  end)

  teardown(function()
    drop_all()
    db:close()
  end)

  describe("each operation", function()
    it("create_table and drop_table", function()
      assert.is_false(db:table_exists("op_things"))
      things()
      assert.is_true(m:table_exists("op_things"))
      assert.same({ "id", "name", "qty" }, { db:columns("op_things")[1].name,
        db:columns("op_things")[2].name, db:columns("op_things")[3].name })
      assert.equal("n/a", column("op_things", "name").default)
      -- force drops the table first
      db:execute("INSERT INTO `op_things` (name) VALUES (?)", "x")
      m:create_table("op_things", function(t) t:integer("a") end, { force = true })
      assert.same({ "a" }, { db:columns("op_things")[1].name })
      m:drop_table("op_things")
      assert.is_false(db:table_exists("op_things"))
      m:drop_table("op_things", { if_exists = true })
    end)

    it("rename_table", function()
      things()
      m:rename_table("op_things", "op_renamed")
      assert.is_false(db:table_exists("op_things"))
      assert.is_true(db:table_exists("op_renamed"))
      m:rename_table("op_renamed", "op_things")
      assert.is_true(db:table_exists("op_things"))
    end)

    it("add_column with its index, unique key, foreign key and check; remove_column takes them away", function()
      m:create_table("op_parents", function(t) t:bigint("id", { primary_key = true }) end)
      things()
      local version = db._schema_version
      m:add_column("op_things", "parent_id", "bigint", { nullable = true, index = true,
        references = { table = "op_parents", on_delete = "cascade" } })
      assert.is_true(db._schema_version > version)
      m:add_column("op_things", "code", "string", { size = 8, unique = true, default = "it's\\",
        check = ar.raw("`code` <> ''") })
      local c = column("op_things", "code")
      assert.same({ "string", 8, "it's\\" }, { c.type, c.size, c.default })
      assert.same({ "code" }, index_named("op_things", "uq_op_things_code").columns)
      assert.is_true(index_named("op_things", "uq_op_things_code").unique)
      assert.same({ "parent_id" }, index_named("op_things", "idx_op_things_parent_id").columns)
      local fk = db:foreign_keys("op_things")[1]
      assert.same({ "fk_op_things_parent_id", { "parent_id" }, "op_parents", { "id" }, "cascade" },
        { fk.name, fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete })
      -- the check holds
      local err = error_of("IntegrityError", db.execute, db, "INSERT INTO `op_things` (code) VALUES ('')")
      assert.equal(4025, err.code)

      m:remove_column("op_things", "parent_id")
      assert.is_nil(column("op_things", "parent_id"))
      assert.same({}, db:foreign_keys("op_things"))
      assert.is_nil(index_named("op_things", "idx_op_things_parent_id"))
      -- the CHECK made by add_column goes with its column when `check` is given
      m:remove_column("op_things", "code", "string", { check = ar.raw("`code` <> ''") })
      assert.is_false(m:column_exists("op_things", "code"))
      assert.is_nil(index_named("op_things", "uq_op_things_code"))
    end)

    it("add_column of a generated column", function()
      things()
      m:add_column("op_things", "double_qty", "integer",
        { generated = { expr = ar.raw("`qty` * 2"), stored = true } })
      m:add_column("op_things", "tag", "string",
        { size = 60, generated = { expr = ar.raw("concat(`name`, '!')") } })
      db:execute("INSERT INTO `op_things` (name, qty) VALUES (?, ?)", "a", 21)
      assert.same({ { double_qty = 42, tag = "a!" } }, db:query("SELECT double_qty, tag FROM `op_things`"))
      assert.is_true(column("op_things", "double_qty").generated.stored)
      assert.is_false(column("op_things", "tag").generated.stored)
    end)

    it("rename_column keeps the whole definition", function()
      m:create_table("op_things", function(t)
        t:bigint("id", { primary_key = true, auto_increment = true })
        t:string("name", { size = 50, nullable = false, default = [[back\slash 'q']], comment = "the name",
          collate = "utf8mb4_bin" })
        t:enum("size", { values = { "s", "m", "it's" }, default = "it's", nullable = false })
        t:decimal("price", { precision = 10, scale = 2, default = "1.50" })
        t:json("doc")
        t:integer("twice", { generated = { expr = ar.raw("`id` * 2") } })
        t:datetime("at", { precision = 6, default = ar.raw("CURRENT_TIMESTAMP(6)"),
          on_update = ar.raw("CURRENT_TIMESTAMP(6)"), nullable = false })
        t:index("name")
      end)
      local before = {}
      for _, c in ipairs(db:columns("op_things")) do before[c.name] = c end
      for _, name in ipairs({ "id", "name", "size", "price", "doc", "twice", "at" }) do
        m:rename_column("op_things", name, name .. "_2")
        local after = column("op_things", name .. "_2")
        assert.is_nil(column("op_things", name), name)
        for _, key in ipairs({ "type", "sql_type", "nullable", "default", "precision", "scale", "size",
          "unsigned", "auto_increment", "primary_key", "on_update", "values", "comment", "collation" }) do
          assert.same(before[name][key], after[key], name .. "." .. key)
        end
      end
      -- the server rewrote the generated expression for the renamed id
      local twice = column("op_things", "twice_2").generated
      assert.is_false(twice.stored)
      assert.matches("`id_2`", twice.expr, 1, true)
      assert.same({ "name_2" }, index_named("op_things", "idx_op_things_name").columns)
      -- a row still behaves: defaults, generated value, JSON check (MariaDB's json_valid follows)
      db:execute("INSERT INTO `op_things` (doc_2) VALUES (?)", '{"a": 1}')
      local row = db:query("SELECT name_2, size_2, price_2, twice_2 FROM `op_things`")[1]
      assert.same({ [[back\slash 'q']], "it's", "1.50", 2 },
        { row.name_2, row.size_2, row.price_2, row.twice_2 })
      error_of("IntegrityError", db.execute, db, "INSERT INTO `op_things` (doc_2) VALUES (?)", "not json")
      local err = error_of("MigrationError", m.rename_column, m, "op_things", "missing", "x")
      assert.is_true(errors.is(err.cause, "ConfigError") or errors.is(err.cause, "QueryError"))
    end)

    it("change_column replaces the definition and keeps a primary key column NOT NULL", function()
      things()
      m:change_column("op_things", "name", "string", { size = 120, nullable = true })
      local c = column("op_things", "name")
      assert.same({ 120, true }, { c.size, c.nullable })
      assert.is_nil(c.default) -- MODIFY replaces the whole definition
      m:change_column("op_things", "id", "bigint", { unsigned = true, auto_increment = true })
      c = column("op_things", "id")
      assert.same({ true, false, true, true }, { c.unsigned, c.nullable, c.auto_increment, c.primary_key })
      local err = error_of("MigrationError", m.change_column, m, "op_things", "qty", "integer", { unique = true })
      assert.is_true(errors.is(err.cause, "ConfigError"))
      assert.is_nil(err.sql)
    end)

    it("add_index and remove_index: by columns, by name, and an index the server named", function()
      things()
      m:add_index("op_things", { "name", "qty" }, { unique = true })
      assert.is_true(index_named("op_things", "uq_op_things_name_qty").unique)
      m:remove_index("op_things", { "name", "qty" })
      assert.is_nil(index_named("op_things", "uq_op_things_name_qty"))

      m:add_index("op_things", "qty", { name = "by_qty" })
      assert.same({ "qty" }, index_named("op_things", "by_qty").columns)
      m:remove_index("op_things", { name = "by_qty" })
      assert.is_nil(index_named("op_things", "by_qty"))

      db:execute("ALTER TABLE `op_things` ADD INDEX (`qty`)") -- the server names it `qty`
      assert.is_not_nil(index_named("op_things", "qty"))
      m:remove_index("op_things", "qty")
      assert.same({ "PRIMARY" }, index_names("op_things"))

      -- two indexes on the same column: the one add_index names, or the unique one asked for
      m:add_index("op_things", "name", { name = "a_name" })
      m:add_index("op_things", "name", { unique = true })
      m:remove_index("op_things", "name", { unique = true })
      assert.same({ "PRIMARY", "a_name" }, index_names("op_things"))

      local err = error_of("MigrationError", m.remove_index, m, "op_things", { "qty" })
      assert.matches("no index on (qty)", err.message, 1, true)
      assert.is_nil(err.sql)
    end)

    it("add_foreign_key and remove_foreign_key: by columns, by name; the index stays", function()
      m:create_table("op_fk_parent", function(t)
        t:bigint("id", { primary_key = true })
        t:string("code", { size = 10, unique = true })
      end)
      m:create_table("op_fk_child", function(t)
        t:bigint("id", { primary_key = true })
        t:bigint("parent_id")
        t:string("parent_code", { size = 10 })
      end)
      m:add_foreign_key("op_fk_child", "parent_id", "op_fk_parent", { on_delete = "set null" })
      m:add_foreign_key("op_fk_child", "parent_code", "op_fk_parent",
        { column = "code", name = "child_code_fk", on_update = "cascade" })
      local fks = db:foreign_keys("op_fk_child")
      assert.same({ "child_code_fk", "fk_op_fk_child_parent_id" }, fk_names("op_fk_child"))
      assert.same({ { "code" }, "cascade" }, { fks[1].ref_columns, fks[1].on_update })
      assert.same({ { "id" }, "set null" }, { fks[2].ref_columns, fks[2].on_delete })
      error_of("IntegrityError", db.execute, db, "INSERT INTO `op_fk_child` (id, parent_id) VALUES (1, 99)")

      m:remove_foreign_key("op_fk_child", "parent_id")
      m:remove_foreign_key("op_fk_child", { name = "child_code_fk" })
      assert.same({}, db:foreign_keys("op_fk_child"))
      -- the index the server made for the key stays (as in Rails)
      assert.is_not_nil(index_named("op_fk_child", "fk_op_fk_child_parent_id"))
      db:execute("INSERT INTO `op_fk_child` (id, parent_id) VALUES (1, 99)")
      local err = error_of("MigrationError", m.remove_foreign_key, m, "op_fk_child", "parent_id")
      assert.matches("no foreign key on (parent_id)", err.message, 1, true)
    end)

    it("execute runs SQL with bound values; column_exists and table_exists answer", function()
      things()
      local res = m:execute("INSERT INTO `op_things` (name, qty) VALUES (?, ?)", "x'; DROP TABLE y", 3)
      assert.equal(1, res.affected_rows)
      assert.same({ { name = "x'; DROP TABLE y", qty = 3 } }, db:query("SELECT name, qty FROM `op_things`"))
      assert.is_true(m:column_exists("op_things", "qty"))
      assert.is_false(m:column_exists("op_things", "nope"))
      assert.is_false(m:column_exists("op_nope", "qty"))
      assert.is_false(m:table_exists("op_nope"))
      assert.is_true(m.table_exists("op_things"))
    end)

    it("are callable as m.op(...) as well as m:op(...), and m.db is the backend", function()
      assert.equal(db, m.db)
      m.create_table("op_things", function(t) t:integer("a") end)
      m.add_column("op_things", "b", "integer")
      assert.is_true(m.column_exists("op_things", "b"))
    end)
  end)

  describe("run", function()
    local info = { file = "db/migrate/20240102000000_change.lua", version = "20240102000000" }

    it("runs up and down", function()
      local migration = {
        up = function(mm) mm:create_table("op_other", function(t) t:integer("a") end) end,
        down = function(mm) mm:drop_table("op_other") end,
      }
      ops.run(db, migration, "up", info)
      assert.is_true(db:table_exists("op_other"))
      ops.run(db, migration, "down", info)
      assert.is_false(db:table_exists("op_other"))
    end)

    it("reverses a change with every reversible operation, back to the same schema", function()
      m:create_table("op_change_a", function(t)
        t:bigint("id", { primary_key = true })
        t:string("old_name", { size = 20, default = "d" })
        t:integer("gone", { default = 7, nullable = false })
        t:bigint("ix1")
        t:bigint("ref_id")
      end)
      m:add_index("op_change_a", "ix1", { name = "ix_gone_later" })
      m:create_table("op_parents", function(t) t:bigint("id", { primary_key = true }) end)
      m:add_foreign_key("op_change_a", "ref_id", "op_parents", { on_delete = "cascade" })
      m:create_table("op_kept", function(t) t:integer("k") end)
      local before = { a = snapshot("op_change_a"), kept = snapshot("op_kept") }

      local migration = { change = function(mm)
        mm:create_table("op_change_b", function(t)
          t:bigint("id", { primary_key = true, auto_increment = true })
          t:bigint("a_id", { references = { table = "op_change_a" } })
        end)
        mm:add_column("op_change_a", "extra", "string", { size = 30, unique = true,
          references = nil, check = ar.raw("`extra` <> 'bad'") })
        mm:add_column("op_change_a", "parent2_id", "bigint", { references = { table = "op_parents" } })
        mm:rename_column("op_change_a", "old_name", "new_name")
        mm:remove_column("op_change_a", "gone", "integer", { default = 7, nullable = false })
        mm:add_index("op_change_a", { "new_name", "extra" })
        mm:remove_index("op_change_a", "ix1", { name = "ix_gone_later" })
        mm:remove_foreign_key("op_change_a", "ref_id", "op_parents", { on_delete = "cascade" })
        mm:add_foreign_key("op_change_a", "ix1", "op_parents")
        mm:drop_table("op_kept", function(t) t:integer("k") end)
        mm:rename_table("op_change_a", "op_renamed")
      end }

      ops.run(db, migration, "up", info)
      assert.is_false(db:table_exists("op_change_a"))
      assert.is_false(db:table_exists("op_kept"))
      assert.is_true(db:table_exists("op_change_b"))
      assert.is_not_nil(column("op_renamed", "new_name"))
      assert.is_nil(column("op_renamed", "gone"))
      assert.same({ "fk_op_change_a_ix1", "fk_op_change_a_parent2_id" }, fk_names("op_renamed"))

      ops.run(db, migration, "down", info)
      assert.is_false(db:table_exists("op_renamed"))
      assert.is_false(db:table_exists("op_change_b"))
      local after = { a = snapshot("op_change_a"), kept = snapshot("op_kept") }
      assert.same(before.kept, after.kept)
      assert.same(before.a.columns, after.a.columns)
      assert.same(before.a.foreign_keys, after.a.foreign_keys)
      assert.same(before.a.indexes, after.a.indexes)

      -- and up again works from there
      ops.run(db, migration, "up", info)
      assert.is_true(db:table_exists("op_renamed"))
    end)

    it("refuses a change with an irreversible operation before any DDL", function()
      things()
      db:execute("ALTER TABLE `op_things` ADD INDEX by_qty (qty)")
      local cases = {
        { 'drop_table("op_things")', function(mm) mm:drop_table("op_things") end },
        { 'remove_column("op_things", "qty")', function(mm) mm:remove_column("op_things", "qty") end },
        { 'change_column("op_things", "qty")', function(mm) mm:change_column("op_things", "qty", "bigint") end },
        { 'execute("DELETE FROM op_things")', function(mm) mm:execute("DELETE FROM op_things") end },
        { 'remove_index("op_things", { name = "by_qty" })',
          function(mm) mm:remove_index("op_things", { name = "by_qty" }) end },
        { 'remove_foreign_key("op_things", "qty")', function(mm) mm:remove_foreign_key("op_things", "qty") end },
      }
      local before = snapshot("op_things")
      for _, case in ipairs(cases) do
        local migration = { change = function(mm)
          mm:create_table("op_other", function(t) t:integer("a") end)
          mm:add_column("op_things", "extra", "integer")
          case[2](mm)
          mm:add_index("op_things", "name")
        end }
        local version = db._schema_version
        local err = error_of("ConfigError", ops.run, db, migration, "down", info)
        assert.matches(case[1], err.message, 1, true)
        assert.matches("20240102000000_change.lua", err.message, 1, true)
        assert.equal(case[1], err.operation)
        assert.equal(info.file, err.file)
        -- nothing ran: not the reverse of the operations before it, nor after
        assert.equal(version, db._schema_version)
        assert.is_false(db:table_exists("op_other"))
        assert.same(before, snapshot("op_things"))
      end
    end)

    it("raises MigrationError naming file, operation and statement; what ran before stays", function()
      things()
      local migration = { up = function(mm)
        mm:create_table("op_fail", function(t) t:integer("a") end)
        mm:add_column("op_things", "name", "string", { size = 10 })
        mm:create_table("op_other", function(t) t:integer("a") end)
      end, down = function() end }
      local err = error_of("MigrationError", ops.run, db, migration, "up", info)
      assert.equal(info.file, err.file)
      assert.equal(info.version, err.version)
      assert.equal('add_column("op_things", "name")', err.operation)
      assert.equal("ALTER TABLE `op_things` ADD COLUMN `name` VARCHAR(10) NULL", err.sql)
      assert.is_true(errors.is(err.cause, "QueryError"))
      assert.equal(1060, err.cause.code) -- duplicate column
      for _, part in ipairs({ info.file, err.operation, err.sql, "Duplicate column" }) do
        assert.matches(part, err.message, 1, true)
      end
      assert.is_true(db:table_exists("op_fail"))
      assert.is_false(db:table_exists("op_other"))
      -- a mistake found before any SQL is a MigrationError too, with its cause and no statement
      local bad = { up = function(mm) mm:add_column("op_things", "x", "nonsense") end }
      err = error_of("MigrationError", ops.run, db, bad, "up", { file = "x.lua" })
      assert.is_true(errors.is(err.cause, "ConfigError"))
      assert.is_nil(err.sql)
      assert.matches('x.lua: add_column("op_things", "x") failed', err.message, 1, true)
    end)

    it("refuses malformed migrations and directions", function()
      local up = function() end
      error_of("ConfigError", ops.run, db, nil, "up", info)
      error_of("ConfigError", ops.run, db, { change = up, up = up }, "up", info)
      error_of("ConfigError", ops.run, db, { down = up }, "up", info)
      error_of("ConfigError", ops.run, db, { up = "x" }, "up", info)
      error_of("ConfigError", ops.run, db, { up = up, upp = up }, "up", info)
      error_of("ConfigError", ops.run, db, { change = up }, "sideways", info)
      local err = error_of("ConfigError", ops.run, db, { up = up }, "down", info)
      assert.matches("cannot be reverted", err.message, 1, true)
      error_of("ConfigError", ops.run, {}, { up = up }, "up", info)
      error_of("ConfigError", ops.new, db, { fil = "x" })
    end)
  end)
end)

-- Schema dump (issue 14): ar.schema.dump(db) writes a database's schema as
-- a Lua migration. A rich schema made with plain SQL is dumped, the dump is
-- run into an empty second database, and both sides are compared through
-- introspection field by field; the copy dumps to the same text, its down
-- leaves the database empty, and an empty database dumps to an empty
-- migration.
local ar = require("activerecord")
local support = require("support.db")
local schema = require("activerecord.schema")

local SRC, DST, EMPTY = "ar_dump_src", "ar_dump_dst", "ar_dump_empty"
local ODD = "dmp odd`name" -- a table name that needs quoting

-- The rich schema: every type of the design's type table, literal and
-- expression defaults, ON UPDATE, generated columns, unsigned, comments
-- with quotes, ENUM/SET, a composite primary key, unique and composite
-- indexes, server-named indexes and foreign keys, a self-reference, a
-- chain whose names sort against its order, and a cycle.
local SOURCE_DDL = {
  [[CREATE TABLE dmp_c_orgs (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    parent_id INT NULL,
    name VARCHAR(100) NOT NULL COMMENT 'the org''s "name" ]] .. "]]" .. [[ here',
    UNIQUE KEY uq_orgs_name (name),
    CONSTRAINT fk_orgs_parent FOREIGN KEY (parent_id) REFERENCES dmp_c_orgs (id)
      ON DELETE SET NULL ON UPDATE CASCADE
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='all the "orgs"']],
  [[CREATE TABLE dmp_b_users (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    org_id INT NOT NULL,
    email VARCHAR(191) NOT NULL,
    hashtag VARCHAR(200) AS (CONCAT('#', email)) VIRTUAL,
    tagline VARCHAR(40) DEFAULT (CONCAT('--', 'x')),
    name VARCHAR(100) CHARACTER SET latin1 COLLATE latin1_swedish_ci DEFAULT 'anon',
    nick VARCHAR(50) COLLATE utf8mb4_bin NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    archived BOOLEAN DEFAULT FALSE,
    tiny_i TINYINT NOT NULL DEFAULT -128,
    small_u SMALLINT UNSIGNED DEFAULT 65535,
    medium MEDIUMINT DEFAULT 7,
    score INT DEFAULT -5 CHECK (score < 1000),
    big BIGINT DEFAULT -9223372036854775808,
    big_u BIGINT UNSIGNED DEFAULT 18446744073709551615,
    yr YEAR DEFAULT 2024,
    flags BIT(8) DEFAULT b'101',
    ratio FLOAT DEFAULT 1.5,
    weight DOUBLE DEFAULT 2.25,
    balance DECIMAL(12,2) NOT NULL DEFAULT 0.00,
    fee DECIMAL(5,3) UNSIGNED DEFAULT 1.250,
    code CHAR(3) DEFAULT 'abc',
    code2 CHAR(4) NOT NULL DEFAULT 'a\\b',
    greeting VARCHAR(200) DEFAULT 'line1\nline2 "q" ''s ]] .. "]]" .. [[',
    bio TEXT COMMENT 'it''s "quoted" ]] .. "]]" .. [[',
    note TEXT DEFAULT 'first\nsecond\tend' COMMENT 'two\nlines',
    motto TEXT DEFAULT 'carpe ''diem''',
    tiny_t TINYTEXT,
    med_t MEDIUMTEXT,
    long_t LONGTEXT,
    profile JSON,
    settings JSON DEFAULT '{"a": [1, "x"]}',
    status ENUM('new','it''s','done') NOT NULL DEFAULT 'new',
    tags SET('a','b','c') DEFAULT 'a,c',
    born DATE DEFAULT '2000-01-31',
    alarm TIME(2) DEFAULT '12:34:56.78',
    seen_at DATETIME DEFAULT '2020-01-02 03:04:05',
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at TIMESTAMP(3) NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    touched DATETIME NULL ON UPDATE CURRENT_TIMESTAMP,
    token BINARY(16),
    salt VARBINARY(32) DEFAULT 'ab',
    thumb TINYBLOB,
    raw_b BLOB,
    avatar MEDIUMBLOB,
    huge LONGBLOB,
    uid VARCHAR(36) DEFAULT (uuid()),
    n_expr INT DEFAULT (1 + 2),
    upper_email VARCHAR(191) AS (UPPER(email)) VIRTUAL,
    email_len INT AS (CHAR_LENGTH(email)) STORED COMMENT 'stored',
    PRIMARY KEY (id),
    UNIQUE KEY uq_users_email (email),
    KEY idx_users_name_nick (name, nick),
    KEY (score),
    KEY idx_bio (bio(20)),
    KEY idx_hashtag (hashtag),
    CONSTRAINT chk_users_hashtag CHECK (`hashtag` <> 'x'),
    KEY idx_score_desc (score DESC, id),
    FULLTEXT KEY ft_motto (motto) COMMENT 'words',
    CONSTRAINT chk_users_score CHECK (score > -100),
    CONSTRAINT chk_users_code CHECK (code <> '#x;'),
    CONSTRAINT fk_users_org FOREIGN KEY (org_id) REFERENCES dmp_c_orgs (id) ON DELETE CASCADE
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci]],
  [[CREATE TABLE dmp_a_memberships (
    org_id INT NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    role VARCHAR(20) NOT NULL DEFAULT 'member',
    PRIMARY KEY (user_id, org_id),
    KEY idx_role_org (role, org_id),
    CONSTRAINT fk_mem_org FOREIGN KEY (org_id) REFERENCES dmp_c_orgs (id)
      ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT fk_mem_user FOREIGN KEY (user_id) REFERENCES dmp_b_users (id)
      ON DELETE RESTRICT ON UPDATE NO ACTION
  ) ENGINE=InnoDB]],
  [[CREATE TABLE dmp_0_notes (
    id INT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT UNSIGNED NOT NULL,
    org_id INT NOT NULL,
    body TEXT NOT NULL,
    FOREIGN KEY (user_id, org_id) REFERENCES dmp_a_memberships (user_id, org_id) ON DELETE CASCADE
  ) ENGINE=InnoDB]],
  "CREATE TABLE dmp_x (id INT PRIMARY KEY, y_id INT NULL) ENGINE=InnoDB",
  [[CREATE TABLE dmp_y (id INT PRIMARY KEY, x_id INT NULL,
    CONSTRAINT fk_y_x FOREIGN KEY (x_id) REFERENCES dmp_x (id)) ENGINE=InnoDB]],
  "ALTER TABLE dmp_x ADD CONSTRAINT fk_x_y FOREIGN KEY (y_id) REFERENCES dmp_y (id) ON DELETE SET NULL",
  [[CREATE TABLE `dmp odd``name` (
    `select` INT NOT NULL,
    `two words` VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci,
    `it's` VARCHAR(5),
    narrow INT(5) DEFAULT 42,
    padded MEDIUMINT(6) UNSIGNED ZEROFILL,
    guid UUID DEFAULT '6ccd780c-baba-1026-9564-5b8c656024db',
    addr INET6,
    place POINT NOT NULL,
    KEY `sel ect` (`select`),
    SPATIAL KEY sp_place (place)
  ) ENGINE=MyISAM DEFAULT CHARSET=latin1 COMMENT='odd one']],
  "CREATE TABLE schema_migrations (version VARCHAR(50) PRIMARY KEY)",
}

local SOURCE_TABLES = { ODD, "dmp_0_notes", "dmp_a_memberships", "dmp_b_users",
  "dmp_c_orgs", "dmp_x", "dmp_y" }

-- Introspected values made comparable: raw expressions become their text.
local function plain(v)
  if type(v) ~= "table" then return v end
  local text = rawget(v, "kind") == "raw" and rawget(v, "sql") or schema.raw_text(v)
  if text then return { raw = text } end
  local out = {}
  for k, x in pairs(v) do out[k] = plain(x) end
  return out
end

local function load_dump(text)
  local chunk, err = load(text, "=dump", "t")
  assert(chunk, err)
  local migration = chunk()
  assert.is_function(migration.up)
  assert.is_function(migration.down)
  return migration
end

describe("schema.dump", function()
  local admin, src, dst, ops

  local function drop_databases()
    for _, name in ipairs({ SRC, DST, EMPTY }) do
      admin:execute("DROP DATABASE IF EXISTS " .. name)
    end
  end

  setup(function()
    ops = require("activerecord.migrate.operations")
    admin = ar.connect(support.options())
    drop_databases()
    for _, name in ipairs({ SRC, DST, EMPTY }) do
      admin:execute("CREATE DATABASE " .. name .. " DEFAULT CHARACTER SET utf8mb4"
        .. " COLLATE utf8mb4_unicode_ci")
    end
    src = ar.connect(support.options{ database = SRC })
    dst = ar.connect(support.options{ database = DST })
    for _, sql in ipairs(SOURCE_DDL) do src:execute(sql) end
  end)

  teardown(function()
    if src then src:close() end
    if dst then dst:close() end
    if admin then
      drop_databases()
      admin:close()
    end
  end)

  it("writes a loadable migration, in an order the foreign keys allow", function()
    local text = schema.dump(src)
    assert.matches("^%-%- Schema dump of ar_dump_src %(mariadb [^\n]*%), %d%d%d%d%-%d%d%-%d%d "
      .. "%d%d:%d%d:%d%d UTC\n", text)
    load_dump(text)
    assert.is_nil(text:find('"schema_migrations"', 1, true))
    local pos = {}
    for _, name in ipairs(SOURCE_TABLES) do
      pos[name] = text:find("m:create_table(" .. require("activerecord.schema.dump").lua_string(name), 1, true)
      assert.is_truthy(pos[name], name)
    end
    -- the chain: orgs, then users, then memberships, then notes
    assert.is_true(pos.dmp_c_orgs < pos.dmp_b_users)
    assert.is_true(pos.dmp_b_users < pos.dmp_a_memberships)
    assert.is_true(pos.dmp_a_memberships < pos.dmp_0_notes)
    -- the cycle: one of its keys is added after both tables exist
    local late = text:find('m:add_foreign_key("dmp_x", { "y_id" }, "dmp_y"', 1, true)
    assert.is_truthy(late)
    assert.is_true(late > pos.dmp_y)
    -- MariaDB's forms come back as the DSL's types
    assert.is_truthy(text:find('t:json("profile")', 1, true))
    assert.is_truthy(text:find('t:boolean("active", { nullable = false, default = true })', 1, true))
    assert.is_truthy(text:find('t:text("med_t", { size = "medium" })', 1, true))
    assert.is_truthy(text:find('t:datetime("created_at", { precision = 6, nullable = false,'
      .. ' default = schema.raw("current_timestamp(6)") })', 1, true))
    -- what the DSL cannot say runs as SQL after the table is made
    local made = text:find('m:create_table("dmp_b_users"', 1, true)
    for _, sql in ipairs({ "CREATE INDEX `idx_bio` ON `dmp_b_users` (`bio`(20))",
      "CREATE INDEX `idx_score_desc` ON `dmp_b_users` (`score` DESC, `id`)",
      "CREATE FULLTEXT INDEX `ft_motto` ON `dmp_b_users` (`motto`) COMMENT 'words'",
      -- a CHAR keeps its sql_type, whose defaults the DSL writes only as plain literals
      "ALTER TABLE `dmp_b_users` ALTER COLUMN `code2` SET DEFAULT _utf8mb4 X'615C62'" }) do
      local at = text:find("m:execute(" .. require("activerecord.schema.dump").lua_string(sql) .. ")", 1, true)
      assert.is_truthy(at, sql)
      assert.is_true(at > made)
    end
    -- `#`, `--` and `;` inside a string literal are text: the DSL says those
    for _, dsl in ipairs({ [[t:check("chk_users_code", schema.raw("`code` <> '#x;'"))]],
      [[generated = { expr = schema.raw("concat('#',`email`)"), stored = false }]],
      [[default = schema.raw("concat('--','x')")]] }) do
      assert.is_truthy(text:find(dsl, 1, true), dsl)
    end
    assert.is_falsy(text:find("m:execute%([^\n]*hashtag"))
    assert.is_truthy(text:find('t:check("chk_users_score", schema.raw("`score` > -100"))', 1, true))
    -- the index MariaDB made for a foreign key is written once, by its name
    local _, n = text:gsub('name = "fk_mem_org"', "")
    assert.equal(2, n) -- the index and the foreign key
  end)

  it("writes strings as Lua literals that read back byte for byte", function()
    local lua_string = require("activerecord.schema.dump").lua_string
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    for _, s in ipairs({ table.concat(bytes), "it's \"quoted\" ]]\n[[ ]=] \\ end", "naïve ☃", "" }) do
      local literal = lua_string(s)
      assert.is_nil(literal:find("\n", 1, true), "one line")
      assert.equal(s, load("return " .. literal)())
    end
  end)

  it("is deterministic", function()
    assert.equal(schema.dump(src, { header = false }), schema.dump(src, { header = false }))
    assert.is_nil(schema.dump(src, { header = false }):find("^%-%-"))
  end)

  it("recreates the same tables, columns, indexes and foreign keys in an empty database, and down drops them",
    function()
      local text = schema.dump(src)
      ops.run(dst, load_dump(text), "up")
      assert.same(SOURCE_TABLES, dst:tables())
      for _, name in ipairs(SOURCE_TABLES) do
        local a_cols, b_cols = src:columns(name), dst:columns(name)
        assert.equal(#a_cols, #b_cols, name)
        for i, a in ipairs(a_cols) do
          local pa, pb = plain(a), plain(b_cols[i])
          for _, key in ipairs({ "name", "type", "sql_type", "nullable", "default", "has_default",
            "precision", "scale", "size", "unsigned", "auto_increment", "primary_key", "generated",
            "on_update", "values", "comment", "charset", "collation" }) do
            assert.same(pa[key], pb[key], name .. "." .. a.name .. "." .. key)
          end
          assert.same(pa, pb, name .. "." .. a.name)
        end
        assert.same(plain(src:indexes(name)), plain(dst:indexes(name)), name .. " indexes")
        assert.same(plain(src:foreign_keys(name)), plain(dst:foreign_keys(name)), name .. " foreign keys")
        assert.same(src:checks(name), dst:checks(name), name .. " checks")
        assert.same(src:table_options(name), dst:table_options(name), name .. " options")
      end
      -- the copy dumps to the same text
      assert.equal(schema.dump(src, { header = false }), schema.dump(dst, { header = false }))
      -- a row written through both behaves alike (defaults, generated columns)
      src:execute("INSERT INTO dmp_c_orgs (name) VALUES ('o')")
      dst:execute("INSERT INTO dmp_c_orgs (name) VALUES ('o')")
      src:execute("INSERT INTO dmp_b_users (org_id, email) VALUES (1, 'a@b.c')")
      dst:execute("INSERT INTO dmp_b_users (org_id, email) VALUES (1, 'a@b.c')")
      local sel = "SELECT name, active, big, big_u, flags, balance, fee, greeting, motto, settings,"
        .. " status, tags, alarm, salt, n_expr, upper_email, email_len, hashtag, tagline, code2 FROM dmp_b_users"
      assert.same(src:query(sel), dst:query(sel))
      ops.run(dst, load_dump(text), "down")
      assert.same({}, dst:tables())
    end)

  it("is a migration file the migrator runs and rolls back", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    local path = dir .. "/20240101000000_schema.lua"
    local f = assert(io.open(path, "w"))
    f:write(schema.dump(src))
    f:close()
    local ok, err = pcall(function()
      local mig = ar.migrator(dst, dir)
      assert.same({ "20240101000000" }, mig:migrate())
      dst:reset_schema_cache()
      -- the copy dumps as the source does (its schema_migrations left out)
      assert.equal(schema.dump(src, { header = false }), schema.dump(dst, { header = false }))
      assert.same({ "20240101000000" }, mig:rollback{ steps = 1 })
      dst:reset_schema_cache()
      assert.same({ "schema_migrations" }, dst:tables())
      dst:execute("DROP TABLE schema_migrations")
    end)
    os.remove(path)
    os.remove(dir)
    assert(ok, err)
  end)

  it("dumps an empty database to an empty migration", function()
    local empty = ar.connect(support.options{ database = EMPTY })
    local text = schema.dump(empty, { header = false })
    assert.equal(table.concat({
      'local ar = require("activerecord")',
      "local schema = ar.schema",
      "return {",
      "  up = function(m)",
      "  end,",
      "  down = function(m)",
      "  end,",
      "}",
      "",
    }, "\n"), text)
    local migration = load_dump(text)
    ops.run(empty, migration, "up")
    assert.same({}, empty:tables())
    assert.matches("^%-%- Schema dump of ar_dump_empty ", schema.dump(empty))
    empty:close()
  end)

  it("refuses an unknown option", function()
    local ok, err = pcall(schema.dump, src, { headr = false })
    assert.is_false(ok)
    assert.equal("ConfigError", err.kind)
    assert.matches("headr", err.message, 1, true)
  end)
end)

-- Integrity of the C core (issue 12): string options kept alive while used,
-- client character sets that cannot swallow a quote, max_prepared_stmt_count,
-- the in-transaction safety net, and conversion errors that end the result.
local ar = require("activerecord")
local support = require("support.db")
local core = support.core

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  return err
end

describe("integrity: C core", function()
  describe("string options produced by __index", function()
    -- Every lookup first collects garbage, then allocates strings of every
    -- small size: a string handed out earlier that the core let go of is freed
    -- and its memory overwritten at once (valgrind reports the read; without
    -- valgrind the core would read '#' bytes). The real values are built from
    -- reversed ones, so no other reference keeps them alive (short strings
    -- equal to a literal of this file would be: the literal keeps them).
    local function hostile(values)
      local reversed = {}
      for k, v in pairs(values) do
        reversed[k] = type(v) == "string" and v:reverse() or v
      end
      return setmetatable({}, { __index = function(_, k)
        collectgarbage()
        local junk = {}
        for n = 1, 80 do
          for j = 1, 12 do junk[#junk + 1] = string.rep("#", n - 1) .. string.char(64 + j) end
        end
        local v = reversed[k]
        if type(v) == "string" then return v:reverse() end
        return v
      end })
    end

    it("connect reads host, user, password, charset and session options correctly", function()
      local conn = core.connect(hostile(support.options{
        charset = ("UTF8MB4"):lower(), time_zone = "+03:00", sql_mode = "ANSI_QUOTES,STRICT_ALL_TABLES",
        init_command = "SET @ar_init = CONCAT('built by ', 'an __index function')",
      }))
      local row = conn:execute("SELECT @@session.time_zone AS tz, @@session.sql_mode AS mode, "
        .. "@ar_init AS init, @@character_set_client AS cs").rows[1]
      assert.are.equal("+03:00", row.tz)
      assert.are.equal("ANSI_QUOTES,STRICT_ALL_TABLES", row.mode)
      assert.are.equal("built by an __index function", row.init)
      assert.are.equal("utf8mb4", row.cs)
      conn:close()
    end)

    it("the isolation level produced by __index is the one applied", function()
      local a, b = support.connect(), support.connect()
      support.recreate(a, "integrity_iso", "id INT PRIMARY KEY")
      -- built, not a literal: a literal would stay alive in this chunk's constants
      a:begin(hostile{ isolation = ("read committed"):upper(), read_only = false })
      assert.are.equal(0, a:execute("SELECT COUNT(*) AS n FROM integrity_iso").rows[1].n)
      b:execute("INSERT INTO integrity_iso VALUES (1)")
      -- READ COMMITTED sees the other session's commit; REPEATABLE READ would not
      assert.are.equal(1, a:execute("SELECT COUNT(*) AS n FROM integrity_iso").rows[1].n)
      a:rollback()
      b:execute("DROP TABLE integrity_iso")
      a:close()
      b:close()
    end)
  end)

  describe("client character set", function()
    local UNSAFE = { "sjis", "cp932", "big5", "gbk", "gb18030", "SJIS", "ucs2", "utf16", "utf32", "klingon" }

    it("core.connect refuses sets whose characters can end in a quote byte, naming the accepted ones", function()
      for _, cs in ipairs(UNSAFE) do
        local err = error_of(core.connect, support.options{ charset = cs })
        assert.are.equal("ConfigError", err.kind, cs)
        assert.truthy(err.message:find(cs, 1, true), err.message)
        assert.truthy(err.message:find("utf8mb4", 1, true), err.message)
        assert.truthy(err.message:find("latin1", 1, true), err.message)
      end
    end)

    it("ar.connect refuses them too", function()
      for _, cs in ipairs{ "sjis", "big5", "gbk" } do
        local err = error_of(ar.connect, support.options{ charset = cs, pool = { size = 1 } })
        assert.are.equal("ConfigError", err.kind, cs)
        assert.truthy(err.message:find(cs, 1, true), err.message)
      end
    end)

    it("utf8mb4, latin1 and the other safe sets connect", function()
      for _, cs in ipairs{ "utf8mb4", "latin1", "utf8mb3", "ascii", "binary", "cp1251", "euckr", "ujis" } do
        local conn = core.connect(support.options{ charset = cs })
        assert.are.equal(cs, conn:execute("SELECT @@character_set_client AS c").rows[1].c)
        conn:close()
      end
      local db = ar.connect(support.options{ charset = "latin1", pool = { size = 1 } })
      assert.are.equal("latin1", db:query("SELECT @@character_set_client AS c")[1].c)
      db:close()
    end)

    it("an identifier ending in a lead byte cannot drop another table (sjis: 95 60 is one character)", function()
      local raw = support.connect()
      support.recreate(raw, "victim", "id INT PRIMARY KEY")
      -- with sjis accepted, the server reads the bytes 95 60 (the end of ŕ,
      -- then the doubled backtick) as one character, so the identifier ends
      -- at the next backtick and the rest drops victim
      local ok, db = pcall(ar.connect, support.options{ charset = "sjis", pool = { size = 1 } })
      if ok then
        pcall(ar.schema.drop_table, db, "tmp_ŕ`, victim #", { if_exists = true })
        db:close()
      end
      local n = raw:execute("SELECT COUNT(*) AS n FROM information_schema.TABLES "
        .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'victim'").rows[1].n
      raw:execute("DROP TABLE IF EXISTS victim")
      raw:close()
      assert.are.equal(1, n)
      assert.is_false(ok)
    end)
  end)
end)

-- A field's `unique` option (issue 15): before a write, one builder query
-- asks whether another row holds the value (the record itself excluded),
-- within the scope, with the case rule asked for; a NULL is not checked.
local ar = require("activerecord")
local support = require("support.db")

describe("model: unique fields", function()
  local db, sqllog

  -- The statements `fn` sends.
  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function invalid(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, "expected a ValidationError")
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    return err
  end

  local function count(tbl)
    return db:query("SELECT COUNT(*) AS n FROM " .. tbl)[1].n
  end

  local n = 0
  local function model(tbl, fields)
    n = n + 1
    fields.id = { type = "integer", primary_key = true }
    return ar.Model{ name = "UqSpec" .. n, table = tbl, backend = db, fields = fields }
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    for _, t in ipairs({ "uq_people", "uq_tasks", "uq_bin", "uq_ci" }) do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:execute([[CREATE TABLE uq_people (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(100)
      COLLATE utf8mb4_unicode_ci, name VARCHAR(50)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE uq_tasks (id INT PRIMARY KEY AUTO_INCREMENT, project_id INT, owner_id INT,
      title VARCHAR(100) COLLATE utf8mb4_unicode_ci) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE uq_bin (id INT PRIMARY KEY AUTO_INCREMENT, code VARCHAR(20)
      COLLATE utf8mb4_bin) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE uq_ci (id INT PRIMARY KEY AUTO_INCREMENT, code VARCHAR(20)
      COLLATE utf8mb4_general_ci) ENGINE=InnoDB]])
  end)

  teardown(function()
    for _, t in ipairs({ "uq_people", "uq_tasks", "uq_bin", "uq_ci" }) do db:execute("DROP TABLE IF EXISTS " .. t) end
    db:close()
  end)

  before_each(function()
    for _, t in ipairs({ "uq_people", "uq_tasks", "uq_bin", "uq_ci" }) do db:execute("DELETE FROM " .. t) end
  end)

  describe("unique = true", function()
    local Person
    before_each(function()
      Person = model("uq_people", { email = { type = "string", size = 100, unique = true }, name = "string" })
    end)

    it("a value another row holds is refused before any write; the query is one bound SELECT 1 ... LIMIT 1", function()
      Person:create{ email = "ann@example.com" }
      local sql = statements(function()
        local err = invalid(function() Person:create{ email = "ann@example.com", name = "second" } end)
        assert.same({ email = { "has already been taken" } }, err.errors)
        assert.is_nil(err.cause) -- the check caught it: nothing reached the server
      end)
      assert.equal(1, #sql)
      assert.equal("SELECT 1 AS `one` FROM `uq_people` WHERE (`email` = ?) LIMIT ?", sql[1])
      assert.equal(1, count("uq_people"))
    end)

    it("a new value costs the check and the INSERT; a model without unique sends the INSERT alone", function()
      local sql = statements(function() Person:create{ email = "bo@example.com" } end)
      assert.equal(2, #sql)
      assert.matches("^SELECT 1 ", sql[1])
      assert.matches("^INSERT ", sql[2])
      local Plain = model("uq_people", { email = { type = "string", size = 100 }, name = "string" })
      sql = statements(function() Plain:create{ email = "cy@example.com" } end)
      assert.equal(1, #sql)
    end)

    it("updating a stored record: checked only when the value changes, never against its own row", function()
      local ann = Person:create{ email = "ann@example.com" }
      Person:create{ email = "bo@example.com" }
      -- another field changed: no check
      local sql = statements(function()
        ann.name = "Ann"
        ann:save()
      end)
      assert.equal(1, #sql)
      assert.matches("^UPDATE ", sql[1])
      -- under the column's case-insensitive collation its own row holds
      -- "ANN@example.com" too: excluded by its key
      sql = statements(function()
        ann.email = "ANN@example.com"
        ann:save()
      end)
      assert.equal(2, #sql)
      assert.matches("`id` <> %?", sql[1])
      assert.equal("ANN@example.com", db:query("SELECT email FROM uq_people WHERE id = ?", ann.id)[1].email)
      -- valid() on the stored record checks every field: still valid
      assert.is_true((ann:valid()))
      -- another row's value is refused
      ann.email = "BO@example.com"
      local err = invalid(function() ann:save() end)
      assert.same({ "has already been taken" }, err.errors.email)
      assert.is_true(ann:is_dirty())
    end)

    it("NULL is never checked: any number of rows hold it", function()
      local sql = statements(function()
        Person:create{ name = "no email" }
        Person:create{ name = "none either", email = ar.null }
      end)
      assert.equal(2, #sql)
      assert.matches("^INSERT ", sql[1])
      assert.matches("^INSERT ", sql[2])
      assert.equal(2, count("uq_people"))
    end)

    it("validate = false skips the check", function()
      Person:create{ email = "ann@example.com" }
      local sql = statements(function() Person.new{ email = "ann@example.com" }:save{ validate = false } end)
      assert.equal(1, #sql)
      assert.equal(2, count("uq_people"))
    end)
  end)

  describe("unique = { scope = ... }", function()
    it("the value is unique within the scope's values; a NULL scope is a group of its own", function()
      local Task = model("uq_tasks", { project_id = "integer", owner_id = "integer",
        title = { type = "string", size = 100, unique = { scope = "project_id" } } })
      Task:create{ project_id = 1, title = "Ship" }
      Task:create{ project_id = 2, title = "Ship" }
      local err = invalid(function() Task:create{ project_id = 1, title = "Ship" } end)
      assert.same({ title = { "has already been taken" } }, err.errors)
      Task:create{ title = "Ship" }
      invalid(function() Task:create{ title = "Ship" } end)
      assert.equal(3, count("uq_tasks"))
      -- moving a task to a project where its title is taken: the scope changed
      local t = Task:create{ project_id = 3, title = "Ship" }
      t.project_id = 2
      invalid(function() t:save() end)
    end)

    it("a list of scope fields, all compared", function()
      local Task = model("uq_tasks", { project_id = "integer", owner_id = "integer",
        title = { type = "string", size = 100, unique = { scope = { "project_id", "owner_id" } } } })
      Task:create{ project_id = 1, owner_id = 1, title = "Ship" }
      Task:create{ project_id = 1, owner_id = 2, title = "Ship" }
      local sql = statements(function()
        invalid(function() Task:create{ project_id = 1, owner_id = 2, title = "Ship" } end)
      end)
      assert.matches("`project_id` = %?", sql[1])
      assert.matches("`owner_id` = %?", sql[1])
      assert.equal(2, count("uq_tasks"))
    end)
  end)

  describe("case_sensitive", function()
    it("false on a binary-collated column compares lower-cased", function()
      local Code = model("uq_bin", { code = { type = "string", size = 20, unique = { case_sensitive = false } } })
      Code:create{ code = "Abc" }
      local sql = statements(function()
        invalid(function() Code:create{ code = "aBC" } end)
      end)
      assert.matches("LOWER%(`code`%) = LOWER%(%?%)", sql[1])
      Code:create{ code = "abd" }
      assert.equal(2, count("uq_bin"))
    end)

    it("false on a case-insensitive column is the column's own comparison", function()
      local Code = model("uq_ci", { code = { type = "string", size = 20, unique = { case_sensitive = false } } })
      Code:create{ code = "Abc" }
      local sql = statements(function() invalid(function() Code:create{ code = "aBC" } end) end)
      assert.matches("WHERE %(`code` = %?%) LIMIT", sql[1])
    end)

    it("true on a case-insensitive column compares under the charset's binary collation", function()
      local Code = model("uq_ci", { code = { type = "string", size = 20, unique = { case_sensitive = true } } })
      Code:create{ code = "Abc" }
      local sql = statements(function() Code:create{ code = "abc" } end)
      assert.matches("COLLATE utf8mb4_bin = %?", sql[1])
      assert.equal(2, count("uq_ci"))
      local err = invalid(function() Code:create{ code = "abc" } end)
      assert.same({ code = { "has already been taken" } }, err.errors)
      -- left out, the column's collation decides: "ABC" is taken
      local Plain = model("uq_ci", { code = { type = "string", size = 20, unique = true } })
      invalid(function() Plain:create{ code = "ABC" } end)
    end)

    it("true on a binary column needs nothing more", function()
      local Code = model("uq_bin", { code = { type = "string", size = 20, unique = { case_sensitive = true } } })
      Code:create{ code = "Abc" }
      local sql = statements(function() Code:create{ code = "abc" } end)
      assert.matches("WHERE %(`code` = %?%) LIMIT", sql[1])
    end)
  end)

  it("message replaces the default", function()
    local Person = model("uq_people", { name = "string",
      email = { type = "string", size = 100, unique = { message = "is already registered" } } })
    Person:create{ email = "ann@example.com" }
    local err = invalid(function() Person:create{ email = "ann@example.com" } end)
    assert.same({ email = { "is already registered" } }, err.errors)
    assert.matches("email is already registered", err.message, 1, true)
  end)

  it("a field that already failed its own rules is not looked up", function()
    local Person = model("uq_people", { name = "string",
      email = { type = "string", size = 100, unique = true, format = "@" } })
    local sql = statements(function()
      local err = invalid(function() Person:create{ email = "no at sign" } end)
      assert.same({ email = { "has an invalid format" } }, err.errors)
    end)
    assert.equal(0, #sql)
  end)

  it("a duplicate the check could not see (validate = false) comes back as the same ValidationError", function()
    db:execute("ALTER TABLE uq_tasks ADD UNIQUE KEY uq_tasks_title (project_id, title)")
    finally(function() db:execute("ALTER TABLE uq_tasks DROP KEY uq_tasks_title") end)
    local Task = model("uq_tasks", { project_id = "integer", owner_id = "integer",
      title = { type = "string", size = 100, unique = { scope = "project_id", message = "is taken here" } } })
    Task:create{ project_id = 1, title = "Ship" }
    local dup = Task.new{ project_id = 1, title = "Ship" }
    local err = invalid(function() dup:save{ validate = false } end)
    -- reported on the unique field whose scope makes up the key, with its message
    assert.same({ title = { "is taken here" } }, err.errors)
    assert.equal("IntegrityError", err.cause.kind)
    assert.equal(1062, err.cause.code)
    assert.equal("uq_tasks_title", err.cause.key)
    assert.same({ "project_id", "title" }, err.cause.fields)
    assert.is_true(dup:is_new())
  end)
end)

-- Validation: per-field rules (required, min/max, length, format, one_of,
-- custom function) and per-record validate(self, errors); every failure is
-- collected; save raises ValidationError with { field = { messages } } and
-- writes nothing; valid() answers without touching the database.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/basic/validation"

describe("model validation", function()
  local scenario = testsuite.default_scenario()
  local db, User
  local record_validations = 0

  setup(function()
    db = provider.setup(GROUP, scenario, { "users" })
    User = ar.Model{ name = "ValidatedUser", table = "users", backend = db,
      fields = {
        id = { type = "integer", primary_key = true },
        name = { type = "string", size = 100, required = true, length = { min = 2, max = 20 },
                 format = "^%u" },
        email = { type = "string", size = 191, format = "^[^@%s]+@[^@%s]+$" },
        age = { type = "integer", min = 13, max = 130 },
        score = { type = "float",
                  validate = function(v, record)
                    if v > 100 then return false, "is above the maximum score" end
                    if record.age and v > record.age then return "cannot exceed age" end
                    return true
                  end },
        balance = { type = "decimal", precision = 12, scale = 2, one_of = { "0.00", "10.00" } },
        active = "boolean",
        profile = { type = "json", length = 3 },
      },
      validate = function(self, errors)
        record_validations = record_validations + 1
        if self.active and self.age and self.age < 18 then
          errors:add("age", "must be at least 18 to be active")
        end
        if self.email and self.name and self.email:find(self.name, 1, true) then
          errors:add("email", "must not contain the name")
        end
      end,
    }
  end)

  teardown(function()
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM users")
  end)

  local function count()
    return db:query("SELECT COUNT(*) AS n FROM users")[1].n
  end

  local VALID = { name = "Ann", email = "a@example.com", age = 30, score = 10.0, balance = "0.00",
                  active = true, profile = { 1, 2, 3 } }

  local function with(changes)
    local attrs = {}
    for k, v in pairs(VALID) do attrs[k] = v end
    for k, v in pairs(changes) do attrs[k] = v end
    return attrs
  end

  -- the errors table of the ValidationError that create(attrs) raises;
  -- checks that no statement ran and no row was written
  local function invalid(attrs)
    local before = count()
    local err
    local n = testsuite.count_statements(db, function()
      err = testsuite.error_of(function() return User:create(attrs) end)
    end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.is_table(err.errors)
    assert.are.equal(0, n)
    assert.are.equal(before, count())
    return err.errors, err
  end

  it("accepts a valid record", function()
    local u = User.new(with{})
    assert.is_true(u:valid())
    assert.are.equal(1, u:save())
    assert.are.equal(1, count())
  end)

  it("required: refuses a missing value", function()
    local errs = invalid(with{ name = ar.null })
    assert.are.same({ "is required" }, errs.name)
  end)

  it("min / max: refuses values out of range, accepts the bounds", function()
    assert.are.same({ "must be at least 13" }, invalid(with{ age = 12, active = false }).age)
    assert.are.same({ "must be at most 130" }, invalid(with{ age = 131 }).age)
    User:create(with{ age = 130, score = 1.0 })
    User:create(with{ age = 13, active = false, score = 1.0, email = "b@example.com" })
    assert.are.equal(2, count())
  end)

  it("length: counts characters (strings) and items (tables)", function()
    assert.are.same({ "is shorter than 2 characters" }, invalid(with{ name = "A" }).name)
    assert.are.same({ "is longer than 20 characters" }, invalid(with{ name = "A" .. ("é"):rep(20) }).name)
    assert.is_true(User.new(with{ name = "A" .. ("é"):rep(19) }):valid())
    assert.is_table(invalid(with{ profile = { 1, 2 } }).profile)
  end)

  it("format: matches a Lua pattern", function()
    assert.are.same({ "has an invalid format" }, invalid(with{ name = "ann" }).name)
    assert.are.same({ "has an invalid format" }, invalid(with{ email = "not an email" }).email)
  end)

  it("one_of: accepts only the listed values", function()
    local errs = invalid(with{ balance = "5.00" })
    assert.are.equal(1, #errs.balance)
    assert.matches("0.00", errs.balance[1], 1, true)
    assert.matches("10.00", errs.balance[1], 1, true)
    assert.is_true(User.new(with{ balance = "10.00" }):valid())
  end)

  it("custom function: false plus a message, or a message alone; sees the record", function()
    assert.are.same({ "is above the maximum score" }, invalid(with{ score = 101.0 }).score)
    assert.are.same({ "cannot exceed age" }, invalid(with{ age = 20, score = 25.0 }).score)
  end)

  it("per-record validate adds errors to any field", function()
    local errs = invalid(with{ age = 16, score = 1.0 })
    assert.are.same({ "must be at least 18 to be active" }, errs.age)
    assert.is_true(User.new(with{ age = 16, score = 1.0, active = false }):valid())
  end)

  it("collects every failure, several per field, in one ValidationError", function()
    local errs, err = invalid{ name = "a", email = "ann", age = 5, score = 200.0, balance = "1.00",
                               active = true, profile = {} }
    assert.are.same({ "is shorter than 2 characters", "has an invalid format" }, errs.name)
    -- the per-record rule runs even when field rules failed
    assert.are.same({ "has an invalid format", "must not contain the name" }, errs.email)
    assert.are.same({ "must be at least 13", "must be at least 18 to be active" }, errs.age)
    assert.are.same({ "is above the maximum score" }, errs.score)
    assert.are.equal(1, #errs.balance)
    assert.are.equal(1, #errs.profile)
    -- the message lists them too
    local text = tostring(err)
    assert.matches("ValidatedUser", text, 1, true)
    assert.matches("name", text, 1, true)
    assert.matches("score", text, 1, true)
  end)

  it("skips rules on nil values of optional fields", function()
    local u = User.new{ name = "Ann" }
    assert.is_true(u:valid())
    u:save()
    assert.are.equal(1, count())
  end)

  it("valid() returns true or false plus errors, without any statement", function()
    local ok1, ok2, errs
    local n = testsuite.count_statements(db, function()
      ok1 = User.new(with{}):valid()
      ok2, errs = User.new(with{ age = 1, name = "x", active = false }):valid()
    end)
    assert.are.equal(0, n)
    assert.is_true(ok1)
    assert.is_false(ok2)
    assert.are.same({ "must be at least 13" }, errs.age)
    assert.is_table(errs.name)
    assert.are.equal(0, count())
  end)

  it("validates updates too: nothing is written and the record stays dirty", function()
    local u = User:create(with{})
    u.age = 5
    local before = record_validations
    local err
    local n = testsuite.count_statements(db, function()
      err = testsuite.error_of(function() return u:save() end)
    end)
    assert.are.equal(0, n)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.is_table(err.errors.age)
    assert.is_true(record_validations > before)
    assert.is_true(u:is_dirty())
    assert.are.equal(30, db:query("SELECT age FROM users WHERE id = ?", u.id)[1].age)
    -- update{...} goes through the same checks
    local loaded = User:find(u.id)
    assert.has_error(function() loaded:update{ email = "bad" } end)
    assert.are.equal("a@example.com", db:query("SELECT email FROM users WHERE id = ?", u.id)[1].email)
  end)

  it("save{ validate = false } skips validation", function()
    local u = User.new(with{ age = 5, score = 1.0 })
    assert.are.equal(1, u:save{ validate = false })
    assert.are.equal(5, db:query("SELECT age FROM users WHERE id = ?", u.id)[1].age)
  end)
end)

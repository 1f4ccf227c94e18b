-- The write path hands a failed INSERT/UPDATE to uniqueness.translate: a
-- duplicate key of the record's table that no validation caught (a model
-- without `unique`, as two racing writers would see it) comes back from
-- save as a ValidationError on the key's field, with the server's
-- IntegrityError as `cause`; nothing is written and the record is unchanged.
local ar = require("activerecord")
local support = require("support.db")

local have = pcall(require, "activerecord.model.uniqueness")

describe("model: a duplicate key from save", function()
  local db
  local TABLE = "spec_write_unique"

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 } })
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:execute("CREATE TABLE " .. TABLE .. [[ (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(50),
      UNIQUE KEY uq_spec_write_email (email)) ENGINE=InnoDB]])
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS " .. TABLE)
    db:close()
  end)

  local it_if = have and it or pending
  it_if("INSERT and UPDATE: ValidationError on the key's field with the IntegrityError as cause", function()
    local User = ar.Model{ name = "SpecWriteUnique", table = TABLE, backend = db,
      fields = { id = { type = "integer", primary_key = true }, email = "string" } }
    User:create{ email = "a@x" }
    local dup = User:new{ email = "a@x" }
    local err = support.error_of(dup.save, dup)
    assert.are.equal("ValidationError", err.kind, tostring(err))
    assert.is_truthy(err.errors.email)
    assert.are.equal("IntegrityError", err.cause.kind)
    assert.are.equal(1062, err.cause.code)
    assert.is_true(dup:is_new())
    local b = User:create{ email = "b@x" }
    b.email = "a@x"
    err = support.error_of(b.save, b)
    assert.are.equal("ValidationError", err.kind, tostring(err))
    assert.are.equal("IntegrityError", err.cause.kind)
    assert.is_true(b:is_dirty())
    assert.are.equal(2, db:query("SELECT COUNT(*) AS n FROM " .. TABLE)[1].n)
  end)
end)

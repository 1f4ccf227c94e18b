-- Model definitions: mistakes are ConfigErrors at definition time naming the
-- model and the field; the default backend; lookup by name; custom types
-- (ar.register_type) in a model and in the schema DSL.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "feature/basic/definition"

describe("model definition", function()
  local scenario = testsuite.default_scenario()
  local db

  setup(function()
    db = provider.setup(GROUP, scenario, { "typed_records" })
  end)

  teardown(function()
    ar.set_default_backend(nil)
    db:execute("DROP TABLE IF EXISTS ar_money_items")
    provider.teardown(GROUP, scenario)
  end)

  before_each(function()
    db:execute("DELETE FROM typed_records")
  end)

  local function config_error(def)
    local ok, err = pcall(ar.Model, def)
    assert.is_false(ok, "the definition was accepted")
    assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
    return err
  end

  describe("errors", function()
    it("refuses an unknown field type, naming model, field and type", function()
      local err = config_error({ name = "DefUnknownType", table = "typed_records", backend = db,
        fields = { int_v = "integer", str_v = { type = "strnig" } } })
      assert.matches("DefUnknownType", err.message, 1, true)
      assert.matches("str_v", err.message, 1, true)
      assert.matches("strnig", err.message, 1, true)
      assert.are.equal("DefUnknownType", err.model)
      assert.are.equal("str_v", err.field)
    end)

    it("refuses two primary keys, naming both fields", function()
      local err = config_error({ name = "DefTwoKeys", table = "typed_records", backend = db,
        fields = { id = { type = "integer", primary_key = true },
                   int_v = { type = "integer", primary_key = true } } })
      assert.matches("DefTwoKeys", err.message, 1, true)
      assert.matches("id", err.message, 1, true)
      assert.matches("int_v", err.message, 1, true)
      assert.matches("primary key", err.message, 1, true)
    end)

    it("refuses an option of the wrong kind, naming model, field and option", function()
      local err = config_error({ name = "DefBadOption", table = "typed_records", backend = db,
        fields = { str_v = { type = "string", size = "ten" } } })
      assert.matches("DefBadOption.str_v", err.message, 1, true)
      assert.matches("size", err.message, 1, true)
      local err2 = config_error({ name = "DefBadRequired", table = "typed_records", backend = db,
        fields = { int_v = { type = "integer", required = "yes" } } })
      assert.matches("DefBadRequired.int_v", err2.message, 1, true)
      assert.matches("required", err2.message, 1, true)
    end)

    it("refuses an unknown field option, naming it and listing the accepted ones", function()
      local err = config_error({ name = "DefUnknownOption", table = "typed_records", backend = db,
        fields = { str_v = { type = "string", lenght = 5 } } })
      assert.matches("DefUnknownOption.str_v", err.message, 1, true)
      assert.matches("lenght", err.message, 1, true)
      assert.matches("length", err.message, 1, true)
      assert.matches("nullable", err.message, 1, true)
    end)

    it("takes an enum's or set's allowed values from its column, and refuses one that has none", function()
      local Ok = ar.Model{ name = "DefEnumFromTable", table = "typed_records", backend = db,
        fields = { enum_v = "enum", set_v = "set" } }
      assert.are.equal("medium", Ok:create{ enum_v = "medium", set_v = { "red" } }.enum_v)
      assert.are.same({ "small", "medium", "large" }, Ok.fields.enum_v.values)
      assert.are.same({ "red", "green", "blue" }, Ok.fields.set_v.values)
      -- on a VARCHAR column nothing says which values are allowed: its first use refuses it
      local Bad = ar.Model{ name = "DefEnumNoValues", table = "typed_records", backend = db,
        fields = { str_v = "enum" } }
      local err = testsuite.error_of(function() return Bad:count() end)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("DefEnumNoValues.str_v", err.message, 1, true)
      assert.matches("values", err.message, 1, true)
    end)

    it("refuses an unknown model option and an unknown event", function()
      local err = config_error({ name = "DefUnknownKey", table = "typed_records", backend = db,
        fields = {}, feilds = {} })
      assert.matches("DefUnknownKey", err.message, 1, true)
      assert.matches("feilds", err.message, 1, true)
      local err2 = config_error({ name = "DefUnknownEvent", table = "typed_records", backend = db,
        events = { before_sav = function() end } })
      assert.matches("DefUnknownEvent", err2.message, 1, true)
      assert.matches("before_sav", err2.message, 1, true)
    end)

    it("refuses a model without a table", function()
      local err = config_error({ name = "DefNoTable", backend = db, fields = {} })
      assert.matches("DefNoTable", err.message, 1, true)
    end)

    it("does not register a model whose definition failed", function()
      config_error({ name = "DefNeverRegistered", table = "typed_records", backend = db,
        fields = { int_v = "no_such_type" } })
      assert.is_nil(ar.model("DefNeverRegistered"))
    end)
  end)

  describe("backend", function()
    it("uses the default backend for a model that names none", function()
      local Rec = ar.Model{ name = "DefDefaultBackend", table = "typed_records",
        fields = { int_v = "integer" } }
      ar.set_default_backend(db)
      assert.are.equal(db, ar.default_backend())
      local r = Rec:create{ int_v = 7 }
      assert.is_number(r.id)
      assert.are.equal(7, Rec:find(r.id).int_v)
      assert.are.equal(1, db:query("SELECT COUNT(*) AS n FROM typed_records")[1].n)
    end)

    it("raises ConfigError when neither the model nor the default names a backend", function()
      ar.set_default_backend(nil)
      local Rec = ar.Model{ name = "DefNoBackend", table = "typed_records",
        fields = { int_v = "integer" } }
      local err = testsuite.error_of(function() return Rec:find(1) end)
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("DefNoBackend", err.message, 1, true)
    end)
  end)

  describe("lookup by name", function()
    it("finds a model by its name once defined", function()
      assert.is_nil(ar.model("DefLookedUp"))
      local Rec = ar.Model{ name = "DefLookedUp", table = "typed_records", backend = db,
        fields = { int_v = "integer" } }
      assert.are.equal(Rec, ar.model("DefLookedUp"))
      local r = ar.model("DefLookedUp"):create{ int_v = 3 }
      assert.are.equal(3, Rec:find(r.id).int_v)
    end)
  end)

  describe("custom types", function()
    -- cents as integers in Lua, DECIMAL(12,2) in the database
    local money_validated = {}
    setup(function()
      ar.register_type("money", {
        sql_type = "DECIMAL(12,2)",
        to_db = function(cents)
          local sign = cents < 0 and "-" or ""
          cents = math.abs(cents)
          return ("%s%d.%02d"):format(sign, cents // 100, cents % 100)
        end,
        from_db = function(s)
          local sign, units, frac = s:match("^(%-?)(%d+)%.(%d%d)$")
          local cents = tonumber(units) * 100 + tonumber(frac)
          return sign == "-" and -cents or cents
        end,
        validate = function(v)
          money_validated[#money_validated + 1] = v
          if math.type(v) ~= "integer" then return false, "must be a whole number of cents" end
          return true
        end,
      })
    end)

    it("is usable as a field type: to_db, from_db and validate all apply", function()
      local Rec = ar.Model{ name = "DefMoney", table = "typed_records", backend = db,
        fields = { price = { type = "money", column = "dec_v" } } }
      local r = Rec:create{ price = 123456 }
      assert.are.equal("1234.56",
        db:query("SELECT dec_v FROM typed_records WHERE id = ?", r.id)[1].dec_v)
      assert.are.equal(123456, Rec:find(r.id).price)
      local neg = Rec:create{ price = -5 }
      assert.are.equal("-0.05",
        db:query("SELECT dec_v FROM typed_records WHERE id = ?", neg.id)[1].dec_v)
      assert.are.equal(-5, Rec:find(neg.id).price)

      local bad = Rec.new{ price = 1.5 }
      local ok, errs = bad:valid()
      assert.is_false(ok)
      assert.are.same({ "must be a whole number of cents" }, errs.price)
      assert.is_true(#money_validated > 0)
    end)

    it("is usable in the schema DSL with its sql_type", function()
      local ok, err = pcall(ar.schema.create_table, db, "ar_money_items", function(t)
        t:bigint("id", { primary_key = true, auto_increment = true })
        t:column("price", "money", { nullable = false })
      end, { force = true })
      assert(ok, err)
      local col = db:query("SELECT COLUMN_TYPE AS t FROM information_schema.COLUMNS "
        .. "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ar_money_items' "
        .. "AND COLUMN_NAME = 'price'")[1]
      assert.is_not_nil(col)
      assert.are.equal("decimal(12,2)", col.t:lower())
      local Item = ar.Model{ name = "DefMoneyItem", table = "ar_money_items", backend = db,
        fields = { price = "money" } }
      local item = Item:create{ price = 999 }
      assert.are.equal(999, Item:find(item.id).price)
    end)

    it("refuses a registration without a way to store the type", function()
      local err = testsuite.error_of(ar.register_type, "nowhere", { to_db = tostring })
      assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("nowhere", err.message, 1, true)
      local err2 = testsuite.error_of(ar.register_type, "typo", { sql_type = "INT", to_bd = tostring })
      assert.is_true(ar.errors.is(err2, "ConfigError"), tostring(err2))
      assert.matches("to_bd", err2.message, 1, true)
    end)
  end)
end)

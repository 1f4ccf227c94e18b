-- Options that mean what they say: every field and relation option is
-- checked at definition, and a shape it does not take is a ConfigError that
-- lists the accepted forms; `length` takes a count, { min =, max = } and
-- { min, max } (normalised on the field); relation orders are pairs;
-- read-only fields are refused on new/create; a class method called with a
-- dot says so.
local ar = require("activerecord")
local support = require("support.db")

local function config_error(fn, ...)
  local err = support.error_of(fn, ...)
  assert.is_true(ar.errors.is(err, "ConfigError"), tostring(err))
  return err
end

local n = 0
local function field_model(spec)
  n = n + 1
  return ar.Model{ name = "OptM" .. n, table = "opt_people", fields = { id = "integer", v = spec } }
end

describe("model options: field option shapes", function()
  it("length: a count, { min =, max = }, { min, max } and { is = } are normalised on the field", function()
    assert.same({ min = 3, max = 10 }, field_model{ type = "string", length = { 3, 10 } }.fields.v.length)
    assert.same({ min = 3, max = 10 }, field_model{ type = "string", length = { min = 3, max = 10 } }.fields.v.length)
    assert.same({ min = 3 }, field_model{ type = "string", length = { min = 3 } }.fields.v.length)
    assert.same({ max = 9 }, field_model{ type = "string", length = { max = 9 } }.fields.v.length)
    assert.same({ min = 4, max = 4, is = 4 }, field_model{ type = "string", length = 4 }.fields.v.length)
    assert.same({ min = 4, max = 4, is = 4 }, field_model{ type = "string", length = { is = 4 } }.fields.v.length)
  end)

  it("length: other shapes are refused with the accepted forms listed", function()
    for _, bad in ipairs({ "3..10", { 10, 3 }, { 3 }, { 1, 2, 3 }, { min = 5, max = 2 }, { min = "3" },
                           { min = 1, most = 4 }, {}, -1, 2.5, { 3, 10, min = 1 } }) do
      local err = config_error(field_model, { type = "string", length = bad })
      assert.matches("OptM%d+%.v: option 'length' takes a count %(length = 8%), { min = n, max = n }", err.message)
      assert.matches("{ n, n } (min, max)", err.message, 1, true)
      assert.matches("(got ", err.message, 1, true)
    end
  end)

  it("unique: true or { scope =, case_sensitive =, message = }", function()
    assert.is_true(field_model{ type = "string", unique = true }.fields.v.unique)
    local u = field_model{ type = "string", unique = { scope = { "a", "b" }, case_sensitive = false,
      message = "taken" } }.fields.v.unique
    assert.same({ scope = { "a", "b" }, case_sensitive = false, message = "taken" }, u)
    assert.same({ scope = "a" }, field_model{ type = "string", unique = { scope = "a" } }.fields.v.unique)
    for _, bad in ipairs({ "yes", 1, { scope = 1 }, { scope = {} }, { scope = { "a b" } },
                           { case_sensitive = "no" }, { message = false }, { scoped = "a" } }) do
      local err = config_error(field_model, { type = "string", unique = bad })
      assert.matches("option 'unique' takes true, or { scope = \"field\" or { \"field\", ... }, "
        .. "case_sensitive = boolean, message = string }", err.message, 1, true)
    end
  end)

  it("format: a valid Lua pattern", function()
    assert.equal("^%u", field_model{ type = "string", format = "^%u" }.fields.v.format)
    for _, bad in ipairs({ "[a", "%", "%b", "[%a" }) do
      local err = config_error(field_model, { type = "string", format = bad })
      assert.matches("option 'format' takes a Lua pattern", err.message, 1, true)
    end
    config_error(field_model, { type = "string", format = 5 })
  end)

  it("min/max numbers (min <= max), one_of a non-empty list, values a list of strings, sizes whole", function()
    field_model{ type = "integer", min = 1, max = 1 }
    assert.matches("option 'min' takes a number", config_error(field_model, { type = "integer", min = "1" }).message,
      1, true)
    assert.matches("'min' (5) is above 'max' (1)", config_error(field_model, { type = "integer", min = 5, max = 1 })
      .message, 1, true)
    assert.matches("option 'one_of' takes a non-empty list", config_error(field_model,
      { type = "string", one_of = {} }).message, 1, true)
    config_error(field_model, { type = "string", one_of = { a = 1 } })
    config_error(field_model, { type = "string", one_of = "a,b" })
    assert.matches("option 'values' takes a non-empty list of strings", config_error(field_model,
      { type = "enum", values = { "a", 2 } }).message, 1, true)
    assert.matches("option 'size' takes a whole number > 0", config_error(field_model,
      { type = "string", size = 0 }).message, 1, true)
    config_error(field_model, { type = "string", size = 2.5 })
    config_error(field_model, { type = "decimal", precision = 4, scale = 5 })
    config_error(field_model, { type = "decimal", precision = 10, scale = -1 })
  end)

  it("default: a value or a function; unknown options list the accepted ones", function()
    assert.is_function(field_model{ type = "string", default = function() return "x" end }.fields.v.default)
    assert.equal("x", field_model{ type = "string", default = "x" }.fields.v.default)
    config_error(field_model, { type = "string", default = coroutine.create(function() end) })
    local err = config_error(field_model, { type = "string", lenght = 3 })
    assert.matches("unknown option 'lenght' (accepted: auto_increment, binary, column,", err.message, 1, true)
  end)
end)

describe("model options: relation options", function()
  it("order_by: a column, { col, dir } or a list of pairs; anything else lists the accepted forms", function()
    assert.same({ { "id", "asc" } }, ar.has_many("X", { order_by = "id" }).order)
    assert.same({ { "id", "desc" } }, ar.has_many("X", { order_by = { "id", "desc" } }).order)
    assert.same({ { "pos", "asc" }, { "id", "desc" } },
      ar.has_many("X", { order_by = { { "pos", "asc" }, { "id", "DESC" } } }).order)
    for _, bad in ipairs({ "id desc", { "id", "down" }, { "pos", "id" }, { { "id", "desc" }, { "x y" } }, 5,
                           { "id", "desc", "x" }, {} }) do
      local err = config_error(ar.has_many, "X", { order_by = bad })
      assert.matches("has_many: option 'order_by' takes a column name (\"id\"), { \"id\", \"desc\" } or a list "
        .. "of such pairs", err.message, 1, true)
      assert.matches("the direction is \"asc\" or \"desc\"", err.message, 1, true)
    end
  end)

  it("every other option is checked per kind, with the accepted forms", function()
    assert.matches("option 'foreign_key' takes a column name", config_error(ar.has_many, "X",
      { foreign_key = "user id" }).message, 1, true)
    assert.matches("option 'dependent' takes \"destroy\" (each child deleted through its model), \"delete\" "
      .. "(one statement), \"nullify\" or \"restrict\"", config_error(ar.has_one, "X",
      { dependent = "erase" }).message, 1, true)
    assert.matches("option 'counter_cache' takes true", config_error(ar.belongs_to, "X",
      { counter_cache = 1 }).message, 1, true)
    assert.matches("option 'touch' takes true", config_error(ar.belongs_to, "X", { touch = "a b" }).message, 1, true)
    assert.matches("option 'through' takes the join table's name", config_error(ar.has_many_through, "X",
      { through = "a;b" }).message, 1, true)
    assert.matches("belongs_to: unknown option 'order_by' (accepted: counter_cache, dependent, foreign_key, "
      .. "foreign_type, polymorphic, primary_key, touch)",
      config_error(ar.belongs_to, "X", { order_by = "id" }).message, 1, true)
    assert.matches("has_many: unknown option 'source_key'", config_error(ar.has_many, "X",
      { source_key = "a" }).message, 1, true)
    assert.matches("options must be a table", config_error(ar.has_many, "X", "user_id").message, 1, true)
  end)
end)

describe("model options: against the server", function()
  local db, Person, List, Item

  setup(function()
    db = ar.connect(support.options())
    db:execute("DROP TABLE IF EXISTS opt_people")
    db:execute("CREATE TABLE opt_people (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), "
      .. "code VARCHAR(10), created_by VARCHAR(20)) ENGINE=InnoDB")
    db:execute("DROP TABLE IF EXISTS opt_items")
    db:execute("CREATE TABLE opt_items (id INT PRIMARY KEY, list_id INT, pos INT) ENGINE=InnoDB")
    Person = ar.Model{ name = "OptPerson", table = "opt_people", backend = db, fields = {
      id = "integer",
      name = { type = "string", length = { 2, 5 } },
      code = { type = "string", readonly = true, default = function() return "C-1" end },
      created_by = { type = "string", readonly = true },
    }, events = { before_create = function(p) if p.created_by == nil then p.created_by = "system" end end } }
    Item = ar.Model{ name = "OptItem", table = "opt_items", backend = db,
      fields = { id = { type = "integer", auto_increment = false }, list_id = "integer", pos = "integer" } }
    List = ar.Model{ name = "OptList", table = "opt_people", backend = db, fields = { id = "integer" },
      relations = {
        items = ar.has_many("OptItem", { foreign_key = "list_id", order_by = { { "pos", "asc" }, { "id", "desc" } } }),
        last_item = ar.has_one("OptItem", { foreign_key = "list_id", order_by = { "id", "desc" } }),
      } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS opt_people")
    db:execute("DROP TABLE IF EXISTS opt_items")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM opt_people")
    db:execute("DELETE FROM opt_items")
  end)

  it("length = { 2, 5 } is enforced (it used to be accepted and ignored)", function()
    local err = support.error_of(Person.create, Person, { name = "a" })
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.same({ "is shorter than 2 characters" }, err.errors.name)
    err = support.error_of(Person.create, Person, { name = "abcdef" })
    assert.same({ "is longer than 5 characters" }, err.errors.name)
    assert.equal(0, db:query("SELECT COUNT(*) AS n FROM opt_people")[1].n)
    assert.equal("abc", Person:create{ name = "abc" }.name)
  end)

  it("a read-only field is refused on new and create (ValidationError), set by its default or a handler", function()
    for _, make in ipairs({ function() return Person.new{ name = "ab", code = "X" } end,
                            function() return Person:new{ name = "ab", code = "X" } end,
                            function() return Person:create{ name = "ab", created_by = "me" } end }) do
      local err = support.error_of(make)
      assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
      assert.matches("OptPerson%.[%a_]+ is read%-only: new/create do not take it", err.message)
      assert.is_table(err.errors.code or err.errors.created_by)
    end
    assert.equal(0, db:query("SELECT COUNT(*) AS n FROM opt_people")[1].n)
    local p = Person:create{ name = "ab" }
    assert.same({ code = "C-1", created_by = "system" },
      db:query("SELECT code, created_by FROM opt_people WHERE id = ?", p.id)[1])
    -- and, stored, it stays refused on assignment
    local err = support.error_of(function() p.code = "Y" end)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
  end)

  it("relation orders given as pairs order the loaded records", function()
    local l = List:create{}
    Item:insert_all({ { id = 1, list_id = l.id, pos = 2 }, { id = 2, list_id = l.id, pos = 1 },
                      { id = 3, list_id = l.id, pos = 2 }, { id = 4, list_id = l.id, pos = 1 } })
    local got = {}
    for i, it in ipairs(l:items()) do got[i] = it.id end
    assert.same({ 4, 2, 3, 1 }, got)
    assert.equal(4, l:last_item().id)
    local pre = List:query():with("items"):all()[1]
    got = {}
    for i, it in ipairs(pre:items()) do got[i] = it.id end
    assert.same({ 4, 2, 3, 1 }, got)
  end)

  it("a has_many_through order given as pairs orders its targets, loaded and eager-loaded", function()
    db:execute("DROP TABLE IF EXISTS opt_links")
    db:execute("CREATE TABLE opt_links (list_id INT, item_id INT) ENGINE=InnoDB")
    local Tagged = ar.Model{ name = "OptTagged", table = "opt_people", backend = db, fields = { id = "integer" },
      relations = { items = ar.has_many_through("OptItem", { through = "opt_links", source_key = "list_id",
        target_key = "item_id", order_by = { { "pos", "desc" }, { "id", "asc" } } }) } }
    local l = Tagged:create{}
    Item:insert_all({ { id = 1, pos = 1 }, { id = 2, pos = 2 }, { id = 3, pos = 1 }, { id = 4, pos = 2 } })
    for i = 1, 4 do db:execute("INSERT INTO opt_links VALUES (?, ?)", l.id, i) end
    local function ids(list)
      local out = {}
      for i, it in ipairs(list) do out[i] = it.id end
      return out
    end
    assert.same({ 2, 4, 1, 3 }, ids(l:items()))
    assert.same({ 2, 4, 1, 3 }, ids(Tagged:query():with("items"):all()[1]:items()))
    db:execute("DROP TABLE IF EXISTS opt_links")
  end)

  it("a class method called with a dot says how to call it", function()
    local P = "OptPerson"
    local cases = {
      { function() return Person.create{ name = "ab" } end, "create", P .. ":create{...}" },
      { function() return Person.find(1) end, "find", P .. ":find(...)" },
      { function() return Person.where{ name = "ab" } end, "where", P .. ":where{...}" },
      { function() return Person.find_by{ name = "ab" } end, "find_by", P .. ":find_by{...}" },
      { function() return Person.all() end, "all", P .. ":all()" },
      { function() return Person.count() end, "count", P .. ":count(...)" },
      { function() return Person.find_or_create_by{ name = "ab" } end, "find_or_create_by",
        P .. ":find_or_create_by{...}" },
    }
    for _, c in ipairs(cases) do
      local err = config_error(c[1])
      assert.equal(("%s.%s: call it with a colon, %s"):format(P, c[2], c[3]), err.message)
    end
    assert.equal(0, db:query("SELECT COUNT(*) AS n FROM opt_people")[1].n)
    -- with the colon they work; new takes both, as documented
    assert.equal("ab", Person.new{ name = "ab" }.name)
    assert.equal(0, Person:count())
  end)
end)

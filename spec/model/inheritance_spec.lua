-- Single-table inheritance (issue 16): a base model names its type column
-- (inheritance_column), subclasses extend it (extends = Base); queries on a
-- subclass see its rows and its descendants' only, queries on the base
-- return each row as the class its type names.
local ar = require("activerecord")
local support = require("support.db")

describe("model: single-table inheritance", function()
  local db, sqllog
  local Vehicle, Car, SportsCar, Truck, Garage
  local log -- events seen

  local function statements(fn)
    sqllog = {}
    local ok, err = pcall(fn)
    local out = sqllog
    sqllog = nil
    if not ok then error(err, 0) end
    return out
  end

  local function error_of(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, "expected an error")
    return err
  end

  local function kind_of(err, kind)
    assert.is_true(ar.errors.is(err, kind), tostring(err))
    return err
  end

  local function names(recs)
    local out = {}
    for i, r in ipairs(recs) do out[i] = r:model().name .. ":" .. r.name end
    return out
  end

  setup(function()
    db = ar.connect(support.options{ pool = { size = 1 },
      log = function(ev) if sqllog then sqllog[#sqllog + 1] = ev.sql end end })
    db:execute("DROP TABLE IF EXISTS sti_vehicles")
    db:execute("DROP TABLE IF EXISTS sti_garages")
    db:execute([[CREATE TABLE sti_garages (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50)) ENGINE=InnoDB]])
    db:execute([[CREATE TABLE sti_vehicles (id INT PRIMARY KEY AUTO_INCREMENT, type VARCHAR(40) NOT NULL,
      name VARCHAR(50), wheels INT, garage_id INT, payload INT) ENGINE=InnoDB]])
    log = {}
    Garage = ar.Model{ name = "StiGarage", table = "sti_garages", backend = db,
      fields = { id = { type = "integer", primary_key = true }, name = "string" },
      relations = {
        vehicles = ar.has_many("StiVehicle", { foreign_key = "garage_id", order_by = "id" }),
        cars = ar.has_many("StiCar", { foreign_key = "garage_id", order_by = "id" }),
      } }
    Vehicle = ar.Model{ name = "StiVehicle", table = "sti_vehicles", backend = db, inheritance_column = "type",
      fields = { id = { type = "integer", primary_key = true }, type = "string", name = "string",
                 wheels = "integer", garage_id = "integer", payload = "integer" },
      relations = { garage = ar.belongs_to("StiGarage", { foreign_key = "garage_id" }) },
      scopes = { named = function(q, n) return q:where{ name = n } end },
      methods = { describe = function(self) return "vehicle " .. self.name end,
                  honk = function() return "beep" end },
      events = { before_save = function(rec) log[#log + 1] = "Vehicle.before_save " .. rec.name end } }
    Car = ar.Model{ extends = Vehicle, name = "StiCar",
      methods = { describe = function(self) return "car " .. self.name end },
      events = { before_save = function(rec) log[#log + 1] = "Car.before_save " .. rec.name end },
      validate = function(rec, errs)
        if rec.wheels and rec.wheels ~= 4 then errs:add("wheels", "a car has 4") end
      end }
    SportsCar = ar.Model{ extends = Car, name = "StiSportsCar",
      methods = { describe = function(self) return "fast car " .. self.name end } }
    Truck = ar.Model{ extends = Vehicle, name = "StiTruck",
      methods = { load_up = function(self, n) self.payload = (self.payload or 0) + n end } }
  end)

  teardown(function()
    db:execute("DROP TABLE IF EXISTS sti_vehicles")
    db:execute("DROP TABLE IF EXISTS sti_garages")
    db:close()
  end)

  before_each(function()
    db:execute("DELETE FROM sti_vehicles")
    db:execute("DELETE FROM sti_garages")
    log = {}
  end)

  local function fleet()
    local g = Garage:create{ name = "main" }
    local v = Vehicle:create{ name = "cart", garage_id = g.id }
    local c = Car:create{ name = "sedan", wheels = 4, garage_id = g.id }
    local s = SportsCar:create{ name = "racer", wheels = 4, garage_id = g.id }
    local t = Truck:create{ name = "hauler", wheels = 6, garage_id = g.id }
    return g, v, c, s, t
  end

  it("create through a subclass stores its name in the type column", function()
    local c = Car:create{ name = "sedan", wheels = 4 }
    assert.are.equal("StiCar", c.type)
    assert.are.equal(Car, c:model())
    local s = SportsCar:new{ name = "racer" }
    assert.are.equal("StiSportsCar", s.type)
    s:save()
    local v = Vehicle:create{ name = "cart" }
    assert.are.equal("StiVehicle", v.type)
    local rows = db:query("SELECT name, type FROM sti_vehicles ORDER BY id")
    assert.are.same({ { name = "sedan", type = "StiCar" }, { name = "racer", type = "StiSportsCar" },
      { name = "cart", type = "StiVehicle" } }, rows)
  end)

  it("the base's new with a subclass's type makes that class; another name is refused", function()
    local c = Vehicle:new{ name = "x", type = "StiCar" }
    assert.are.equal(Car, c:model())
    assert.are.equal("car x", c:describe())
    local s = Car:create{ name = "y", type = "StiSportsCar" }
    assert.are.equal(SportsCar, s:model())
    local err = kind_of(error_of(function() Car:new{ name = "z", type = "StiTruck" } end), "ValidationError")
    assert.truthy(err.errors.type)
    kind_of(error_of(function() Vehicle:new{ name = "z", type = "Nope" } end), "ValidationError")
  end)

  it("the base's queries return each row as its class, with its methods", function()
    fleet()
    local all = Vehicle:query():order_by("id"):all()
    assert.are.same({ "StiVehicle:cart", "StiCar:sedan", "StiSportsCar:racer", "StiTruck:hauler" }, names(all))
    assert.are.same({ "vehicle cart", "car sedan", "fast car racer", "vehicle hauler" },
      { all[1]:describe(), all[2]:describe(), all[3]:describe(), all[4]:describe() })
    assert.are.equal("beep", all[3]:honk()) -- the base's methods reach every class
    all[4]:load_up(5)
    assert.are.equal(5, all[4].payload)
    assert.are.equal(4, Vehicle:count())
    assert.are.equal(Truck, Vehicle:find(all[4].id):model())
    assert.are.equal(SportsCar, Vehicle:find_by{ name = "racer" }:model())
    assert.are.equal(Car, Vehicle:named("sedan"):first():model()) -- the base's scope
  end)

  it("a subclass's queries see its rows and its descendants' only (bound values)", function()
    local _, v, c, s, t = fleet()
    local sql = statements(function()
      assert.are.same({ "StiCar:sedan", "StiSportsCar:racer" }, names(Car:query():order_by("id"):all()))
    end)
    assert.truthy(sql[1]:find("IN (?, ?)", 1, true), sql[1])
    assert.is_nil(sql[1]:find("StiCar", 1, true))
    assert.are.same({ "StiCar:sedan", "StiSportsCar:racer" }, names(Car:all()))
    assert.are.same({ "StiSportsCar:racer" }, names(SportsCar:all()))
    assert.are.same({ "StiTruck:hauler" }, names(Truck:where{ wheels = 6 }:all()))
    assert.are.equal(2, Car:count())
    assert.are.equal(1, Truck:count())
    assert.is_true(Car:where{ name = "racer" }:exists())
    assert.is_false(Car:where{ name = "hauler" }:exists())
    assert.are.same({ "racer", "sedan" }, Car:order_by("name"):pluck("name"))
    assert.are.equal(Car, Car:find(c.id):model())
    assert.are.equal(SportsCar, Car:find(s.id):model())
    assert.is_nil(Car:find(t.id))
    assert.is_nil(Car:find(v.id))
    assert.is_nil(SportsCar:find(c.id))
    local err = kind_of(error_of(function() Car:find_or_fail(t.id) end), "RecordNotFound")
    assert.are.equal("StiCar", err.model)
    assert.is_nil(Car:find_by{ name = "hauler" })
    assert.are.equal(2, #Car:unscoped():all()) -- unscoped drops default scopes, not the type
    assert.are.equal("StiSportsCar:racer", names({ Car:named("racer"):first() })[1]) -- the base's scope
  end)

  it("update_all and delete_all on a subclass touch its rows only", function()
    fleet()
    assert.are.equal(2, Car:update_all{ payload = 1 })
    local rows = db:query("SELECT name, payload FROM sti_vehicles ORDER BY id")
    assert.are.same({ { name = "cart" }, { name = "sedan", payload = 1 }, { name = "racer", payload = 1 },
      { name = "hauler" } }, rows)
    assert.are.equal(1, SportsCar:where{ wheels = 4 }:update_all{ payload = 2 })
    assert.are.equal(1, Truck:delete_all())
    assert.are.equal(3, Vehicle:count())
    assert.are.equal(2, Car:delete_all())
    assert.are.same({ "StiVehicle:cart" }, names(Vehicle:all()))
  end)

  it("a subclass of a subclass: its queries, its base's events and validations", function()
    local s = SportsCar:create{ name = "racer", wheels = 4 }
    assert.are.same({ "Vehicle.before_save racer", "Car.before_save racer" }, log)
    local err = kind_of(error_of(function() SportsCar:create{ name = "trike", wheels = 3 } end), "ValidationError")
    assert.are.same({ "a car has 4" }, err.errors.wheels)
    assert.are.equal(1, SportsCar:count())
    assert.are.equal(SportsCar, SportsCar:find(s.id):model())
    assert.are.equal("fast car racer", Vehicle:find(s.id):describe())
  end)

  it("a subclass's events run for its records, the base's for all", function()
    Vehicle:create{ name = "cart" }
    Truck:create{ name = "hauler" }
    Car:create{ name = "sedan" }
    assert.are.same({ "Vehicle.before_save cart", "Vehicle.before_save hauler", "Vehicle.before_save sedan",
      "Car.before_save sedan" }, log)
    -- a handler added to the base later reaches the subclasses too
    local seen = {}
    local fn = function(rec) seen[#seen + 1] = rec:model().name end
    Vehicle:on("after_save", fn)
    Truck:create{ name = "t2" }
    SportsCar:create{ name = "s2" }
    assert.are.same({ "StiTruck", "StiSportsCar" }, seen)
    Vehicle:off("after_save", fn)
    Car:create{ name = "c3" }
    assert.are.equal(2, #seen)
    -- a record loaded through the base runs its class's events on save
    log = {}
    local c = Vehicle:find_by{ name = "sedan" }
    c.name = "sedan2"
    c:save()
    assert.are.same({ "Vehicle.before_save sedan2", "Car.before_save sedan2" }, log)
  end)

  it("changing the type: saved, the record keeps its class until reloaded", function()
    local c = Car:create{ name = "sedan", wheels = 4 }
    c.type = "StiTruck"
    c:save()
    assert.are.equal(Car, getmetatable(c) == getmetatable(Car:new{}) and Car or nil)
    assert.are.equal("car sedan", c:describe())
    assert.is_nil(Car:find(c.id))
    assert.are.equal(Truck, Vehicle:find(c.id):model())
    -- saving again writes by key alone (the row is a truck now)
    c.name = "sedan2"
    c:save()
    assert.are.equal("sedan2", Truck:find(c.id).name)
    c:reload()
    assert.are.equal(Truck, c:model())
    assert.are.equal("vehicle sedan2", c:describe())
    c:load_up(3)
    c:save()
    assert.are.equal(3, Truck:find(c.id).payload)
    -- a name no class of the hierarchy has is refused
    c.type = "Bicycle"
    local err = kind_of(error_of(function() c:save() end), "ValidationError")
    assert.truthy(err.errors.type)
  end)

  it("a row whose type names no class loads as the class queried", function()
    db:execute("INSERT INTO sti_vehicles (type, name) VALUES ('Hovercraft', 'h')")
    local h = Vehicle:find_by{ name = "h" }
    assert.are.equal(Vehicle, h:model())
    assert.are.equal(0, Car:count())
  end)

  it("eager loading and relations return the right classes; relations to a subclass filter by type", function()
    local g = fleet()
    local gs = Garage:query():with("vehicles", "cars"):all()
    assert.are.equal(1, #gs)
    assert.are.same({ "StiVehicle:cart", "StiCar:sedan", "StiSportsCar:racer", "StiTruck:hauler" },
      names(gs[1]:vehicles()))
    assert.are.same({ "StiCar:sedan", "StiSportsCar:racer" }, names(gs[1]:cars()))
    local fresh = Garage:find(g.id)
    assert.are.same({ "StiCar:sedan", "StiSportsCar:racer" }, names(fresh:cars()))
    assert.are.equal(2, fresh:cars_query():count())
    -- the base's belongs_to, from any class, loaded and eager-loaded
    local cars = Car:query():with("garage"):order_by("id"):all()
    assert.are.equal("main", cars[1]:garage().name)
    assert.are.equal("main", cars[2]:garage().name)
    local mixed = Vehicle:query():with("garage"):all()
    for _, v in ipairs(mixed) do assert.are.equal(g.id, v:garage().id) end
  end)

  it("bulk inserts through a subclass set the type", function()
    Truck:insert_all{ { name = "a" }, { name = "b" } }
    assert.are.same({ "StiTruck:a", "StiTruck:b" }, names(Vehicle:order_by("id"):all()))
  end)

  describe("definition errors", function()
    it("extends a model without inheritance_column", function()
      local Plain = ar.Model{ name = "StiPlain", table = "sti_vehicles", backend = db,
        fields = { id = { type = "integer", primary_key = true }, name = "string" } }
      local err = kind_of(error_of(function() ar.Model{ extends = Plain, name = "StiX" } end), "ConfigError")
      assert.truthy(tostring(err):find("inheritance_column", 1, true))
    end)

    it("an inheritance_column that is no field, or not a string field", function()
      local err = kind_of(error_of(function()
        ar.Model{ name = "StiBad1", table = "sti_vehicles", backend = db, inheritance_column = "kind",
          fields = { id = { type = "integer", primary_key = true }, name = "string" } }
      end), "ConfigError")
      assert.truthy(tostring(err):find("'kind' is no field", 1, true), tostring(err))
      err = kind_of(error_of(function()
        ar.Model{ name = "StiBad2", table = "sti_vehicles", backend = db, inheritance_column = "wheels",
          fields = { id = { type = "integer", primary_key = true }, wheels = "integer" } }
      end), "ConfigError")
      assert.truthy(tostring(err):find("integer field", 1, true), tostring(err))
      kind_of(error_of(function()
        ar.Model{ name = "StiBad3", table = "sti_vehicles", backend = db, inheritance_column = 1 }
      end), "ConfigError")
    end)

    it("a subclass takes no table, fields or backend of its own, and needs a name", function()
      kind_of(error_of(function() ar.Model{ extends = Vehicle, name = "StiY", table = "other" } end), "ConfigError")
      kind_of(error_of(function() ar.Model{ extends = Vehicle, name = "StiY", fields = {} } end), "ConfigError")
      kind_of(error_of(function() ar.Model{ extends = Vehicle } end), "ConfigError")
      kind_of(error_of(function() ar.Model{ extends = "StiVehicle", name = "StiY" } end), "ConfigError")
      kind_of(error_of(function() ar.Model{ extends = Vehicle, name = "StiVehicle" } end), "ConfigError")
    end)

    it("a base reading its fields from the table is checked when it reads them", function()
      local Base = ar.Model{ name = "StiReadBase", table = "sti_vehicles", backend = db,
        inheritance_column = "type" }
      local Sub = ar.Model{ extends = Base, name = "StiReadSub" }
      Sub:create{ name = "r" }
      assert.are.equal(Sub, Base:find_by{ name = "r" }:model())
      assert.are.equal(1, Sub:count())
      local Bad = ar.Model{ name = "StiReadBad", table = "sti_vehicles", backend = db,
        inheritance_column = "nope" }
      kind_of(error_of(function() Bad:count() end), "ConfigError")
    end)
  end)

  it("a base's mixins apply to its subclasses (timestamps, soft_delete)", function()
    db:execute("DROP TABLE IF EXISTS sti_docs")
    db:execute([[CREATE TABLE sti_docs (id INT PRIMARY KEY AUTO_INCREMENT, kind VARCHAR(40),
      title VARCHAR(50), created_at DATETIME, updated_at DATETIME, deleted_at DATETIME) ENGINE=InnoDB]])
    local Doc = ar.Model{ name = "StiDoc", table = "sti_docs", backend = db, inheritance_column = "kind",
      mixins = { "timestamps", "soft_delete" },
      fields = { id = { type = "integer", primary_key = true }, kind = "string", title = "string" } }
    local Memo = ar.Model{ extends = Doc, name = "StiMemo" }
    local m = Memo:create{ title = "m" }
    Doc:create{ title = "d" }
    assert.truthy(m.created_at)
    assert.are.equal("StiMemo", m.kind)
    m:delete()
    assert.are.equal(0, Memo:count())
    assert.are.equal(1, Memo:with_deleted():count())
    assert.are.equal(1, Memo:unscoped():count())
    assert.are.equal(1, Doc:count())
    Memo:with_deleted():first():restore()
    assert.are.same({ "StiMemo", "StiDoc" }, Doc:order_by("id"):pluck("kind"))
    db:execute("DROP TABLE sti_docs")
  end)

  it("a subclass defined after its base's queries ran is seen by them (statements made again)", function()
    local c = Car:create{ name = "sedan", wheels = 4 }
    assert.are.equal(1, Car:count())
    assert.are.equal(Car, Car:find(c.id):model())
    local Coupe = ar.Model{ extends = Car, name = "StiCoupe" }
    local k = Coupe:create{ name = "coupe", wheels = 4 }
    assert.are.equal(2, Car:count())
    assert.are.equal(Coupe, Car:find(k.id):model())
    assert.are.equal(Coupe, Vehicle:find(k.id):model())
    assert.are.equal(1, Coupe:count())
    local err = kind_of(error_of(function() return Car.query() end), "ConfigError")
    assert.truthy(tostring(err):find("colon", 1, true))
  end)

  it("a model without inheritance keeps its loaders and query", function()
    local m = Garage._meta
    assert.is_nil(m.inheritance)
    assert.are.equal(m.load, rawget(Garage, "_load") or m.load)
  end)
end)

-- A small shop: customers (the users fixture), products with timestamps,
-- soft delete and an optimistic lock, orders with timestamps and a lock,
-- order items. Checkout runs in a transaction; two clerks racing for the
-- last unit see the loser's whole checkout rolled back; discontinued
-- products disappear from the catalogue but stay on old invoices; the sales
-- report eager-loads four levels in one statement each.
local ar = require("activerecord")
local testsuite = require("activerecord.testsuite")

local provider = testsuite.provider()
local GROUP = "realworld"

describe("realworld: a small shop", function()
  local scenario = testsuite.default_scenario()
  local db
  local User, Product, Order, Item
  local ann, bob
  local TABLES = { "shop_order_items", "shop_orders", "shop_products" }

  -- "12.50" -> 1250 and back: money stays exact
  local function cents(s)
    local int, frac = s:match("^(%d+)%.?(%d*)$")
    return tonumber(int) * 100 + tonumber((frac .. "00"):sub(1, 2))
  end
  local function money(c) return ("%d.%02d"):format(c // 100, c % 100) end

  local function stock_of(id)
    return db:query("SELECT stock FROM shop_products WHERE id = ?", id)[1].stock
  end
  local function count_of(t) return db:query("SELECT COUNT(*) AS n FROM " .. t)[1].n end

  -- cart: { { product = <Product instance>, quantity = n }, ... }. The
  -- product instances are the copies the clerk's screen shows: if one is
  -- stale, its save raises StaleObjectError and nothing of the order stays.
  local function checkout(user, cart)
    return db:transaction(function()
      local order = Order:create{ user_id = user.id, status = "pending", total = "0.00" }
      local total = 0
      for _, line in ipairs(cart) do
        local p = line.product
        if p.stock < line.quantity then
          error({ out_of_stock = p.name }, 0)
        end
        p.stock = p.stock - line.quantity
        p:save()
        Item:create{ order_id = order.id, product_id = p.id, quantity = line.quantity, unit_price = p.price }
        total = total + cents(p.price) * line.quantity
      end
      order:update{ total = money(total) }
      return order
    end)
  end

  setup(function()
    db = provider.setup(GROUP, scenario, { "users" })
    ar.schema.create_table(db, "shop_products", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 100, nullable = false })
      t:decimal("price", { precision = 10, scale = 2, nullable = false })
      t:integer("stock", { nullable = false, default = 0 })
      t:integer("version", { nullable = false, default = 0 })
      t:datetime("created_at", { precision = 6 })
      t:datetime("updated_at", { precision = 6 })
      t:datetime("deleted_at", { precision = 6 })
    end, { force = true })
    ar.schema.create_table(db, "shop_orders", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("user_id", { nullable = false, index = true })
      t:string("status", { size = 20, nullable = false })
      t:decimal("total", { precision = 12, scale = 2, nullable = false, default = "0.00" })
      t:integer("version", { nullable = false, default = 0 })
      t:datetime("created_at", { precision = 6 })
      t:datetime("updated_at", { precision = 6 })
    end, { force = true })
    ar.schema.create_table(db, "shop_order_items", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("order_id", { nullable = false, index = true })
      t:bigint("product_id", { nullable = false, index = true })
      t:integer("quantity", { nullable = false })
      t:decimal("unit_price", { precision = 10, scale = 2, nullable = false })
    end, { force = true })

    User = ar.Model{ name = "ShopCustomer", table = "users", backend = db,
      fields = { id = "integer", name = { type = "string", required = true }, email = "string" },
      relations = { orders = ar.has_many("ShopOrder", { foreign_key = "user_id", inverse_of = "customer",
                                                        order_by = "id", dependent = "restrict" }) } }
    Product = ar.Model{ name = "ShopProduct", table = "shop_products", backend = db,
      mixins = { "timestamps", "soft_delete", "optimistic_lock" },
      fields = { id = "integer", name = { type = "string", required = true },
                 price = { type = "decimal", precision = 10, scale = 2, required = true },
                 stock = { type = "integer", min = 0 } } }
    Order = ar.Model{ name = "ShopOrder", table = "shop_orders", backend = db,
      mixins = { "timestamps", "optimistic_lock" },
      fields = { id = "integer", user_id = "integer", status = { type = "string", required = true },
                 total = { type = "decimal", precision = 12, scale = 2 } },
      relations = {
        customer = ar.belongs_to("ShopCustomer", { foreign_key = "user_id" }),
        items = ar.has_many("ShopItem", { foreign_key = "order_id", inverse_of = "order", order_by = "id",
                                          dependent = "delete" }),
      } }
    Item = ar.Model{ name = "ShopItem", table = "shop_order_items", backend = db,
      fields = { id = "integer", order_id = "integer", product_id = "integer", quantity = "integer",
                 unit_price = { type = "decimal", precision = 10, scale = 2 } },
      relations = {
        order = ar.belongs_to("ShopOrder", { foreign_key = "order_id" }),
        product = ar.belongs_to("ShopProduct", { foreign_key = "product_id" }),
      } }
  end)

  teardown(function()
    for _, t in ipairs(TABLES) do ar.schema.drop_table(db, t, { if_exists = true }) end
    provider.teardown(GROUP, scenario)
  end)

  local catalogue -- name -> product
  before_each(function()
    for _, t in ipairs(TABLES) do db:execute("DELETE FROM " .. t) end
    db:execute("DELETE FROM users")
    ann = User:create{ name = "Ann", email = "ann@shop.test" }
    bob = User:create{ name = "Bob", email = "bob@shop.test" }
    catalogue = {}
    local res = Product:insert_all({
      { name = "kettle", price = "24.90", stock = 5 },
      { name = "teapot", price = "18.00", stock = 1 },
      { name = "mug", price = "6.50", stock = 40 },
    })
    for _, p in ipairs(res.records) do catalogue[p.name] = Product:find(p.id) end
  end)

  it("checks out: order, items, total and stock written together", function()
    local order = checkout(ann, { { product = catalogue.kettle, quantity = 1 },
                                  { product = catalogue.mug, quantity = 4 } })
    assert.are.equal("50.90", Order:find(order.id).total)
    assert.are.equal(4, stock_of(catalogue.kettle.id))
    assert.are.equal(36, stock_of(catalogue.mug.id))
    local fresh = Order:find(order.id)
    assert.are.equal(1, fresh.version) -- created, then the total was set once
    assert.are.equal(2, #fresh:items())
    assert.are.equal("Ann", fresh:customer().name)
    for _, item in ipairs(fresh:items()) do
      assert.is_true(rawequal(fresh, item:order()))
      assert.are.equal(item.unit_price, item:product().price)
    end
    assert.is_true(fresh.updated_at >= fresh.created_at)
  end)

  it("lets only one of two clerks sell the last teapot; the other's checkout leaves nothing", function()
    local clerk1 = Product:find(catalogue.teapot.id)
    local clerk2 = Product:find(catalogue.teapot.id)
    checkout(ann, { { product = clerk1, quantity = 1 } })
    local orders_before, items_before = count_of("shop_orders"), count_of("shop_order_items")
    -- clerk 2's screen still says 1 in stock; the mug line is written first
    local err = testsuite.error_of(checkout, bob, { { product = Product:find(catalogue.mug.id), quantity = 2 },
                                                     { product = clerk2, quantity = 1 } })
    assert.is_true(ar.errors.is(err, "StaleObjectError"), tostring(err))
    assert.are.equal(orders_before, count_of("shop_orders"))
    assert.are.equal(items_before, count_of("shop_order_items"))
    assert.are.equal(0, stock_of(catalogue.teapot.id))
    assert.are.equal(40, stock_of(catalogue.mug.id)) -- the mug line was rolled back
    assert.are.same({}, User:find(bob.id):orders())
    -- reloaded, clerk 2 sees the truth and the shop's rule refuses the sale
    clerk2:reload()
    err = testsuite.error_of(checkout, bob, { { product = clerk2, quantity = 1 } })
    assert.are.same({ out_of_stock = "teapot" }, err)
    assert.are.equal(orders_before, count_of("shop_orders"))
  end)

  it("keeps stock from going negative through validation", function()
    local p = catalogue.teapot
    p.stock = -1
    local err = testsuite.error_of(p.save, p)
    assert.is_true(ar.errors.is(err, "ValidationError"), tostring(err))
    assert.are.equal(1, stock_of(p.id))
  end)

  it("takes discontinued products off the catalogue, not off past invoices", function()
    local order = checkout(ann, { { product = catalogue.teapot, quantity = 1 } })
    local teapot = Product:find(catalogue.teapot.id)
    teapot:delete()
    local on_sale = {}
    for i, p in ipairs(Product:query():order_by("name"):all()) do on_sale[i] = p.name end
    assert.are.same({ "kettle", "mug" }, on_sale)
    -- the invoice reads its products including discontinued ones
    local items = Order:find(order.id):items()
    local ids = {}
    for i, item in ipairs(items) do ids[i] = item.product_id end
    local invoiced = Product:with_deleted():where{ id = ids }:all()
    assert.are.equal(1, #invoiced)
    assert.are.equal("teapot", invoiced[1].name)
    assert.is_true(invoiced[1]:is_deleted())
    -- back in the range: restored with its history
    invoiced[1]:restore()
    assert.are.equal("teapot", Product:find(teapot.id).name)
  end)

  it("cancels an order: items deleted with it and stock returned, in one transaction", function()
    local order = checkout(ann, { { product = catalogue.kettle, quantity = 2 },
                                  { product = catalogue.mug, quantity = 10 } })
    db:transaction(function()
      local o = Order:find(order.id)
      for _, item in ipairs(o:items()) do
        local p = item:product()
        p.stock = p.stock + item.quantity
        p:save()
      end
      o:delete()
    end)
    assert.is_nil(Order:find(order.id))
    assert.are.equal(0, count_of("shop_order_items"))
    assert.are.equal(5, stock_of(catalogue.kettle.id))
    assert.are.equal(40, stock_of(catalogue.mug.id))
  end)

  it("refuses to delete a customer who has orders", function()
    checkout(bob, { { product = catalogue.mug, quantity = 1 } })
    local err = testsuite.error_of(function() return User:find(bob.id):delete() end)
    assert.is_true(ar.errors.is(err, "IntegrityError"), tostring(err))
    assert.is_not_nil(User:find(bob.id))
  end)

  it("builds the sales report with one statement per level", function()
    checkout(ann, { { product = catalogue.kettle, quantity = 1 }, { product = catalogue.mug, quantity = 2 } })
    checkout(ann, { { product = Product:find(catalogue.mug.id), quantity = 1 } })
    checkout(bob, { { product = catalogue.teapot, quantity = 1 } })
    -- Bob's order is paid; Ann's first one too
    for _, o in ipairs(Order:query():order_by("id"):all()) do
      if o.user_id == bob.id or o.id == Order:query():order_by("id"):first().id then o:update{ status = "paid" } end
    end
    local report = {}
    local n = testsuite.count_statements(db, function()
      local customers = User:query()
        :with({ "orders", function(q) return q:where{ status = "paid" } end }, "orders.items", "orders.items.product")
        :order_by("name"):all()
      for _, c in ipairs(customers) do
        local revenue, lines = 0, {}
        for _, o in ipairs(c:orders()) do
          for _, item in ipairs(o:items()) do
            revenue = revenue + cents(item.unit_price) * item.quantity
            lines[#lines + 1] = ("%dx %s"):format(item.quantity, item:product().name)
          end
        end
        report[#report + 1] = ("%s: %s (%s)"):format(c.name, money(revenue), table.concat(lines, ", "))
      end
    end)
    assert.are.equal(4, n)
    assert.are.same({ "Ann: 37.90 (1x kettle, 2x mug)", "Bob: 18.00 (1x teapot)" }, report)
  end)

  it("stamps updated_at on a status change and never moves created_at", function()
    local order = checkout(ann, { { product = catalogue.mug, quantity = 1 } })
    local o = Order:find(order.id)
    local created, updated = o.created_at, o.updated_at
    testsuite.sleep(0.002)
    o:update{ status = "shipped" }
    local again = Order:find(order.id)
    assert.are.equal(created, again.created_at)
    assert.is_true(again.updated_at > updated)
    assert.are.equal(2, again.version)
  end)
end)

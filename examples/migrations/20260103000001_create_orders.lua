-- Migration 3: orders, with a foreign key to products, a total the server
-- computes (a stored generated column) and an ON UPDATE timestamp. Written
-- as up/down to show that form.
local ar = require("activerecord")

return {
  up = function(m)
    m:create_table("evo_orders", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:bigint("product_id", { nullable = false })
      t:integer("quantity", { nullable = false, default = 1 })
      t:decimal("unit_price", { precision = 10, scale = 2, nullable = false })
      t:decimal("total", { precision = 12, scale = 2,
                           generated = { expr = ar.raw("quantity * unit_price"), stored = true } })
      t:datetime("updated_at", { precision = 6, nullable = false,
                                 default = ar.raw("CURRENT_TIMESTAMP(6)"),
                                 on_update = ar.raw("CURRENT_TIMESTAMP(6)") })
    end)
    m:add_foreign_key("evo_orders", "product_id", "evo_products", { on_delete = "cascade" })
  end,
  down = function(m)
    m:drop_table("evo_orders")
  end,
}

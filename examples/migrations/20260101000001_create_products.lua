-- Migration 1 of examples/schema_evolution.lua: the products table.
-- `change` is reversible: rolling back drops the table.
local ar = require("activerecord")

return {
  change = function(m)
    m:create_table("evo_products", function(t)
      t:bigint("id", { primary_key = true, auto_increment = true })
      t:string("name", { size = 100, nullable = false })
      t:datetime("created_at", { precision = 6, nullable = false,
                                 default = ar.raw("CURRENT_TIMESTAMP(6)") })
    end)
  end,
}

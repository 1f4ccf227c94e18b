-- Migration 2: prices (exact, two decimals), stock, and unique names, on
-- a table that already holds rows: no drop, the rows stay.
return {
  change = function(m)
    m:add_column("evo_products", "price", "decimal",
      { precision = 10, scale = 2, nullable = false, default = "0.00" })
    m:add_column("evo_products", "stock", "integer", { nullable = false, default = 0 })
    m:add_index("evo_products", "name", { unique = true })
  end,
}

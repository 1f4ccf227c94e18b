-- Scenarios of the MySQL provider: each runs the shared suite against the
-- same server with other session settings and table options. The first is
-- the default. `connect`: extra ar.connect options; `table_options`: schema
-- DSL table options applied to every fixture table.
return {
  { name = "default", connect = {}, table_options = {} },
  {
    name = "strict_bin",
    connect = { sql_mode = "STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES" },
    table_options = { charset = "utf8mb4", collate = "utf8mb4_bin" },
  },
}

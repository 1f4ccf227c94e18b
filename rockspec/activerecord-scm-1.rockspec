-- Local builds: luarocks make --deps-mode=none rockspec/activerecord-scm-1.rockspec
-- (run from the repository root; see scripts/rock-check.sh).
rockspec_format = "3.0"
package = "activerecord"
version = "scm-1"

source = {
   -- Placeholder: `luarocks make` builds the current checkout.
   url = "git+file://.",
}

description = {
   license = "MIT",
   summary = "ActiveRecord-style ORM for Lua 5.4 with a C core on MariaDB Connector/C",
   detailed = [[
Models, queries, associations and migrations in Lua; the MySQL/MariaDB
backend is a C module (activerecord.backend.mysql.core) linked against
MariaDB Connector/C (libmariadb) or Oracle's libmysqlclient.
]],
}

-- Installed here with --deps-mode=none: lua-cjson and busted come from
-- Debian's packages (lua-cjson, lua-busted). Elsewhere `luarocks install`
-- resolves them from the rock server.
dependencies = {
   "lua >= 5.4",
   "lua-cjson >= 2.1",
}

test_dependencies = {
   "busted >= 2.0",
}

-- No external_dependencies on purpose: luarocks (3.8 at least) only accepts
-- a single header/library name there, and no single pair matches both
-- MariaDB Connector/C (include/mariadb/mysql.h, libmariadb) and Oracle
-- (include/mysql/mysql.h, libmysqlclient); even header "mysql.h" fails on
-- Debian, where it lives in include/mariadb/. The Makefile finds the client
-- library itself via mariadb_config, mysql_config or pkg-config.
-- What `make install` copies (README "Installing the rock"): every module
-- under lua/activerecord/ -- the library, the MySQL backend, its C core and
-- activerecord.testsuite (the provider interface and the shared specs a
-- third-party backend runs) -- and bin/ar-migrate. Nothing from spec/,
-- examples/, bench/ or test/.
build = {
   type = "make",
   build_target = "all",
   install_target = "install",
   -- Passed to both the build and the install pass, so `make install`
   -- never rebuilds with different settings.
   variables = {
      CFLAGS = "$(CFLAGS)",
      LIBFLAG = "$(LIBFLAG)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LUA = "$(LUA)",
   },
   -- Not LUA_LIBDIR: luarocks leaves it unset for "make" builds (it warns
   -- "unmatched variable" and passes ""), and Linux modules must not link
   -- liblua anyway.
   install_variables = {
      -- C module goes to INST_LIBDIR/activerecord/backend/mysql/core.so,
      -- Lua modules to INST_LUADIR/activerecord/...
      INST_PREFIX = "$(PREFIX)",
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
      INST_BINDIR = "$(BINDIR)",
      INST_CONFDIR = "$(CONFDIR)",
   },
}

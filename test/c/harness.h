/*
 * harness.h - shared by the C harnesses in test/c (not part of the core).
 *
 * The core is linked in as objects (built with the sanitizer under test),
 * so its entry point is called directly instead of through require's dlopen.
 */
#ifndef AR_TEST_HARNESS_H
#define AR_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#define AR_CORE_MODULE "activerecord.backend.mysql.core"
int luaopen_activerecord_backend_mysql_core(lua_State *L);

/* Pushes the connect options of the test server (AR_MYSQL_* as written by
 * scripts/mariadb-server.sh). TCP on loopback unless only a socket is set. */
static inline void ar_test_push_options(lua_State *L) {
  static const char *const keys[][2] = {
      {"AR_MYSQL_HOST", "host"},         {"AR_MYSQL_USER", "user"},
      {"AR_MYSQL_PASSWORD", "password"}, {"AR_MYSQL_DATABASE", "database"},
  };
  lua_newtable(L);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const char *v = getenv(keys[i][0]);
    if (v) {
      lua_pushstring(L, v);
      lua_setfield(L, -2, keys[i][1]);
    }
  }
  const char *port = getenv("AR_MYSQL_PORT");
  if (port) {
    lua_pushinteger(L, atoi(port));
    lua_setfield(L, -2, "port");
  }
  const char *sock = getenv("AR_MYSQL_SOCKET");
  if (sock && !getenv("AR_MYSQL_HOST")) {
    lua_pushstring(L, sock);
    lua_setfield(L, -2, "socket");
  }
}

static inline int ar_test_need_server(const char *prog) {
  if (!getenv("AR_MYSQL_HOST") && !getenv("AR_MYSQL_SOCKET")) {
    fprintf(stderr, "%s: no test server (set AR_MYSQL_*, or run through "
                    "scripts/with-test-server.sh)\n", prog);
    return 0;
  }
  return 1;
}

/* Message of the error value on top of the stack (error objects have a
 * `message` field; memory errors are plain strings). */
static inline const char *ar_test_errmsg(lua_State *L) {
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "message");
    const char *m = lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by the error table */
    return m ? m : "(error object without message)";
  }
  const char *m = lua_tostring(L, -1);
  return m ? m : "(non-string error)";
}

#endif

/* fuzz_version.c - the server version parser (capabilities.c:
 * ar_parse_version) and what is built from its result
 * (ar_push_capabilities, core.capabilities_for). */
#include "fuzz_common.h"

static int capabilities(lua_State *L) {
  const char *s = (const char *)lua_touserdata(L, 1);
  int major = 0, minor = 0, patch = 0;
  const char *flavor = "mysql";
  if (ar_parse_version(s, &major, &minor, &patch, &flavor)) {
    if (strcmp(flavor, "mysql") != 0 && strcmp(flavor, "mariadb") != 0) abort();
    ar_push_capabilities(L, flavor, major, minor, patch);
    lua_pop(L, 1);
  }
  /* the Lua entry point, both flavors */
  lua_settop(L, 1);
  lua_pushcfunction(L, ar_capabilities_for);
  lua_pushstring(L, flavor);
  lua_pushstring(L, s);
  lua_call(L, 2, 1);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  char *s = fuzz_cstring(data, size);
  int top = lua_gettop(L);
  lua_pushcfunction(L, capabilities);
  lua_pushlightuserdata(L, s);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fuzz_check_error(L, "ConfigError");
  if (lua_gettop(L) != top + 1) abort();
  lua_settop(L, top);
  lua_close(L);
  free(s);
  return 0;
}

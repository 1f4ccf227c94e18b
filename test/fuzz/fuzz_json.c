/* fuzz_json.c - the JSON decoder (json.c: ar_push_json, core.json_decode)
 * on arbitrary bytes. The input is decoded in place (not copied into a Lua
 * string, whose terminator would hide over-reads). Must either push exactly
 * one value or raise a DataError; the stack must be balanced. */
#include "fuzz_common.h"

static int decode(lua_State *L) {
  const char *p = (const char *)lua_touserdata(L, 1);
  size_t n = (size_t)lua_tointeger(L, 2);
  ar_push_json(L, p, n, 0);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_state();
  int top = lua_gettop(L);
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) fuzz_check_error(L, "DataError");
  if (lua_gettop(L) != top + 1) abort();
  lua_settop(L, top);
  lua_close(L);
  return 0;
}

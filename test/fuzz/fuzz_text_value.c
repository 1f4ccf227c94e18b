/* fuzz_text_value.c - text-protocol values (convert.c: ar_push_text_value):
 * integers, BIT bytes, floats, DECIMAL text, JSON and strings as a server
 * sends them for commands that cannot be prepared. The value is a
 * NUL-terminated copy of exactly its length, like Connector/C's rows. */
#include "fuzz_common.h"

static const enum enum_field_types types[] = {
    MYSQL_TYPE_TINY,   MYSQL_TYPE_LONGLONG,   MYSQL_TYPE_YEAR,     MYSQL_TYPE_BIT,
    MYSQL_TYPE_FLOAT,  MYSQL_TYPE_DOUBLE,     MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_DATETIME,
    MYSQL_TYPE_TIME,   MYSQL_TYPE_JSON,       MYSQL_TYPE_BLOB,     MYSQL_TYPE_VAR_STRING};

static int push(lua_State *L) {
  const MYSQL_FIELD *f = (const MYSQL_FIELD *)lua_touserdata(L, 1);
  const char *v = (const char *)lua_touserdata(L, 2);
  ar_push_text_value(L, f, v, (unsigned long)lua_tointeger(L, 3), lua_toboolean(L, 4), 0);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  MYSQL_FIELD f;
  memset(&f, 0, sizeof f);
  f.type = types[(data[0] & 0x0f) % (sizeof types / sizeof types[0])];
  if (data[0] & 0x10) f.flags |= UNSIGNED_FLAG;
  f.charsetnr = (data[0] & 0x20) ? 63 : 45;
  int decimal_as_number = (data[0] & 0x40) != 0;
  if (f.type == MYSQL_TYPE_BIT && size - 1 > 8) return 0; /* BIT(64) at most */
  char *v = fuzz_cstring(data + 1, size - 1);

  lua_State *L = fuzz_state();
  int top = lua_gettop(L);
  lua_pushcfunction(L, push);
  lua_pushlightuserdata(L, &f);
  lua_pushlightuserdata(L, v);
  lua_pushinteger(L, (lua_Integer)(size - 1));
  lua_pushboolean(L, decimal_as_number);
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) fuzz_check_error(L, "DataError");
  if (lua_gettop(L) != top + 1) abort();
  lua_settop(L, top);
  lua_close(L);
  free(v);
  return 0;
}

/*
 * json_hash.c - the structural hash of a Lua value as JSON sees it.
 *
 * core.json_hash(value) -> integer: a 64-bit hash of a value as JSON sees
 * it, without building any text: tables hash as the sum of their (key,
 * value) pairs (so key order does not matter), numbers by value (1 and 1.0
 * alike), a json_array-marked table apart from a plain one (`[]` vs `{}`).
 * The model layer keeps it for a loaded JSON table when it is first handed
 * out and compares it at save time, which is how a change made in place is
 * seen; a hash costs a fraction of an encoding and allocates nothing. The
 * decoder computes the same hash while it parses (execute_json_hashes). Two
 * different values share a hash with a chance of about 2^-64, the odds of
 * an in-place change going unseen. A value JSON cannot hold (or nesting past
 * the limit) gives false.
 */
#include "json.h"

/* returns 0 when the value cannot be JSON */
int ar_json_hash_value(lua_State *L, int idx, int mt_idx, int depth, uint64_t *out) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      *out = hash_string(L, idx);
      return 1;
    case LUA_TNUMBER:
      return hash_number(L, idx, out);
    case LUA_TBOOLEAN:
      *out = lua_toboolean(L, idx) ? HASH_TRUE : HASH_FALSE;
      return 1;
    case LUA_TNIL:
      *out = HASH_NULL;
      return 1;
    case LUA_TLIGHTUSERDATA:
    case LUA_TUSERDATA:
      if (!ar_is_null(L, idx)) return 0;
      *out = HASH_NULL; /* ar.null */
      return 1;
    case LUA_TTABLE: {
      if (depth >= MAX_DEPTH) return 0; /* a cycle, most likely */
      if (!lua_checkstack(L, 4)) return 0;
      uint64_t h = HASH_OBJECT;
      if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, mt_idx)) h = HASH_ARRAY;
        lua_pop(L, 1);
      }
      uint64_t sum = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) { /* key, value */
        uint64_t hk, hv;
        int top = lua_gettop(L);
        if (!ar_json_hash_value(L, top - 1, mt_idx, depth + 1, &hk) ||
            !ar_json_hash_value(L, top, mt_idx, depth + 1, &hv)) {
          lua_pop(L, 2);
          return 0;
        }
        sum += hash_pair(hk, hv);
        lua_pop(L, 1);
      }
      *out = mix64(h ^ sum);
      return 1;
    }
    default:
      return 0;
  }
}

int ar_json_hash(lua_State *L) {
  uint64_t h;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  if (!ar_json_hash_value(L, 1, lua_upvalueindex(1), 0, &h)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)h);
  return 1;
}

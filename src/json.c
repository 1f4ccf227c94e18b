/*
 * json.c - JSON for the core: the encoder, array marking, and installing
 * them with the decoder (json_decode.c) and the hash (json_hash.c) into the
 * core and into activerecord.json.
 *
 * Why not lua-cjson here: decoding JSON columns is the hot path of a large
 * fetch, and cjson costs a Lua call, a heap buffer and a strtod per number
 * for every value. This decoder builds tables directly from the column
 * buffer, keeps integers as Lua integers (cjson makes every number a float),
 * and maps JSON null to the library's null sentinel (activerecord.null,
 * adopted at luaopen: lua-cjson's null), so values compare the same either way.
 *
 * Arrays: every decoded JSON array gets one shared metatable (json.array_mt,
 * defined by the neutral module activerecord.json and adopted here;
 * `ar.json_array(t)` sets it), and the encoder writes a table carrying it as
 * an array even when it is empty, so `[]` survives a round trip. Otherwise a
 * table with keys 1..n (n >= 1) is an array and an empty plain table `{}` is
 * an object.
 *
 * Encoding (not lua-cjson either): integers exactly (cjson 2.1 prints 14
 * significant digits, so 1234567890123456789 came back 1.2345678901235e+18),
 * floats in the shortest form that reads back as the same double, NaN and
 * infinities refused, cycles caught by the depth limit.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

const char ar_json_array_key = 'A';

/* ---- encoding -------------------------------------------------------- */

#define MAX_PATH 32       /* levels named in an error message */
#define KEEP_BUFFER 65536 /* a larger scratch buffer is freed after use */

/* The scratch buffer, one per Lua state (an upvalue of json_encode), reused
 * by every call: an encode allocates nothing but the result string. */
typedef struct {
  char *p;
  size_t len, cap;
} json_buf;

typedef struct {
  lua_State *L;
  json_buf *b;
  int mt_idx;   /* the array metatable */
  int depth;
  char point;   /* the locale's decimal point, for printf'd floats */
  struct {      /* where we are, for error messages */
    const char *key; /* NULL: an array index */
    lua_Integer index;
  } path[MAX_PATH];
} json_enc;

static void jbuf_gc_buffer(json_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int jbuf_gc(lua_State *L) {
  jbuf_gc_buffer((json_buf *)lua_touserdata(L, 1));
  return 0;
}

static _Noreturn void no_memory(lua_State *L) {
  luaL_error(L, "not enough memory");
  abort(); /* not reached: luaL_error does not return */
}

static char *reserve(json_enc *e, size_t n) {
  json_buf *b = e->b;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
      if (cap > ((size_t)-1) / 2) no_memory(e->L);
      cap *= 2;
    }
    char *np = (char *)realloc(b->p, cap);
    if (!np) no_memory(e->L);
    b->p = np;
    b->cap = cap;
  }
  return b->p + b->len;
}

static void put(json_enc *e, const char *s, size_t n) {
  memcpy(reserve(e, n), s, n);
  e->b->len += n;
}

/* "$.a.b[2]" for the error message, from the path kept while descending. */
static int enc_fail(json_enc *e, const char *fmt, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '$');
  int n = e->depth < MAX_PATH ? e->depth : MAX_PATH;
  for (int i = 0; i < n; i++) {
    if (e->path[i].key) {
      luaL_addchar(&b, '.');
      luaL_addstring(&b, e->path[i].key);
    } else {
      char num[32];
      snprintf(num, sizeof num, "[%lld]", (long long)e->path[i].index);
      luaL_addstring(&b, num);
    }
  }
  if (e->depth > MAX_PATH) luaL_addstring(&b, "...");
  luaL_pushresult(&b);
  char msg[160];
  snprintf(msg, sizeof msg, fmt, what);
  return ar_raisef(L, "DataError", "cannot encode as JSON: %s at %.300s", msg,
                   lua_tostring(L, -1));
}

/* Bytes that must be escaped in a JSON string: ", \ and the controls. */
static const char escape_of[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0,   0,   '"', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '\\', 0,   0,   0,
};

static void enc_string(json_enc *e, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  /* worst case: every byte becomes \u00XX */
  char *out = reserve(e, n * 6 + 2), *o = out;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    char esc = escape_of[ch];
    if (!esc) {
      *o++ = (char)ch;
    } else if (esc != 'u') {
      *o++ = '\\';
      *o++ = esc;
    } else {
      o[0] = '\\';
      o[1] = 'u';
      o[2] = '0';
      o[3] = '0';
      o[4] = hex[ch >> 4];
      o[5] = hex[ch & 15];
      o += 6;
    }
  }
  *o++ = '"';
  e->b->len += (size_t)(o - out);
}

static void enc_integer(json_enc *e, lua_Integer v) {
  char tmp[24], *p = tmp + sizeof tmp;
  /* through unsigned: -LLONG_MIN overflows a signed negation */
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  put(e, p, (size_t)(tmp + sizeof tmp - p));
}

/* The shortest of 15, 16, 17 significant digits that reads back as the same
 * double; written with a '.' or an exponent so it reads back as a float. */
static void enc_float(json_enc *e, double d) {
  char tmp[40];
  int n = 0;
  if (isnan(d) || isinf(d))
    enc_fail(e, "%s is not a JSON number", isnan(d) ? "NaN" : "an infinite number");
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp - 2, "%.*g", prec, d);
    if (prec == 17 || strtod(tmp, NULL) == d) break;
  }
  int has_point = 0;
  for (int i = 0; i < n; i++) {
    if (tmp[i] == e->point) tmp[i] = '.';
    if (tmp[i] == '.' || tmp[i] == 'e') has_point = 1;
  }
  if (!has_point) {
    tmp[n++] = '.';
    tmp[n++] = '0';
  }
  put(e, tmp, (size_t)n);
}

static void enc_value(json_enc *e, int idx);

/* Array when it carries the array metatable or all its keys are 1..n;
 * returns n, or -1 for an object. Raises on keys JSON cannot hold. */
static lua_Integer table_shape(json_enc *e, int idx) {
  lua_State *L = e->L;
  int declared = 0;
  if (lua_getmetatable(L, idx)) {
    declared = lua_rawequal(L, -1, e->mt_idx);
    if (!declared) {
      /* dkjson's marker, so tables made for it encode the same */
      lua_pushliteral(L, "__jsontype");
      lua_rawget(L, -2);
      if (lua_type(L, -1) == LUA_TSTRING) {
        const char *t = lua_tostring(L, -1);
        if (strcmp(t, "array") == 0) declared = 1;
        else if (strcmp(t, "object") == 0) declared = -1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_Integer max = 0, count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* key */
    if (lua_type(L, -1) == LUA_TSTRING) {
      if (declared == 1 || count > 0) {
        lua_pop(L, 1);
        enc_fail(e, "%s", declared == 1 ? "a json_array with a string key"
                                          : "a table with both integer and string keys");
      }
      lua_pop(L, 1);
      return -1; /* object: its other keys are checked as it is written */
    }
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      enc_fail(e, "%s", "a key that is neither a string nor a positive integer");
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max) max = k;
    count++;
  }
  if (count == 0) return declared == 1 ? 0 : -1; /* {} is an object */
  if (declared == -1) enc_fail(e, "%s", "an object (__jsontype) with integer keys");
  /* holes become null, as lua-cjson does, unless the array is mostly holes */
  if (max > count * 2 && max > 10) enc_fail(e, "%s", "an excessively sparse array");
  return max;
}

static void enc_table(json_enc *e, int idx) {
  lua_State *L = e->L;
  if (e->depth >= MAX_DEPTH) enc_fail(e, "%s", "nesting deeper than 512 levels (a cycle?)");
  luaL_checkstack(L, 6, "JSON nested too deeply");
  lua_Integer n = table_shape(e, idx);
  int level = e->depth++;
  if (n >= 0) {
    put(e, "[", 1);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) put(e, ",", 1);
      if (level < MAX_PATH) {
        e->path[level].key = NULL;
        e->path[level].index = i;
      }
      lua_rawgeti(L, idx, i);
      enc_value(e, lua_gettop(L));
      lua_pop(L, 1);
    }
    put(e, "]", 1);
  } else {
    int first = 1;
    put(e, "{", 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key, value */
      if (lua_type(L, -2) != LUA_TSTRING)
        enc_fail(e, "%s", lua_isinteger(L, -2) ? "a table with both integer and string keys"
                                               : "a key that is neither a string nor a positive integer");
      size_t kn;
      const char *k = lua_tolstring(L, -2, &kn);
      if (!first) put(e, ",", 1);
      first = 0;
      enc_string(e, k, kn);
      put(e, ":", 1);
      if (level < MAX_PATH) e->path[level].key = k; /* alive: the key is on the stack */
      enc_value(e, lua_gettop(L));
      lua_pop(L, 1);
    }
    put(e, "}", 1);
  }
  e->depth--;
}

static void enc_value(json_enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      enc_string(e, s, n);
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) enc_integer(e, lua_tointeger(L, idx));
      else enc_float(e, (double)lua_tonumber(L, idx));
      break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) put(e, "true", 4);
      else put(e, "false", 5);
      break;
    case LUA_TNIL:
      put(e, "null", 4);
      break;
    case LUA_TLIGHTUSERDATA:
      if (ar_is_null(L, idx)) { /* ar.null, cjson.null */
        put(e, "null", 4);
        break;
      }
      enc_fail(e, "a %s value", "light userdata");
      break;
    case LUA_TTABLE:
      enc_table(e, idx);
      break;
    default:
      if (ar_is_null(L, idx)) put(e, "null", 4);
      else enc_fail(e, "a %s value", luaL_typename(L, idx));
  }
}

/* core.json_encode(value) -> JSON text; raises DataError for what JSON
 * cannot hold (functions, userdata, NaN, infinities, mixed or non-string
 * keys, cycles). Upvalues: the scratch buffer, the array metatable. */
static int json_encode(lua_State *L) {
  json_enc e;
  if (lua_isnone(L, 1)) return ar_raisef(L, "DataError", "json_encode expects a value");
  lua_settop(L, 1);
  e.L = L;
  e.b = (json_buf *)lua_touserdata(L, lua_upvalueindex(1));
  e.mt_idx = lua_upvalueindex(2);
  e.depth = 0;
  memset(e.path, 0, sizeof e.path);
  e.point = localeconv()->decimal_point[0];
  e.b->len = 0;
  enc_value(&e, 1);
  lua_pushlstring(L, e.b->p, e.b->len);
  if (e.b->cap > KEEP_BUFFER) jbuf_gc_buffer(e.b);
  return 1;
}

/* core.json_array([t]) -> t marked as a JSON array (a new table without t). */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else if (!lua_istable(L, 1)) {
    return ar_raisef(L, "DataError", "json_array expects a table, got %s", luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

/* Sets `c` (a C function with `nup` upvalues on the stack top) as `core_name`
 * on the core (at `core_idx`) and as `name` on activerecord.json (at
 * `json_idx`); pops the upvalues. */
static void install(lua_State *L, lua_CFunction c, int nup, int core_idx, int json_idx,
                    const char *core_name, const char *name) {
  lua_pushcclosure(L, c, nup);
  lua_pushvalue(L, -1);
  lua_setfield(L, core_idx, core_name);
  lua_setfield(L, json_idx, name);
}

/* With the core module at -2 and activerecord.json at -1: adopts
 * json.array_mt (the neutral side defines it, so tables marked before the
 * core loaded stay marked) and installs this file's encoder, decoder,
 * structural hash and array marking into both tables. */
void ar_json_open(lua_State *L) {
  int json_idx = lua_absindex(L, -1), core_idx = lua_absindex(L, -2);
  lua_getfield(L, json_idx, "array_mt");
  if (!lua_istable(L, -1)) luaL_error(L, "activerecord.json has no array_mt table");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ar_json_array_key);
  lua_pushvalue(L, -1);
  lua_setfield(L, core_idx, "json_array_mt"); /* mt */
  lua_pushvalue(L, -1);
  install(L, json_array, 1, core_idx, json_idx, "json_array", "array");
  lua_pushvalue(L, -1);
  install(L, ar_json_hash, 1, core_idx, json_idx, "json_hash", "hash");
  json_buf *b = (json_buf *)lua_newuserdatauv(L, sizeof *b, 0); /* mt, buf */
  memset(b, 0, sizeof *b);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, jbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_insert(L, -2); /* buf, mt */
  install(L, json_encode, 2, core_idx, json_idx, "json_encode", "encode");
  lua_pushcfunction(L, ar_json_decode);
  lua_pushvalue(L, -1);
  lua_setfield(L, core_idx, "json_decode");
  lua_setfield(L, json_idx, "decode");
}

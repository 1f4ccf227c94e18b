/*
 * json.c - JSON text <-> Lua values, straight from/to the Lua stack.
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

#include "ar.h"

#define MAX_DEPTH 512

/* The address is the registry key of the array metatable. */
static const char json_array_key = 'A';

/* ---- structural hash ---------------------------------------------------
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
 * the limit) gives false. */

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* Eight bytes per step (loaded with memcpy: no alignment assumed), each
 * word mixed in by a multiply and a rotation; the length goes in last. */
static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    h = (h ^ (w * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
    h = (h << 29) | (h >> 35);
  }
  uint64_t w = 0;
  for (size_t k = 0; i < n; i++, k += 8) w |= (uint64_t)(unsigned char)s[i] << k;
  return mix64(h ^ (w * 0xff51afd7ed558ccdULL));
}

#define HASH_STRING 0x5354524eULL
#define HASH_INT 0x494e5447ULL
#define HASH_FLOAT 0x464c4f41ULL
#define HASH_TRUE 0x54525545ULL
#define HASH_FALSE 0x46414c53ULL
#define HASH_NULL 0x4e554c4cULL
#define HASH_OBJECT 0x5441424cULL
#define HASH_ARRAY 0x41525259ULL

/* One (key, value) pair of a table: summed, so the order does not matter. */
static uint64_t hash_pair(uint64_t hk, uint64_t hv) {
  return mix64(hk * 0x9e3779b97f4a7c15ULL + hv);
}

static uint64_t hash_integer(lua_Integer i) { return mix64((uint64_t)i ^ HASH_INT); }

/* The number on top of the stack: integral values hash as integers. */
static int hash_number(lua_State *L, int idx, uint64_t *out) {
  lua_Integer i;
  if (lua_isinteger(L, idx)) {
    i = lua_tointeger(L, idx);
  } else {
    double d = (double)lua_tonumber(L, idx);
    if (isnan(d) || isinf(d)) return 0;
    if (!lua_numbertointeger(d, &i)) { /* not integral: hash its bits */
      uint64_t bits;
      memcpy(&bits, &d, sizeof bits);
      *out = mix64(bits ^ HASH_FLOAT);
      return 1;
    }
  }
  *out = hash_integer(i);
  return 1;
}

static uint64_t hash_string(lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  return hash_bytes(s, n) ^ HASH_STRING;
}

typedef struct {
  lua_State *L;
  const char *p;
  const char *start;
  const char *end;
  int depth;
  const char *error; /* first error, with its byte offset */
  size_t error_at;
  int hashing;       /* compute `hash` of each value parsed (json_hash's) */
  uint64_t hash;     /* the hash of the value just parsed */
} json_parser;

static int fail(json_parser *jp, const char *why) {
  if (!jp->error) {
    jp->error = why;
    jp->error_at = (size_t)(jp->p - jp->start);
  }
  return 0;
}

static void skip_ws(json_parser *jp) {
  while (jp->p < jp->end &&
         (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\r' || *jp->p == '\t'))
    jp->p++;
}

static int parse_value(json_parser *jp);

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char ch = s[i];
    v <<= 4;
    if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void add_utf8(luaL_Buffer *b, unsigned cp) {
  char out[4];
  int n;
  if (cp < 0x80) { out[0] = (char)cp; n = 1; }
  else if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  luaL_addlstring(b, out, (size_t)n);
}

/* At the opening quote. Strings without escapes (the common case) are pushed
 * in one piece; escapes go through a luaL_Buffer. */
static int parse_string(json_parser *jp) {
  const char *s = ++jp->p;
  while (jp->p < jp->end && *jp->p != '"' && *jp->p != '\\') jp->p++;
  if (jp->p >= jp->end) return fail(jp, "unterminated string");
  if (*jp->p == '"') {
    lua_pushlstring(jp->L, s, (size_t)(jp->p - s));
    if (jp->hashing) jp->hash = hash_bytes(s, (size_t)(jp->p - s)) ^ HASH_STRING;
    jp->p++;
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(jp->L, &b);
  luaL_addlstring(&b, s, (size_t)(jp->p - s));
  while (jp->p < jp->end && *jp->p != '"') {
    if (*jp->p != '\\') {
      luaL_addchar(&b, *jp->p++);
      continue;
    }
    if (++jp->p >= jp->end) break;
    char e = *jp->p++;
    switch (e) {
      case '"': luaL_addchar(&b, '"'); break;
      case '\\': luaL_addchar(&b, '\\'); break;
      case '/': luaL_addchar(&b, '/'); break;
      case 'b': luaL_addchar(&b, '\b'); break;
      case 'f': luaL_addchar(&b, '\f'); break;
      case 'n': luaL_addchar(&b, '\n'); break;
      case 'r': luaL_addchar(&b, '\r'); break;
      case 't': luaL_addchar(&b, '\t'); break;
      case 'u': {
        unsigned cp, lo;
        if (jp->end - jp->p < 4 || !hex4(jp->p, &cp)) return fail(jp, "bad \\u escape");
        jp->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && jp->end - jp->p >= 6 && jp->p[0] == '\\' &&
            jp->p[1] == 'u' && hex4(jp->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          jp->p += 6;
        }
        add_utf8(&b, cp);
        break;
      }
      default:
        return fail(jp, "bad escape");
    }
  }
  if (jp->p >= jp->end) return fail(jp, "unterminated string");
  jp->p++;
  luaL_pushresult(&b);
  if (jp->hashing) jp->hash = hash_string(jp->L, -1);
  return 1;
}

/* Integers that fit stay integers; everything else is a float. */
static int parse_number_value(json_parser *jp) {
  const char *s = jp->p;
  int is_float = 0;
  if (jp->p < jp->end && *jp->p == '-') jp->p++;
  if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9') return fail(jp, "bad number");
  while (jp->p < jp->end) {
    char ch = *jp->p;
    if (ch >= '0' && ch <= '9') {
    } else if (ch == '.' || ch == 'e' || ch == 'E' || ch == '+' || ch == '-') {
      is_float = 1;
    } else {
      break;
    }
    jp->p++;
  }
  size_t n = (size_t)(jp->p - s);
  char tmp[64];
  if (n >= sizeof tmp) {
    /* JSON numbers have no length limit: Lua reads a long one (cutting it
     * to fit tmp would change its value). A decimal integer this long is
     * beyond 64 bits, so Lua makes it a float and keeps its magnitude. */
    lua_pushlstring(jp->L, s, n);
    if (lua_stringtonumber(jp->L, lua_tostring(jp->L, -1)) == 0) {
      lua_pop(jp->L, 1);
      return fail(jp, "bad number");
    }
    lua_remove(jp->L, -2);
    return 1;
  }
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  char *endp;
  if (!is_float) {
    errno = 0;
    long long v = strtoll(tmp, &endp, 10);
    if (errno == 0 && *endp == '\0') {
      lua_pushinteger(jp->L, (lua_Integer)v);
      return 1;
    }
  }
  double d = strtod(tmp, &endp);
  if (*endp != '\0') {
    /* strtod follows LC_NUMERIC; Lua's reader copes with a ',' locale */
    if (lua_stringtonumber(jp->L, tmp) == 0) return fail(jp, "bad number");
    return 1;
  }
  lua_pushnumber(jp->L, (lua_Number)d);
  return 1;
}

static int parse_number(json_parser *jp) {
  if (!parse_number_value(jp)) return 0;
  if (jp->hashing && !hash_number(jp->L, -1, &jp->hash)) jp->hash = HASH_NULL;
  return 1;
}

static int literal(json_parser *jp, const char *word, size_t n) {
  if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0)
    return fail(jp, "unexpected token");
  jp->p += n;
  return 1;
}

static int parse_array(json_parser *jp) {
  lua_State *L = jp->L;
  jp->p++;
  lua_createtable(L, 4, 0); /* presized: growing 0->1->2->4 costs three rehashes */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &json_array_key);
  lua_setmetatable(L, -2);
  lua_Integer i = 0;
  uint64_t sum = 0;
  skip_ws(jp);
  if (jp->p < jp->end && *jp->p == ']') {
    jp->p++;
    if (jp->hashing) jp->hash = mix64(HASH_ARRAY ^ sum);
    return 1;
  }
  for (;;) {
    if (!parse_value(jp)) return 0;
    lua_rawseti(L, -2, ++i);
    if (jp->hashing) sum += hash_pair(hash_integer(i), jp->hash);
    skip_ws(jp);
    if (jp->p >= jp->end) return fail(jp, "unterminated array");
    if (*jp->p == ',') { jp->p++; continue; }
    if (*jp->p == ']') {
      jp->p++;
      if (jp->hashing) jp->hash = mix64(HASH_ARRAY ^ sum);
      return 1;
    }
    return fail(jp, "expected , or ]");
  }
}

static int parse_object(json_parser *jp) {
  lua_State *L = jp->L;
  jp->p++;
  lua_createtable(L, 0, 4);
  uint64_t sum = 0;
  skip_ws(jp);
  if (jp->p < jp->end && *jp->p == '}') {
    jp->p++;
    if (jp->hashing) jp->hash = mix64(HASH_OBJECT ^ sum);
    return 1;
  }
  for (;;) {
    skip_ws(jp);
    if (jp->p >= jp->end || *jp->p != '"') return fail(jp, "expected a string key");
    if (!parse_string(jp)) return 0;
    uint64_t hk = jp->hash;
    skip_ws(jp);
    if (jp->p >= jp->end || *jp->p != ':') return fail(jp, "expected :");
    jp->p++;
    if (!parse_value(jp)) return 0;
    lua_rawset(L, -3);
    /* a key given twice counts twice: at worst one needless write */
    if (jp->hashing) sum += hash_pair(hk, jp->hash);
    skip_ws(jp);
    if (jp->p >= jp->end) return fail(jp, "unterminated object");
    if (*jp->p == ',') { jp->p++; continue; }
    if (*jp->p == '}') {
      jp->p++;
      if (jp->hashing) jp->hash = mix64(HASH_OBJECT ^ sum);
      return 1;
    }
    return fail(jp, "expected , or }");
  }
}

static int parse_value(json_parser *jp) {
  skip_ws(jp);
  if (jp->p >= jp->end) return fail(jp, "unexpected end");
  if (jp->depth >= MAX_DEPTH) return fail(jp, "nested too deeply");
  luaL_checkstack(jp->L, 3, "JSON nested too deeply");
  int ok;
  switch (*jp->p) {
    case '{': jp->depth++; ok = parse_object(jp); jp->depth--; return ok;
    case '[': jp->depth++; ok = parse_array(jp); jp->depth--; return ok;
    case '"': return parse_string(jp);
    case 't':
      if (!literal(jp, "true", 4)) return 0;
      lua_pushboolean(jp->L, 1);
      jp->hash = HASH_TRUE;
      return 1;
    case 'f':
      if (!literal(jp, "false", 5)) return 0;
      lua_pushboolean(jp->L, 0);
      jp->hash = HASH_FALSE;
      return 1;
    case 'n':
      if (!literal(jp, "null", 4)) return 0;
      ar_push_null(jp->L);
      jp->hash = HASH_NULL;
      return 1;
    default: return parse_number(jp);
  }
}

/* Pushes the decoded value and returns 1; on malformed text pushes a
 * DataError object instead and returns 0 (the caller finishes whatever it
 * is reading, then raises it). */
int ar_push_json(lua_State *L, const char *v, size_t len, int conn_idx) {
  return ar_push_json_hashed(L, v, len, conn_idx, NULL);
}

/* Like ar_push_json; with `hash`, also stores json_hash of the value. */
int ar_push_json_hashed(lua_State *L, const char *v, size_t len, int conn_idx, uint64_t *hash) {
  (void)conn_idx;
  json_parser jp;
  int top = lua_gettop(L);
  jp.L = L;
  jp.p = jp.start = v;
  jp.end = v + len;
  jp.depth = 0;
  jp.error = NULL;
  jp.error_at = 0;
  jp.hashing = hash != NULL;
  jp.hash = 0;
  if (parse_value(&jp)) {
    skip_ws(&jp);
    if (jp.p == jp.end) {
      if (hash) *hash = jp.hash;
      return 1;
    }
    fail(&jp, "trailing characters");
  }
  lua_settop(L, top);
  char msg[160];
  snprintf(msg, sizeof msg, "invalid JSON in result at byte %zu: %s", jp.error_at, jp.error);
  ar_push_error(L, "DataError", 0, NULL, msg, NULL);
  return 0;
}

/* core.json_decode(text): the same decoder, for the Lua layers and specs. */
int ar_json_decode(lua_State *L) {
  size_t len;
  const char *s = ar_check_text(L, 1, &len, "DataError", "the JSON text");
  if (!ar_push_json(L, s, len, 0)) return lua_error(L);
  return 1;
}

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

/* returns 0 when the value cannot be JSON */
static int hash_value(lua_State *L, int idx, int mt_idx, int depth, uint64_t *out) {
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
        if (!hash_value(L, top - 1, mt_idx, depth + 1, &hk) ||
            !hash_value(L, top, mt_idx, depth + 1, &hv)) {
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

static int json_hash(lua_State *L) {
  uint64_t h;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  if (!hash_value(L, 1, lua_upvalueindex(1), 0, &h)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)h);
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
  lua_rawsetp(L, LUA_REGISTRYINDEX, &json_array_key);
  lua_pushvalue(L, -1);
  lua_setfield(L, core_idx, "json_array_mt"); /* mt */
  lua_pushvalue(L, -1);
  install(L, json_array, 1, core_idx, json_idx, "json_array", "array");
  lua_pushvalue(L, -1);
  install(L, json_hash, 1, core_idx, json_idx, "json_hash", "hash");
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

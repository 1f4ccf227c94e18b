/*
 * json_decode.c - JSON text -> Lua values, straight onto the Lua stack from
 * the column buffer (see json.c for why not lua-cjson): integers stay
 * integers, JSON null is the adopted null sentinel, arrays carry the array
 * metatable; with hashing on, each value's structural hash (json_hash.c) is
 * computed while it is parsed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "json.h"

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

static inline void skip_ws(json_parser *jp) {
  const char *p = jp->p, *end = jp->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  jp->p = p;
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
  const char *s = ++jp->p, *p = s, *end = jp->end; /* locals: a char read may alias jp */
  while (p < end && *p != '"' && *p != '\\') p++;
  jp->p = p;
  if (p >= end) return fail(jp, "unterminated string");
  if (*p == '"') {
    lua_pushlstring(jp->L, s, (size_t)(p - s));
    if (jp->hashing) jp->hash = hash_bytes(s, (size_t)(p - s)) ^ HASH_STRING;
    jp->p = p + 1;
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

/* Integers that fit stay integers; everything else is a float. Up to 18
 * digits an integer cannot overflow: read in place (the common case), and
 * hashed here (returns 2); other numbers return 1, unhashed. */
static int parse_number_value(json_parser *jp) {
  const char *s = jp->p;
  {
    const char *p = s, *end = jp->end;
    int neg = p < end && *p == '-';
    p += neg;
    const char *digits = p;
    long long v = 0;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 18) v = v * 10 + (*p++ - '0');
    /* what follows must not continue the number (else the full reader) */
    if (p > digits && (p == end || !((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' ||
                                     *p == 'E' || *p == '+' || *p == '-'))) {
      lua_Integer i = (lua_Integer)(neg ? -v : v);
      jp->p = p;
      lua_pushinteger(jp->L, i);
      if (jp->hashing) jp->hash = hash_integer(i);
      return 2; /* hashed already */
    }
  }
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
  int r = parse_number_value(jp);
  if (r == 1 && jp->hashing && !hash_number(jp->L, -1, &jp->hash)) jp->hash = HASH_NULL;
  return r != 0;
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
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ar_json_array_key);
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
  int ok;
  switch (*jp->p) {
    case '{':
    case '[':
      if (jp->depth >= MAX_DEPTH) return fail(jp, "nested too deeply");
      /* room for this container, a key and a value (scalars need no more) */
      luaL_checkstack(jp->L, 3, "JSON nested too deeply");
      jp->depth++;
      ok = *jp->p == '{' ? parse_object(jp) : parse_array(jp);
      jp->depth--;
      return ok;
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
  luaL_checkstack(L, 3, "decoding JSON");
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

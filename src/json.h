/*
 * json.h - what the JSON files share (json.c: encoding and installation,
 * json_decode.c: the decoder, json_hash.c: the structural hash): the depth
 * limit, the array metatable's registry key and the hash primitives, which
 * the decoder also uses to hash a value while it parses it.
 */
#ifndef AR_JSON_H
#define AR_JSON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ar.h"

#define MAX_DEPTH 512

/* The address is the registry key of the array metatable (json.c). */
extern const char ar_json_array_key;

static inline uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

/* Eight bytes per step (loaded with memcpy: no alignment assumed), each
 * word mixed in by a multiply and a rotation; the length goes in last. */
static inline uint64_t hash_bytes(const char *s, size_t n) {
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
static inline uint64_t hash_pair(uint64_t hk, uint64_t hv) {
  return mix64(hk * 0x9e3779b97f4a7c15ULL + hv);
}

static inline uint64_t hash_integer(lua_Integer i) { return mix64((uint64_t)i ^ HASH_INT); }

/* The number on top of the stack: integral values hash as integers. */
static inline int hash_number(lua_State *L, int idx, uint64_t *out) {
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

static inline uint64_t hash_string(lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  return hash_bytes(s, n) ^ HASH_STRING;
}

/* json_hash.c: the hash of the value at idx (0 when JSON cannot hold it);
 * mt_idx is the array metatable's stack index. */
int ar_json_hash_value(lua_State *L, int idx, int mt_idx, int depth, uint64_t *out);
/* json.hash(value) -> integer or false; upvalue 1: the array metatable. */
int ar_json_hash(lua_State *L);

#endif

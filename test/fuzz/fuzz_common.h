/* fuzz_common.h - shared by the libFuzzer targets in test/fuzz. */
#ifndef AR_FUZZ_COMMON_H
#define AR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh state per input, closed by the caller: every allocation of an
 * input is freed before the next, so libFuzzer's per-input leak check
 * (LeakSanitizer) stays on and cheap, and a leak is reported at once. */
static inline lua_State *fuzz_state(void) {
  lua_State *L = luaL_newstate();
  if (!L) abort();
  return L;
}

/* An error raised by the core must be an error object of `kind` (made by
 * errors.c), or Lua's own memory error; anything else is a finding. */
static inline void fuzz_check_error(lua_State *L, const char *kind) {
  if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "not enough memory") == 0)
    return;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "kind");
    int same = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), kind) == 0;
    lua_pop(L, 1);
    if (same) return;
  }
  fprintf(stderr, "unexpected error value (want a %s): %s\n", kind,
          luaL_tolstring(L, -1, NULL));
  abort();
}

/* A NUL-terminated copy in a block of exactly size + 1 bytes, so that ASan
 * sees any read past the terminator. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
  char *s = (char *)malloc(size + 1);
  if (!s) abort();
  if (size) memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif

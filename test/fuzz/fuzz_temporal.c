/* fuzz_temporal.c - the MYSQL_TIME formatter (convert.c: ar_push_temporal)
 * on arbitrary field values, as a hostile or broken server could send them.
 * The output must fit its buffer, use only the expected characters, and,
 * for in-range values, equal what snprintf makes of the same fields. */
#include "fuzz_common.h"

static const enum enum_field_types types[] = {
    MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE, MYSQL_TYPE_TIME, MYSQL_TYPE_DATETIME,
    MYSQL_TYPE_TIMESTAMP};

typedef struct {
  const uint8_t *p;
  size_t left;
} reader;

static unsigned long long take(reader *r, size_t n) {
  unsigned long long v = 0;
  for (size_t i = 0; i < n; i++) {
    v = (v << 8) | (r->left ? *r->p : 0);
    if (r->left) {
      r->p++;
      r->left--;
    }
  }
  return v;
}

static int format(lua_State *L) {
  const MYSQL_TIME *t = (const MYSQL_TIME *)lua_touserdata(L, 1);
  ar_push_temporal(L, t, (enum enum_field_types)lua_tointeger(L, 2),
                   (unsigned)lua_tointeger(L, 3));
  return 1;
}

/* What the formatter must produce when every field is in range. */
static int reference(char *out, size_t cap, const MYSQL_TIME *t,
                     enum enum_field_types type, unsigned decimals) {
  int n;
  if (decimals > 6) decimals = t->second_part ? 6 : 0;
  if (type == MYSQL_TYPE_TIME)
    n = snprintf(out, cap, "%s%02lu:%02u:%02u", t->neg ? "-" : "",
                 t->hour + (unsigned long)t->day * 24, t->minute, t->second);
  else if (type == MYSQL_TYPE_DATE || type == MYSQL_TYPE_NEWDATE)
    return snprintf(out, cap, "%04u-%02u-%02u", t->year, t->month, t->day);
  else
    n = snprintf(out, cap, "%04u-%02u-%02u %02u:%02u:%02u", t->year, t->month, t->day,
                 t->hour, t->minute, t->second);
  if (decimals) {
    char frac[8];
    snprintf(frac, sizeof frac, "%06lu", t->second_part);
    n += snprintf(out + n, cap - (size_t)n, ".%.*s", (int)decimals, frac);
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = {data, size};
  MYSQL_TIME t;
  memset(&t, 0, sizeof t);
  enum enum_field_types type = types[take(&r, 1) % (sizeof types / sizeof types[0])];
  unsigned decimals = (unsigned)take(&r, 1);
  t.year = (unsigned)take(&r, 4);
  t.month = (unsigned)take(&r, 4);
  t.day = (unsigned)take(&r, 4);
  t.hour = (unsigned)take(&r, 4);
  t.minute = (unsigned)take(&r, 4);
  t.second = (unsigned)take(&r, 4);
  t.second_part = (unsigned long)take(&r, 8);
  t.neg = (my_bool)(take(&r, 1) & 1);

  lua_State *L = fuzz_state();
  int top = lua_gettop(L);
  lua_pushcfunction(L, format);
  lua_pushlightuserdata(L, &t);
  lua_pushinteger(L, type);
  lua_pushinteger(L, decimals);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) fuzz_check_error(L, "DataError");
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n >= 40) abort();
    for (size_t i = 0; i < n; i++)
      if (!strchr("0123456789-: .", s[i])) abort();
    /* TIME hours (day * 24 + hour) may have any number of digits */
    int in_range = t.minute <= 99 && t.second <= 99 && t.second_part < 1000000 &&
                   (type == MYSQL_TYPE_TIME ||
                    (t.year <= 9999 && t.month <= 99 && t.day <= 99 && t.hour <= 99));
    if (in_range) {
      char want[96];
      int wn = reference(want, sizeof want, &t, type, decimals);
      if ((size_t)wn != n || memcmp(want, s, n) != 0) {
        fprintf(stderr, "formatted \"%.*s\", expected \"%s\"\n", (int)n, s, want);
        abort();
      }
    }
  }
  lua_settop(L, top);
  lua_close(L);
  return 0;
}

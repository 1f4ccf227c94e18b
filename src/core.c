/*
 * core.c - the module `activerecord.backend.mysql.core`.
 *
 * The only process-wide state is the client library's one-time init.
 *
 * Threads: any number of OS threads may each run their own lua_State with
 * their own connections (test/c/threads.c checks this under TSan); objects
 * of one state must not be used from two threads at once. The core keeps no
 * global mutable state. Per-thread client-library state:
 *  - MariaDB Connector/C 3.x: mysql_library_init runs its init under
 *    pthread_once, and mysql_thread_init/mysql_thread_end are no-ops (the
 *    library keeps no per-thread state), so nothing is needed.
 *  - Oracle's libmysqlclient: mysql_init (in connect) calls
 *    mysql_thread_init for the calling thread itself; mysql_library_init is
 *    not thread-safe there, so load this module once before starting
 *    threads, and call mysql_thread_end before a thread that used it exits
 *    (a library cannot see thread exit without a process-wide key).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ar.h"

/* The address is the registry key of the adopted NULL sentinel. */
static const char null_key = 'N';

void ar_push_null(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
}

/* Any NULL light userdata (cjson.null, a C library's null) or the adopted
 * sentinel itself. Called only off the hot paths (a value that is no
 * string, number, boolean or table). */
int ar_is_null(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL) return 1;
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &null_key);
  int same = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return same;
}

void ar_require(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  if (!lua_isfunction(L, -1))
    luaL_error(L, "activerecord core: no require function to load %s", name);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

/* core.error(kind, message [, fields]) -> error object (not raised), so the
 * Lua layers build ORM-level errors of the same shape as the core's. */
static int core_error(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  const char *message = luaL_checkstring(L, 2);
  ar_push_error(L, kind, 0, NULL, message, NULL);
  if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {   /* err, key, value */
      lua_pushvalue(L, -2);    /* err, key, value, key */
      lua_insert(L, -2);       /* err, key, key, value */
      lua_rawset(L, -4);       /* err, key */
    }
  }
  return 1;
}

static int core_error_kind(lua_State *L) {
  lua_pushstring(L, ar_error_kind((unsigned)luaL_checkinteger(L, 1)));
  return 1;
}

double ar_monotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds from CLOCK_MONOTONIC, for benchmarks and pool timing. */
static int core_monotime(lua_State *L) {
  lua_pushnumber(L, (lua_Number)ar_monotime());
  return 1;
}

/* Wall-clock seconds since the epoch (UTC) with microseconds, for
 * timestamps written by the models (os.time() has whole seconds only). */
static int core_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  /* whole microseconds: the integer division truncates on purpose */
  lua_pushnumber(L, (lua_Number)ts.tv_sec +
                        (lua_Number)(ts.tv_nsec / 1000) / 1e6); /* NOLINT(bugprone-integer-division) */
  return 1;
}

/* Sleeps the whole process (retry backoff when no event loop is around). */
static int core_sleep(lua_State *L) {
  lua_Number secs = luaL_checknumber(L, 1);
  if (secs > 0) {
    struct timespec ts;
    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((secs - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  return 0;
}

static int core_parse_version(lua_State *L) {
  int major = 0, minor = 0, patch = 0;
  const char *flavor = "mysql";
  if (!ar_parse_version(luaL_checkstring(L, 1), &major, &minor, &patch, &flavor))
    return 0;
  lua_pushstring(L, flavor);
  lua_createtable(L, 3, 0);
  lua_pushinteger(L, major);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, minor);
  lua_rawseti(L, -2, 2);
  lua_pushinteger(L, patch);
  lua_rawseti(L, -2, 3);
  return 2;
}

static const luaL_Reg core_functions[] = {
    {"connect", ar_connect_entry},
    {"capabilities_for", ar_capabilities_for},
    {"capability_matrix", ar_capability_matrix},
    {"parse_version", core_parse_version},
    {"error", core_error},
    {"error_kind", core_error_kind},
    {"monotime", core_monotime},
    {"sleep", core_sleep},
    {"never_ready_fd", ar_never_ready_fd},
    {"now", core_now},
    {NULL, NULL}};

LUALIB_API int luaopen_activerecord_backend_mysql_core(lua_State *L);

LUALIB_API int luaopen_activerecord_backend_mysql_core(lua_State *L) {
  if (mysql_library_init(0, NULL, NULL))
    return luaL_error(L, "cannot initialise the MySQL client library");
  ar_conn_open(L);
  ar_stmt_open(L);
  ar_fiber_open(L);
  luaL_newlib(L, core_functions); /* core */
  /* The neutral side owns null, the error shape, JSON's array mark and the
   * clock's API; the core adopts them and installs its implementations. */
  ar_require(L, "activerecord.null"); /* core, null */
  if (lua_istable(L, -1) || lua_isnil(L, -1))
    return luaL_error(L, "activerecord.null must be a userdata sentinel (cjson.null)");
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &null_key);
  lua_setfield(L, -2, "null");
  ar_require(L, "activerecord.errors"); /* core, errors */
  ar_errors_open(L);
  lua_getfield(L, -1, "Error");
  lua_setfield(L, -3, "Error");
  lua_pushcfunction(L, core_error_kind);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "error_kind");
  lua_setfield(L, -2, "kind_of");
  lua_pop(L, 1);
  ar_require(L, "activerecord.json"); /* core, json */
  ar_json_open(L);
  lua_pop(L, 1);
  ar_require(L, "activerecord.clock"); /* core, clock */
  lua_pushcfunction(L, core_now);
  lua_setfield(L, -2, "now");
  lua_pop(L, 1);
  lua_pushstring(L, mysql_get_client_info());
  lua_setfield(L, -2, "client_info");
  lua_pushboolean(L, AR_NONBLOCKING);
  lua_setfield(L, -2, "nonblocking");
  lua_pushstring(L, "0.1.0");
  lua_setfield(L, -2, "version");
  return 1;
}

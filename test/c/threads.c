/*
 * threads.c - several OS threads, each with its own lua_State and its own
 * connections, drive the core at once (test/c/threads.lua: parameterised
 * execute, each() streaming, transactions with savepoints, prepared
 * statements, reconnects). Built with ThreadSanitizer over the core's
 * objects; TSan fails the process (exitcode 66) on any report.
 *
 * mysql_thread_init/mysql_thread_end: nothing is called here on purpose.
 * With MariaDB Connector/C 3.x both are no-ops (the library keeps no
 * per-thread state), and the core documents this in core.c.
 *
 * usage: threads [SCRIPT] [--threads N] [--statements N]
 */
#include <pthread.h>
#include <string.h>

#include "harness.h"

static const char *script_path = "test/c/threads.lua";

typedef struct {
  int tid;
  long target;
  long statements;
  long inserted;
  int ok;
  char error[256];
} worker;

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (!L) return NULL;
  luaL_openlibs(L);
  luaL_requiref(L, AR_CORE_MODULE, luaopen_activerecord_backend_mysql_core, 0);
  lua_pop(L, 1);
  if (luaL_dofile(L, script_path) != LUA_OK || !lua_istable(L, -1)) {
    fprintf(stderr, "threads: %s: %s\n", script_path, lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L; /* 1: script table */
}

/* script[fn](core, options, ...) with nargs extra arguments already pushed. */
static int call(lua_State *L, const char *fn, int nargs, int nresults) {
  lua_getfield(L, 1, fn);
  luaL_requiref(L, AR_CORE_MODULE, luaopen_activerecord_backend_mysql_core, 0);
  ar_test_push_options(L);
  lua_rotate(L, -(nargs + 3), 3);
  return lua_pcall(L, nargs + 2, nresults, 0);
}

static void *work(void *arg) {
  worker *w = (worker *)arg;
  lua_State *L = new_state();
  if (!L) {
    snprintf(w->error, sizeof w->error, "cannot set up a Lua state");
    return NULL;
  }
  lua_pushinteger(L, w->tid);
  lua_pushinteger(L, w->target);
  if (call(L, "run", 2, 2) != LUA_OK) {
    snprintf(w->error, sizeof w->error, "%s", ar_test_errmsg(L));
  } else {
    w->statements = (long)lua_tointeger(L, -2);
    w->inserted = (long)lua_tointeger(L, -1);
    w->ok = 1;
  }
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  int nthreads = 8;
  long target = 1000;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) nthreads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--statements") == 0 && i + 1 < argc) target = atol(argv[++i]);
    else script_path = argv[i];
  }
  if (!ar_test_need_server("threads")) return 2;
  if (nthreads < 1 || nthreads > 256) nthreads = 8;

  lua_State *L = new_state();
  if (!L) return 2;
  if (call(L, "setup", 0, 0) != LUA_OK) {
    fprintf(stderr, "threads: setup: %s\n", ar_test_errmsg(L));
    return 1;
  }

  worker *ws = (worker *)calloc((size_t)nthreads, sizeof *ws);
  pthread_t *ts = (pthread_t *)calloc((size_t)nthreads, sizeof *ts);
  if (!ws || !ts) return 2;
  for (int i = 0; i < nthreads; i++) {
    ws[i].tid = i + 1;
    ws[i].target = target;
    if (pthread_create(&ts[i], NULL, work, &ws[i]) != 0) {
      fprintf(stderr, "threads: pthread_create failed\n");
      return 2;
    }
  }
  long statements = 0;
  int failed = 0;
  lua_newtable(L); /* tid -> rows inserted */
  for (int i = 0; i < nthreads; i++) {
    pthread_join(ts[i], NULL);
    if (!ws[i].ok) {
      failed++;
      fprintf(stderr, "threads: thread %d failed: %s\n", ws[i].tid, ws[i].error);
    }
    statements += ws[i].statements;
    lua_pushinteger(L, ws[i].inserted);
    lua_rawseti(L, -2, ws[i].tid);
  }
  if (!failed && call(L, "verify", 1, 0) != LUA_OK) {
    fprintf(stderr, "threads: verify: %s\n", ar_test_errmsg(L));
    failed++;
  }
  lua_close(L);
  free(ws);
  free(ts);
  printf("threads: %d threads, %ld statements in all, %s\n", nthreads, statements,
         failed ? "FAILED" : "every row accounted for");
  return failed ? 1 : 0;
}

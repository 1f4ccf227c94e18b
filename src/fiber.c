/*
 * fiber.c - the scheduler mode (design §9): many queries on one OS thread.
 *
 * A connection made with `scheduler = { wait = fn, ... }` runs each core
 * call that may wait on the network on its own C stack (a fiber, POSIX
 * ucontext). When the one wait point (wait.c) has to wait, the fiber
 * switches back to the Lua-facing C function, which calls the scheduler's
 * wait(fd, events, timeout_s) through lua_callk: the scheduler suspends the
 * coroutine, the event loop runs others, and on resume the continuation
 * switches back into the fiber, which goes on exactly where it stopped.
 * Every C function of the core keeps its one code path; without a
 * scheduler nothing here runs (fiber_call calls the function directly).
 *
 * Lua cannot yield across a C frame, and it does not need to here: the
 * frames of the waiting call live on the fiber's stack, which the yield
 * does not touch; only the thin entry frame is unwound, and lua_callk's
 * continuation stands in for it.
 *
 * Errors raised inside the fiber longjmp to the protected call or resume
 * below the entry, on the thread's own stack; the fiber is then simply
 * never resumed (the next call starts it afresh). Ownership: the fiber is
 * a userdata (its stack an mmap it frees in __gc) held by the connection's
 * uservalue; the connection points at it while it lives.
 */
#define _GNU_SOURCE 1 /* MAP_ANONYMOUS, MAP_STACK, MAP_NORESERVE */
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "ar.h"

#if AR_NONBLOCKING

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define AR_HAVE_VALGRIND 1
#endif
#endif
#ifndef AR_HAVE_VALGRIND
#define VALGRIND_STACK_REGISTER(start, end) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

/* Room for the core's frames plus what runs on them: conversions, JSON
 * decoding, and finalizers of unrelated objects the collector may run
 * during an allocation. Reserved lazily (MAP_NORESERVE): pages cost memory
 * only once touched. Inaccessible gaps on both sides: an overflow faults
 * rather than corrupts, and no other stack (the client library's own
 * coroutine stacks are mmaps too) lies closer than valgrind's
 * --max-stackframe (2 MB), so it tells a stack switch from a big frame. */
#define FIBER_STACK_SIZE ((size_t)1024 * 1024)
#define FIBER_GAP_SIZE ((size_t)2200 * 1024)

#define AR_FIBER_MT "activerecord.mysql.fiber"

enum { FIBER_IDLE, FIBER_RUNNING, FIBER_WAITING, FIBER_DONE };

struct ar_fiber {
  ucontext_t ctx;     /* starts fiber_main on the fiber's stack (makecontext) */
  sigjmp_buf caller;  /* where a wait or the end switches back to */
  sigjmp_buf resume;  /* where a waiting call goes on */
  int started;        /* the call entered fiber_main: `resume` is where it waits */
  char *map;         /* the mmap (guard page first); NULL once freed */
  size_t map_size;
  char *stack_lo, *stack_hi; /* usable stack */
  unsigned vg_stack;         /* valgrind's id for it */
  lua_State *L;              /* the coroutine whose call runs on it */
  lua_CFunction impl;        /* the core function it runs */
  MYSQL *mysql;              /* the handle whose waits it suspends */
  int phase;
  int nresults;
  int status;    /* MYSQL_WAIT_* asked for, then what happened */
  int fd;        /* the descriptor last handed to wait (-1: none, or forgotten) */
  int wait_ref;  /* registry: the scheduler's wait function */
  int forget_ref; /* registry: its forget function, or LUA_NOREF */
};

/* The fiber running now (NULL on the thread's own stack). After an error
 * escaped a fiber it may still point at it, so wait.c also checks that it
 * really runs on that fiber's stack (ar_fiber_waits). */
static _Thread_local ar_fiber *fiber_current;

/* Open connections in scheduler mode, in this process: while there are
 * none, a method call costs one test more than the bare C function. */
long ar_scheduled_conns;

void ar_fiber_conn_closed(ar_conn *c) {
  if (c->fiber) ar_scheduled_conns--;
}

/* Registry table: fiber (light userdata) -> the coroutine of its pending
 * call, weak values, so that a dropped coroutine is collected and seen
 * gone rather than pointed at. */
static const char owners_key = 'o';

static int on_stack(const ar_fiber *f) {
  char probe;
  uintptr_t p = (uintptr_t)&probe;
  return f->map && p >= (uintptr_t)f->stack_lo && p < (uintptr_t)f->stack_hi;
}

/* ---- the wait point's side ------------------------------------------- */

int ar_fiber_waits(MYSQL *m) {
  if (ar_scheduled_conns == 0) return 0; /* blocking mode only: no thread-local read */
  ar_fiber *f = fiber_current;
  return f && f->mysql == m && f->phase == FIBER_RUNNING && on_stack(f);
}

int ar_fiber_wait(MYSQL *m, int status) {
  ar_fiber *f = fiber_current;
  (void)m;
  f->status = status;
  f->phase = FIBER_WAITING;
  /* sigsetjmp(, 0)/siglongjmp switch stacks without the signal-mask system
   * call swapcontext makes each time */
  if (sigsetjmp(f->resume, 0) == 0) siglongjmp(f->caller, 1);
  return f->status; /* set by the continuation: ready events or MYSQL_WAIT_TIMEOUT */
}

/* ---- lifetime --------------------------------------------------------- */

static void fiber_release(lua_State *L, ar_fiber *f) {
  if (fiber_current == f) fiber_current = NULL;
  if (f->map) {
    VALGRIND_STACK_DEREGISTER(f->vg_stack);
    munmap(f->map, f->map_size);
    f->map = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, f->wait_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, f->forget_ref);
  f->wait_ref = f->forget_ref = LUA_NOREF;
}

static int fiber_gc(lua_State *L) {
  fiber_release(L, (ar_fiber *)luaL_checkudata(L, 1, AR_FIBER_MT));
  return 0;
}

/* new_fiber(scheduler at idx) -> pushes the fiber userdata. */
static ar_fiber *new_fiber(lua_State *L, int sched) {
  sched = lua_absindex(L, sched);
  if (lua_getfield(L, sched, "wait") != LUA_TFUNCTION)
    ar_raisef(L, "ConfigError",
              "option 'scheduler' must be \"cqueues\", \"luv\" or a table with a "
              "wait(fd, events, timeout_s) function");
  int forget_type = lua_getfield(L, sched, "forget");
  if (forget_type != LUA_TFUNCTION && forget_type != LUA_TNIL)
    ar_raisef(L, "ConfigError", "scheduler.forget must be a function");
  ar_fiber *f = (ar_fiber *)lua_newuserdatauv(L, sizeof(ar_fiber), 0);
  memset(f, 0, sizeof *f);
  f->wait_ref = f->forget_ref = LUA_NOREF;
  f->fd = -1;
  luaL_setmetatable(L, AR_FIBER_MT); /* from here __gc frees what follows */
  lua_insert(L, -3);                 /* fiber, wait, forget */
  f->forget_ref = forget_type == LUA_TFUNCTION ? luaL_ref(L, LUA_REGISTRYINDEX)
                                               : (lua_pop(L, 1), LUA_NOREF);
  f->wait_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  f->map_size = FIBER_GAP_SIZE + FIBER_STACK_SIZE + FIBER_GAP_SIZE;
  void *map = mmap(NULL, f->map_size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) luaL_error(L, "not enough memory");
  f->map = (char *)map;
  f->stack_lo = f->map + FIBER_GAP_SIZE;
  f->stack_hi = f->stack_lo + FIBER_STACK_SIZE;
  if (mprotect(f->stack_lo, FIBER_STACK_SIZE, PROT_READ | PROT_WRITE) != 0)
    luaL_error(L, "not enough memory"); /* __gc unmaps */
  f->vg_stack = VALGRIND_STACK_REGISTER(f->stack_lo, f->stack_hi);
  return f;
}

/* ---- running a call on the fiber ------------------------------------- */

static void fiber_main(void) {
  ar_fiber *f = fiber_current;
  f->nresults = f->impl(f->L);
  f->phase = FIBER_DONE;
  f->started = 0;
  siglongjmp(f->caller, 1);
}

static void set_owner(lua_State *L, ar_fiber *f, int anchor) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &owners_key);
  if (anchor) lua_pushthread(L);
  else lua_pushnil(L);
  lua_rawsetp(L, -2, f);
  lua_pop(L, 1);
}

static int fiber_k(lua_State *L, int status, lua_KContext ctx);

/* Switches into the fiber; back here it has finished (results on the
 * stack top) or waits (the scheduler is called, the coroutine suspends). */
static int fiber_switch(lua_State *L, ar_fiber *f) {
  ar_fiber *prev = fiber_current;
  fiber_current = f;
  f->phase = FIBER_RUNNING;
  if (sigsetjmp(f->caller, 0) == 0) {
    if (f->started) siglongjmp(f->resume, 1); /* back into the waiting call */
    f->started = 1;
    setcontext(&f->ctx); /* a new call: fiber_main on the fiber's stack */
  }
  fiber_current = prev;
  if (f->phase == FIBER_DONE) {
    f->phase = FIBER_IDLE;
    int n = f->nresults;
    set_owner(L, f, 0); /* pushes and pops: the results stay on top */
    return n;
  }
  /* FIBER_WAITING: scheduler.wait(fd, events, timeout_s) */
  int st = f->status;
  f->fd = (int)mysql_get_socket(f->mysql);
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->wait_ref);
  lua_pushinteger(L, f->fd);
  if ((st & MYSQL_WAIT_READ) && (st & MYSQL_WAIT_WRITE)) lua_pushliteral(L, "rw");
  else if (st & MYSQL_WAIT_WRITE) lua_pushliteral(L, "w");
  else lua_pushliteral(L, "r");
  if (st & MYSQL_WAIT_TIMEOUT)
    lua_pushnumber(L, (lua_Number)mysql_get_timeout_value_ms(f->mysql) / 1000.0);
  else
    lua_pushnil(L);
  lua_callk(L, 3, 1, (lua_KContext)(intptr_t)f, fiber_k);
  return fiber_k(L, LUA_OK, (lua_KContext)(intptr_t)f);
}

/* The scheduler's forget(fd) for the descriptor it last waited on: the
 * loop may keep it registered after the wait, and the client library
 * closes its socket on a lost link or a timeout; a closed descriptor still
 * registered breaks some loops (cqueues: EBADF), and its number is reused
 * by the next connection. Nothing can open a descriptor between the
 * library closing it and this call (one thread, no yield in between). */
static void forget_fd(lua_State *L, ar_fiber *f) {
  if (f->forget_ref == LUA_NOREF || f->fd < 0) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->forget_ref);
  lua_pushinteger(L, f->fd);
  f->fd = -1;
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* a broken adapter must not leak the handle */
}

/* ar_raise's hook: an error raised by a call running on a fiber (a lost
 * link among others) forgets the descriptor the call waited on. */
void ar_fiber_raising(lua_State *L) {
  ar_fiber *f = fiber_current;
  if (f && f->phase == FIBER_RUNNING && f->fd >= 0 && on_stack(f)) forget_fd(L, f);
}

/* The wait returned (directly or after the coroutine was resumed). */
static int fiber_k(lua_State *L, int status, lua_KContext ctx) {
  /* lua_KContext is an intptr_t so that a continuation can carry a pointer */
  ar_fiber *f = (ar_fiber *)(intptr_t)ctx; /* NOLINT(performance-no-int-to-ptr) */
  (void)status;
  int ready = lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* timed out: the library fails the call and may close the socket itself,
   * so the loop drops its registration of the descriptor first */
  if (!ready) forget_fd(L, f);
  f->status = ready ? (f->status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT))
                    : MYSQL_WAIT_TIMEOUT;
  return fiber_switch(L, f);
}

static int fiber_start(lua_State *L, ar_fiber *f, MYSQL *m, lua_CFunction impl) {
  f->L = L;
  f->impl = impl;
  f->mysql = m;
  f->started = 0; /* a call that raised left it set */
  set_owner(L, f, 1);
  getcontext(&f->ctx);
  f->ctx.uc_stack.ss_sp = f->stack_lo;
  f->ctx.uc_stack.ss_size = (size_t)(f->stack_hi - f->stack_lo);
  f->ctx.uc_link = NULL;
  makecontext(&f->ctx, fiber_main, 0);
  return fiber_switch(L, f);
}

/* ---- calls on a connection in scheduler mode ------------------------- */

/* 1 when the coroutine of f's pending call still waits in it (suspended by
 * the scheduler), 0 when it is gone: closed, finished, collected. */
static int owner_waits(lua_State *L, ar_fiber *f) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &owners_key);
  lua_rawgetp(L, -1, f);
  lua_State *co = lua_tothread(L, -1);
  lua_pop(L, 2);
  return co != NULL && co == f->L && co != L && lua_status(co) == LUA_YIELD;
}

void ar_fiber_forget(lua_State *L, ar_conn *c) {
  if (c->fiber) forget_fd(L, c->fiber);
}

/* A call that never finished (its coroutine was closed mid-query, or the
 * scheduler's wait raised): the library is still inside it. Finishing it
 * as timed out makes it fail at once; the connection, in a state nobody
 * knows, is then closed, never used again. */
void ar_fiber_abandon(lua_State *L, ar_conn *c) {
  ar_fiber *f = c->fiber;
  if (!f || f->phase != FIBER_WAITING) return;
  f->phase = FIBER_IDLE;
  set_owner(L, f, 0);
  if (c->mysql) {
    int r = 0;
    ar_fiber_forget(L, c); /* first: the library may close the socket as the call fails */
    for (int i = 0; i < 64 && mysql_ping_cont(&r, c->mysql, MYSQL_WAIT_TIMEOUT); i++) {
    }
  }
  ar_conn_close_handle(c);
}

/* The connection of a method's first argument, by class. */
static ar_conn *conn_of(lua_State *L, int cls) {
  if (cls == AR_CLS_CONN) return (ar_conn *)luaL_testudata(L, 1, AR_CONN_MT);
  ar_stmt *s = NULL;
  if (cls == AR_CLS_STMT) {
    s = (ar_stmt *)luaL_testudata(L, 1, AR_STMT_MT);
  } else {
    ar_stmt **cur = (ar_stmt **)luaL_testudata(L, 1, AR_CURSOR_MT);
    s = cur ? *cur : NULL; /* the cursor struct starts with its statement */
  }
  return s && s->stmt ? s->conn : NULL;
}

int ar_fiber_dispatch(lua_State *L, lua_CFunction impl, int cls) {
  ar_conn *c = conn_of(L, cls & 3);
  if (!c || !c->fiber || !c->mysql) return impl(L); /* a blocking connection */
  ar_fiber *f = c->fiber;
  if (f->phase == FIBER_WAITING) {
    if (owner_waits(L, f))
      return ar_raisef(L, "ConnectionError",
                       "connection busy: another coroutine is waiting for a result on it "
                       "(a connection serves one coroutine at a time; use the pool)");
    ar_fiber_abandon(L, c);
    return impl(L); /* close() succeeds, anything else says the connection is closed */
  }
  if (!lua_isyieldable(L)) {
    if (lua_pushthread(L) && !(cls & AR_CLS_CLOSING)) {
      lua_pop(L, 1);
      return ar_raisef(L, "ConnectionError",
                       "a connection made with a scheduler is used from the main thread: "
                       "run queries inside a coroutine of the event loop (the call would "
                       "block every request)");
    }
    lua_pop(L, 1);
    /* a close from the main thread, or a coroutine that cannot yield here
     * (a finalizer, a __close run by coroutine.close, a C boundary): the
     * call blocks, once, rather than fail */
    return impl(L);
  }
  return fiber_start(L, f, c->mysql, impl);
}

/* ---- core.connect under a scheduler ---------------------------------- */

/* core.connect(options): with options.scheduler the connect itself runs on
 * the new connection's fiber (ar_connect adopts it: ar_fiber_adopt). */
int ar_connect_entry(lua_State *L) {
  if (!lua_istable(L, 1) || lua_getfield(L, 1, "scheduler") == LUA_TNIL) {
    lua_settop(L, 1);
    return ar_connect(L);
  }
  if (!lua_istable(L, -1))
    return ar_raisef(L, "ConfigError",
                     "option 'scheduler' must be \"cqueues\", \"luv\" or a table with a "
                     "wait(fd, events, timeout_s) function (core.connect takes the table)");
  if (!lua_isyieldable(L))
    return ar_raisef(L, "ConnectionError",
                     "a connection with a scheduler is opened from the main thread: open it "
                     "inside a coroutine of the event loop");
  int sched = lua_gettop(L);
  new_fiber(L, sched);                 /* opts, ..., sched, fiber */
  lua_replace(L, 2);                   /* opts, fiber, ... */
  lua_settop(L, 2);
  ar_fiber *f = (ar_fiber *)lua_touserdata(L, 2);
  return fiber_start(L, f, NULL, ar_connect);
}

/* Called by ar_connect once the handle exists (connection userdata at ci):
 * when it runs on a fiber (at stack index 2), the connection takes it. */
void ar_fiber_adopt(lua_State *L, ar_conn *c, int ci) {
  ar_fiber *f = (ar_fiber *)luaL_testudata(L, 2, AR_FIBER_MT);
  if (!f || f != fiber_current || !on_stack(f)) return;
  f->mysql = c->mysql;
  c->fiber = f;
  ar_scheduled_conns++; /* until ar_conn_close_handle releases the handle */
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, ci, AR_CONN_UV_FIBER);
}

/* core.never_ready_fd() -> the read end of a pipe nobody writes to: a
 * scheduler without sleep() sleeps by waiting on it with a timeout. Made
 * once per process, kept open. */
int ar_never_ready_fd(lua_State *L) {
  static int fds[2] = {-1, -1};
  if (fds[0] < 0 && pipe(fds) != 0)
    return ar_raisef(L, "ConnectionError", "pipe() failed: %s", strerror(errno));
  lua_pushinteger(L, fds[0]);
  return 1;
}

void ar_fiber_open(lua_State *L) {
  luaL_newmetatable(L, AR_FIBER_MT);
  lua_pushcfunction(L, fiber_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &owners_key);
}

#else /* Oracle's libmysqlclient: no _start/_cont calls, so no scheduler mode */

int ar_fiber_waits(MYSQL *m) {
  (void)m;
  return 0;
}
int ar_fiber_wait(MYSQL *m, int status) {
  (void)m;
  return status;
}
void ar_fiber_open(lua_State *L) { (void)L; }
int ar_never_ready_fd(lua_State *L) {
  return ar_raisef(L, "CapabilityError", "no scheduler mode in this build");
}
long ar_scheduled_conns;
int ar_fiber_dispatch(lua_State *L, lua_CFunction impl, int cls) {
  (void)cls;
  return impl(L);
}
void ar_fiber_adopt(lua_State *L, ar_conn *c, int ci) { (void)L, (void)c, (void)ci; }
void ar_fiber_forget(lua_State *L, ar_conn *c) { (void)L, (void)c; }
void ar_fiber_abandon(lua_State *L, ar_conn *c) { (void)L, (void)c; }
void ar_fiber_conn_closed(ar_conn *c) { (void)c; }
void ar_fiber_raising(lua_State *L) { (void)L; }
int ar_connect_entry(lua_State *L) {
  if (lua_istable(L, 1) && lua_getfield(L, 1, "scheduler") != LUA_TNIL)
    return ar_raisef(L, "CapabilityError",
                     "the scheduler mode needs MariaDB Connector/C (its non-blocking API); "
                     "this build uses a client library without it");
  lua_settop(L, 1);
  return ar_connect(L);
}

#endif

/*
 * ar.h - shared declarations of the activerecord MySQL/MariaDB C core.
 *
 * Ownership in one sentence: a connection userdata owns its MYSQL handle and
 * every prepared statement it created (an intrusive LRU list); statement and
 * cursor userdata pin their connection through a Lua uservalue, never only a
 * bare pointer, so a connection cannot be collected while they live.
 */
#ifndef AR_H
#define AR_H

#include <stddef.h>
#include <stdint.h>
#include <mysql.h>

#include "lua.h"
#include "lauxlib.h"

/* Connector/C (MariaDB) has the non-blocking API; Oracle's libmysqlclient
 * does not. The choice is made at build time (design §2, "one wait point"). */
#if defined(MYSQL_WAIT_READ) && !defined(AR_BLOCKING_ONLY)
#define AR_NONBLOCKING 1
#else
#define AR_NONBLOCKING 0
#endif

#define AR_CONN_MT   "activerecord.mysql.connection"
#define AR_STMT_MT   "activerecord.mysql.statement"
#define AR_CURSOR_MT "activerecord.mysql.cursor"
#define AR_ERROR_MT  "activerecord.Error"

/* Uservalue slots of a connection userdata. */
#define AR_CONN_UV_CACHE 1 /* table: sql text -> statement userdata */
#define AR_CONN_UV_SESSION 2 /* session settings re-applied after reset() */
#define AR_CONN_UV_FIBER 3 /* scheduler mode: the fiber userdata (fiber.c) */
#define AR_CONN_NUV      3

/* Uservalue slots of a statement userdata. */
#define AR_STMT_UV_CONN    1 /* the owning connection userdata */
#define AR_STMT_UV_NAMES   2 /* array of column names (Lua strings) */
#define AR_STMT_UV_COLUMNS 3 /* the `columns` metadata array handed to users */
#define AR_STMT_NUV        3

/* How one result column becomes a Lua value (chosen once per statement). */
typedef enum {
  AR_CONV_INT,      /* bound as LONGLONG; unsigned above 2^63-1 -> string */
  AR_CONV_BIT,      /* raw big-endian bytes -> integer */
  AR_CONV_FLOAT,    /* FLOAT: shortest decimal that round-trips the float */
  AR_CONV_DOUBLE,
  AR_CONV_DECIMAL,  /* exact string, or float when decimal = "number" */
  AR_CONV_TEMPORAL, /* DATE/DATETIME/TIMESTAMP/TIME as formatted string */
  AR_CONV_STRING,   /* binary-safe bytes */
  AR_CONV_JSON      /* decoded by json.c */
} ar_conv;

typedef struct {
  ar_conv conv;
  enum enum_field_types type;
  unsigned decimals;
  int is_unsigned;
  unsigned long length; /* actual length of the fetched value */
  char is_null;         /* my_bool in both client libraries */
  char error;
  union {
    long long i;
    double d;
    float f;
    MYSQL_TIME t;
  } num;
  char *buf;            /* variable-length data, grown on truncation */
  unsigned long buflen;
} ar_column;

/* Storage for one bound parameter; strings point into Lua memory that stays
 * on the stack for the whole execute call, so nothing is copied. */
typedef struct {
  char is_null;
  union {
    long long i;
    double d;
  } num;
  unsigned long length;
} ar_param;

struct ar_stmt;
typedef struct ar_fiber ar_fiber;

typedef struct ar_conn {
  MYSQL *mysql;              /* NULL once closed */
  int connected;             /* mysql_real_connect succeeded */
  int decimal_as_number;     /* option decimal = "number" */
  unsigned statement_cache_size;
  unsigned cached;           /* statements in the LRU list */
  struct ar_stmt *lru_head;  /* most recently used */
  struct ar_stmt *lru_tail;  /* eviction candidate */
  struct ar_stmt *active;    /* statement whose result may still be unread */
  int cursor_open;           /* a streaming cursor owns `active` */
  unsigned long max_packet;  /* the server's max_allowed_packet (0: unknown) */
  int tx_open;               /* begin() opened a transaction, not yet ended */
  double created;            /* ar_monotime() when connected: the pool's max_lifetime */
  double last_used;          /* ar_monotime() at the last checkin_state() */
  double max_lifetime, idle_timeout, validate_after; /* pool_limits(), for checkout_check() */
  ar_fiber *fiber;           /* scheduler mode: the stack its calls run on (NULL: blocking) */
} ar_conn;

typedef struct ar_stmt {
  MYSQL_STMT *stmt;          /* NULL once closed */
  ar_conn *conn;             /* valid while stmt != NULL (conn closes us first) */
  struct ar_stmt *prev, *next;
  int in_cache;
  unsigned nparams;
  unsigned ncols;
  MYSQL_BIND *pbind;
  ar_param *params;
  MYSQL_BIND *rbind;
  ar_column *cols;
  int names_ready;           /* uservalues NAMES/COLUMNS hold this shape */
  int json_hashes;           /* this execution also gives rows[-i] = json_hash of JSON column i */
  unsigned njson;            /* JSON columns among ncols */
  int stale;                 /* must be prepared again before reuse */
  lua_Integer epoch;         /* schema epoch it was prepared under */
  char *sql;                 /* statement text: cache key and error context */
  size_t sql_len;
} ar_stmt;

/* core.c: the neutral side's values the core adopts at luaopen. The SQL
 * NULL sentinel is `require("activerecord.null")` (lua-cjson's null, the
 * NULL light userdata); ar_is_null also accepts any NULL light userdata. */
void ar_push_null(lua_State *L);
int ar_is_null(lua_State *L, int idx);
/* Calls the global `require` on `name`, leaving the module on the stack. */
void ar_require(lua_State *L, const char *name);

/* errors.c: the one error path. */
const char *ar_error_kind(unsigned code);
void ar_push_error(lua_State *L, const char *kind, unsigned code,
                   const char *sqlstate, const char *message, const char *sql);
int ar_raise(lua_State *L, const char *kind, unsigned code,
             const char *sqlstate, const char *message, const char *sql);
int ar_raisef(lua_State *L, const char *kind, const char *fmt, ...);
int ar_raise_mysql(lua_State *L, MYSQL *m, const char *sql);
int ar_raise_stmt(lua_State *L, MYSQL_STMT *s, const char *sql);
/* A server error copied out of its handle (the next call on the handle
 * reuses its buffers, closing it frees them), to raise once released. */
typedef struct {
  unsigned code;
  char message[MYSQL_ERRMSG_SIZE + 64];
  char sqlstate[SQLSTATE_LENGTH + 1];
} ar_error_copy;
void ar_copy_mysql_error(ar_error_copy *e, MYSQL *m);
void ar_copy_stmt_error(ar_error_copy *e, MYSQL_STMT *s);
/* kind NULL: the kind of e->code (ar_error_kind) */
int ar_raise_copy(lua_State *L, const char *kind, const ar_error_copy *e, const char *sql);
/* Adopts the error metatable of activerecord.errors (on the stack top). */
void ar_errors_open(lua_State *L);
const char *ar_check_text(lua_State *L, int idx, size_t *len, const char *kind,
                          const char *what);

/* wait.c: the one wait point. */
int ar_wait(MYSQL *m, int status);

/* fiber.c: the scheduler mode (design §9). ar_fiber_waits: the running
 * code is a call on m's fiber, so ar_fiber_wait suspends its coroutine. */
int ar_fiber_waits(MYSQL *m);
int ar_fiber_wait(MYSQL *m, int status);
void ar_fiber_open(lua_State *L);
/* Open scheduler-mode connections in this process (0 without any). */
extern long ar_scheduled_conns;
/* What the first argument of a method is, and whether the call closes
 * (a close may block once from the main thread: it only writes). */
enum { AR_CLS_CONN = 0, AR_CLS_STMT = 1, AR_CLS_CURSOR = 2, AR_CLS_CLOSING = 4 };
/* Runs impl on the fiber of its connection when that has a scheduler. */
int ar_fiber_dispatch(lua_State *L, lua_CFunction impl, int cls);
/* A method that may wait on the network, as registered: the C function
 * itself while no connection of the process has a scheduler (one load and
 * one branch more), else through ar_fiber_dispatch. */
#define AR_SCHEDULABLE(name, impl, cls)                                        \
  static int name(lua_State *L) {                                              \
    return ar_scheduled_conns == 0 ? impl(L) : ar_fiber_dispatch(L, impl, cls); \
  }
int ar_connect_entry(lua_State *L); /* core.connect */
int ar_never_ready_fd(lua_State *L); /* core.never_ready_fd */
void ar_fiber_adopt(lua_State *L, ar_conn *c, int ci);
/* Before the socket closes: the scheduler's forget(fd), if it has one. */
void ar_fiber_forget(lua_State *L, ar_conn *c);
/* ar_raise, before it raises: see fiber.c. */
void ar_fiber_raising(lua_State *L);
/* ar_conn_close_handle releases a handle (counts scheduler-mode ones). */
void ar_fiber_conn_closed(ar_conn *c);
/* A call left waiting by a coroutine that is gone: finish it, close. */
void ar_fiber_abandon(lua_State *L, ar_conn *c);

/* Drive a Connector/C call through its *_start / *_cont pair, waiting in
 * ar_wait between steps. `h` is the MYSQL or MYSQL_STMT handle, `m` the MYSQL
 * whose socket is waited on. Without the non-blocking API: a plain call. */
#if AR_NONBLOCKING
#define AR_CALL(m, ret, fn, h, ...)                                  \
  do {                                                               \
    int ar_st_ = fn##_start(&(ret), (h), __VA_ARGS__);               \
    while (ar_st_) ar_st_ = fn##_cont(&(ret), (h), ar_wait((m), ar_st_)); \
  } while (0)
#define AR_CALL0(m, ret, fn, h)                                      \
  do {                                                               \
    int ar_st_ = fn##_start(&(ret), (h));                            \
    while (ar_st_) ar_st_ = fn##_cont(&(ret), (h), ar_wait((m), ar_st_)); \
  } while (0)
#else
#define AR_CALL(m, ret, fn, h, ...) do { (void)(m); (ret) = fn((h), __VA_ARGS__); } while (0)
#define AR_CALL0(m, ret, fn, h) do { (void)(m); (ret) = fn(h); } while (0)
#endif

/* core.c: seconds from CLOCK_MONOTONIC. */
double ar_monotime(void);

/* connection.c */
ar_conn *ar_check_conn(lua_State *L, int idx); /* raises on closed */
void ar_conn_open(lua_State *L);
int ar_connect(lua_State *L);
void ar_conn_settle(lua_State *L, ar_conn *c);
void ar_conn_close_handle(ar_conn *c); /* idempotent */

/* connect.c: (re)applies the session options kept in the uservalue of the
 * connection at stack index ci (after_reset: the ones reset() dropped). */
void ar_conn_apply_session(lua_State *L, ar_conn *c, int ci, int after_reset);
/* connect.c: option tables (begin{} uses them too). ar_check_keys raises a
 * ConfigError naming an unknown key and the accepted ones; ar_opt_string
 * pushes the option and returns it (NULL for nil); ar_in_list -> index or -1. */
int ar_in_list(const char *s, const char *const *list);
void ar_check_keys(lua_State *L, int idx, const char *what, const char *const *accepted);
const char *ar_opt_string(lua_State *L, int idx, const char *key);

/* The in-transaction safety net, after every successful statement: once
 * begin() opened a transaction, the server's status flag must still say
 * "in transaction"; if a statement ended it (an implicit commit), raise.
 * Error packets carry no status, so only successes are checked. */
void ar_tx_ended(lua_State *L, ar_conn *c, const char *sql);
#define AR_CHECK_TX(L, c, sql)                                              \
  do {                                                                      \
    if ((c)->tx_open && !((c)->mysql->server_status & SERVER_STATUS_IN_TRANS)) \
      ar_tx_ended((L), (c), (sql));                                         \
  } while (0)

/* statement.c */
void ar_stmt_open(lua_State *L);
int ar_conn_execute(lua_State *L);
void ar_exec_in_frame(lua_State *L, ar_conn *c, int conn_idx, const char *sql, int first,
                      int nargs);
int ar_conn_execute_json_hashes(lua_State *L);
int ar_conn_each(lua_State *L);
int ar_conn_prepare(lua_State *L);

/* stmt_cache.c. `text_ok`: when ar_stmt_new may give up and let the caller
 * use the text protocol (statements without parameters only: values never
 * go into SQL text). */
#define AR_TEXT_IF_UNSUPPORTED 1 /* 1295: the command cannot be prepared */
#define AR_TEXT_IF_FULL        2 /* 1461: the server holds too many statements */
/* Prepares `sql` into a new statement userdata (outside the cache) and
 * pushes it; NULL with nothing pushed when `text_ok` allows the fallback. */
ar_stmt *ar_stmt_new(lua_State *L, ar_conn *c, int conn_idx, const char *sql, size_t len,
                     int text_ok);
/* Finds or prepares the cached statement for the SQL at stack index 2 and
 * pushes it; NULL with nothing pushed when the text protocol must be used. */
ar_stmt *ar_stmt_cached(lua_State *L, ar_conn *c, int conn_idx, int text_ok);
/* DDL ran: cached statements are prepared again before their next use. */
void ar_bump_schema_epoch(lua_State *L);
void ar_stmt_close_all(ar_conn *c);
void ar_stmt_unlink_close(ar_stmt *s);
/* 1 when the statement is DDL or may run DDL (the SQL keyword scan; also
 * reached by the fuzz target test/fuzz/fuzz_sql_keyword.c). */
int ar_is_ddl(const char *sql);

/* text_protocol.c */
int ar_text_query(lua_State *L, ar_conn *c, int conn_idx, const char *sql,
                  size_t len, int want_result);
/* Pushes a userdata owning one MYSQL_RES (freed by its __gc unless the
 * caller frees it first and sets the slot to NULL); returns the slot. */
MYSQL_RES **ar_push_res_guard(lua_State *L);

/* convert.c */
size_t ar_bind_params(lua_State *L, ar_stmt *s, int first, int count, const char *sql);
int ar_setup_columns(lua_State *L, ar_stmt *s, int stmt_idx, MYSQL_RES *meta);
/* Both return 1 with the value pushed, or 0 with an error object pushed (a
 * conversion failed: the caller ends the result first, then raises it). */
int ar_push_column(lua_State *L, ar_stmt *s, unsigned i, int conn_idx);
int ar_push_text_value(lua_State *L, const MYSQL_FIELD *f, const char *v,
                       unsigned long len, int decimal_as_number, int conn_idx);
int ar_field_is_json(const MYSQL_FIELD *f);
void ar_push_columns_meta(lua_State *L, MYSQL_FIELD *fields, unsigned n);
void ar_free_columns(ar_stmt *s);
/* 1: the decoded value is pushed; 0: a DataError object is pushed instead */
int ar_push_json(lua_State *L, const char *v, size_t len, int conn_idx);
int ar_push_json_hashed(lua_State *L, const char *v, size_t len, int conn_idx, uint64_t *hash);
/* Exported for the fuzz targets only (test/fuzz/): MYSQL_TIME -> string. */
void ar_push_temporal(lua_State *L, const MYSQL_TIME *t, enum enum_field_types type,
                      unsigned decimals);

/* json.c */
int ar_json_decode(lua_State *L);
/* With the core module at -2 and activerecord.json at -1: adopts json's
 * array metatable, sets json_encode/json_hash/json_array(_mt) on the core and
 * encode/decode/hash/array on activerecord.json. */
void ar_json_open(lua_State *L);

/* capabilities.c */
int ar_capabilities_for(lua_State *L);
int ar_capability_matrix(lua_State *L);
void ar_push_capabilities(lua_State *L, const char *flavor, int major, int minor,
                          int patch);
int ar_parse_version(const char *s, int *major, int *minor, int *patch,
                     const char **flavor);

#endif

/*
 * connection.c - connection userdata: access, lifetime (close = __close =
 * __gc, idempotent), the pool's checks, transactions, session and server
 * detection, and the method table. Opening one is connect.c.
 */
#include <ctype.h>
#include <poll.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"
/* ---- userdata access ------------------------------------------------- */

ar_conn *ar_check_conn(lua_State *L, int idx) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, idx, AR_CONN_MT);
  if (!c->mysql || !c->connected)
    ar_raise(L, "ConnectionError", 0, NULL, "attempt to use a closed connection", NULL);
  return c;
}

/* Before a new command: finish whatever result an earlier call left unread
 * (a Lua error in the middle of a fetch), unless a cursor still owns it. */
void ar_conn_settle(lua_State *L, ar_conn *c) {
  if (!c->active) return;
  if (c->cursor_open)
    ar_raise(L, "QueryError", 0, NULL,
             "connection is busy: a streaming cursor (each) is still open; "
             "read it to the end or close it first", NULL);
  ar_stmt *s = c->active;
  c->active = NULL;
  if (s->stmt) {
    char ret;
    AR_CALL0(c->mysql, ret, mysql_stmt_free_result, s->stmt);
    (void)ret;
  }
}

/* Raised by AR_CHECK_TX: the transaction begin() opened is over on the
 * server, so the core forgets it; a result the statement left is dropped
 * first so the connection takes the next command. */
void ar_tx_ended(lua_State *L, ar_conn *c, const char *sql) {
  c->tx_open = 0;
  c->cursor_open = 0;
  ar_conn_settle(L, c);
  ar_raise(L, "TransactionError", 0, NULL,
           "the server ended the transaction opened by begin(): the statement committed "
           "the transaction implicitly (DDL, COMMIT, ROLLBACK, LOCK TABLES, SET "
           "autocommit = 1, ...), or an earlier error rolled it back; what follows would "
           "run outside any transaction",
           sql);
}

void ar_conn_close_handle(ar_conn *c) {
  c->tx_open = 0;
  ar_stmt_close_all(c);
  if (c->mysql) {
    MYSQL *m = c->mysql;
    ar_fiber_conn_closed(c);
    c->mysql = NULL;
    c->connected = 0;
#if AR_NONBLOCKING
    int st = mysql_close_start(m);
    while (st) st = mysql_close_cont(m, ar_wait(m, st));
#else
    mysql_close(m);
#endif
  }
}

static int conn_close(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  ar_fiber_forget(L, c);
  ar_conn_close_handle(c);
  /* drop the statement userdata so they can be collected */
  lua_newtable(L);
  lua_setiuservalue(L, 1, AR_CONN_UV_CACHE);
  return 0;
}

static int conn_gc(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  ar_fiber_abandon(L, c); /* a call its coroutine left waiting, if any */
  ar_fiber_forget(L, c);
  ar_conn_close_handle(c);
  return 0;
}

static int conn_tostring(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  if (!c->mysql || !c->connected)
    lua_pushstring(L, "mysql connection (closed)");
  else
    lua_pushfstring(L, "mysql connection (%p, thread %I, %s)", (void *)c,
                    (lua_Integer)mysql_thread_id(c->mysql),
                    mysql_get_host_info(c->mysql));
  return 1;
}

static int conn_is_closed(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  lua_pushboolean(L, !c->mysql || !c->connected);
  return 1;
}

/* checkin_state() -> nil when the connection may go back to the pool as it
 * is, "closed", or "transaction" (a transaction is still open on the
 * server); records the time as its last use. The pool's one call on checkin. */
static int conn_checkin_state(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  c->last_used = ar_monotime();
  if (!c->mysql || !c->connected) lua_pushliteral(L, "closed");
  else if (c->mysql->server_status & SERVER_STATUS_IN_TRANS) lua_pushliteral(L, "transaction");
  else lua_pushnil(L);
  return 1;
}
/* ---- transactions ---------------------------------------------------- */

static int in_transaction(ar_conn *c) {
  return (c->mysql->server_status & SERVER_STATUS_IN_TRANS) != 0;
}

static void run_text(lua_State *L, ar_conn *c, const char *sql) {
  ar_conn_settle(L, c);
  ar_text_query(L, c, 1, sql, strlen(sql), 0);
}

static const char *const isolation_levels[] = {
    "READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", NULL};

/* Accepts "read committed", "READ_COMMITTED", "Read-Committed". */
static int parse_isolation(lua_State *L, const char *s) {
  char norm[32];
  size_t n = strlen(s);
  if (n >= sizeof norm) n = sizeof norm - 1;
  for (size_t i = 0; i < n; i++) {
    char ch = (char)toupper((unsigned char)s[i]);
    norm[i] = (char)((ch == '_' || ch == '-') ? ' ' : ch);
  }
  norm[n] = '\0';
  int level = ar_in_list(norm, isolation_levels);
  if (level < 0)
    ar_raisef(L, "TransactionError",
              "unknown isolation level '%s' (READ UNCOMMITTED, READ COMMITTED, "
              "REPEATABLE READ, SERIALIZABLE)", s);
  return level;
}

/* begin([isolation]) or begin{isolation = ..., read_only = bool} */
static int conn_begin(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  const char *isolation = NULL;
  int read_only = -1;
  if (lua_type(L, 2) == LUA_TSTRING) {
    isolation = lua_tostring(L, 2);
  } else if (lua_istable(L, 2)) {
    static const char *const keys[] = {"isolation", "read_only", NULL};
    ar_check_keys(L, 2, "begin option", keys);
    isolation = ar_opt_string(L, 2, "isolation");
    lua_getfield(L, 2, "read_only");
    if (!lua_isnil(L, -1)) read_only = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 2)) {
    return ar_raisef(L, "TransactionError", "begin expects an isolation level or an options table");
  }
  int level = isolation ? parse_isolation(L, isolation) : -1;
  c->tx_open = 0; /* a stale mark (nothing ran since the server ended it) */
  if (in_transaction(c))
    return ar_raisef(L, "TransactionError",
                     "a transaction is already open on this connection (use a savepoint)");
  if (level >= 0) {
    char sql[80];
    snprintf(sql, sizeof sql, "SET TRANSACTION ISOLATION LEVEL %s", isolation_levels[level]);
    run_text(L, c, sql);
  }
  run_text(L, c, read_only == 1   ? "START TRANSACTION READ ONLY"
                 : read_only == 0 ? "START TRANSACTION READ WRITE"
                                  : "START TRANSACTION");
  c->tx_open = 1;
  return 0;
}

static int conn_commit(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  my_bool r = 0;
  ar_conn_settle(L, c);
  c->tx_open = 0; /* over for the core whatever the outcome */
  AR_CALL0(c->mysql, r, mysql_commit, c->mysql);
  if (r) return ar_raise_mysql(L, c->mysql, "COMMIT");
  return 0;
}

static int conn_rollback(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  my_bool r = 0;
  ar_conn_settle(L, c);
  c->tx_open = 0;
  AR_CALL0(c->mysql, r, mysql_rollback, c->mysql);
  if (r) return ar_raise_mysql(L, c->mysql, "ROLLBACK");
  return 0;
}

/* Savepoint names are identifiers we quote ourselves, never raw SQL. */
static const char *check_savepoint(lua_State *L, int idx) {
  size_t n;
  const char *name = ar_check_text(L, idx, &n, "TransactionError", "a savepoint name");
  int ok = n > 0 && n <= 64 && (isalpha((unsigned char)name[0]) || name[0] == '_');
  for (size_t i = 0; ok && i < n; i++)
    ok = isalnum((unsigned char)name[i]) || name[i] == '_';
  if (!ok)
    ar_raisef(L, "TransactionError",
              "invalid savepoint name (letters, digits and _, at most 64)");
  return name;
}

static int savepoint_cmd(lua_State *L, const char *verb) {
  ar_conn *c = ar_check_conn(L, 1);
  const char *name = check_savepoint(L, 2);
  char sql[128];
  snprintf(sql, sizeof sql, "%s `%s`", verb, name);
  run_text(L, c, sql);
  return 0;
}

static int conn_savepoint(lua_State *L) { return savepoint_cmd(L, "SAVEPOINT"); }
static int conn_release_savepoint(lua_State *L) { return savepoint_cmd(L, "RELEASE SAVEPOINT"); }
static int conn_rollback_to(lua_State *L) { return savepoint_cmd(L, "ROLLBACK TO SAVEPOINT"); }

static int conn_in_transaction(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  lua_pushboolean(L, in_transaction(c));
  return 1;
}

static int conn_autocommit(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  if (!lua_isboolean(L, 2))
    return ar_raisef(L, "ConfigError", "autocommit expects true or false, got %s", luaL_typename(L, 2));
  my_bool r = 0;
  ar_conn_settle(L, c);
  AR_CALL(c->mysql, r, mysql_autocommit, c->mysql, (my_bool)lua_toboolean(L, 2));
  if (r) return ar_raise_mysql(L, c->mysql, NULL);
  AR_CHECK_TX(L, c, lua_toboolean(L, 2) ? "SET autocommit = 1" : "SET autocommit = 0");
  return 0;
}

/* ---- session and server ---------------------------------------------- */

/* ping() -> true, or false plus the error object (never raises on a dead
 * link: the pool asks this question to decide, not to fail). */
static int conn_ping(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  if (!c->mysql || !c->connected) {
    lua_pushboolean(L, 0);
    ar_push_error(L, "ConnectionError", 0, NULL, "connection is closed", NULL);
    return 2;
  }
  if (c->cursor_open) {
    lua_pushboolean(L, 1); /* busy streaming, so alive */
    return 1;
  }
  ar_conn_settle(L, c);
  int r = 0;
  AR_CALL0(c->mysql, r, mysql_ping, c->mysql);
  if (r) {
    unsigned code = mysql_errno(c->mysql);
    lua_pushboolean(L, 0);
    ar_push_error(L, ar_error_kind(code), code, mysql_sqlstate(c->mysql),
                  mysql_error(c->mysql), NULL);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* probe() -> true when the idle link shows nothing pending. A server that
 * killed us, restarted or timed us out has closed the socket (or left an
 * error packet), which makes it readable: one poll() with no wait tells,
 * before a statement is sent, that it would fail. */
static int link_quiet(ar_conn *c) {
  if (!c->mysql || !c->connected) return 0;
  if (c->active) return 1; /* a result is being read: the link is in use, not idle */
  struct pollfd pfd;
  pfd.fd = (int)mysql_get_socket(c->mysql);
  pfd.events = POLLIN;
  pfd.revents = 0;
  return poll(&pfd, 1, 0) == 0;
}

static int conn_probe(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  lua_pushboolean(L, link_quiet(c));
  return 1;
}

/* pool_limits(max_lifetime, idle_timeout, validate_after): what
 * checkout_check() holds the connection to (seconds; math.huge: never). */
static int conn_pool_limits(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  c->max_lifetime = (double)luaL_checknumber(L, 2);
  c->idle_timeout = (double)luaL_checknumber(L, 3);
  c->validate_after = (double)luaL_checknumber(L, 4);
  return 0;
}

/* checkout_check() -> true when an idle connection may be handed out: young
 * enough, used recently enough (pool_limits), nothing pending on its socket
 * (probe), and answering a ping when idle for validate_after seconds or
 * more; else false, broken (true when the link itself failed). The pool's
 * one call on checkout. */
static int conn_checkout_check(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  double t = ar_monotime(), idle = t - c->last_used;
  int ok = t - c->created <= c->max_lifetime && idle <= c->idle_timeout;
  int broken = 0;
  if (ok && !link_quiet(c)) {
    ok = 0;
    broken = 1;
  }
  if (ok && idle >= c->validate_after) {
    lua_settop(L, 1);
    conn_ping(L);
    ok = lua_toboolean(L, 2);
    broken = !ok;
  }
  lua_pushboolean(L, ok);
  if (ok) return 1;
  lua_pushboolean(L, broken);
  return 2;
}

/* mysql_reset_connection drops the server's prepared statements, so ours go
 * first; session variables, temporary tables and locks are reset too. */
static int conn_reset(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  ar_conn_settle(L, c);
  c->tx_open = 0; /* the reset rolls it back */
  ar_stmt_close_all(c);
  lua_newtable(L);
  lua_setiuservalue(L, 1, AR_CONN_UV_CACHE);
  int r = 0;
  AR_CALL0(c->mysql, r, mysql_reset_connection, c->mysql);
  if (r) return ar_raise_mysql(L, c->mysql, NULL);
  /* The reset rolled back any open transaction, but the status flags the
   * library keeps still say "in transaction" until the next statement. */
  c->mysql->server_status &= ~SERVER_STATUS_IN_TRANS;
  ar_conn_apply_session(L, c, 1, 1);
  return 0;
}

static int conn_server(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  const char *info = mysql_get_server_info(c->mysql);
  int major = 0, minor = 0, patch = 0;
  const char *flavor = "mysql";
  ar_parse_version(info, &major, &minor, &patch, &flavor);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, flavor);
  lua_setfield(L, -2, "flavor");
  lua_createtable(L, 3, 0);
  lua_pushinteger(L, major);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, minor);
  lua_rawseti(L, -2, 2);
  lua_pushinteger(L, patch);
  lua_rawseti(L, -2, 3);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, info);
  lua_setfield(L, -2, "version_string");
  return 1;
}

static int conn_capabilities(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  int major = 0, minor = 0, patch = 0;
  const char *flavor = "mysql";
  ar_parse_version(mysql_get_server_info(c->mysql), &major, &minor, &patch, &flavor);
  ar_push_capabilities(L, flavor, major, minor, patch);
#if !AR_NONBLOCKING
  /* array binding is a Connector/C feature: the server alone is not enough */
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "bulk_array_binding");
#endif
  return 1;
}

static int conn_thread_id(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  lua_pushinteger(L, (lua_Integer)mysql_thread_id(c->mysql));
  return 1;
}

static int conn_ssl_cipher(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  const char *cipher = mysql_get_ssl_cipher(c->mysql);
  if (cipher) lua_pushstring(L, cipher);
  else lua_pushnil(L);
  return 1;
}

static int conn_statement_cache(lua_State *L) {
  ar_conn *c = ar_check_conn(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, c->cached);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, c->statement_cache_size);
  lua_setfield(L, -2, "capacity");
  return 1;
}

/* The calls that may wait on the network: on a fiber in scheduler mode. */
AR_SCHEDULABLE(sched_execute, ar_conn_execute, AR_CLS_CONN)
AR_SCHEDULABLE(sched_execute_json_hashes, ar_conn_execute_json_hashes, AR_CLS_CONN)
AR_SCHEDULABLE(sched_each, ar_conn_each, AR_CLS_CONN)
AR_SCHEDULABLE(sched_prepare, ar_conn_prepare, AR_CLS_CONN)
AR_SCHEDULABLE(sched_begin, conn_begin, AR_CLS_CONN)
AR_SCHEDULABLE(sched_commit, conn_commit, AR_CLS_CONN)
AR_SCHEDULABLE(sched_rollback, conn_rollback, AR_CLS_CONN)
AR_SCHEDULABLE(sched_savepoint, conn_savepoint, AR_CLS_CONN)
AR_SCHEDULABLE(sched_release_savepoint, conn_release_savepoint, AR_CLS_CONN)
AR_SCHEDULABLE(sched_rollback_to, conn_rollback_to, AR_CLS_CONN)
AR_SCHEDULABLE(sched_autocommit, conn_autocommit, AR_CLS_CONN)
AR_SCHEDULABLE(sched_ping, conn_ping, AR_CLS_CONN)
AR_SCHEDULABLE(sched_reset, conn_reset, AR_CLS_CONN)
AR_SCHEDULABLE(sched_close, conn_close, AR_CLS_CONN | AR_CLS_CLOSING)
AR_SCHEDULABLE(sched_checkout_check, conn_checkout_check, AR_CLS_CONN)

static const luaL_Reg conn_methods[] = {
    {"execute", sched_execute},
    {"execute_json_hashes", sched_execute_json_hashes},
    {"each", sched_each},
    {"prepare", sched_prepare},
    {"begin", sched_begin},
    {"commit", sched_commit},
    {"rollback", sched_rollback},
    {"savepoint", sched_savepoint},
    {"release_savepoint", sched_release_savepoint},
    {"rollback_to", sched_rollback_to},
    {"in_transaction", conn_in_transaction},
    {"autocommit", sched_autocommit},
    {"ping", sched_ping},
    {"probe", conn_probe},
    {"reset", sched_reset},
    {"close", sched_close},
    {"is_closed", conn_is_closed},
    {"checkin_state", conn_checkin_state},
    {"checkout_check", sched_checkout_check},
    {"pool_limits", conn_pool_limits},
    {"server", conn_server},
    {"capabilities", conn_capabilities},
    {"thread_id", conn_thread_id},
    {"ssl_cipher", conn_ssl_cipher},
    {"statement_cache", conn_statement_cache},
    {NULL, NULL}};

static const luaL_Reg conn_meta[] = {
    {"__gc", conn_gc},
    {"__close", conn_gc},
    {"__tostring", conn_tostring},
    {"__index", NULL},
    {NULL, NULL}};

void ar_conn_open(lua_State *L) {
  luaL_newmetatable(L, AR_CONN_MT);   /* mt */
  luaL_setfuncs(L, conn_meta, 0);
  luaL_newlib(L, conn_methods);       /* mt, methods */
  lua_setfield(L, -2, "__index");     /* mt */
  lua_pop(L, 1);
}

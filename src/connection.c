/*
 * connection.c - connection userdata: options, connect, transactions,
 * server detection, lifetime (close = __close = __gc, idempotent).
 */
#include <ctype.h>
#include <poll.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

/* ---- options --------------------------------------------------------- */

static const char *const option_names[] = {
    "host", "port", "socket", "user", "password", "database", "charset",
    "connect_timeout", "read_timeout", "write_timeout", "ssl", "init_command",
    "sql_mode", "time_zone", "autocommit", "statement_cache_size", "decimal",
    NULL};

static const char *const ssl_option_names[] = {
    "mode", "ca", "capath", "cert", "key", "cipher", "crl", NULL};

static const char *const ssl_modes[] = {
    "disabled", "preferred", "required", "verify_ca", "verify_identity", NULL};

enum { SSL_DISABLED, SSL_PREFERRED, SSL_REQUIRED, SSL_VERIFY_CA, SSL_VERIFY_IDENTITY };

static int in_list(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (strcmp(s, list[i]) == 0) return i;
  return -1;
}

static int raise_unknown(lua_State *L, const char *what, const char *key,
                         const char *const *accepted) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; accepted[i]; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, accepted[i]);
  }
  luaL_pushresult(&b);
  ar_raisef(L, "ConfigError", "unknown %s '%s' (accepted: %s)", what, key,
            lua_tostring(L, -1));
  return 0;
}

/* Every key must be a known option; catches typos like `pasword`. */
static void check_keys(lua_State *L, int idx, const char *what,
                       const char *const *accepted) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* keep key */
    if (lua_type(L, -1) != LUA_TSTRING)
      ar_raisef(L, "ConfigError", "%s names must be strings", what);
    if (in_list(lua_tostring(L, -1), accepted) < 0)
      raise_unknown(L, what, lua_tostring(L, -1), accepted);
  }
}

/* Pushes the option's value and returns it as a C string (NULL for nil).
 * The value stays on the stack, and so alive, until the caller drops it: an
 * options table with an __index function may hand out a string nothing else
 * references, which the collector would free as soon as it were popped. */
static const char *opt_string(lua_State *L, int idx, const char *key) {
  if (lua_getfield(L, idx, key) == LUA_TNIL) return NULL;
  if (lua_type(L, -1) != LUA_TSTRING)
    ar_raisef(L, "ConfigError", "option '%s' must be a string, got %s", key,
              luaL_typename(L, -1));
  return lua_tostring(L, -1);
}

static lua_Integer opt_integer(lua_State *L, int idx, const char *key,
                               lua_Integer dflt, lua_Integer lo, lua_Integer hi) {
  lua_Integer v = dflt;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    int ok = 0;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < lo || v > hi)
      ar_raisef(L, "ConfigError", "option '%s' must be an integer in [%lld, %lld]",
                key, (long long)lo, (long long)hi);
  }
  lua_pop(L, 1);
  return v;
}

/* Timeouts are seconds (fractions round up: Connector/C counts whole seconds). */
static unsigned opt_timeout(lua_State *L, int idx, const char *key) {
  unsigned v = 0;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    lua_Number n = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(n > 0) || n > 86400 * 365)
      ar_raisef(L, "ConfigError", "option '%s' must be a positive number of seconds", key);
    v = (unsigned)ceil(n);
  }
  lua_pop(L, 1);
  return v;
}

static int opt_boolean(lua_State *L, int idx, const char *key, int dflt) {
  int v = dflt;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1))
      ar_raisef(L, "ConfigError", "option '%s' must be a boolean, got %s", key,
                luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* Client character sets in which no multi-byte character can end in a byte
 * that quoting relies on (0x22 ", 0x27 ', 0x5C \\, 0x60 `): single-byte sets,
 * UTF-8, and the EUC family (trail bytes at 0x41 and up, never those four).
 * sjis/cp932, big5, gbk and gb18030 have trail bytes in 0x40-0x7E, so with
 * them an identifier or literal quoted by the client could end early on the
 * server; ucs2/utf16/utf32 cannot be client sets at all. */
static const char *const safe_charsets[] = {
    "utf8mb4", "utf8mb3", "utf8", "latin1", "latin2", "latin5", "latin7",
    "ascii", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852",
    "cp866", "greek", "hebrew", "koi8r", "koi8u", "tis620", "armscii8", "geostd8",
    "keybcs2", "macce", "macroman", "dec8", "hp8", "swe7", "euckr", "ujis",
    "eucjpms", "gb2312", NULL};

static void check_charset(lua_State *L, const char *cs) {
  char lower[16];
  size_t n = strlen(cs);
  for (size_t i = 0; i < n && i < sizeof lower - 1; i++)
    lower[i] = (char)tolower((unsigned char)cs[i]);
  lower[n < sizeof lower - 1 ? n : sizeof lower - 1] = '\0';
  if (n >= sizeof lower || in_list(lower, safe_charsets) < 0) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; safe_charsets[i]; i++) {
      if (i) luaL_addstring(&b, ", ");
      luaL_addstring(&b, safe_charsets[i]);
    }
    luaL_pushresult(&b);
    ar_raisef(L, "ConfigError",
              "option 'charset': '%.64s' is not accepted (a multi-byte character of "
              "it could end in a quote or backslash byte, or it is unknown); accepted: %s",
              cs, lua_tostring(L, -1));
  }
}

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

static void close_handle(ar_conn *c) {
  c->tx_open = 0;
  ar_stmt_close_all(c);
  if (c->mysql) {
    MYSQL *m = c->mysql;
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
  close_handle(c);
  /* drop the statement userdata so they can be collected */
  lua_newtable(L);
  lua_setiuservalue(L, 1, AR_CONN_UV_CACHE);
  return 0;
}

static int conn_gc(lua_State *L) {
  ar_conn *c = (ar_conn *)luaL_checkudata(L, 1, AR_CONN_MT);
  close_handle(c);
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

/* ---- connect --------------------------------------------------------- */

static void set_session_var(lua_State *L, int conn_idx, const char *sql,
                            const char *value) {
  lua_pushcfunction(L, ar_conn_execute);
  lua_pushvalue(L, conn_idx);
  lua_pushstring(L, sql);
  lua_pushstring(L, value);
  lua_call(L, 3, 0);
}

/* Applies the remembered session settings; after a reset the init command
 * runs again too (connect runs it itself). Failures raise. */
static void apply_session(lua_State *L, ar_conn *c, int ci, int after_reset) {
  lua_getiuservalue(L, ci, AR_CONN_UV_SESSION);
  int t = lua_gettop(L);
  if (!lua_istable(L, t)) {
    lua_pop(L, 1);
    return;
  }
  if (after_reset) {
    if (lua_getfield(L, t, "init_command") == LUA_TSTRING) {
      size_t len;
      const char *cmd = lua_tolstring(L, -1, &len);
      ar_text_query(L, c, ci, cmd, len, 0);
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, t, "autocommit");
  int autocommit = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!autocommit) {
    my_bool r = 0;
    AR_CALL(c->mysql, r, mysql_autocommit, c->mysql, 0);
    if (r) ar_raise_mysql(L, c->mysql, "SET autocommit = 0");
  }
  if (lua_getfield(L, t, "sql_mode") == LUA_TSTRING)
    set_session_var(L, ci, "SET SESSION sql_mode = ?", lua_tostring(L, -1));
  lua_pop(L, 1);
  if (lua_getfield(L, t, "time_zone") == LUA_TSTRING)
    set_session_var(L, ci, "SET SESSION time_zone = ?", lua_tostring(L, -1));
  lua_settop(L, t - 1);
}

/* The server's packet limit, so oversize statements are refused before
 * they are sent (the server would drop the connection). */
static void read_max_packet(lua_State *L, ar_conn *c, int ci) {
  int top = lua_gettop(L);
  static const char sql[] = "SELECT @@max_allowed_packet AS p";
  ar_text_query(L, c, ci, sql, sizeof sql - 1, 1);
  lua_getfield(L, -1, "rows");
  lua_rawgeti(L, -1, 1);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "p");
    lua_Integer p = lua_tointeger(L, -1);
    if (p > 0) c->max_packet = (unsigned long)p;
  }
  lua_settop(L, top);
}

/* Connection failures all report as ConnectionError, whatever the errno. */
static int fail_connect(lua_State *L, ar_conn *c, const char *why) {
  unsigned code = c->mysql ? mysql_errno(c->mysql) : 0;
  char msg[MYSQL_ERRMSG_SIZE + 64], state[SQLSTATE_LENGTH + 1] = "";
  if (why)
    snprintf(msg, sizeof msg, "%s", why);
  else {
    snprintf(msg, sizeof msg, "%s", mysql_error(c->mysql));
    snprintf(state, sizeof state, "%s", mysql_sqlstate(c->mysql));
  }
  close_handle(c);
  return ar_raise(L, "ConnectionError", code, state, msg, NULL);
}

static int apply_ssl(lua_State *L, MYSQL *m, int opts) {
  int mode = SSL_DISABLED;
  lua_getfield(L, opts, "ssl");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return mode;
  }
  if (!lua_istable(L, -1))
    ar_raisef(L, "ConfigError", "option 'ssl' must be a table");
  int t = lua_gettop(L);
  check_keys(L, t, "ssl option", ssl_option_names);
  const char *mode_s = opt_string(L, t, "mode");
  mode = mode_s ? in_list(mode_s, ssl_modes) : SSL_PREFERRED;
  if (mode < 0)
    ar_raisef(L, "ConfigError",
              "ssl mode '%s' is not one of disabled, preferred, required, "
              "verify_ca, verify_identity", mode_s);
  const char *ca = opt_string(L, t, "ca"), *capath = opt_string(L, t, "capath");
  const char *cert = opt_string(L, t, "cert"), *key = opt_string(L, t, "key");
  const char *cipher = opt_string(L, t, "cipher"), *crl = opt_string(L, t, "crl");
  if (mode >= SSL_VERIFY_CA && !ca && !capath)
    ar_raisef(L, "ConfigError", "ssl mode '%s' needs 'ca' or 'capath'", ssl_modes[mode]);
  if (mode != SSL_DISABLED) {
    /* Connector/C 3.3 refuses a server without TLS *before* sending the
     * login only when server-certificate verification is on, so verify_ca
     * turns it on too (it then also checks the host name: stricter, never
     * weaker). `required` can only check after the handshake (below). */
    my_bool on = 1, verify = (my_bool)(mode >= SSL_VERIFY_CA);
    mysql_ssl_set(m, key, cert, ca, capath, cipher);
    if (crl) mysql_options(m, MYSQL_OPT_SSL_CRL, crl);
    if (mode >= SSL_REQUIRED) mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
    mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
  }
  lua_settop(L, t - 1); /* the library copied the strings: drop them and the table */
  return mode;
}

int ar_connect(lua_State *L) {
  if (!lua_istable(L, 1))
    return ar_raisef(L, "ConfigError", "connect expects a table of options, got %s", luaL_typename(L, 1));
  check_keys(L, 1, "connect option", option_names);
  /* every string option stays on the stack until connect returns */
  luaL_checkstack(L, 40, "connect options");
  const char *host = opt_string(L, 1, "host");
  const char *sock = opt_string(L, 1, "socket");
  const char *user = opt_string(L, 1, "user");
  const char *password = opt_string(L, 1, "password");
  const char *database = opt_string(L, 1, "database");
  const char *charset = opt_string(L, 1, "charset");
  const char *init_command = opt_string(L, 1, "init_command");
  const char *sql_mode = opt_string(L, 1, "sql_mode");
  const char *time_zone = opt_string(L, 1, "time_zone");
  const char *decimal = opt_string(L, 1, "decimal");
  lua_Integer port = opt_integer(L, 1, "port", 0, 0, 65535);
  lua_Integer cache = opt_integer(L, 1, "statement_cache_size", 128, 0, 65536);
  unsigned connect_timeout = opt_timeout(L, 1, "connect_timeout");
  unsigned read_timeout = opt_timeout(L, 1, "read_timeout");
  unsigned write_timeout = opt_timeout(L, 1, "write_timeout");
  int autocommit = opt_boolean(L, 1, "autocommit", 1);
  if (!charset) charset = "utf8mb4";
  check_charset(L, charset);
  if (decimal && strcmp(decimal, "string") != 0 && strcmp(decimal, "number") != 0)
    ar_raisef(L, "ConfigError", "option 'decimal' must be \"string\" or \"number\"");

  /* Userdata first, in the closed state, then acquire (a memory error in
   * between leaks nothing: __gc sees a NULL handle). */
  ar_conn *c = (ar_conn *)lua_newuserdatauv(L, sizeof(ar_conn), AR_CONN_NUV);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, AR_CONN_MT);
  int ci = lua_gettop(L);
  lua_newtable(L);
  lua_setiuservalue(L, ci, AR_CONN_UV_CACHE);
  c->statement_cache_size = (unsigned)cache;
  c->decimal_as_number = decimal && strcmp(decimal, "number") == 0;

  c->mysql = mysql_init(NULL);
  if (!c->mysql) return luaL_error(L, "not enough memory");
  MYSQL *m = c->mysql;
#if AR_NONBLOCKING
  /* TLS handshakes run on the library's coroutine stack: give it room. */
  size_t stack = (size_t)256 * 1024;
  if (mysql_options(m, MYSQL_OPT_NONBLOCK, &stack)) {
    /* no async context (out of memory): the *_start calls would crash, so
     * the handle is closed the blocking way (never connected: no network) */
    c->mysql = NULL;
    mysql_close(m);
    return luaL_error(L, "not enough memory");
  }
#endif
  mysql_options(m, MYSQL_SET_CHARSET_NAME, charset);
  if (connect_timeout) mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  if (read_timeout) mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  if (write_timeout) mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  if (init_command) mysql_options(m, MYSQL_INIT_COMMAND, init_command);
  {
    unsigned int off = 0;
    my_bool report = 1;
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &off); /* never let a server read client files */
    mysql_options(m, MYSQL_REPORT_DATA_TRUNCATION, &report);
  }
  int ssl_mode = apply_ssl(L, m, 1);

  MYSQL *ret = NULL;
  AR_CALL(m, ret, mysql_real_connect, m, host, user, password, database,
          (unsigned)port, sock, CLIENT_MULTI_RESULTS);
  if (!ret) return fail_connect(L, c, NULL);
  c->connected = 1;
  c->created = c->last_used = ar_monotime();
  c->max_lifetime = c->idle_timeout = c->validate_after = HUGE_VAL;
  if (ssl_mode >= SSL_REQUIRED && !mysql_get_ssl_cipher(m))
    return fail_connect(L, c, "TLS was required but the connection is not encrypted");
  /* remembered so reset() can restore the session the user asked for */
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, autocommit);
  lua_setfield(L, -2, "autocommit");
  if (sql_mode) {
    lua_pushstring(L, sql_mode);
    lua_setfield(L, -2, "sql_mode");
  }
  if (time_zone) {
    lua_pushstring(L, time_zone);
    lua_setfield(L, -2, "time_zone");
  }
  if (init_command) {
    lua_pushstring(L, init_command);
    lua_setfield(L, -2, "init_command");
  }
  lua_setiuservalue(L, ci, AR_CONN_UV_SESSION);
  apply_session(L, c, ci, 0);
  read_max_packet(L, c, ci);
  lua_settop(L, ci);
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
  int level = in_list(norm, isolation_levels);
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
    check_keys(L, 2, "begin option", keys);
    isolation = opt_string(L, 2, "isolation");
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
  apply_session(L, c, 1, 1);
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

static const luaL_Reg conn_methods[] = {
    {"execute", ar_conn_execute},
    {"execute_json_hashes", ar_conn_execute_json_hashes},
    {"each", ar_conn_each},
    {"prepare", ar_conn_prepare},
    {"begin", conn_begin},
    {"commit", conn_commit},
    {"rollback", conn_rollback},
    {"savepoint", conn_savepoint},
    {"release_savepoint", conn_release_savepoint},
    {"rollback_to", conn_rollback_to},
    {"in_transaction", conn_in_transaction},
    {"autocommit", conn_autocommit},
    {"ping", conn_ping},
    {"probe", conn_probe},
    {"reset", conn_reset},
    {"close", conn_close},
    {"is_closed", conn_is_closed},
    {"checkin_state", conn_checkin_state},
    {"checkout_check", conn_checkout_check},
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

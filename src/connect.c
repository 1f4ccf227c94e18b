/*
 * connect.c - core.connect(options): the options (checked, with one
 * wording for unknown keys), TLS, the session the user asked for (applied
 * again after a reset), and the connection userdata it returns.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ar.h"

/* ---- options --------------------------------------------------------- */

static const char *const option_names[] = {
    "host", "port", "socket", "user", "password", "database", "charset",
    "connect_timeout", "read_timeout", "write_timeout", "ssl", "init_command",
    "sql_mode", "time_zone", "autocommit", "statement_cache_size", "decimal",
    "scheduler", NULL};

static const char *const ssl_option_names[] = {
    "mode", "ca", "capath", "cert", "key", "cipher", "crl", NULL};

static const char *const ssl_modes[] = {
    "disabled", "preferred", "required", "verify_ca", "verify_identity", NULL};

enum { SSL_DISABLED, SSL_PREFERRED, SSL_REQUIRED, SSL_VERIFY_CA, SSL_VERIFY_IDENTITY };

int ar_in_list(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (strcmp(s, list[i]) == 0) return i;
  return -1;
}

/* Pushes the names of a NULL-terminated list joined by ", " (for messages
 * that list what is accepted). */
static const char *push_joined(lua_State *L, const char *const *list) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; list[i]; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, list[i]);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static int raise_unknown(lua_State *L, const char *what, const char *key,
                         const char *const *accepted) {
  push_joined(L, accepted);
  ar_raisef(L, "ConfigError", "unknown %s '%s' (accepted: %s)", what, key,
            lua_tostring(L, -1));
  return 0;
}

/* Every key must be a known option; catches typos like `pasword`. */
void ar_check_keys(lua_State *L, int idx, const char *what,
                       const char *const *accepted) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1); /* keep key */
    if (lua_type(L, -1) != LUA_TSTRING)
      ar_raisef(L, "ConfigError", "%s names must be strings", what);
    if (ar_in_list(lua_tostring(L, -1), accepted) < 0)
      raise_unknown(L, what, lua_tostring(L, -1), accepted);
  }
}

/* Pushes the option's value and returns it as a C string (NULL for nil).
 * The value stays on the stack, and so alive, until the caller drops it: an
 * options table with an __index function may hand out a string nothing else
 * references, which the collector would free as soon as it were popped. */
const char *ar_opt_string(lua_State *L, int idx, const char *key) {
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
  if (n >= sizeof lower || ar_in_list(lower, safe_charsets) < 0) {
    const char *accepted = push_joined(L, safe_charsets);
    ar_raisef(L, "ConfigError",
              "option 'charset': '%.64s' is not accepted (a multi-byte character of "
              "it could end in a quote or backslash byte, or it is unknown); accepted: %s",
              cs, accepted);
  }
}

/* ---- connect --------------------------------------------------------- */

static void set_session_var(lua_State *L, ar_conn *c, int conn_idx, const char *sql,
                            const char *value) {
  lua_pushstring(L, value);
  ar_exec_in_frame(L, c, conn_idx, sql, lua_gettop(L), 1);
  lua_pop(L, 1);
}

/* Applies the remembered session settings; after a reset the init command
 * runs again too (connect runs it itself). Failures raise. */
void ar_conn_apply_session(lua_State *L, ar_conn *c, int ci, int after_reset) {
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
    set_session_var(L, c, ci, "SET SESSION sql_mode = ?", lua_tostring(L, -1));
  lua_pop(L, 1);
  if (lua_getfield(L, t, "time_zone") == LUA_TSTRING)
    set_session_var(L, c, ci, "SET SESSION time_zone = ?", lua_tostring(L, -1));
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
  ar_error_copy e;
  if (why) {
    e.code = c->mysql ? mysql_errno(c->mysql) : 0;
    snprintf(e.message, sizeof e.message, "%s", why);
    e.sqlstate[0] = '\0';
  } else {
    ar_copy_mysql_error(&e, c->mysql);
  }
  ar_conn_close_handle(c);
  return ar_raise_copy(L, "ConnectionError", &e, NULL);
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
  ar_check_keys(L, t, "ssl option", ssl_option_names);
  const char *mode_s = ar_opt_string(L, t, "mode");
  mode = mode_s ? ar_in_list(mode_s, ssl_modes) : SSL_PREFERRED;
  if (mode < 0)
    ar_raisef(L, "ConfigError",
              "ssl mode '%s' is not one of disabled, preferred, required, "
              "verify_ca, verify_identity", mode_s);
  const char *ca = ar_opt_string(L, t, "ca"), *capath = ar_opt_string(L, t, "capath");
  const char *cert = ar_opt_string(L, t, "cert"), *key = ar_opt_string(L, t, "key");
  const char *cipher = ar_opt_string(L, t, "cipher"), *crl = ar_opt_string(L, t, "crl");
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
  ar_check_keys(L, 1, "connect option", option_names);
  /* every string option stays on the stack until connect returns */
  luaL_checkstack(L, 40, "connect options");
  const char *host = ar_opt_string(L, 1, "host");
  const char *sock = ar_opt_string(L, 1, "socket");
  const char *user = ar_opt_string(L, 1, "user");
  const char *password = ar_opt_string(L, 1, "password");
  const char *database = ar_opt_string(L, 1, "database");
  const char *charset = ar_opt_string(L, 1, "charset");
  const char *init_command = ar_opt_string(L, 1, "init_command");
  const char *sql_mode = ar_opt_string(L, 1, "sql_mode");
  const char *time_zone = ar_opt_string(L, 1, "time_zone");
  const char *decimal = ar_opt_string(L, 1, "decimal");
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
  ar_fiber_adopt(L, c, ci); /* scheduler mode: this call runs on its fiber */
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
  ar_conn_apply_session(L, c, ci, 0);
  read_max_packet(L, c, ci);
  lua_settop(L, ci);
  return 1;
}
